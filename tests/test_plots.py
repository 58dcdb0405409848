"""Tests of tfmer.plots: PNGs are written atomically, readable, and bad input is refused."""

import os

import matplotlib.image
import numpy as np
import pytest

from tfmer import plots
from tfmer.files import TEMPORARY_PREFIX

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_png(path, min_height=300, min_width=400):
    with open(path, "rb") as stream:
        assert stream.read(8) == PNG_SIGNATURE
    image = matplotlib.image.imread(path)
    assert image.shape[0] >= min_height and image.shape[1] >= min_width
    assert image[..., :3].std() > 0.05  # not a blank canvas
    leftovers = [name for name in os.listdir(os.path.dirname(path))
                 if name.startswith(TEMPORARY_PREFIX)]
    assert not leftovers


def folds(count):
    rng = np.random.default_rng(count)
    return [{"fold": i + 1, "n": int(rng.integers(3, 30)), "accuracy": rng.uniform(0.3, 0.9),
             "uf1": rng.uniform(0.2, 0.8), "uar": rng.uniform(0.2, 0.8)} for i in range(count)]


def test_confusion_matrix_png_overwrites_atomically(tmp_path):
    path = tmp_path / "sub" / "confusion.png"
    plots.plot_confusion_matrix(np.eye(2, dtype=int), ["a", "b"], path)
    first = os.path.getsize(path)
    matrix = np.array([[40, 5, 3], [6, 20, 4], [0, 0, 0]])
    returned = plots.plot_confusion_matrix(matrix, ["negative", "positive", "surprise"], path)
    assert returned == str(path)
    assert os.path.getsize(path) != first
    assert os.listdir(path.parent) == ["confusion.png"]
    assert_png(returned)


@pytest.mark.parametrize("matrix,names,match", [
    (np.zeros((3, 3)), ["a", "b"], "matrix is 3x3 but there are 2 class names"),
    (np.zeros((2, 3)), ["a", "b"], r"square \[K, K\]; got shape \(2, 3\)"),
])
def test_confusion_matrix_errors(tmp_path, matrix, names, match):
    path = tmp_path / "confusion.png"
    with pytest.raises(ValueError, match=match):
        plots.plot_confusion_matrix(matrix, names, path)
    assert not path.exists()


@pytest.mark.parametrize("count,chance", [(5, {"accuracy": 0.33, "uf1": 0.3, "uar": 0.33}),
                                          (12, 1 / 3)])
def test_fold_bars_png(tmp_path, count, chance):
    path = plots.plot_fold_bars(folds(count), tmp_path / "folds.png", chance=chance,
                                pooled={"accuracy": 0.6, "uf1": 0.5, "uar": 0.52})
    assert_png(path)


def test_fold_bars_without_lines(tmp_path):
    assert_png(plots.plot_fold_bars(folds(1), tmp_path / "folds.png"))


def test_fold_bars_errors(tmp_path):
    with pytest.raises(ValueError, match="at least one fold"):
        plots.plot_fold_bars([], tmp_path / "folds.png")
    with pytest.raises(ValueError, match=r"fold entry 0 lacks \['uar'\]"):
        plots.plot_fold_bars([{"fold": 1, "n": 3, "accuracy": 0.5, "uf1": 0.5}],
                             tmp_path / "folds.png")


def test_training_curves_png(tmp_path):
    epochs = np.arange(12)
    history = {"loss": list(np.exp(-epochs / 5)), "val_loss": list(np.exp(-epochs / 8)),
               "accuracy": list(1 - np.exp(-epochs / 5)),
               "val_accuracy": list(0.8 - 0.8 * np.exp(-epochs / 8))}
    histories = [{"label": f"fold {f} seed 0", "history": history} for f in range(1, 4)]
    histories.append({"label": "fold 4 seed 0", "history": {"loss": [1.0, 0.5, 0.4]}})
    assert_png(plots.plot_training_curves(histories, tmp_path / "curves.png"))


def test_training_curves_errors(tmp_path):
    with pytest.raises(ValueError, match="at least one history"):
        plots.plot_training_curves([], tmp_path / "curves.png")
    with pytest.raises(ValueError, match="history 'fold 1' has no 'loss'"):
        plots.plot_training_curves([{"label": "fold 1", "history": {"accuracy": [0.5]}}],
                                   tmp_path / "curves.png")
    with pytest.raises(ValueError, match="entry 0 needs 'label' and 'history'"):
        plots.plot_training_curves([{"history": {"loss": [1.0]}}], tmp_path / "curves.png")
