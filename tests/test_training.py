"""End to end through `train.py` and `evaluate.py` on the small built-in dataset (--quick)."""

import csv
import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

import evaluate
import train
from gradcam import compare
from tfmer import data, experiments, features, lite, run_folder, training
from tfmer.models.clip import trainable_from
from tests.helpers import CLASSES


@pytest.fixture(scope="module")
def finished_run(exp3_run):
    return exp3_run


def test_run_folder_follows_the_contract(finished_run, builtin_dataset):
    run_dir, _ = finished_run
    config = json.loads((run_dir / "config.json").read_text())
    assert config["scale"] == "quick" and config["data"]["classes"] == list(CLASSES)
    assert config["protocol"]["protocol"] == "kfold2"
    assert config["dataset"]["path"] == str(builtin_dataset.resolve())
    folds = json.loads((run_dir / "folds.json").read_text())
    assert len(folds) == 2
    tested = sorted(s for f in folds for s in f["test_subjects"])
    assert tested == list(data.load_info(builtin_dataset).subjects)
    for fold in folds:
        assert not set(fold["test_subjects"]) & set(fold["train_subjects"])
    for name in ("confusion_matrix.png", "folds.png", "training_curves.png"):
        assert (run_dir / name).stat().st_size > 5000, name


def test_predictions_cover_each_clip_once_from_its_own_fold(finished_run, builtin_dataset):
    run_dir, _ = finished_run
    folds = json.loads((run_dir / "folds.json").read_text())
    with open(run_dir / "predictions.csv") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["clip_id", "subject", "fold", "seed", "y_true", "y_pred",
                             *[f"p_{c}" for c in CLASSES]]
    clips = {clip["id"]: clip for clip in data.load_info(builtin_dataset).clips}
    assert sorted(r["clip_id"] for r in rows) == sorted(clips)
    for row in rows:
        assert row["subject"] in folds[int(row["fold"])]["test_subjects"]
        assert row["subject"] == clips[row["clip_id"]]["subject"]
        p = np.array([float(row[f"p_{c}"]) for c in CLASSES])
        assert p.sum() == pytest.approx(1, abs=1e-4) and int(row["y_pred"]) == p.argmax()
        assert int(row["y_true"]) == CLASSES.index(clips[row["clip_id"]]["label"])


def test_metrics_equal_an_independent_computation(finished_run):
    run_dir, _ = finished_run
    metrics = json.loads((run_dir / "metrics.json").read_text())
    with open(run_dir / "predictions.csv") as f:
        rows = list(csv.DictReader(f))
    y_true = [int(r["y_true"]) for r in rows]
    y_pred = [int(r["y_pred"]) for r in rows]
    present = sorted(set(y_true))
    assert metrics["pooled"]["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert metrics["pooled"]["uf1"] == pytest.approx(
        f1_score(y_true, y_pred, average="macro", labels=present))
    assert metrics["pooled"]["uar"] == pytest.approx(balanced_accuracy_score(y_true, y_pred))
    assert np.sum(metrics["confusion_matrix"]) == 16
    assert [f["n"] for f in metrics["folds"]] == [8, 8]
    assert metrics["chance"]["uar"] == pytest.approx(0.25)


def test_evaluate_recomputes_the_run(finished_run, capsys):
    run_dir, _ = finished_run
    assert evaluate.main([str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "matches" in out and "UF1" in out and "chance" in out


def test_export_serves_clips(finished_run, builtin_dataset, tmp_path, capsys):
    _, export_dir = finished_run
    metadata = json.loads((export_dir / "assets" / "tfmer.json").read_text())
    assert metadata["classes"] == list(CLASSES) and metadata["experiment"] == "exp3"
    serve = tf.saved_model.load(str(export_dir)).signatures["serving_default"]
    assert list(serve.structured_input_signature[1]) == ["frames"]
    size = metadata["preprocessing"]["image_size"]
    frames = tf.random.uniform([2, 8, size, size, 3], 0, 255)
    probabilities = serve(frames=frames)["probabilities"].numpy()
    assert probabilities.shape == (2, 4)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-5)
    # Its TFLite model (ResNet-50 and Bi-LSTM, what `tfmer.predict` runs): the same output.
    info = data.load_info(builtin_dataset)
    record = features.decode(next(iter(tf.data.TFRecordDataset(str(info.shards[0])))).numpy())
    frames = data.resize_frames(tf.constant(lite.stored_frames(record)), size)[None]
    np.testing.assert_allclose(lite.LiteModel(export_dir, metadata).probabilities(record),
                               serve(frames=frames)["probabilities"].numpy()[0], atol=1e-5)
    assert evaluate.main(["--model", str(export_dir), "--data", str(builtin_dataset),
                          "--out", str(tmp_path)]) == 0
    assert "pooled over 16 predictions" in capsys.readouterr().out
    assert (tmp_path / "predictions.csv").is_file()


@pytest.mark.slow  # ResNet-50 trainings: opt-in, so the default suite stays < 10 min
def test_trainer_reset_equals_a_fresh_model(tiny_dataset):
    config = experiments.get("exp3", "quick")
    trainer = experiments.trainer(config, 4)
    info = data.load_info(tiny_dataset)
    trainer.fit(info, info.subjects[:2], seed=0)
    assert int(trainer.model.optimizer.iterations.numpy()) > 0
    trainer.reset(5)
    keras.utils.set_random_seed(5)
    fresh = experiments.build(config, 4)
    for a, b in zip(trainer.model.get_weights(), fresh.get_weights()):
        np.testing.assert_array_equal(a, b)
    # The same dropout masks too: a training-mode pass gives the same outputs.
    frames = np.random.default_rng(1).uniform(0, 255, (2, 4, 32, 32, 3)).astype(np.float32)
    np.testing.assert_array_equal(trainer.model(frames, training=True),
                                  fresh(frames, training=True))
    assert int(trainer.model.optimizer.iterations.numpy()) == 0
    assert all(not np.any(v.numpy()) for v in trainer.model.optimizer.variables
               if "momentum" in v.path or "velocity" in v.path)


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert train.main(["--experiment", "nope"]) == 2
    assert ("registered: biwoof_svm, c3d, c5_svm, exp1, exp2, exp3, fdm_svm"
            in capsys.readouterr().err)
    assert train.main(["--experiment", "exp3", "--data", str(tmp_path)]) == 2
    assert "no dataset.json" in capsys.readouterr().err
    assert train.main(["--list"]) == 0
    assert "Bai & Goecke" in capsys.readouterr().out


@pytest.mark.slow  # ResNet-50 trainings: opt-in, so the default suite stays < 10 min
def test_train_from_freezes_earlier_layers_and_only_later_weights_move(tiny_dataset):
    config = experiments.get("exp3", "quick")
    trainer = experiments.trainer(config, 4)
    trainer.train_from("conv5_1_1x1_reduce")
    info = data.load_info(tiny_dataset)
    trainer.fit(info, info.subjects[:2], seed=0)
    keras.utils.set_random_seed(0)
    fresh = experiments.build(config, 4).get_layer("backbone").layer
    backbone = trainer.model.get_layer("backbone").layer
    cut = [layer.name for layer in backbone.layers].index("conv5_1_1x1_reduce")
    for i, (layer, start) in enumerate(zip(backbone.layers, fresh.layers)):
        unchanged = all(np.array_equal(a, b)
                        for a, b in zip(layer.get_weights(), start.get_weights()))
        assert layer.trainable == (i >= cut)
        if i < cut:
            assert unchanged, layer.name  # frozen, batch-norm statistics included
    kernel = backbone.get_layer("conv5_1_1x1_reduce").get_weights()[0]
    assert not np.array_equal(kernel, fresh.get_layer("conv5_1_1x1_reduce").get_weights()[0])


@pytest.mark.slow  # ResNet-50 trainings: opt-in, so the default suite stays < 10 min
def test_gradcam_unfreezing_selects_per_fold_on_training_subjects(builtin_dataset, tmp_path):
    status = train.main(["--experiment", "exp3", "--data", str(builtin_dataset), "--quick",
                         "--protocol", "kfold2", "--out", str(tmp_path), "--no-export",
                         "--set", "model.unfreeze_from=gradcam",
                         "--set", "model.gradcam_frames=4"])
    assert status == 0
    (run_dir,) = (tmp_path / "exp3").iterdir()
    selections = json.loads((run_dir / "gradcam.json").read_text())
    folds = {f["fold"]: f for f in json.loads((run_dir / "folds.json").read_text())}
    layers = experiments.get("exp3").model.gradcam_layers
    assert [s["fold"] for s in selections] == [0, 1]
    for selection in selections:
        assert [s["name"] for s in selection["layers"]] == list(layers)
        # By the resolution-corrected score, among layers whose maps have room above
        # uniform heat (conv5's are 1 x 1 at 32 px); each frame's label through a probe.
        roomy = [s for s in selection["layers"] if s["ceiling"] - s["area"] > 1e-6]
        assert len(roomy) == len(layers) - 3
        best = max(roomy, key=lambda s: s["normalised"])
        assert selection["selected"] == best["name"]
        assert selection["class_target"] == "probe" and selection["probe"]["accuracy"] > 0
        subjects = {"synthetic/" + clip.split("/")[0] for clip in selection["frames"]}
        assert subjects <= set(folds[selection["fold"]]["train_subjects"])


def test_final_model_weights_are_kept_and_the_initial_ones_drawn_again(finished_run):
    """The run keeps the final model once (`final.weights.h5`); its initial weights, not
    kept, are drawn again from the seed by `gradcam.compare` as the trainer's reset(0)."""
    run_dir, _ = finished_run
    assert not (run_dir / run_folder.INITIAL_WEIGHTS).exists()
    config = experiments.get("exp3", "quick")
    after = experiments.build(config, 4)
    after.load_weights(run_dir / run_folder.FINAL_WEIGHTS)
    before = compare.drawn_initial_weights(run_folder.RunFolder(run_dir), 4)
    keras.utils.set_random_seed(0)  # the final model starts from reset(0)
    fresh = experiments.build(config, 4)
    for a, b in zip(before, fresh.get_weights()):
        np.testing.assert_array_equal(a, b)
    layer = [w.path for w in fresh.weights].index(
        fresh.get_layer("probabilities").weights[0].path)
    assert not np.array_equal(after.get_weights()[layer], before[layer])


def test_gradcam_selection_needs_landmarks_unless_canonical_layout_is_asked_for(tiny_dataset):
    # The manifest clips carry no landmarks: selection stops, naming a clip and the way out.
    config = experiments.get("exp3", "quick", ("model.gradcam_frames=2",))
    info = data.load_info(tiny_dataset)
    trainer = experiments.trainer(config, 4)
    with pytest.raises(ValueError, match=r"clip sub00/clip_\w+ of .*tiny_data.* has no facial "
                                         r"landmarks.*gradcam_canonical_landmarks=true"):
        trainer.select_layer(info, info.subjects[:2], seed=0, log=lambda line: None)
    canonical = experiments.get("exp3", "quick", ("model.gradcam_frames=2",
                                                  "model.gradcam_canonical_landmarks=true"))
    trainer = experiments.trainer(canonical, 4)
    lines = []
    selection = trainer.select_layer(info, info.subjects[:2], seed=0, log=lines.append)
    assert selection["selected"] in canonical.model.gradcam_layers
    assert any("randomly initialised backbone" in line for line in lines)
    assert selection["class_target"] == "probe"
    assert any("linear probe" in line for line in lines)
    assert any(f"(probe target): {selection['selected']} (normalised" in line
               for line in lines)
    backbone = trainer.model.get_layer("backbone").layer
    first_trainable = next(layer.name for layer in backbone.layers if layer.trainable)
    assert first_trainable == trainable_from(backbone, selection["selected"])


def test_decay_by_epochs_whatever_the_steps_per_epoch():
    # PyTorch's StepLR(step_size=2, gamma=0.5) from 0.1 over 5 epochs of 3 steps each: the
    # rate of each epoch is 0.1, 0.1, 0.05, 0.05, 0.025 (MatConvNet's per-epoch rates alike).
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2, activation="softmax")])
    train_config = experiments.get("rcn", overrides=[
        "train.learning_rate=0.1", "train.decay_epochs=2", "train.decay_rate=0.5",
        "train.epochs=5", "train.early_stopping=false"]).train
    compiled = training.CompiledModel(model, train_config)
    rates = []
    recorder = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: rates.append(float(model.optimizer.learning_rate)))
    batches = tf.data.Dataset.from_tensors((np.ones((4, 2), np.float32),
                                            np.zeros(4, np.int32))).repeat(3)
    compiled.fit(batches, callbacks=[recorder], log=lambda line: None)
    assert rates == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025])
    assert int(model.optimizer.iterations) == 15
