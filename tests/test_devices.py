"""The `device` config section: what `auto` resolves to with and without GPUs, the softmax
kept in float32 under mixed precision, `--strategy mirrored` (one CPU replica here):
a fit equal to a one-device fit, a run with the one-device run's folder; `multiworker` with
two worker processes on the loopback, training as one process does."""

from __future__ import annotations

import json
import os
import pathlib
import re
import socket
import subprocess
import sys

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


def _cluster(index: int, ports=(2222, 2223)) -> dict:
    return {"TF_CONFIG": json.dumps({"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
                                     "task": {"type": "worker", "index": index}})}


def test_multiworker_reads_its_cluster_from_tf_config():
    settings = devices.resolve(DeviceConfig(strategy="multiworker", xla="on"), [],
                               environ=_cluster(1))
    assert (settings.workers, settings.worker, settings.chief, settings.xla) == (2, 1, False,
                                                                                 False)
    chief = {"TF_CONFIG": json.dumps({"cluster": {"chief": ["a:1"], "worker": ["b:1", "c:1"]},
                                      "task": {"type": "worker", "index": 0}})}
    assert devices.cluster(chief) == (3, 1)  # the chief is task 0, this worker the next
    assert devices.cluster(_cluster(0)) == (2, 0)


@pytest.mark.parametrize("environ, message", [
    ({}, "needs TF_CONFIG"),
    ({"TF_CONFIG": "{cluster"}, "TF_CONFIG is not a cluster and a task"),
    ({"TF_CONFIG": json.dumps({"cluster": {"worker": ["a:1"]}})}, "not a cluster and a task"),
    (_cluster(2), "task worker 2 is not in its cluster"),
])
def test_a_bad_tf_config_is_one_clear_line(environ, message):
    with pytest.raises(ValueError, match=message):
        devices.resolve(DeviceConfig(strategy="multiworker"), [], environ=environ)


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


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for one in sockets:
        one.bind(("127.0.0.1", 0))
    ports = [one.getsockname()[1] for one in sockets]
    for one in sockets:
        one.close()
    return ports


def test_distributed_runs_write_the_run_folder_of_a_one_device_run(builtin_dataset, tmp_path,
                                                                    capsys):
    """`train.py --strategy mirrored` and `--strategy multiworker` with two worker processes
    on the loopback: the files of a one-device run, device.json and each fold's result
    recording the strategy. The two workers train as one process does on the same global
    batches (dropout off: each replica draws its own masks): every epoch's loss and every
    prediction equal to float precision; the chief writes the run, the other worker's
    scratch folder is gone. (A mirrored run's figures are not the one-device run's: Keras'
    distributed fit draws one extra pass of the pipeline before training, so its shuffles
    and augmentations are those of the next epoch.)"""
    common = ["--experiment", "ststnet", "--data", str(builtin_dataset), "--quick",
              "--protocol", "kfold2", "--no-export", "--set", "model.dropout=0"]
    ports = _free_ports(2)
    workers = [subprocess.Popen(
        [sys.executable, "train.py", *common, "--strategy", "multiworker", "--out",
         str(tmp_path / "multiworker")], cwd=pathlib.Path(train.__file__).parent,
        env={**os.environ, **_cluster(index, ports)}, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True) for index in (0, 1)]
    files, runs = {}, {}
    for strategy in ("default", "mirrored", "multiworker"):
        if strategy == "multiworker":
            logs = [worker.communicate(timeout=240)[0] for worker in workers]
            assert [worker.returncode for worker in workers] == [0, 0], logs[0][-3000:]
        else:
            assert train.main(common + ["--strategy", strategy, "--out",
                                        str(tmp_path / strategy)]) == 0
        (run,) = (tmp_path / strategy / "ststnet").iterdir()
        recorded = json.loads((run / run_folder.DEVICE).read_text())
        assert recorded["strategy"] == strategy and recorded["mixed_precision"] == "float32"
        assert recorded["workers"] == (2 if strategy == "multiworker" else 1)
        fold = json.loads((run / run_folder.FOLD_RESULTS / "fold0.seed0.json").read_text())
        assert fold["device"] == recorded
        files[strategy], runs[strategy] = sorted(p.name for p in run.iterdir()), run
    assert files["mirrored"] == files["default"] == files["multiworker"]
    assert "device: no GPU, the CPU; mirrored strategy" in capsys.readouterr().out
    assert "worker 0 of 2" in logs[0] and "worker 1 of 2" in logs[1]
    scratch = re.search(r"this worker's files go to (\S+)", logs[1]).group(1)
    assert not pathlib.Path(scratch).exists()
    for name in ("fold0.seed0.json", "fold1.seed0.json"):
        one, two = (json.loads((runs[s] / run_folder.FOLD_RESULTS / name).read_text())
                    for s in ("default", "multiworker"))
        for key in ("loss", "accuracy"):
            np.testing.assert_allclose(two["history"][key], one["history"][key], rtol=2e-6)
        np.testing.assert_allclose([row["probabilities"] for row in two["predictions"]],
                                   [row["probabilities"] for row in one["predictions"]],
                                   atol=1e-5)


def test_multiworker_refuses_what_needs_the_workers_to_agree(builtin_dataset, tmp_path,
                                                               monkeypatch, capsys):
    monkeypatch.setenv("TF_CONFIG", _cluster(0)["TF_CONFIG"])
    assert train.main(["--experiment", "ststnet", "--data", str(builtin_dataset), "--quick",
                       "--strategy", "multiworker", "--run-dir", str(tmp_path / "run"),
                       "--folds", "0"]) == 2
    assert ("multiworker trains a whole run in one go: give no --resume, --run-dir or --folds"
            in capsys.readouterr().err)
