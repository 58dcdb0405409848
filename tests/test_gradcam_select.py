"""Grad-CAM layer selection: regions, scoring, the backbone split and `python -m gradcam select`."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from gradcam import regions, scoring
from gradcam.__main__ import main
from tfmer import data, experiments, protocols
from tfmer.models.clip import FoldedTimeDistributed, freeze_before, trainable_from

SIZE = 32


def _landmarks(left_eye, right_eye, elsewhere=(100.0, 100.0)):
    points = np.tile(np.float32(elsewhere), (68, 1))
    points[36:42], points[42:48] = left_eye, right_eye
    return points


def test_region_mask_is_discs_of_radius_times_eye_distance_around_region_points():
    points = _landmarks((10, 10), (30, 10))  # inter-ocular 20 -> radius 3; the rest off-image
    points[0:17] = (20, 30)  # the jaw is no region
    mask = regions.region_mask(points, 40)
    assert regions.RADIUS * 20 == pytest.approx(3)
    assert mask.shape == (40, 40) and mask.dtype == bool
    assert mask.sum() == 2 * 29  # lattice points within distance 3 of a point
    assert mask[10, 13] and mask[12, 12] and mask[7, 30]  # rows y, columns x; edge included
    assert not mask[10, 14] and not mask[13, 12] and not mask[30, 20] and not mask[10, 20]


def test_region_mask_rejects_bad_landmarks():
    with pytest.raises(ValueError, match=r"\[68, 2\]"):
        regions.region_mask(np.zeros((5, 2)), 8)
    with pytest.raises(ValueError, match="eye centres coincide"):
        regions.region_mask(np.zeros((68, 2)), 8)


def test_heat_in_regions_is_the_share_of_heat_inside_the_mask():
    mask = regions.region_mask(regions.canonical_landmarks(SIZE), SIZE)
    assert 0.15 < mask.mean() < 0.3
    assert regions.heat_in_regions(mask.astype(np.float32), mask) == pytest.approx(1)
    assert regions.heat_in_regions((~mask).astype(np.float32), mask) == 0
    assert regions.heat_in_regions(np.full((4, 4), 0.7), mask) == pytest.approx(mask.mean())
    assert regions.heat_in_regions(np.zeros((4, 4)), mask) == 0
    top = np.zeros((SIZE, SIZE), np.float32)
    top[:SIZE // 2] = 1
    assert regions.heat_in_regions(top, mask) == pytest.approx(
        mask[:SIZE // 2].sum() / (SIZE * SIZE // 2))


def test_canonical_landmarks_match_the_photo_they_were_made_from():
    pytest.importorskip("dlib")
    import matplotlib.cbook
    import matplotlib.image
    from data_prep import face

    photo = matplotlib.image.imread(
        matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    points = face.locate(photo)
    recomputed = face.face_crop(points, align=True).points(points, 1) + 0.5
    np.testing.assert_allclose(regions.CANONICAL_LANDMARKS, recomputed, atol=6e-5)
    eyes = regions.CANONICAL_LANDMARKS[36:48, 1]
    assert eyes.max() - eyes.min() < 0.06  # aligned: the eyes are level


def test_stored_index_maps_the_apex_to_the_resampled_frames():
    assert scoring.stored_index(8, 6, 9, 14) == 3  # TIM: 3/8 of 7 = 2.625 -> 3
    assert scoring.stored_index(9, 6, 9, 14) == 3  # no TIM: apex - onset
    assert scoring.stored_index(32, 17, 46, 66) == 18  # 29/49 of 31 = 18.35
    assert scoring.stored_index(10, 6, 6, 14) == 0 and scoring.stored_index(10, 6, 14, 14) == 9
    assert scoring.stored_index(10, 6, 20, 14) == 9  # apex past the offset: the last frame
    assert scoring.stored_index(10, -1, 9, 14) == 4  # unknown onset: the middle frame
    assert scoring.stored_index(10, 6, -1, 14) == 4
    assert scoring.stored_index(10, 6, 6, 6) == 4


def test_sample_clips_spreads_over_classes_deterministically():
    clips = [{"id": f"{label}{i}", "label": label}
             for label, count in (("a", 3), ("b", 3), ("c", 1)) for i in range(count)]
    chosen = scoring.sample_clips(clips, ("a", "b", "c"), 5, seed=1)
    assert [c["label"] for c in chosen] == ["a", "b", "c", "a", "b"]
    assert len({c["id"] for c in chosen}) == 5
    assert chosen == scoring.sample_clips(list(reversed(clips)), ("a", "b", "c"), 5, seed=1)
    assert len(scoring.sample_clips(clips, ("a", "b", "c"), 50)) == 7


def test_sample_frames_takes_apex_frames_and_scaled_landmarks(builtin_dataset):
    info = data.load_info(builtin_dataset)
    subject = info.subjects[1]
    frames, landmarks, ids = scoring.sample_frames(info, [subject], image_size=64, count=3)
    assert frames.shape == (3, 64, 64, 3) and frames.dtype == np.uint8
    assert landmarks.shape == (3, 68, 2) and len(ids) == 3
    assert {c["subject"] for c in info.clips if c["id"] in ids} == {subject}
    stored = {}
    for clip in data.read_clips(info, [subject]):
        stored[clip["clip/id"].numpy().decode()] = clip
    for frame, points, clip_id in zip(frames, landmarks, ids):
        clip = stored[clip_id]
        index = scoring.stored_index(
            8, *(int(clip[f"clip/{key}"]) for key in ("onset", "apex", "offset")))
        encoded = clip["image/encoded"][index:index + 1]
        expected = data.resize_frames(data.decode_frames(encoded), 64)
        np.testing.assert_array_equal(frame, np.rint(expected[0].numpy()))
        original = clip["clip/landmarks"].numpy().reshape(68, 2)
        np.testing.assert_allclose(points, (original + 0.5) * 2 - 0.5, rtol=1e-6)
    again = scoring.sample_frames(info, [subject], image_size=64, count=3)
    assert again[2] == ids and np.array_equal(again[0], frames)


def _engineered_clip_model():
    """A clip model whose backbone has three 1x1 conv layers: `inverted` (bright where the
    frame is dark), `focused` (bright where the frame is bright) and `flat` (constant)."""
    constant = keras.initializers.Constant
    image = keras.Input((SIZE, SIZE, 3), name="image")
    maps = [keras.layers.Conv2D(1, 1, name=name, kernel_initializer=constant(weight),
                                bias_initializer=constant(bias))(image)
            for name, weight, bias in (("inverted", -1 / 765, 1.0), ("focused", 1 / 765, 0.0),
                                       ("flat", 0.0, 1.0))]
    x = keras.layers.Concatenate(name="concat")(maps)
    features = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    frame_model = keras.Model(image, features, name="tiny_backbone")
    frames = keras.Input((None, SIZE, SIZE, 3), name="frames")
    x = FoldedTimeDistributed(frame_model, name="backbone")(frames)
    x = keras.layers.GlobalAveragePooling1D(name="time")(x)
    outputs = keras.layers.Dense(2, activation="softmax", name="probabilities",
                                 kernel_initializer=constant([[1, 0]] * 3),
                                 bias_initializer=constant([1, 0]))(x)
    return keras.Model(frames, outputs)


def test_score_layers_finds_the_layer_whose_heat_sits_on_the_regions():
    model = _engineered_clip_model()
    landmarks = np.stack([regions.canonical_landmarks(SIZE)] * 2)
    landmarks[1, :, 0] += 2  # a second face, shifted
    masks = scoring.region_masks(landmarks, SIZE)
    frames = np.repeat(masks[..., None], 3, axis=-1).astype(np.uint8) * 255  # white features
    names = ["inverted", "focused", "flat"]
    scores = scoring.score_layers(model, frames, landmarks, names)
    assert [s["name"] for s in scores] == names
    by_name = {s["name"]: s for s in scores}
    assert by_name["focused"]["score"] == pytest.approx(1, abs=1e-5)
    assert by_name["inverted"]["score"] == pytest.approx(0, abs=1e-5)
    assert by_name["flat"]["score"] == pytest.approx(masks.mean(), abs=1e-5)
    assert all(s["area"] == pytest.approx(masks.mean()) for s in scores)
    assert scoring.select_layer(scores) == "focused"
    assert scoring.select_layer([{"name": "a", "score": 0.5}, {"name": "b", "score": 0.5}]) == "a"

    frozen, trainable = scoring.split(model, "focused")
    backbone = model.get_layer("backbone").layer
    assert all(layer.trainable for layer in backbone.layers)  # split freezes nothing
    assert frozen + trainable == [layer.name for layer in backbone.layers]
    assert trainable[0] == "focused"
    assert freeze_before(backbone, "focused") == frozen
    assert [layer.name for layer in backbone.layers if layer.trainable] == trainable
    with pytest.raises(ValueError, match="valid layers: image, inverted"):
        scoring.split(model, "nope")


def test_select_cli_writes_the_report(builtin_dataset, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["select", "--experiment", "exp3", "--data", str(builtin_dataset),
                 "--out", str(out), "--quick", "--count", "4"]) == 0
    printed = capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    assert f"selected layer: {report['selected']}" in printed and "report.html" in printed
    layers = list(experiments.get("exp3").model.gradcam_layers)
    assert [s["name"] for s in report["layers"]] == layers
    assert all(0 <= s["score"] <= 1 and 0 < s["area"] < 1 for s in report["layers"])
    assert report["selected"] == max(report["layers"], key=lambda s: s["score"])["name"]
    backbone = experiments.build(experiments.get("exp3", "quick"), 4).get_layer("backbone").layer
    assert report["frozen"] + report["trainable"] == [layer.name for layer in backbone.layers]
    assert report["trainable"][0] == trainable_from(backbone, report["selected"])
    assert len(report["frames"]) == 4 and report["class_target"] == "predicted"
    assert "frames of all 4 subjects" in printed and report["fold"] is None
    assert report["experiment"] == "exp3" and "eyes" in report["regions"]
    for name in ("report.html", "scores.png", "overview.png", f"layers/{layers[0]}.png"):
        assert (out / name).stat().st_size > 0, name
    page = (out / "report.html").read_text()
    assert report["selected"] in page and 'src="overview.png"' in page
    assert not list(out.rglob(".tmp.*"))


def test_select_cli_errors_are_one_line(tiny_dataset, builtin_dataset, tmp_path, capsys):
    assert main(["select", "--experiment", "nope", "--data", str(tiny_dataset),
                 "--out", str(tmp_path)]) == 2
    assert "registered: " in capsys.readouterr().err
    assert main(["select", "--experiment", "exp3", "--data", str(tiny_dataset),
                 "--out", str(tmp_path), "--quick"]) == 2
    error = capsys.readouterr().err
    assert "no facial landmarks" in error and "--canonical-landmarks" in error
    assert len(error.strip().splitlines()) == 1
    assert main(["select", "--experiment", "exp3", "--data", str(builtin_dataset),
                 "--out", str(tmp_path), "--quick", "--count", "1",
                 "--layers", "conv2_1_out,nope"]) == 2
    error = capsys.readouterr().err
    assert "unknown layer(s) nope" in error and "conv5_3_out" in error
    assert main(["select", "--experiment", "exp3", "--data", str(tmp_path),
                 "--out", str(tmp_path)]) == 2
    assert "no dataset.json" in capsys.readouterr().err
    assert not (tmp_path / "report.json").exists()


def test_select_on_one_folds_training_subjects_leaves_its_test_subjects_out(
        builtin_dataset, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["select", "--experiment", "exp3", "--data", str(builtin_dataset),
                 "--out", str(out), "--quick", "--count", "4", "--fold", "1",
                 "--set", "protocol.protocol=kfold2"]) == 0
    report = json.loads((out / "report.json").read_text())
    config = experiments.get("exp3", "quick", ["protocol.protocol=kfold2"])
    info = data.load_info(builtin_dataset)
    folds = protocols.make_folds(info.subjects, config.protocol.protocol, config.num_folds,
                                 config.protocol.fold_seed)
    assert report["fold"] == 1 and report["subjects"] == sorted(folds[1]["train_subjects"])
    subject_of = {c["id"]: c["subject"] for c in info.clips}
    assert {subject_of[clip] for clip in report["frames"]} <= set(folds[1]["train_subjects"])
    assert main(["select", "--experiment", "exp3", "--data", str(builtin_dataset),
                 "--out", str(out), "--quick", "--fold", "9",
                 "--set", "protocol.protocol=kfold2"]) == 2
    assert "fold 9 is not a fold of kfold2 on synthetic (folds 0..1)" in capsys.readouterr().err
