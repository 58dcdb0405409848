"""Helpers the tests share: tiny clips written as numbered frame images, a quick training run."""

from __future__ import annotations

import copy
import pathlib

import cv2
import numpy as np

import train

CLASSES = ("positive", "negative", "surprise", "others")


def write_clip(folder: pathlib.Path, frames: np.ndarray, first_number: int = 0,
               pattern: str = "img{}.png") -> None:
    """Writes RGB uint8 `[T, H, W, 3]` frames as numbered images."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(frames):
        cv2.imwrite(str(folder / pattern.format(first_number + i)),
                    cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))


def labelled_frames(label: int, num_frames: int = 12, size: int = 24, seed: int = 0):
    """Frames whose brightness encodes the label (so a model or a check can find it)."""
    rng = np.random.default_rng(seed)
    base = 40 + 50 * label
    frames = rng.integers(0, 10, size=(num_frames, size, size, 3)) + base
    return frames.astype(np.uint8)


def assert_layer_round_trips(layer, inputs, tmp_path) -> None:
    """A custom layer survives serialisation (as keras-hub's `run_serialization_test` and
    `run_model_saving_test`): `from_config(get_config())` gives a layer of the same config
    that, with the same weights, computes the same outputs; and a model holding the layer
    saves to `.keras` and reloads with the same outputs.

    Args:
        layer: the layer, unbuilt or built.
        inputs: a float32 numpy batch for it.
    """
    import keras

    expected = keras.ops.convert_to_numpy(layer(inputs))
    config = layer.get_config()
    clone = type(layer).from_config(copy.deepcopy(config))  # wrappers consume their config
    assert clone.get_config() == config
    clone(inputs)  # builds it
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(keras.ops.convert_to_numpy(clone(inputs)), expected,
                               rtol=1e-6, atol=1e-6)
    model_inputs = keras.Input(inputs.shape[1:])
    model = keras.Model(model_inputs, layer(model_inputs))
    path = pathlib.Path(tmp_path) / f"{layer.name}.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)
    assert type(reloaded.get_layer(layer.name)) is type(layer)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(reloaded(inputs)), expected,
                               rtol=1e-6, atol=1e-6)


def train_quick(experiment: str, data_dir, root: pathlib.Path):
    """`train.py --experiment EXPERIMENT --data DATA_DIR --quick --protocol kfold2` with its
    runs and export under `root`: `(run folder, SavedModel folder)`."""
    status = train.main(["--experiment", experiment, "--data", str(data_dir), "--quick",
                         "--protocol", "kfold2", "--out", str(root / "runs"),
                         "--export-dir", str(root / "saved")])
    assert status == 0
    (run_dir,) = (root / "runs" / experiment).iterdir()
    return run_dir, root / "saved" / experiment / "1"
