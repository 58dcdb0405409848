"""Subject-independent evaluation protocols: K folds over subjects, leave one subject out,
and the cross-database ones: leave one database out (`lodo`) and `train=A,test=B` (the MEGC
2018 setting, e.g. `train=casme2,test=samm`).

Folds depend only on the subject list and a fixed fold seed, never on the training seed or
the labels, so every method of a comparison is scored on the same folds. A subject's
database is the namespace of its id, `database/subject`.
"""

from __future__ import annotations

import numpy as np


CLIP_FOLDS = "-clips"
"""The suffix of `kfoldK-clips`: K folds of clips, not subjects (`splits_clips`)."""


def splits_clips(protocol: str) -> bool:
    """Whether the protocol's folds are of clips (`kfoldK-clips`): a subject's clips can then
    be in training and test at once, so its figures are optimistic. The folds are made by
    `make_folds` over clip ids (`tfmer.data.DatasetInfo.by_clip`)."""
    return protocol.endswith(CLIP_FOLDS)


def database_of(subject: str) -> str:
    """The database of a namespaced subject id, `database/subject`."""
    return subject.split("/", 1)[0]


def make_folds(subjects, protocol: str, num_folds: int | None, fold_seed: int = 0) -> list[dict]:
    """Splits subjects into test folds.

    Args:
        subjects: namespaced subject ids.
        protocol: `loso`, `kfoldK`, `lodo` (a fold per database: test on its subjects,
            train on the other databases'), `train=A[,A2...],test=B` (one fold: train on
            the subjects of the databases A..., test on those of B), or `kfoldK-clips`
            (K folds as `kfoldK`, given clip ids instead of subjects; `splits_clips`).
        num_folds: K for `kfoldK` and `kfoldK-clips` (None otherwise).
        fold_seed: seed of the subject shuffle before the K-way split.

    Returns:
        `[{"fold": i, "train_subjects": [...], "test_subjects": [...]}]`, i from 0; with
        `loso` and `kfoldK` every subject is a test subject exactly once.

    Raises:
        ValueError: fewer subjects than folds; `lodo` on one database; a database the
            subjects do not hold, or one on both sides (naming the databases there are).
    """
    subjects = sorted(set(subjects))
    if protocol == "lodo" or protocol.startswith("train="):
        return _database_folds(subjects, protocol)
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


def _database_folds(subjects: list, protocol: str) -> list[dict]:
    """The folds of the cross-database protocols (`make_folds`)."""
    databases = sorted({database_of(s) for s in subjects})
    if protocol == "lodo":
        if len(databases) < 2:
            raise ValueError(f"lodo (leave one database out) needs clips of at least 2 "
                             f"databases; the data holds {', '.join(databases)} only (read several "
                             f"converted databases as one: --data DIR1,DIR2)")
        splits = [([d for d in databases if d != held], [held]) for held in databases]
    else:
        train_part, _, test_part = protocol.partition(",test=")
        train, test = train_part[len("train="):].split(","), [test_part]
        unknown = [d for d in train + test if d not in databases]
        if unknown:
            raise ValueError(f"protocol {protocol} names database(s) {', '.join(unknown)} that "
                             f"the data does not hold; it holds {', '.join(databases)}")
        if set(train) & set(test):
            raise ValueError(f"protocol {protocol} trains and tests on {test[0]}: a "
                             f"cross-database protocol keeps them apart")
        splits = [(train, test)]
    return [{"fold": i,
             "train_subjects": [s for s in subjects if database_of(s) in train],
             "test_subjects": [s for s in subjects if database_of(s) in test]}
            for i, (train, test) in enumerate(splits)]


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
