import pytest

from tfmer import protocols

SUBJECTS = [f"d/s{i:02d}" for i in range(12)]


def test_kfold_partitions_subjects():
    folds = protocols.make_folds(SUBJECTS, "kfold5", 5)
    tests = [s for f in folds for s in f["test_subjects"]]
    assert sorted(tests) == SUBJECTS  # every subject tested exactly once
    assert sorted(len(f["test_subjects"]) for f in folds) == [2, 2, 2, 3, 3]
    for f in folds:
        assert not set(f["train_subjects"]) & set(f["test_subjects"])
        assert sorted(f["train_subjects"] + f["test_subjects"]) == SUBJECTS


def test_folds_depend_only_on_subjects_and_fold_seed():
    assert protocols.make_folds(SUBJECTS, "kfold5", 5) == \
        protocols.make_folds(list(reversed(SUBJECTS)), "kfold5", 5)
    default = protocols.make_folds(SUBJECTS, "kfold5", 5)
    assert protocols.make_folds(SUBJECTS, "kfold5", 5, fold_seed=1) != default


def test_loso_has_one_fold_per_subject():
    folds = protocols.make_folds(SUBJECTS, "loso", None)
    assert [f["test_subjects"] for f in folds] == [[s] for s in SUBJECTS]


def test_too_few_subjects():
    with pytest.raises(ValueError, match="kfold5 needs at least 5 subjects.*3"):
        protocols.make_folds(SUBJECTS[:3], "kfold5", 5)


def test_inner_split_holds_out_training_subjects_only():
    train = SUBJECTS[:10]
    fit, held = protocols.inner_split(train, 0.2, seed=3)
    assert len(held) == 2 and sorted(fit + held) == train and not set(fit) & set(held)
    assert protocols.inner_split(train, 0.2, seed=3) == (fit, held)
    fit, held = protocols.inner_split(train[:2], 0.9, seed=0)
    assert len(fit) == 1 and len(held) == 1
