"""Subject-independent evaluation protocols: K folds over subjects, or leave one subject out.

Folds depend only on the subject list and a fixed fold seed, never on the training seed or
the labels, so every method of a comparison is scored on the same folds.
"""

from __future__ import annotations

import numpy as np


def make_folds(subjects, protocol: str, num_folds: int | None, fold_seed: int = 0) -> list[dict]:
    """Splits subjects into test folds.

    Args:
        subjects: namespaced subject ids.
        protocol: `loso`, or `kfoldK`.
        num_folds: K for `kfoldK` (None for LOSO).
        fold_seed: seed of the subject shuffle before the K-way split.

    Returns:
        `[{"fold": i, "train_subjects": [...], "test_subjects": [...]}]`, i from 0; every
        subject is a test subject exactly once.

    Raises:
        ValueError: fewer subjects than folds.
    """
    subjects = sorted(set(subjects))
    if protocol == "loso":
        groups = [[s] for s in subjects]
    else:
        if len(subjects) < num_folds:
            raise ValueError(f"{protocol} needs at least {num_folds} subjects, the data has "
                             f"{len(subjects)}: {', '.join(subjects)}")
        order = np.random.default_rng(fold_seed).permutation(len(subjects))
        groups = [sorted(subjects[i] for i in part) for part in np.array_split(order, num_folds)]
    if len(groups) < 2:
        raise ValueError(f"{protocol} needs at least 2 subjects, the data has {len(subjects)}")
    return [{"fold": i, "train_subjects": [s for s in subjects if s not in test],
             "test_subjects": test} for i, test in enumerate(groups)]


def inner_split(train_subjects, fraction: float, seed: int) -> tuple[list, list]:
    """Holds out `fraction` of the training subjects (at least one) for early stopping.

    Returns:
        `(fit_subjects, validation_subjects)`, both non-empty and disjoint.

    Raises:
        ValueError: fewer than 2 training subjects.
    """
    subjects = sorted(train_subjects)
    if len(subjects) < 2:
        raise ValueError(f"early stopping needs at least 2 training subjects to hold one out, "
                         f"got {subjects}")
    count = min(len(subjects) - 1, max(1, round(fraction * len(subjects))))
    held = set(np.random.default_rng(seed).choice(subjects, size=count, replace=False).tolist())
    return [s for s in subjects if s not in held], sorted(held)
