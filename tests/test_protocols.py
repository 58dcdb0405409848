import dataclasses

import pytest

from tfmer import data, experiments, protocols
from tfmer.training.cross_validation import single_class_test_folds

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


DATABASES = ["casme2/01", "casme2/02", "samm/006", "samm/007", "smic/s1", "smic/s2"]


def test_leave_one_database_out_tests_each_database_once_on_the_others():
    folds = protocols.make_folds(DATABASES, "lodo", None)
    assert [(f["train_subjects"], f["test_subjects"]) for f in folds] == [
        (DATABASES[2:], DATABASES[:2]),
        (DATABASES[:2] + DATABASES[4:], DATABASES[2:4]),
        (DATABASES[:4], DATABASES[4:])]
    with pytest.raises(ValueError, match="lodo .* at least 2 databases; the data holds samm"):
        protocols.make_folds(DATABASES[2:4], "lodo", None)


def test_train_on_some_databases_test_on_another():
    (fold,) = protocols.make_folds(DATABASES, "train=casme2,smic,test=samm", None)
    assert fold == {"fold": 0, "train_subjects": DATABASES[:2] + DATABASES[4:],
                    "test_subjects": DATABASES[2:4]}
    with pytest.raises(ValueError, match="names database.s. casme3 that the data does not "
                                         "hold; it holds casme2, samm, smic"):
        protocols.make_folds(DATABASES, "train=casme2,test=casme3", None)
    with pytest.raises(ValueError, match="trains and tests on samm"):
        protocols.make_folds(DATABASES, "train=samm,test=samm", None)


def test_the_config_accepts_the_cross_database_protocols_and_refuses_others():
    for protocol in ("lodo", "train=casme2,test=samm", "train=a,b,test=c"):
        experiments.get("ststnet", overrides=[f"protocol.protocol={protocol}"])
    with pytest.raises(ValueError,
                       match="is not kfoldK .*, loso, lodo, train=A,test=B .* or kfoldK-clips"):
        experiments.get("ststnet", overrides=["protocol.protocol=train=casme2"])


def test_folds_testing_one_class_only_are_named(builtin_dataset):
    info = data.load_info(builtin_dataset)
    subject = info.subjects[0]
    one_class = dataclasses.replace(info, clips=tuple(
        {**c, "label": "negative"} if c["subject"] == subject else c for c in info.clips))
    folds = protocols.make_folds(info.subjects, "loso", None)
    assert single_class_test_folds(info, folds) == []  # every subject has every class
    assert single_class_test_folds(one_class, folds) == [(0, [subject], "negative")]
