"""The trainer of the handcrafted baselines: features once per run, an SVM per fold.

`SVMTrainer` computes every clip's features once (`tfmer.clip_features`, cached in the run
folder as `features.npz`) and, for each fit, chooses the candidate setting by inner
cross-validation on the fit's training subjects and fits the method's pipeline on all of
them (`tfmer.svm`). A method that learns part of its features from training clips
(STCLQP's codebooks) learns it for every fit of the run from that fit's training subjects
alone, in one pass over the clips (`plan`; not cached). The fold's test subjects are only
predicted. It has no epochs: its history is empty, and its choices per fold go to
`search.json` and `search.png`.
"""

from __future__ import annotations

import numpy as np

from tfmer import clip_features, data, export, plots, svm
from tfmer.config import ExperimentConfig
from tfmer.handcrafted.methods import method
from tfmer.run_folder import FEATURES, SEARCH, SEARCH_PNG, RunFolder
from tfmer.training.trainer import BaseTrainer


class SVMTrainer(BaseTrainer):
    """A handcrafted method's features and SVM (`config.handcrafted`).

    Attributes:
        features: the last fit's `clip_features.Features` of every clip.
        learned: the last fit's learned part of the features (STCLQP's codebooks), or None.
        estimator: the last fit's pipeline.
        chosen: the last fit's candidate setting (`{"variant", "C", "gamma"}`).
    """

    def __init__(self, config: ExperimentConfig, num_classes: int, run_dir=None):
        super().__init__(config, num_classes, run_dir)
        self.features, self.learned, self.estimator, self.chosen = None, None, None, None
        self.learns = method(config.handcrafted.method).learn is not None
        self._planned: dict = {}  # (subjects, seed) -> (Features, learned)

    def plan(self, info: data.DatasetInfo, fits: list, log=print) -> None:
        """Every clip's features: fold-independent ones read from or written to the run
        folder's cache; a learning method's for all `fits` at once."""
        settings = self.config.handcrafted
        if not self.learns:
            if self.features is None:
                self.features = (clip_features.compute(settings, info, log=log)
                                 if self.run_folder is None else
                                 clip_features.cached(settings, info,
                                                      self.run_folder.file(FEATURES), log=log))
            return
        features, learned = clip_features.compute_learned(settings, info, fits, log)
        for (subjects, seed), part, learnt in zip(fits, features, learned):
            self._planned[(tuple(sorted(subjects)), seed)] = (part, learnt)

    def _features(self, info: data.DatasetInfo, subjects, seed: int, log):
        """The features of a fit (planned now when `plan` was not called with it)."""
        key = (tuple(sorted(subjects)), seed)
        if (key not in self._planned) if self.learns else (self.features is None):
            self.plan(info, [(subjects, seed)], log)
        if self.learns:
            self.features, self.learned = self._planned[key]
        return self.features

    def fit(self, info: data.DatasetInfo, subjects, seed: int, log=print,
            final: bool = False) -> dict:
        features = self._features(info, subjects, seed, log)
        settings = self.config.handcrafted
        clips = info.clips_of(subjects)
        clip_ids = [c["id"] for c in clips]
        targets = np.array([info.classes.index(c["label"]) for c in clips])
        training = {variant: features.select(variant, clip_ids) for variant in features.variants}
        self.chosen, table = svm.search(settings, training, targets,
                                        [c["subject"] for c in clips], self.num_classes, seed)
        self.estimator = svm.fit(settings, self.chosen, training[self.chosen["variant"]], targets,
                                 seed)
        self.selection = {"chosen": self.chosen, "candidates": table} if table else None
        chosen = ", ".join(f"{k} {v}" for k, v in self.chosen.items() if v not in ("", None))
        searched = (f"chosen by {settings.inner_folds}-fold inner cross-validation of "
                    f"{len(set(c['subject'] for c in clips))} training subjects among "
                    f"{len(table)} candidates (UF1 {max(t['uf1'] for t in table):.3f})"
                    if table else "fixed")
        log(f"  {settings.kernel} SVM on {len(clips)} clips: {chosen} ({searched})")
        return {}

    def predict(self, info: data.DatasetInfo, subjects) -> list[dict]:
        return clip_features.predict(self.estimator, self.features, self.chosen["variant"], info,
                                     info.clips_of(subjects))

    def write_selections(self, folder: RunFolder, selections: list[dict]) -> None:
        """`search.json` and its plot `search.png`."""
        folder.write_json(SEARCH, selections)
        plots.plot_search(selections, folder.file(SEARCH_PNG),
                          title=f"{self.config.name}: inner search")

    def export(self, classes, export_root, extra: dict) -> tuple:
        """The final pipeline with its feature settings (`tfmer.export.export_svm`)."""
        path = export.export_svm(self.estimator, self.config, classes, export_root,
                                 extra={**extra, "chosen": self.chosen}, learned=self.learned)
        return path, (f"scikit-learn pipeline ({export.SVM_MODEL}) on "
                      f"{self.config.handcrafted.method} features")
