"""The SVMs of the handcrafted baselines (scikit-learn): each method's classifier, the inner
search over candidate settings on training subjects, probabilities, saving and loading.

* Classifier: libsvm's `sklearn.svm.SVC` (the MATLAB reference code of these baselines uses
  libsvm), one-vs-one inside, scored one-vs-rest (`decision_function_shape="ovr"`); the
  `chi2` kernel through a precomputed Gram matrix (`Chi2SVC`). Whatever a method learns
  from clips before the SVM (STCLQP's codebooks and SLPP) is a step of the same pipeline,
  fit on the same training clips.
* Search: every candidate (feature variant x C x gamma) is scored by the UF1 of the pooled
  predictions of `inner_folds` subject folds of the training subjects; the best is refit
  on all of them. Test subjects are never seen. Ties go to the earliest candidate.
* Probabilities: a softmax of the one-vs-rest decision values (argmax = the SVM's
  prediction with ties in votes broken by confidence; not calibrated), 0 for a class no
  training clip has.
* Saving: `skops.io`, loaded back trusting only scikit-learn's, numpy's and tfmer's types.

Free of TensorFlow.
"""

from __future__ import annotations

import itertools

import numpy as np
import scipy.special
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.compose import ColumnTransformer
from sklearn.metrics.pairwise import additive_chi2_kernel, chi2_kernel
from sklearn.pipeline import make_pipeline
from sklearn.svm import SVC

from tfmer import metrics, protocols
from tfmer.config import HandcraftedConfig
from tfmer.handcrafted.slpp import SupervisedLPP
from tfmer.handcrafted.stclqp import COMPONENTS

TRUSTED_MODULES = ("sklearn.", "numpy.", "numpy", "tfmer.", "builtins")
"""Modules whose types `load` trusts in a saved model."""


class Chi2SVC(ClassifierMixin, BaseEstimator):
    """`SVC` on the exponential chi-square kernel `exp(-gamma * sum((x - y)^2 / (x + y)))`
    of non-negative features (histograms), by a precomputed Gram matrix.

    Args:
        C: the penalty.
        gamma: the kernel's width; None: 1 / the mean chi-square distance between the
            training samples (Zhang, Marszalek, Lazebnik, Schmid 2007), which keeps the
            kernel away from 0 and 1 whatever the features' length.
    """

    def __init__(self, C: float = 1.0, gamma: float | None = None):
        self.C, self.gamma = C, gamma

    def fit(self, X, y):
        self.train_ = np.asarray(X, np.float64)
        distances = -additive_chi2_kernel(self.train_)
        self.gamma_ = (self.gamma if self.gamma is not None
                       else 1.0 / max(float(distances.mean()), np.finfo(float).tiny))
        self.svc_ = SVC(C=self.C, kernel="precomputed", decision_function_shape="ovr").fit(
            np.exp(-self.gamma_ * distances), y)
        self.classes_ = self.svc_.classes_
        return self

    def _kernel(self, X):
        return chi2_kernel(np.asarray(X, np.float64), self.train_, gamma=self.gamma_)

    def decision_function(self, X):
        return self.svc_.decision_function(self._kernel(X))

    def predict(self, X):
        return self.svc_.predict(self._kernel(X))


def candidates(settings: HandcraftedConfig, variants) -> list[dict]:
    """The settings the search chooses from: `[{"variant", "C", "gamma"}]`, every feature
    variant x penalty x kernel width (gamma None where the kernel has none or
    `handcrafted.gamma` is empty)."""
    gammas = (list(settings.gamma) if settings.kernel in ("rbf", "chi2") and settings.gamma
              else [None])
    return [{"variant": variant, "C": c, "gamma": gamma}
            for variant, c, gamma in itertools.product(variants, settings.c, gammas)]


def classifier(settings: HandcraftedConfig, candidate: dict, seed: int = 0):
    """The untrained pipeline of a method under one candidate setting."""
    c, gamma = candidate["C"], candidate["gamma"]
    if settings.kernel == "chi2":
        svm = Chi2SVC(C=c, gamma=gamma)
    else:
        svm = SVC(C=c, kernel=settings.kernel, degree=settings.degree,
                  gamma="scale" if gamma is None else gamma, decision_function_shape="ovr")
    return make_pipeline(*_before_svm(settings, seed), svm)


def _before_svm(settings: HandcraftedConfig, seed: int) -> list:
    """The steps a method learns from training clips before its SVM: STCLQP reduces each
    component (sign, magnitude, orientation: a third of the features each,
    `tfmer.handcrafted.stclqp`) by its own supervised locality preserving projection and
    concatenates them (TLCNN, Section 4.3)."""
    if settings.method != "stclqp":
        return []
    width = 3 * int(np.prod(settings.grid)) * settings.words  # planes x blocks x words
    components = settings.components or None  # None: SLPP's default, classes - 1
    return [ColumnTransformer(
        [(name, SupervisedLPP(n_components=components), list(range(c * width, (c + 1) * width)))
         for c, name in enumerate(COMPONENTS)])]


def probabilities(estimator, features, num_classes: int) -> np.ndarray:
    """float64 `[N, num_classes]`: the softmax of the one-vs-rest decision values over the
    classes the estimator was trained on, 0 for the others (module docstring)."""
    decision = np.asarray(estimator.decision_function(features), np.float64)
    seen = np.asarray(estimator.classes_)
    if decision.ndim == 1:  # two classes: one value d for classes_[1]; logits -d/2, d/2
        decision = np.stack([-decision / 2, decision / 2], axis=1)
    logits = np.full((decision.shape[0], num_classes), -np.inf)
    logits[:, seen] = decision
    return scipy.special.softmax(logits, axis=1)


def fit(settings: HandcraftedConfig, candidate: dict, features, labels, seed: int = 0):
    """The pipeline of `candidate` fit to `features` (`[N, D]`, or a list of per-clip
    arrays) and integer `labels` `[N]`."""
    return classifier(settings, candidate, seed).fit(features, np.asarray(labels))


def _subset(features, rows):
    if isinstance(features, list):
        return [features[i] for i in rows]
    return features[rows]


def search(settings: HandcraftedConfig, features_of, labels, subjects, num_classes: int,
           seed: int = 0) -> tuple[dict, list[dict]]:
    """Chooses a candidate by inner cross-validation on training subjects.

    Args:
        settings: the `handcrafted` section.
        features_of: `{variant: features}` of the training clips (`[N, D]` or a list).
        labels: int `[N]`, the training clips' classes.
        subjects: `[N]`, each training clip's subject.
        num_classes: the class list's length (UF1 over all of it).
        seed: fixes the inner folds (and any randomness of the pipeline).

    Returns:
        `(best candidate, [{**candidate, "uf1", "uar"}] for every candidate)`; with one
        candidate no search is run and the table is empty.
    """
    options = candidates(settings, list(features_of))
    if len(options) == 1:
        return options[0], []
    labels, subjects = np.asarray(labels), np.asarray(subjects)
    distinct = sorted(set(subjects.tolist()))
    folds = protocols.make_folds(distinct, f"kfold{min(settings.inner_folds, len(distinct))}",
                                 min(settings.inner_folds, len(distinct)), fold_seed=seed)
    splits = [(np.flatnonzero(~np.isin(subjects, f["test_subjects"])),
               np.flatnonzero(np.isin(subjects, f["test_subjects"]))) for f in folds]
    table = []
    for candidate in options:
        features = features_of[candidate["variant"]]
        predicted = np.empty(len(labels), int)
        for train, test in splits:
            if len(set(labels[train].tolist())) == 1:  # an SVM needs two classes
                predicted[test] = labels[train][0]
                continue
            model = fit(settings, candidate, _subset(features, train), labels[train], seed)
            predicted[test] = probabilities(model, _subset(features, test),
                                            num_classes).argmax(axis=1)
        scores = metrics.classification_metrics(labels, predicted, num_classes)
        table.append({**candidate, "uf1": scores["uf1"], "uar": scores["uar"]})
    best = max(range(len(table)), key=lambda i: (table[i]["uf1"], -i))
    return options[best], table


def save(estimator, path) -> None:
    """Writes a fitted pipeline to `path` with `skops.io` (the caller makes it atomic)."""
    import skops.io  # here, not at the top: every run imports this module, few export

    skops.io.dump(estimator, path)


def load(path):
    """A pipeline `save` wrote; trusts only the types of `TRUSTED_MODULES`.

    Raises:
        ValueError: the file holds other types (naming them).
    """
    import skops.io

    untrusted = skops.io.get_untrusted_types(file=path)
    foreign = [t for t in untrusted if not t.startswith(TRUSTED_MODULES)]
    if foreign:
        raise ValueError(f"{path} holds types tfmer does not trust: {', '.join(foreign)}")
    return skops.io.load(path, trusted=untrusted)

