"""The TLCNN experiments (Wang et al. 2018): configs, the staged trainer (`tfmer.training.staged`),
C5+SVM, the 3D-CNN, the built-in inputs and the errors before training (--quick sizes on the
tiny dataset and a tiny expression set)."""

import csv
import json

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf

import train
from data_prep import builtin, databases, synthetic
from data_prep.clip import ConvertOptions
from tfmer import data, experiments, export, protocols, run_folder, training
from tfmer.config import TrainConfig
from tfmer.experiments import tlcnn
from tests.helpers import CLASSES, labelled_frames, write_clip

TLCNN_NAMES = ("tlcnn", "tlcnn_e", "tlcnn_em", "c5_svm", "tlcnn_tim64", "c3d")
# The transferred layers and their keys in a Keras weights file of the CNN's C1..FC7 (Keras
# numbers the layers of each type in order).
H5_KEYS = {"C1": "conv2d", "C2": "conv2d_1", "C3": "conv2d_2", "C4": "conv2d_3",
           "C5": "conv2d_4", "FC6": "dense", "FC7": "dense_1"}
EMOTION_FOLDERS = ("neutral", "angry", "happy", "sad", "surprised")


@pytest.fixture(scope="module")
def expression_dataset(tmp_path_factory):
    """Still images in emotion folders (3 of each of 5 emotions, 24 px), converted with the
    real `expression` converter to the 9 classes of `expression9`."""
    root = tmp_path_factory.mktemp("expression_raw")
    for label, folder in enumerate(EMOTION_FOLDERS):
        for k in range(3):
            write_clip(root / folder, labelled_frames(label, num_frames=1, seed=10 * label + k),
                       first_number=k)
    out = tmp_path_factory.mktemp("expression")
    databases.convert_database("expression", root, out, classes="expression9",
                               options=ConvertOptions(size=32, crop="none", workers=1,
                                                      progress=False))
    return out


def quick(name, *overrides):
    return experiments.get(name, "quick", overrides)


@pytest.fixture(scope="module")
def tlcnn_run(tiny_dataset, expression_dataset, tmp_path_factory):
    """`tlcnn --quick` on the tiny dataset, 2 folds and the exported final model; records
    each fit's subjects and held-out subjects, and the log."""
    root = tmp_path_factory.mktemp("tlcnn_run")
    config = quick("tlcnn", "protocol.protocol=kfold2",
                   f"transfer.expression_data={expression_dataset}")
    fits, lines = [], []
    fit = training.StagedTrainer.fit

    def spy(self, info, subjects, seed, log=print, final=False):
        history = fit(self, info, subjects, seed, log, final)
        fits.append({"subjects": list(subjects), "held_out": list(self.held_out),
                     "seed": seed, "history": history})
        return history

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(training.StagedTrainer, "fit", spy)
        run_dir, metrics = training.cross_validate(config, tiny_dataset, experiments.trainer,
                                                   runs_root=root / "runs",
                                                   export_root=root / "saved",
                                                   log=lines.append)
    return {"dir": run_dir, "metrics": metrics, "fits": fits, "log": lines,
            "export": root / "saved" / "tlcnn" / "1"}


def test_every_method_of_table_3_tests_the_same_subject_folds():
    subjects = [f"db/s{i:02d}" for i in range(26)]
    folds = []
    for name in TLCNN_NAMES:
        for scale in ("paper", "builtin", "quick"):
            config = experiments.get(name, scale)
            folds.append(protocols.make_folds(subjects, config.protocol.protocol,
                                              config.num_folds, config.protocol.fold_seed))
    assert len(folds[0]) == 5 and all(f == folds[0] for f in folds)


def _learning_rate(train: TrainConfig, step: int) -> float:
    """The learning rate the optimizer of `train` applies at training step `step`."""
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    training.CompiledModel(model, train)
    model.optimizer.iterations.assign(step)
    return float(model.optimizer.learning_rate)


@pytest.mark.parametrize("name, section, rates", [
    # Section 4.2: frames 0.001 / 10 every 2560 iterations; joint 0.01 / 10 every 5600;
    # 3D-CNN 0.003 / 10 after 20000.
    ("tlcnn", "frame_train", {0: 1e-3, 2559: 1e-3, 2560: 1e-4, 5119: 1e-4, 5120: 1e-5}),
    ("tlcnn_e", "train", {0: 1e-2, 5599: 1e-2, 5600: 1e-3, 11200: 1e-4}),
    ("c3d", "train", {0: 3e-3, 19999: 3e-3, 20000: 3e-4})])
def test_paper_learning_rates_decay_as_section_4_2_says(name, section, rates):
    train = getattr(experiments.get(name), section)
    assert {step: _learning_rate(train, step) for step in rates} == pytest.approx(rates)


def test_every_new_field_can_be_set_and_errors_name_field_and_value():
    config = experiments.get("tlcnn", overrides=[
        "transfer.expression_data=/e", "transfer.expression_weights=/w.weights.h5",
        "transfer.feature_layer=FC7", "train.decay_steps=none", "train.decay_rate=0.5",
        "frame_train.steps_per_epoch=5", "frame_train.finetune_learning_rate=none",
        "expression_train.monitor=val_loss", "data.tim=64", "transfer.stages=frames,joint",
        "transfer.expression_data=none", "transfer.expression_weights=none"])
    assert config.transfer.stages == ("frames", "joint") and config.data.tim == 64
    assert config.train.decay_steps is None and config.train.decay_rate == 0.5
    assert config.frame_train.steps_per_epoch == 5 and config.transfer.feature_layer == "FC7"
    assert config.frame_train.finetune_learning_rate is None
    assert config.expression_train.monitor == "val_loss"
    assert experiments.get("c5_svm", overrides=["transfer.svm_c=0.5"]).transfer.svm_c == 0.5
    for assignment, message in [
            ("transfer.stages=joint,frames", r"transfer.stages \('joint', 'frames'\) must be"),
            ("frame_train.monitor=val_f1", "frame_train.monitor 'val_f1' is not one of"),
            ("expression_train.decay_rate=0", r"expression_train.decay_rate 0.0 not in \(0, 1\]"),
            ("train.steps_per_epoch=0", "train.steps_per_epoch 0 must be >= 1"),
            ("transfer.svm_layer=C5", "transfer.svm_layer C5: the last classifier"),
            ("transfer.feature_layer=FC8", "transfer.feature_layer 'FC8' is not one of"),
            ("frame_train.validation_fraction=0.3", "frame_train.validation_fraction 0.3 must"),
            ("data.tim=1", "data.tim 1 must be >= 2"),
            ("model.fc_units=16", r"model.fc_units \(16,\) must be the two widths of the "
                                  r"TLCNN CNN's FC6 and FC7")]:
        with pytest.raises(ValueError, match=message):
            experiments.get("tlcnn", overrides=[assignment])
    with pytest.raises(ValueError, match="transfer.expression_data /e .* no expression stage"):
        experiments.get("tlcnn_e", overrides=["transfer.expression_data=/e"])
    with pytest.raises(ValueError, match="model.backbone tlcnn_cnn needs transfer.stages"):
        experiments.get("tlcnn", overrides=["transfer.stages=none"])


def test_missing_expression_data_stops_before_training(tiny_dataset, tmp_path, capsys):
    assert train.main(["--experiment", "tlcnn", "--data", str(tiny_dataset), "--quick",
                       "--out", str(tmp_path / "runs")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert "python -m data_prep expression --root DIR --out DIR" in error
    assert "--set transfer.expression_data=DIR" in error and "tlcnn_e runs without it" in error
    for assignment, message in [
            (f"transfer.expression_data={tmp_path}", f"{tmp_path} holds no dataset.json"),
            ("transfer.expression_weights=/nope.weights.h5",
             "transfer.expression_weights /nope.weights.h5 does not exist")]:
        assert train.main(["--experiment", "tlcnn", "--data", str(tiny_dataset), "--quick",
                           "--out", str(tmp_path / "runs"), "--set", assignment]) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_tim_mismatch_stops_before_training(tiny_dataset, tmp_path, capsys):
    assert train.main(["--experiment", "tlcnn_tim64", "--data", str(tiny_dataset), "--quick",
                       "--out", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert "expects TIM64 clips (data.tim 64)" in error and "8 frames per clip" in error
    assert "--tim 64" in error and error.count("\n") == 1
    assert train.main(["--experiment", "c3d", "--data", str(tiny_dataset),
                       "--out", str(tmp_path)]) == 2
    assert "expects TIM32 clips" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_tlcnn_run_writes_stage_weights_predictions_and_export(tlcnn_run, tiny_dataset):
    run_dir, log = tlcnn_run["dir"], tlcnn_run["log"]
    names = {p.name for p in run_dir.iterdir()}
    assert {"expression.weights.h5", "frames.weights.h5", "final.weights.h5",
            "predictions.csv", "training_curves.png"} <= names
    assert "initial.weights.h5" not in names  # kept with --keep-initial only
    assert not any(n.startswith("expression.seed") for n in names)
    # Stage 1 ran once for the seed: in the first fit, reused by the second and the final.
    assert sum("stage expression (seed 0)" in line for line in log) == 1
    histories = [fit["history"] for fit in tlcnn_run["fits"]]
    assert "expression_loss" in histories[0]
    assert all("expression_loss" not in h for h in histories[1:])
    for history in histories:  # the joint stage's curves under the usual keys
        assert {"loss", "val_accuracy", "frames_loss", "frames_val_accuracy"} <= set(history)
        assert len(history["loss"]) == 2  # one epoch and one fine-tune epoch
    with open(run_dir / "predictions.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 24
    for row in rows:
        p = np.array([float(row[f"p_{c}"]) for c in CLASSES])
        assert p.sum() == pytest.approx(1, abs=1e-4) and int(row["y_pred"]) == p.argmax()
    serve = tf.saved_model.load(str(tlcnn_run["export"])).signatures["serving_default"]
    probabilities = serve(frames=tf.random.uniform([2, 8, 64, 64, 3], 0, 255))["probabilities"]
    assert probabilities.shape == (2, 4)
    config = json.loads((run_dir / "config.json").read_text())
    assert config["transfer"]["stages"] == ["expression", "frames", "joint"]


def test_best_epochs_are_chosen_on_held_out_training_subjects_only(tlcnn_run):
    folds = json.loads((tlcnn_run["dir"] / "folds.json").read_text())
    fold_fits, final_fit = tlcnn_run["fits"][:2], tlcnn_run["fits"][2]
    for fold, fit in zip(folds, fold_fits):
        assert fit["subjects"] == fold["train_subjects"]
        assert fit["held_out"] and set(fit["held_out"]) < set(fold["train_subjects"])
        assert not set(fit["held_out"]) & set(fold["test_subjects"])
    assert set(final_fit["held_out"]) < set(final_fit["subjects"])


def test_stage1_once_per_seed_and_stage2_starts_from_its_c1_to_fc7(tiny_dataset,
                                                                 expression_dataset, tmp_path):
    config = quick("tlcnn", f"transfer.expression_data={expression_dataset}")
    trainer = experiments.trainer(config, 4, tmp_path)
    lines = []
    trainer.train_expression(0, lines.append)
    trainer.reset(3)
    trainer.load_expression(0)
    path = tmp_path / "expression.weights.h5"
    with h5py.File(path) as saved:
        assert not [key for key in saved["layers"] if key.startswith("dense_2")]  # no FC8
        for layer, key in H5_KEYS.items():
            for index, weight in enumerate(trainer.cnn.get_layer(layer).get_weights()):
                np.testing.assert_array_equal(weight, saved[f"layers/{key}/vars/{index}"][()])
    keras.utils.set_random_seed(3)  # what reset(3) drew: FC8 keeps it, C1..FC7 do not
    fresh = tlcnn.build_cnn(config, 4)
    for a, b in zip(trainer.cnn.get_layer("FC8").get_weights(),
                    fresh.get_layer("FC8").get_weights()):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(trainer.cnn.get_layer("C1").get_weights()[0],
                              fresh.get_layer("C1").get_weights()[0])
    assert trainer.train_expression(0, lines.append) == {}
    assert sum("stage expression (seed 0)" in line for line in lines) == 1
    assert "loss" in trainer.train_expression(1, lines.append)
    assert sum("stage expression (seed 1)" in line for line in lines) == 1
    assert (tmp_path / "expression.seed1.weights.h5").is_file()
    # A later run reuses a stage-1 file and skips the stage.
    reuse = experiments.trainer(quick("tlcnn", f"transfer.expression_weights={path}"), 4,
                                tmp_path / "reuse")
    assert reuse.train_expression(0, lines.append) == {}
    reuse.load_expression(0)
    assert lines[-1] == f"  stage expression: C1..FC7 from {path}"
    with h5py.File(path) as saved:
        np.testing.assert_array_equal(reuse.cnn.get_layer("FC7").get_weights()[0],
                                      saved["layers/dense_1/vars/0"][()])


@pytest.mark.parametrize("name", ["tlcnn_e", "tlcnn_em"])
def test_ablations_run_their_stages_and_the_joint_model_shares_the_cnn(name, tiny_dataset,
                                                                      tmp_path, monkeypatch):
    config = quick(name)
    trainer = experiments.trainer(config, 4, tmp_path)
    calls, at_joint = [], {}
    for stage in ("train_expression", "load_expression", "_fit_frames", "_fit_joint"):
        original = getattr(trainer, stage)

        def spy(*args, original=original, stage=stage, **kwargs):
            calls.append(stage)
            if stage == "_fit_joint":  # the joint model starts from the frames stage's CNN
                backbone = trainer.model.get_layer("backbone").layer
                for layer in ("C1", "C5", "FC6"):
                    at_joint[layer] = (backbone.get_layer(layer).get_weights(),
                                       trainer.cnn.get_layer(layer).get_weights())
            return original(*args, **kwargs)
        monkeypatch.setattr(trainer, stage, spy)
    info = data.load_info(tiny_dataset)
    trainer.fit(info, info.subjects[:4], seed=2, log=lambda line: None)
    assert calls == (["_fit_frames", "_fit_joint"] if name == "tlcnn_e" else ["_fit_joint"])
    assert (trainer.frames is None) == (name == "tlcnn_em")
    backbone = trainer.model.get_layer("backbone").layer
    for layer, (in_model, in_cnn) in at_joint.items():
        for a, b in zip(in_model, in_cnn):
            np.testing.assert_array_equal(a, b)
        assert backbone.get_layer(layer) is trainer.cnn.get_layer(layer)
    # Joint training moved the CNN's own weights: the layers are one and the same.
    assert not np.array_equal(at_joint["C1"][1][0], trainer.cnn.get_layer("C1").get_weights()[0])
    assert set(trainer.held_out) < set(info.subjects[:4])


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # 8 clips
def test_c5_svm_probabilities_are_the_svm_decisions_and_export(tlcnn_run, tiny_dataset,
                                                             tmp_path):
    config = quick("c5_svm", "transfer.expression_weights="
                   + str(tlcnn_run["dir"] / "expression.weights.h5"))
    trainer = experiments.trainer(config, 4, tmp_path)
    info = data.load_info(tiny_dataset)
    trainer.fit(info, info.subjects[:4], seed=0, log=lambda line: None)
    rows = trainer.predict(info, info.subjects[4:])
    assert len(rows) == 8
    features = keras.Model(trainer.model.inputs, trainer.model.get_layer("svm_features").output)
    clips = data.eval_dataset(info, info.subjects[4:], image_size=64, batch_size=8)
    frames, _, _ = next(iter(clips))
    assert features.output.shape[-1] == 3 * 3 * 384  # C5 at 64 px
    mean, scale, svm = trainer.svm
    standardised = (features(frames).numpy() - mean) / scale
    decision = svm.decision_function(standardised)
    softmax = np.exp(decision - decision.max(1, keepdims=True))
    softmax /= softmax.sum(1, keepdims=True)
    probabilities = np.array([row["probabilities"] for row in rows])
    np.testing.assert_allclose(probabilities, softmax, rtol=1e-3, atol=1e-5)
    assert [row["y_pred"] for row in rows] == svm.predict(standardised).tolist()
    path = export.export_saved_model(trainer.model, config, CLASSES, tmp_path / "saved")
    serve = tf.saved_model.load(str(path)).signatures["serving_default"]
    np.testing.assert_allclose(serve(frames=frames)["probabilities"], probabilities, rtol=1e-3,
                               atol=1e-5)


def test_c3d_trains_and_predicts_clips(tiny_dataset, tmp_path):
    config = quick("c3d")
    trainer = experiments.trainer(config, 4, tmp_path)
    info = data.load_info(tiny_dataset)
    kernel = trainer.model.get_layer("conv1").get_weights()[0]
    history = trainer.fit(info, info.subjects[:3], seed=0, log=lambda line: None, final=True)
    assert len(history["loss"]) == 1 and (tmp_path / run_folder.FINAL_WEIGHTS).is_file()
    assert not np.array_equal(kernel, trainer.model.get_layer("conv1").get_weights()[0])
    assert trainer.model.input_shape == (None, 4, 32, 32, 3)
    rows = trainer.predict(info, info.subjects[3:])
    assert len(rows) == 12 and all(len(r["probabilities"]) == 4 for r in rows)


def test_keep_best_spans_the_fine_tune_phase_and_the_schedule_restarts():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    keep = training.KeepBest("val_accuracy", patience=2)
    keep.set_model(model)

    def epoch(value, accuracy):
        model.set_weights([np.full((2, 1), value, np.float32), np.zeros(1, np.float32)])
        keep.on_epoch_end(0, {"val_accuracy": accuracy, "val_loss": 1.0})

    keep.on_train_begin()
    epoch(1.0, 0.5)
    epoch(2.0, 0.4)
    keep.on_train_end()
    assert model.get_weights()[0][0, 0] == 1.0 and keep.best_epoch == 1
    keep.on_train_begin()  # the fine-tune phase: epochs 3 and 4
    epoch(3.0, 0.5)  # not better than epoch 1
    epoch(4.0, 0.7)
    keep.on_train_end()
    assert model.get_weights()[0][0, 0] == 4.0 and keep.best_epoch == 4
    epoch(5.0, 0.1)
    epoch(6.0, 0.1)
    assert model.stop_training  # patience 2
    # Step decay from the base rate; the fine-tune phase restarts it at its own base rate.
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2, activation="softmax")])
    train = TrainConfig(optimizer="sgd", learning_rate=0.1, decay_steps=2, decay_rate=0.1,
                        steps_per_epoch=3, epochs=1, early_stopping=False,
                        finetune_learning_rate=0.05)
    compiled = training.CompiledModel(model, train)
    batches = tf.data.Dataset.from_tensors((np.ones((4, 2), np.float32),
                                            np.zeros(4, np.int32))).repeat()
    history = compiled.fit(batches, log=lambda line: None)
    assert len(history["loss"]) == 2
    assert int(model.optimizer.iterations) == 3
    assert float(model.optimizer.learning_rate) == pytest.approx(0.05 * 0.1)


def test_builtin_inputs_per_experiment(tmp_path, monkeypatch):
    built = []
    monkeypatch.setattr(synthetic, "ensure", lambda out, num_frames: built.append(
        (out.name, num_frames)) or out)
    monkeypatch.setattr(synthetic, "ensure_expression", lambda out: built.append(out.name) or out)
    config, data_dir = builtin.prepare(experiments.get("tlcnn", "builtin"), tmp_path)
    assert data_dir == tmp_path / "synthetic" and built == [("synthetic", 32),
                                                             "synthetic_expression"]
    assert config.transfer.expression_data == str(tmp_path / "synthetic_expression")
    built.clear()
    builtin.prepare(experiments.get("tlcnn_tim64", "quick"), tmp_path)
    assert built == [("synthetic_tim64", 64), "synthetic_expression"]
    built.clear()
    config, _ = builtin.prepare(experiments.get("tlcnn_e", "quick"), tmp_path)
    assert built == [("synthetic", 32)] and config.transfer.expression_data is None


def test_builtin_expression_images_are_expression9_records(tmp_path):
    info = synthetic.build_expression(tmp_path, num_subjects=1, images_per_emotion=1, size=32,
                                      progress=False)
    assert info["classes"] == ["neutral", "anger", "disgust", "fear", "happiness", "sadness",
                               "surprise", "shame", "contempt"]
    assert info["num_frames"] == 1 and info["num_clips"] == 6
    assert [c for c, n in info["class_counts"].items() if n == 0] == ["fear", "shame", "contempt"]
    assert not (tmp_path / "raw").exists()
