"""Pooled classification metrics for micro-expression recognition (MEGC definitions).

All figures are computed over a fixed class list `0..num_classes-1`, on the predictions
pooled over all folds of a cross-validation (averaging per-fold figures gives different,
usually lower, numbers).

- accuracy: fraction of correct predictions.
- UF1 (unweighted F1): mean over classes of F1_k = 2 TP_k / (2 TP_k + FP_k + FN_k).
- UAR (unweighted average recall): mean over classes of TP_k / (TP_k + FN_k).

Missing-class rule: a class with no true samples in `y_true` has no defined recall, and
its F1 would be 0 whatever the model does, so by default it is left out of both UF1 and
UAR: they average over the classes present in `y_true`. Predictions of such a class are
still errors: they are false negatives of the true classes. This equals scikit-learn's
`f1_score(average="macro", labels=present)` and `balanced_accuracy_score`. Pooled over
all folds every class is normally present. A single fold's figures are instead averaged
over the classes of the pooled predictions (`classes=`), so that they count the same
classes as the pooled figures: a class absent from the fold then scores F1 0 and recall
0 (scikit-learn's `labels=classes, zero_division=0`), and a fold that tests one class
can reach 1/K only, not 1.
"""

from collections.abc import Mapping

import numpy as np

METRIC_NAMES = ("accuracy", "uf1", "uar")


def confusion_matrix(y_true, y_pred, num_classes):
    """Counts of (true, predicted) label pairs.

    Args:
        y_true: `[n]` integer labels in `0..num_classes-1`.
        y_pred: `[n]` integer labels in `0..num_classes-1`.
        num_classes: K, the size of the fixed class list.

    Returns:
        int64 array `[K, K]`; entry `[i, j]` counts samples of true class i predicted as j.

    Raises:
        ValueError: for labels of different lengths, non-integer labels or a label out of
            range (the message names the value), or `num_classes < 1`.
    """
    is_int = isinstance(num_classes, (int, np.integer)) and not isinstance(num_classes, bool)
    if not is_int or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer; got {num_classes!r}")
    y_true = _labels("y_true", y_true, num_classes)
    y_pred = _labels("y_pred", y_pred, num_classes)
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"y_true and y_pred differ in length: {y_true.shape[0]} vs {y_pred.shape[0]}")
    flat = np.bincount(y_true * num_classes + y_pred, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes)


def classification_metrics(y_true, y_pred, num_classes, classes=None):
    """Accuracy, UF1 and UAR of a set of predictions (see the module docstring).

    Args:
        y_true: `[n]` integer labels in `0..num_classes-1`, n >= 1.
        y_pred: `[n]` integer labels in `0..num_classes-1`.
        num_classes: K, the size of the fixed class list.
        classes: the class indices UF1 and UAR average over (a class among them without
            true samples scores F1 0 and recall 0); None: the classes present in `y_true`.

    Returns:
        dict with `accuracy`, `uf1`, `uar` (floats in [0, 1]) and `n` (int, the number of
        samples).

    Raises:
        ValueError: as `confusion_matrix`, for empty labels, or for `classes` empty or out
            of range.
    """
    matrix = confusion_matrix(y_true, y_pred, num_classes)
    n = int(matrix.sum())
    if n == 0:
        raise ValueError("cannot compute metrics of 0 samples")
    tp = np.diag(matrix).astype(np.float64)
    support = matrix.sum(axis=1)  # TP + FN
    predicted = matrix.sum(axis=0)  # TP + FP
    if classes is None:
        counted = np.flatnonzero(support > 0)
    else:
        counted = _labels("classes", list(classes), num_classes)
        if counted.size == 0:
            raise ValueError("classes must name at least one class to average over")
    denominator = support[counted] + predicted[counted]
    f1 = np.divide(2 * tp[counted], denominator, out=np.zeros(counted.size),
                   where=denominator > 0)
    recall = np.divide(tp[counted], support[counted], out=np.zeros(counted.size),
                       where=support[counted] > 0)
    return {
        "accuracy": float(tp.sum() / n),
        "uf1": float(f1.mean()),
        "uar": float(recall.mean()),
        "n": n,
    }


def chance_levels(class_counts):
    """Figures of a uniform random guesser and of a majority-class guesser.

    A uniform guesser predicts each of the K classes with probability 1/K, independently
    of the sample. With n samples and class priors p_k = n_k / n, the expected counts are
    TP_k = n p_k / K, FN_k = n p_k (K - 1) / K and FP_k = n (1 - p_k) / K, so
    2 TP_k + FP_k + FN_k = n (1 / K + p_k) and F1_k = 2 p_k / (1 + K p_k) (the ratio of
    the expected counts; for the hundreds of clips of MER datasets it is within a
    fraction of a point of the expected F1). Its accuracy and every recall are 1/K.
    The majority guesser always predicts the largest class c: accuracy p_c, F1_c =
    2 p_c / (1 + p_c) and 0 for the other classes, recall 1 for c and 0 for the others.
    UF1 and UAR average over the classes with a nonzero count (the missing-class rule of
    `classification_metrics`), while K counts every class.

    Args:
        class_counts: `[K]` number of samples per class, or a mapping class name -> count
            (values taken in order).

    Returns:
        dict with `accuracy`, `uf1`, `uar` of the uniform guesser and `majority_accuracy`,
        `majority_uf1`, `majority_uar` of the majority guesser (floats).

    Raises:
        ValueError: if the counts are empty, negative or sum to 0.
    """
    if isinstance(class_counts, Mapping):
        class_counts = list(class_counts.values())
    counts = np.asarray(class_counts, dtype=np.float64)
    if counts.ndim != 1 or counts.size == 0 or np.any(counts < 0) or counts.sum() == 0:
        raise ValueError(
            f"class_counts must be non-negative per-class counts with a positive sum; "
            f"got {class_counts!r}")
    k = counts.size
    priors = counts / counts.sum()
    present = priors[priors > 0]
    p_max = priors.max()
    return {
        "accuracy": 1.0 / k,
        "uf1": float(np.mean(2 * present / (1 + k * present))),
        "uar": 1.0 / k,
        "majority_accuracy": float(p_max),
        "majority_uf1": float(2 * p_max / (1 + p_max) / present.size),
        "majority_uar": 1.0 / present.size,
    }


def summarise_seeds(results, keys=METRIC_NAMES):
    """Mean and standard deviation of pooled figures over seeds.

    The standard deviation is the sample one (ddof=1, the spread an independent repeat
    would show); with a single seed it is reported as 0.0.

    Args:
        results: list of dicts, one per seed, as returned by `classification_metrics`.
        keys: the figures to summarise; each must be in every dict.

    Returns:
        `{"mean": {key: float}, "std": {key: float}}`.

    Raises:
        ValueError: if `results` is empty or a dict lacks one of `keys`.
    """
    if not results:
        raise ValueError("summarise_seeds needs at least one result; got none")
    values = {}
    for key in keys:
        for index, result in enumerate(results):
            if key not in result:
                raise ValueError(
                    f"result {index} has no {key!r}; it has {sorted(result)}")
        values[key] = np.array([result[key] for result in results], dtype=np.float64)
    ddof = 1 if len(results) > 1 else 0
    return {
        "mean": {key: float(v.mean()) for key, v in values.items()},
        "std": {key: float(v.std(ddof=ddof)) for key, v in values.items()},
    }


def _labels(name, labels, num_classes):
    """Returns `labels` as a 1-D int64 array, checking dtype and range."""
    labels = np.asarray(labels)
    if labels.size == 0:
        return labels.reshape(0).astype(np.int64)
    if labels.ndim != 1:
        raise ValueError(f"{name} must be 1-D; got shape {labels.shape}")
    if labels.dtype == bool or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{name} must hold integer class indices; got dtype {labels.dtype}")
    out_of_range = labels[(labels < 0) | (labels >= num_classes)]
    if out_of_range.size:
        raise ValueError(
            f"{name} has label {out_of_range[0]} outside 0..{num_classes - 1} "
            f"(num_classes={num_classes})")
    return labels.astype(np.int64)
