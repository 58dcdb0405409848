"""The `device` config section: what `auto` resolves to with and without GPUs, the softmax
kept in float32 under mixed precision, and `--strategy mirrored` (one CPU replica here):
a fit equal to a one-device fit, a run with the one-device run's folder."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

import train
from tfmer import devices, experiments, run_folder
from tfmer.config import DeviceConfig, TrainConfig
from tfmer.training import CompiledModel

VOLTA = {"name": "Tesla V100", "compute_capability": [7, 0]}
AMPERE = {"name": "A100", "compute_capability": [8, 0]}
PASCAL = {"name": "GTX 1080", "compute_capability": [6, 1]}


@pytest.mark.parametrize("gpus, policy, xla, prefetch", [
    ([], "float32", False, None),
    ([PASCAL], "float32", True, "/gpu:0"),
    ([VOLTA], "mixed_float16", True, "/gpu:0"),
    ([AMPERE], "mixed_bfloat16", True, "/gpu:0"),
    ([AMPERE, VOLTA], "mixed_float16", True, "/gpu:0"),  # what every GPU supports
])
def test_auto_uses_what_the_gpus_are_good_at_and_nothing_on_a_cpu(gpus, policy, xla, prefetch):
    settings = devices.resolve(DeviceConfig(), gpus, environ={})
    assert (settings.mixed_precision, settings.xla, settings.prefetch_to_device) == (
        policy, xla, prefetch)
    assert settings.strategy == "default" and list(settings.gpus) == gpus


def test_explicit_switches_win_over_auto():
    settings = devices.resolve(DeviceConfig(mixed_precision="off", xla="off",
                                            prefetch_to_device="off"), [AMPERE], environ={})
    assert (settings.mixed_precision, settings.xla, settings.prefetch_to_device) == (
        "float32", False, None)
    settings = devices.resolve(DeviceConfig(mixed_precision="mixed_bfloat16", xla="on"), [],
                               environ={})
    assert (settings.mixed_precision, settings.xla) == ("mixed_bfloat16", True)


def test_multiworker_is_refused_with_its_reason():
    with pytest.raises(ValueError, match="needs TF_CONFIG"):
        devices.resolve(DeviceConfig(strategy="multiworker"), [], environ={})
    with pytest.raises(ValueError, match="keras-team/keras#20585.*--folds"):
        devices.resolve(DeviceConfig(strategy="multiworker"), [], environ={"TF_CONFIG": "{}"})


def test_mixed_precision_keeps_the_softmax_in_float32():
    """exp3's and ststnet's models built under `mixed_bfloat16`: the convolutions compute
    in bfloat16, the probabilities come out float32 and sum to 1; the policy is restored."""
    with devices.use(devices.Settings(mixed_precision="mixed_bfloat16")):
        for name in ("ststnet", "exp1"):
            model = experiments.build(experiments.get(name, "quick"), 4)
            shape = [1] + [d or 2 for d in model.input_shape[1:]]
            x = np.random.default_rng(0).uniform(0, 255, shape).astype("float32")
            p = keras.ops.convert_to_numpy(model(x))
            assert p.dtype == np.float32
            np.testing.assert_allclose(p.sum(axis=-1), 1, rtol=1e-5)
            assert any(layer.compute_dtype == "bfloat16" for layer in model.layers)
    assert keras.mixed_precision.global_policy().name == "float32"


def test_a_mirrored_fit_equals_a_one_device_fit():
    """`CompiledModel.fit` in a mirrored run (one CPU replica, the global batch unchanged):
    on the same batches, the same losses and weights as on one device."""
    x = np.random.default_rng(0).normal(size=(48, 6)).astype("float32")
    batches = tf.data.Dataset.from_tensor_slices((x, (x[:, 0] > 0).astype("int32"))).batch(12)
    results = []
    for strategy in ("default", "mirrored"):
        with devices.use(devices.Settings(strategy=strategy)):
            keras.utils.set_random_seed(0)
            model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(5, activation="relu"),
                                      keras.layers.Dense(2, activation="softmax")])
            train = TrainConfig(epochs=3, batch_size=12, early_stopping=False,
                                learning_rate=0.1)
            history = CompiledModel(model, train).fit(batches, log=lambda line: None)
            results.append((history["loss"], model.get_weights()))
    np.testing.assert_allclose(results[1][0], results[0][0], rtol=1e-6)
    for mirrored, one in zip(results[1][1], results[0][1]):
        np.testing.assert_allclose(mirrored, one, rtol=1e-5, atol=1e-7)


def test_a_mirrored_run_writes_the_run_folder_of_a_one_device_run(builtin_dataset, tmp_path,
                                                                   capsys):
    """`train.py --strategy mirrored`: the files of a one-device run, device.json and each
    fold's result recording the strategy. (Its figures are not the one-device run's:
    Keras' distributed fit draws one extra pass of the pipeline before training, so its
    shuffles and augmentations are those of the next epoch.)"""
    common = ["--experiment", "ststnet", "--data", str(builtin_dataset), "--quick",
              "--protocol", "kfold2", "--no-export"]
    files = {}
    for strategy in ("default", "mirrored"):
        assert train.main(common + ["--strategy", strategy, "--out",
                                    str(tmp_path / strategy)]) == 0
        (run,) = (tmp_path / strategy / "ststnet").iterdir()
        recorded = json.loads((run / run_folder.DEVICE).read_text())
        assert recorded["strategy"] == strategy and recorded["mixed_precision"] == "float32"
        fold = json.loads((run / run_folder.FOLD_RESULTS / "fold0.seed0.json").read_text())
        assert fold["device"] == recorded
        files[strategy] = sorted(p.name for p in run.iterdir())
        losses = [h["history"]["loss"][0]
                  for h in json.loads((run / run_folder.HISTORIES).read_text())]
        assert all(np.isfinite(losses))
    assert files["mirrored"] == files["default"]
    assert "device: no GPU, the CPU; mirrored strategy" in capsys.readouterr().out
