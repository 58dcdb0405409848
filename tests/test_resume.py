"""Runs that survive being killed: `train.py --resume`, the epoch checkpoint and its replay of
the pipeline's draws, Ctrl-C, and the small run folder; and runs trained as several jobs
(`--run-dir DIR --folds ...`, `--final`) pooled into the files of one uninterrupted run."""

from __future__ import annotations

import json
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf

import evaluate
import train
from tfmer import cli, files, run_folder
from tfmer.training import cross_validation, fit

COMMON = ["--experiment", "ststnet", "--quick", "--protocol", "kfold2"]
"""ststnet --quick (2 epochs a fit) on kfold2: the runs of this file, on `builtin_dataset`."""


def _dataset(*, repeat: bool):
    """8 numbers, shuffled each pass and with a random sign each draw (stateful random
    ops, as the real pipelines have), in batches of 2 (4 a pass)."""
    keras.utils.set_random_seed(3)
    dataset = tf.data.Dataset.range(8).map(lambda i: tf.cast(i, tf.float32) + 1.0)
    dataset = dataset.shuffle(8, seed=3, reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    dataset = dataset.map(lambda x: x * tf.sign(tf.random.uniform([], -1.0, 1.0))).batch(2)
    dataset = dataset.map(lambda x: (tf.reshape(x, [-1, 1]), tf.zeros_like(x)))
    return dataset if repeat else dataset.apply(tf.data.experimental.assert_cardinality(4))


class _Recording(keras.Model):
    """A model that notes every batch it trains on (eagerly)."""

    def __init__(self, trained: list):
        super().__init__()
        self.dense = keras.layers.Dense(2, activation="softmax")
        self.note = trained.append  # (a list attribute would be copied by Keras' tracking)

    def call(self, x):
        return self.dense(x)

    def train_step(self, data):
        self.note(tuple(data[0].numpy().ravel().tolist()))
        return super().train_step(data)


def _fit(dataset, trained: list, *, epochs: int, initial_epoch: int = 0, steps=None) -> None:
    model = _Recording(trained)
    model.compile("sgd", "sparse_categorical_crossentropy", run_eagerly=True)
    model.fit(dataset, epochs=epochs, initial_epoch=initial_epoch, steps_per_epoch=steps,
              verbose=0)


@pytest.mark.parametrize("steps", [None, 3])
def test_replay_draws_the_batches_keras_would_have_drawn(steps):
    """An uninterrupted fit of 4 epochs and a second phase of 2 on the same batches (as
    fine-tuning), against fits resumed after replayed epochs: Keras trains on the same
    batches (one-epoch datasets and endless streams)."""
    repeat, per_epoch = steps is not None, steps or 4
    uninterrupted = []
    dataset = _dataset(repeat=repeat)
    _fit(dataset, uninterrupted, epochs=4, steps=steps)
    _fit(dataset, uninterrupted, epochs=2, steps=steps)
    assert len(set(uninterrupted)) > per_epoch  # the draws change from epoch to epoch
    resumed = []  # after 2 epochs of the first phase
    _fit(fit.replay(_dataset(repeat=repeat), [], 2, steps), resumed, epochs=4,
         initial_epoch=2, steps=steps)
    assert resumed == uninterrupted[2 * per_epoch:4 * per_epoch]
    resumed = []  # after the first phase's 4 epochs and 1 of the second
    _fit(fit.replay(_dataset(repeat=repeat), [4], 1, steps), resumed, epochs=2,
         initial_epoch=1, steps=steps)
    assert resumed == uninterrupted[5 * per_epoch:6 * per_epoch]


def _train(args) -> int:
    return train.main(args)


def _kill_at(monkeypatch, epochs: int) -> None:
    """Ctrl-C (KeyboardInterrupt) right after the `epochs`-th checkpoint of the run (every
    epoch checkpointed)."""
    monkeypatch.setattr(fit, "CHECKPOINT_SHARE", float("inf"))
    original = fit._Checkpointing.on_epoch_end
    count = [0]

    def on_epoch_end(self, epoch, logs=None):
        original(self, epoch, logs)
        count[0] += 1
        if count[0] == epochs:
            raise KeyboardInterrupt

    monkeypatch.setattr(fit._Checkpointing, "on_epoch_end", on_epoch_end)


@pytest.fixture(scope="module")
def whole(builtin_dataset, tmp_path_factory):
    """An uninterrupted run of `COMMON`, with its final model exported."""
    root = tmp_path_factory.mktemp("whole")
    assert _train(COMMON + ["--data", str(builtin_dataset), "--out", str(root / "runs"),
                            "--export-dir", str(root / "saved")]) == 0
    (run,) = (root / "runs" / "ststnet").iterdir()
    return run


def test_a_killed_run_resumed_ends_as_an_uninterrupted_one(whole, builtin_dataset, tmp_path,
                                                           capsys, monkeypatch):
    """ststnet (--quick: 2 epochs a fit) on kfold2: stopped after the first epoch of fold 1
    (fold 0 done), resumed: fold 0 is kept, fold 1 continues at its second epoch, and every
    prediction equals the uninterrupted run's; the resumed run ends as it was started
    (without the final model)."""
    common = COMMON + ["--data", str(builtin_dataset), "--export-dir", str(tmp_path / "saved")]
    capsys.readouterr()

    with monkeypatch.context() as patch:
        _kill_at(patch, 3)
        assert _train(common + ["--out", str(tmp_path / "b"), "--no-export"]) == (
            train.INTERRUPTED)
    (killed,) = (tmp_path / "b" / "ststnet").iterdir()
    err = capsys.readouterr().err
    assert f"python train.py --resume {killed}" in err
    assert sorted(p.name for p in (killed / run_folder.FOLD_RESULTS).glob("*.json")) == [
        "fold0.seed0.json"]
    checkpoint = np.load(killed / run_folder.CHECKPOINTS / "fold1.seed0.npz")
    meta = json.loads(str(checkpoint["meta"]))
    assert (meta["tag"], meta["state"]["epoch"]) == ("fold1.seed0", 1)
    assert not (killed / run_folder.PREDICTIONS).exists()

    assert _train(["--resume", str(killed)]) == 0
    out = capsys.readouterr().out
    assert "1 of 2 fold fits finished before: kept" in out and "resumed after epoch 1 of 2" in out
    assert (killed / run_folder.PREDICTIONS).read_text() == (
        whole / run_folder.PREDICTIONS).read_text()
    assert json.loads((killed / run_folder.METRICS).read_text())["pooled"] == json.loads(
        (whole / run_folder.METRICS).read_text())["pooled"]
    assert not list((killed / run_folder.CHECKPOINTS).iterdir())
    # the resumed run's histories hold every epoch, as the uninterrupted one's
    assert json.loads((killed / run_folder.HISTORIES).read_text()) == json.loads(
        (whole / run_folder.HISTORIES).read_text())
    # TensorBoard logs per fit
    assert {p.name for p in (whole / run_folder.TENSORBOARD).iterdir()} == {
        "fold0.seed0", "fold1.seed0", "final"}
    assert list((whole / run_folder.TENSORBOARD).rglob("events.out.tfevents.*"))
    # a small run folder: the final model once, no initial copy
    assert (whole / run_folder.FINAL_WEIGHTS).is_file()
    assert not (whole / run_folder.INITIAL_WEIGHTS).exists()
    versions = json.loads((whole / run_folder.VERSIONS).read_text())
    assert versions["tensorflow"] == tf.__version__ and versions["keras"] == keras.__version__

    # resumed as it started: --no-export, though not given again
    assert not json.loads((killed / run_folder.OPTIONS).read_text())["export_final"]
    assert not (killed / run_folder.EXPORT).exists() and "final model" not in out
    # a finished run resumed again trains nothing
    assert _train(["--resume", str(killed)]) == 0
    out = capsys.readouterr().out
    assert "2 of 2 fold fits finished before" in out and "fold 1 (" not in out


@pytest.mark.parametrize("job, multiworker, how", [
    (False, False, "go on with `python train.py --resume {run}`"),
    (True, False, "go on with the same command again"),
    (False, True, "a multi-worker run does not resume")])
def test_ctrl_c_says_how_to_go_on(tmp_path, job, multiworker, how):
    message = str(cross_validation.Interrupted(tmp_path, job=job, multiworker=multiworker))
    assert message == (f"interrupted: the finished folds are kept in {tmp_path}; "
                       + how.format(run=tmp_path))


def test_resume_refuses_what_is_not_this_run(builtin_dataset, tmp_path, capsys):
    """--resume on a folder that is no run, or with a command whose config differs: one
    line naming the difference, exit 2, nothing written."""
    assert _train(["--resume", str(tmp_path)]) == 2
    assert "is not a run folder" in capsys.readouterr().err
    run = tmp_path / "run"
    folder = run_folder.RunFolder(run)
    run.mkdir()
    from tfmer import data, experiments, training

    config = training.resolve_classes(
        experiments.get("ststnet", "quick", ["protocol.protocol=kfold2"]),
        data.load_info(builtin_dataset))
    folder.write_config(config, {"path": str(builtin_dataset.resolve())})
    before = sorted(p.name for p in run.iterdir())
    status = _train(["--experiment", "ststnet", "--data", str(builtin_dataset), "--quick",
                     "--protocol", "kfold2", "--set", "train.epochs=3", "--resume", str(run)])
    err = capsys.readouterr().err
    assert status == 2 and len(err.strip().splitlines()) == 1
    assert "differs from the command's at train.epochs (run: 2, command: 3)" in err
    assert sorted(p.name for p in run.iterdir()) == before


def _pooled_files(run) -> dict:
    """What pooling writes, as text (`predictions.csv`, `histories.json`) or figures."""
    return {"predictions": (run / run_folder.PREDICTIONS).read_text(),
            "histories": json.loads((run / run_folder.HISTORIES).read_text()),
            "metrics": {key: value for key, value in json.loads(
                (run / run_folder.METRICS).read_text()).items() if key != "created"}}


def test_fold_jobs_and_a_merge_give_the_uninterrupted_run(whole, builtin_dataset, tmp_path,
                                                          capsys):
    """Fold 0, then fold 1 with the final model, as two jobs into one --run-dir: the first
    creates the run and leaves the pooling; the second, finding every fold, pools them into
    the uninterrupted run's predictions, histories and metrics, and exports. The folds of
    the jobs alone, pooled by `evaluate.py RUN_DIR`, give the same again."""
    run = tmp_path / "jobs"
    job = COMMON + ["--data", str(builtin_dataset), "--run-dir", str(run),
                    "--export-dir", str(tmp_path / "saved")]
    assert _train(job + ["--folds", "0"]) == 0
    out = capsys.readouterr().out
    assert "a job: folds 0" in out and "still missing: 1 of 2 (fold1.seed0)" in out
    assert not (run / run_folder.PREDICTIONS).exists() and not (run / run_folder.EXPORT).exists()
    assert _train(job + ["--folds", "1", "--final"]) == 0
    out = capsys.readouterr().out
    assert "fold 0 (" not in out and "fold 1 (" in out and "exported" in out
    assert _pooled_files(run) == _pooled_files(whole)
    assert (run / run_folder.REPORT_HTML).is_file()
    # A job of a finished fit trains nothing.
    assert _train(job + ["--folds", "0-1"]) == 0
    assert "2 of 2 fold fits finished before" in capsys.readouterr().out

    fresh = tmp_path / "fresh"
    fresh.mkdir()
    for name in (run_folder.CONFIG, run_folder.FOLDS, run_folder.FOLD_RESULTS):
        copy = shutil.copytree if (run / name).is_dir() else shutil.copy
        copy(run / name, fresh / name)
    assert evaluate.main([str(fresh)]) == 0
    assert _pooled_files(fresh) == _pooled_files(whole)
    (fresh / run_folder.PREDICTIONS).unlink()
    (fresh / run_folder.FOLD_RESULTS / "fold1.seed0.json").unlink()
    assert evaluate.main([str(fresh)]) == 2
    assert "fold fits not finished: 1 of 2 (fold1.seed0)" in capsys.readouterr().err


def test_jobs_refuse_overlapping_folds_and_others_runs(builtin_dataset, tmp_path, capsys):
    """A fit another process holds, a fold outside the protocol, a run of another config,
    --folds without --run-dir: one line each, exit 2, and no fold's results touched."""
    run = tmp_path / "run"
    job = COMMON + ["--data", str(builtin_dataset), "--run-dir", str(run)]
    held = files.try_lock(run / run_folder.FOLD_RESULTS / "fold1.seed0")  # another job's
    try:
        assert files.try_lock(run / run_folder.FOLD_RESULTS / "fold1.seed0") is None
        assert _train(job + ["--folds", "0-1"]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and "fold1.seed0 of" in err
        assert "is being trained by another process" in err
        assert not list((run / run_folder.FOLD_RESULTS).glob("*.json"))  # fold 0 not begun
    finally:
        held.close()
    for more, message in ((["--folds", "2"], "fold 2 is outside the protocol kfold2, whose "
                                            "folds are 0-1"),
                          (["--folds", "0", "--set", "train.epochs=3"],
                           "differs from the command's at train.epochs (run: 2, command: 3)"),
                          (["--folds", "0", "--permute-labels", "2"],
                           "--permute-labels repeats the whole cross-validation")):
        assert _train(job + more) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and message in err, err
    assert not list((run / run_folder.FOLD_RESULTS).glob("*.json"))
    with pytest.raises(SystemExit) as exited:
        _train(COMMON + ["--folds", "0"])
    assert exited.value.code == 2 and "give its folder with --run-dir" in capsys.readouterr().err


@pytest.mark.parametrize("text, folds", [("0-3", [0, 1, 2, 3]), ("5", [5]),
                                         ("0,2,5-7,2", [0, 2, 5, 6, 7])])
def test_fold_lists(text, folds):
    assert cli.fold_list(text) == folds


@pytest.mark.parametrize("text", ["", "a", "3-1", "1-", "-2", "1,,2"])
def test_fold_lists_refused(text):
    with pytest.raises(ValueError, match="not a fold list"):
        cli.fold_list(text)
