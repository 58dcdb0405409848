"""Tests of tfmer.metrics against scikit-learn, hand-worked examples and simulation."""

import statistics
import warnings

import numpy as np
import pytest
from sklearn import metrics as skm

from tfmer import metrics


@pytest.mark.parametrize("seed", range(5))
def test_matches_sklearn_on_random_labels(seed):
    rng = np.random.default_rng(seed)
    num_classes = int(rng.integers(2, 7))
    n = int(rng.integers(5, 200))
    # Odd seeds leave the last class out of y_true (it is still predicted).
    y_true = rng.integers(0, num_classes - seed % 2, size=n)
    y_pred = np.where(rng.random(n) < 0.5, y_true, rng.integers(0, num_classes, size=n))
    present = np.unique(y_true)

    got = metrics.classification_metrics(y_true, y_pred, num_classes)

    assert got["n"] == n
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred), abs=1e-12)
    assert got["uf1"] == pytest.approx(
        skm.f1_score(y_true, y_pred, labels=present, average="macro"), abs=1e-12)
    with warnings.catch_warnings():
        # sklearn warns when y_pred holds a class absent from y_true.
        warnings.simplefilter("ignore", UserWarning)
        want_uar = skm.balanced_accuracy_score(y_true, y_pred)
    assert got["uar"] == pytest.approx(want_uar, abs=1e-12)
    np.testing.assert_array_equal(
        metrics.confusion_matrix(y_true, y_pred, num_classes),
        skm.confusion_matrix(y_true, y_pred, labels=np.arange(num_classes)))


def test_hand_example():
    # K = 3. Confusion matrix (rows true, columns predicted):
    #   [[2, 1, 0],      TP = [2, 1, 1], support (TP+FN) = [3, 2, 1],
    #    [0, 1, 1],      predicted (TP+FP) = [2, 2, 2]
    #    [0, 0, 1]]
    # F1_k = 2 TP / (support + predicted) = [4/5, 2/4, 2/3] -> UF1 = (0.8 + 0.5 + 2/3) / 3
    #      = 0.655556
    # recall = TP / support = [2/3, 1/2, 1] -> UAR = (2/3 + 1/2 + 1) / 3 = 0.722222
    # accuracy = 4 / 6
    y_true = [0, 0, 0, 1, 1, 2]
    y_pred = [0, 0, 1, 1, 2, 2]
    np.testing.assert_array_equal(metrics.confusion_matrix(y_true, y_pred, 3),
                                  [[2, 1, 0], [0, 1, 1], [0, 0, 1]])
    got = metrics.classification_metrics(y_true, y_pred, 3)
    assert got == pytest.approx(
        {"accuracy": 4 / 6, "uf1": (0.8 + 0.5 + 2 / 3) / 3, "uar": (2 / 3 + 0.5 + 1) / 3, "n": 6})


def test_missing_class_left_out_of_uf1_and_uar():
    # K = 4; class 3 has no true sample but is predicted once (for a class-0 sample).
    # Present classes 0, 1, 2: F1 = [2*1 / (2 + 1), 1, 1], recall = [1/2, 1, 1].
    # UF1 = (2/3 + 2) / 3 = 8/9, UAR = (1/2 + 2) / 3 = 5/6; the wrong class-3 prediction
    # costs class 0 its recall and F1. Accuracy 3/4.
    got = metrics.classification_metrics([0, 0, 1, 2], [0, 3, 1, 2], num_classes=4)
    assert got == pytest.approx({"accuracy": 0.75, "uf1": 8 / 9, "uar": 5 / 6, "n": 4})
    # Without the stray prediction, the absent class does not drag the averages down.
    perfect = metrics.classification_metrics([0, 0, 1, 2], [0, 0, 1, 2], num_classes=4)
    assert perfect == pytest.approx({"accuracy": 1.0, "uf1": 1.0, "uar": 1.0, "n": 4})


@pytest.mark.parametrize("seed", range(3))
def test_given_classes_match_sklearn_with_zero_division(seed):
    # A fold lacking class 2 (and sometimes predicting it), averaged over classes 0..3 as
    # the pooled figures are: sklearn with labels=all, zero_division=0.
    rng = np.random.default_rng(seed)
    y_true = rng.choice([0, 1, 3], size=20)
    y_pred = rng.integers(0, 4, size=20)
    got = metrics.classification_metrics(y_true, y_pred, 4, classes=range(4))
    assert got["uf1"] == pytest.approx(skm.f1_score(
        y_true, y_pred, labels=range(4), average="macro", zero_division=0), abs=1e-12)
    assert got["uar"] == pytest.approx(skm.recall_score(
        y_true, y_pred, labels=range(4), average="macro", zero_division=0), abs=1e-12)


def test_a_one_class_fold_over_all_classes_reaches_one_over_k():
    # Every test clip of class 1 and all correct: F1 = recall = [0, 1, 0] over K = 3.
    got = metrics.classification_metrics([1, 1, 1], [1, 1, 1], 3, classes=[0, 1, 2])
    assert got == pytest.approx({"accuracy": 1.0, "uf1": 1 / 3, "uar": 1 / 3, "n": 3})
    with pytest.raises(ValueError, match="at least one class"):
        metrics.classification_metrics([1], [1], 3, classes=[])
    with pytest.raises(ValueError, match="classes has label 3"):
        metrics.classification_metrics([1], [1], 3, classes=[3])


def test_confusion_matrix_keeps_fixed_class_list():
    matrix = metrics.confusion_matrix([1, 1], [1, 0], num_classes=5)
    assert matrix.shape == (5, 5)
    assert matrix.dtype.kind == "i"
    assert matrix.sum() == 2 and matrix[1, 1] == 1 and matrix[1, 0] == 1
    assert metrics.confusion_matrix([], [], 3).tolist() == [[0] * 3] * 3


@pytest.mark.parametrize("y_true,y_pred,num_classes,match", [
    ([0, 3], [0, 1], 3, r"y_true has label 3 outside 0\.\.2"),
    ([0, 1], [0, -1], 3, r"y_pred has label -1 outside 0\.\.2"),
    ([0, 1, 2], [0, 1], 3, "differ in length: 3 vs 2"),
    ([0.0, 1.0], [0, 1], 3, "y_true must hold integer class indices; got dtype float64"),
    ([[0, 1]], [[0, 1]], 3, r"y_true must be 1-D; got shape \(1, 2\)"),
    ([0], [0], 0, "num_classes must be a positive integer; got 0"),
])
def test_confusion_matrix_errors(y_true, y_pred, num_classes, match):
    with pytest.raises(ValueError, match=match):
        metrics.confusion_matrix(y_true, y_pred, num_classes)


def test_metrics_of_no_samples_raise():
    with pytest.raises(ValueError, match="0 samples"):
        metrics.classification_metrics([], [], 3)


def test_chance_levels_formula():
    # counts [30, 10], K = 2, p = [3/4, 1/4]:
    # F1 = 2p / (1 + 2p) = [1.5 / 2.5, 0.5 / 1.5] = [0.6, 1/3] -> UF1 = 0.466667.
    # Majority: accuracy 3/4, F1 of class 0 = 1.5 / 1.75 = 6/7, UF1 = 3/7, UAR = 1/2.
    got = metrics.chance_levels({"negative": 30, "positive": 10})
    assert got == pytest.approx({
        "accuracy": 0.5, "uf1": (0.6 + 1 / 3) / 2, "uar": 0.5,
        "majority_accuracy": 0.75, "majority_uf1": 3 / 7, "majority_uar": 0.5})
    # Balanced classes: every F1 is 2/K / 2 = 1/K.
    assert metrics.chance_levels([7, 7, 7, 7])["uf1"] == pytest.approx(0.25)


def test_chance_uf1_matches_simulated_uniform_guesser():
    counts = np.array([250, 120, 80, 50])
    y_true = np.repeat(np.arange(4), counts)
    rng = np.random.default_rng(0)
    draws = [metrics.classification_metrics(y_true, rng.integers(0, 4, size=y_true.size), 4)
             for _ in range(300)]
    chance = metrics.chance_levels(counts)
    for key in ("accuracy", "uf1", "uar"):
        assert np.mean([d[key] for d in draws]) == pytest.approx(chance[key], abs=0.01)


def test_majority_levels_match_constant_predictions():
    counts = [5, 40, 0, 15]
    y_true = np.repeat(np.arange(4), counts)
    got = metrics.classification_metrics(y_true, np.ones_like(y_true), 4)
    chance = metrics.chance_levels(counts)
    assert chance["majority_accuracy"] == pytest.approx(got["accuracy"])
    assert chance["majority_uf1"] == pytest.approx(got["uf1"])
    assert chance["majority_uar"] == pytest.approx(got["uar"])


@pytest.mark.parametrize("counts", [[], [0, 0], [3, -1], [[1, 2]]])
def test_chance_levels_errors(counts):
    with pytest.raises(ValueError, match="class_counts"):
        metrics.chance_levels(counts)


def test_summarise_seeds_uses_sample_std():
    results = [{"accuracy": 0.5, "uf1": 0.4, "uar": 0.45, "n": 10},
               {"accuracy": 0.6, "uf1": 0.5, "uar": 0.40, "n": 10},
               {"accuracy": 0.7, "uf1": 0.3, "uar": 0.50, "n": 10}]
    got = metrics.summarise_seeds(results)
    for key in ("accuracy", "uf1", "uar"):
        values = [r[key] for r in results]
        assert got["mean"][key] == pytest.approx(statistics.mean(values))
        assert got["std"][key] == pytest.approx(statistics.stdev(values))
    assert set(got["mean"]) == {"accuracy", "uf1", "uar"}


def test_summarise_single_seed_has_zero_std():
    got = metrics.summarise_seeds([{"accuracy": 0.5, "uf1": 0.4, "uar": 0.45}])
    assert got == {"mean": {"accuracy": 0.5, "uf1": 0.4, "uar": 0.45},
                   "std": {"accuracy": 0.0, "uf1": 0.0, "uar": 0.0}}


def test_summarise_seeds_errors():
    with pytest.raises(ValueError, match="at least one"):
        metrics.summarise_seeds([])
    with pytest.raises(ValueError, match="result 1 has no 'uar'"):
        metrics.summarise_seeds([{"accuracy": 1, "uf1": 1, "uar": 1}, {"accuracy": 1, "uf1": 1}])
