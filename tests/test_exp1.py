"""Exp-I (Bai & Goecke 2020): single frames, class-balanced sampling, rotation, the `fc`
head, frame-level and majority-vote figures (--quick sizes on the tiny dataset)."""

import collections
import json

import numpy as np
import pytest
import tensorflow as tf
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

import train
from data_prep import clip, manifest
from gradcam.core import grad_cam
from tfmer import data, experiments, training
from tfmer.experiments import bai_goecke
from tfmer.models.clip import clip_probabilities
from tests.helpers import CLASSES

# Clips per class of the unbalanced dataset: class k keeps the clips of subjects < KEEP[k].
KEEP = (6, 3, 2, 1)


@pytest.fixture(scope="module")
def unbalanced_dataset(tiny_manifest, tmp_path_factory):
    """`tiny_manifest` with 6, 3, 2 and 1 clips of the four classes, converted."""
    lines = tiny_manifest.read_text().splitlines()
    kept = [lines[0]] + [line for line in lines[1:]
                         if int(line.split(",")[1]) < KEEP[CLASSES.index(line.split(",")[2])]]
    path = tiny_manifest.with_name("unbalanced.csv")
    path.write_text("\n".join(kept) + "\n")
    out = tmp_path_factory.mktemp("unbalanced")
    options = clip.ConvertOptions(num_frames=8, size=32, clips_per_shard=5, workers=1,
                                  progress=False)
    manifest.convert_manifest(path, out, classes="tlcnn4", name="unbalanced", options=options)
    return out


def test_balanced_clips_draw_every_class_about_equally(unbalanced_dataset):
    info = data.load_info(unbalanced_dataset)
    counts = collections.Counter(info.classes.index(c["label"]) for c in info.clips)
    assert sorted(counts.values()) == [1, 2, 3, 6]
    draws = 2000
    labels = [int(c["clip/label"]) for c in
              data.balanced_clips(info, info.subjects, seed=0).take(draws)]
    frequencies = np.bincount(labels, minlength=4) / draws
    np.testing.assert_allclose(frequencies, 0.25, rtol=0.1)
    # Only the given subjects' clips, and only the classes they have.
    subjects = [s for s in info.subjects if s.endswith(("/04", "/05"))]
    seen = {(c["clip/subject"].numpy().decode(), int(c["clip/label"]))
            for c in data.balanced_clips(info, subjects, seed=1).take(50)}
    assert {s for s, _ in seen} == set(subjects) and {label for _, label in seen} == {0}


@pytest.mark.parametrize("in_map", [False, True])
def test_rotation_and_flip_keep_shapes(in_map):
    frames = tf.random.uniform([3, 32, 24, 3], 0, 255, seed=0)

    def augment(x):
        return data.random_rotation(data.random_flip(x), 10.0)

    if in_map:
        (out,) = list(tf.data.Dataset.from_tensors(frames).map(augment))
    else:
        out = augment(frames)
    assert out.shape == frames.shape and out.dtype == tf.float32
    # No rotation leaves the frames as they are; 10 degrees moves them.
    np.testing.assert_allclose(data.random_rotation(frames, 0.0), frames, atol=1e-3)
    assert not np.allclose(data.random_rotation(frames, 10.0, seed=3), frames)


def test_balanced_training_batches_are_single_rotated_frames(unbalanced_dataset):
    info = data.load_info(unbalanced_dataset)
    batches = list(data.train_dataset(info, info.subjects, window=1, image_size=32,
                                      batch_size=4, rotation=10.0, balance_classes=True,
                                      samples_per_epoch=10, seed=0))
    assert [b[0].shape for b in batches] == [(4, 1, 32, 32, 3)] * 2 + [(2, 1, 32, 32, 3)]


def test_exp1_clip_probabilities_are_the_mean_of_frame_softmaxes():
    config = experiments.get("exp1", "quick")
    model = experiments.build_model("exp1", quick=True)
    frames = np.random.default_rng(0).uniform(0, 255, size=(2, 5, 32, 32, 3)).astype("float32")
    clip = clip_probabilities(model, frames, config.data.window, config.data.eval_stride)
    # Independently: the logits of each frame alone, a NumPy softmax, the mean over frames.
    logits_model = tf.keras.Model(model.inputs[0], model.get_layer("logits").output)
    logits = np.stack([logits_model(frames[:, t:t + 1], training=False)[:, 0]
                       for t in range(frames.shape[1])], axis=1)  # [2, 5, 4]
    softmax = np.exp(logits - logits.max(-1, keepdims=True))
    softmax /= softmax.sum(-1, keepdims=True)
    np.testing.assert_allclose(clip, softmax.mean(axis=1), rtol=1e-4, atol=1e-6)
    _, windows = clip_probabilities(model, frames, 1, 1, return_windows=True)
    np.testing.assert_allclose(windows, softmax, rtol=1e-4, atol=1e-6)


def test_grad_cam_runs_on_exp1():
    model = experiments.build_model("exp1", quick=True)
    frames = np.random.default_rng(1).uniform(0, 255, size=(3, 32, 32, 3)).astype("float32")
    heatmaps = grad_cam(model, frames, "conv5_3_out", class_index=1)
    assert heatmaps.shape[0] == 3 and np.all(np.isfinite(heatmaps))
    assert heatmaps.min() >= 0 and heatmaps.max() <= 1


def test_fc_units_override_and_balance_checks():
    config = experiments.get("exp1", overrides=["model.fc_units=64,32"])
    assert config.model.fc_units == (64, 32)
    with pytest.raises(ValueError, match="not a list of integers"):
        experiments.get("exp1", overrides=["model.fc_units=a,b"])
    with pytest.raises(ValueError, match="data.balance_classes needs data.frames_per_class"):
        experiments.get("exp1", overrides=["data.frames_per_class=none"])
    with pytest.raises(ValueError, match="model.head 'gru' is not one of"):
        experiments.get("exp1", overrides=["model.head=gru"])


@pytest.mark.slow  # ResNet-50 trainings: opt-in, so the default suite stays < 10 min
def test_exp1_run_writes_frame_metrics(tiny_dataset, tmp_path, monkeypatch):
    predicted = []
    predict = training.ModelTrainer.predict

    def spy(self, info, subjects):
        rows = predict(self, info, subjects)
        predicted.extend(rows)
        return rows

    monkeypatch.setattr(training.ModelTrainer, "predict", spy)
    status = train.main(["--experiment", "exp1", "--data", str(tiny_dataset), "--quick",
                         "--protocol", "kfold2", "--out", str(tmp_path / "runs"), "--no-export"])
    assert status == 0
    (run_dir,) = (tmp_path / "runs" / "exp1").iterdir()
    folds = json.loads((run_dir / "folds.json").read_text())
    assert len(folds) == 2 and len(predicted) == 24
    result = json.loads((run_dir / "frame_metrics.json").read_text())
    assert result["classes"] == list(CLASSES)
    # Independently from the per-frame probabilities: every frame labelled with its clip's
    # class, and the majority vote per clip (ties: higher summed probability).
    frame_true, frame_pred, clip_pred = [], [], []
    for row in predicted:
        frames = np.array(row["window_probabilities"])
        assert frames.shape == (8, 4)
        np.testing.assert_allclose(row["probabilities"], frames.mean(axis=0), rtol=1e-5)
        frame_true += [row["y_true"]] * 8
        frame_pred += list(frames.argmax(axis=1))
        votes = collections.Counter(frames.argmax(axis=1))
        top = max(votes.values())
        clip_pred.append(max((c for c in votes if votes[c] == top),
                             key=lambda c: frames[:, c].sum()))
    clip_true = [row["y_true"] for row in predicted]
    for key, (y_true, y_pred) in {"frame": (frame_true, frame_pred),
                                  "majority": (clip_true, clip_pred)}.items():
        assert result[key]["n"] == len(y_true)
        assert result[key]["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
        assert result[key]["uar"] == pytest.approx(balanced_accuracy_score(y_true, y_pred))
        present = sorted(set(y_true))
        assert result[key]["uf1"] == pytest.approx(
            f1_score(y_true, y_pred, labels=present, average="macro"))
    # predictions.csv stays clip level: one row per clip, the mean of frame probabilities.
    lines = (run_dir / "predictions.csv").read_text().splitlines()
    assert len(lines) == 25 and lines[0].startswith("clip_id,subject,fold,seed,y_true,y_pred")


@pytest.mark.slow  # ResNet-50 trainings: opt-in, so the default suite stays < 10 min
def test_exp2_repackages_exp1_as_its_encoder_trained_on_the_fits_subjects(tiny_dataset,
                                                                         tmp_path):
    config = experiments.get("exp2", "quick", ["transfer.encoder=exp1", "model.fc_units=8",
                                               "model.head_units=8", "model.head_layers=1"])
    info = data.load_info(tiny_dataset)
    trainer = experiments.trainer(config, len(info.classes))
    lines = []
    history = trainer.fit(info, info.subjects[:2], seed=3, log=lines.append)
    assert "encoder_loss" in history and "loss" in history
    assert any("stage exp1" in line for line in lines)
    # Stage 2 starts from Exp-I's layers: replay the reset of the fit.
    encoder = trainer.encoder.model
    names = bai_goecke.encoder_layers(encoder)
    assert names == ["backbone", "fc_1", "logits"]
    trainer._from_encoder = True
    trainer.reset(3)
    trainer._from_encoder = False
    for name in names:
        for got, want in zip(trainer.model.get_layer(name).get_weights(),
                             encoder.get_layer(name).get_weights()):
            np.testing.assert_array_equal(got, want)
    # An exp1 model's weights from a run on the same data: loaded, with the leak named.
    run = tmp_path / "exp1_run"
    run.mkdir()
    encoder.save_weights(run / "final.weights.h5")
    saved = encoder.get_layer("logits").get_weights()[0]
    (run / "config.json").write_text(json.dumps({"dataset": {"name": info.name}}))
    trainer.encoder.reset(4)  # other weights, which the file replaces
    lines = []
    assert trainer._load_encoder(run / "final.weights.h5", info, lines.append) == {}
    assert any("trained on every subject of tiny" in line for line in lines)
    np.testing.assert_array_equal(encoder.get_layer("logits").get_weights()[0], saved)
    with pytest.raises(ValueError, match="transfer.encoder 'exp2' is not one of"):
        experiments.get("exp2", "quick", ["transfer.encoder=exp2"])
    with pytest.raises(ValueError, match="needs transfer.encoder exp1"):
        experiments.get("exp2", "quick", ["transfer.encoder_weights=x.h5"])
