"""Grad-CAM layer selection: regions, scoring, the backbone split and `python -m gradcam select`."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from gradcam import grad_cams, regions, scoring
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


@pytest.mark.parametrize("shape", [(4, 4), (8, 8), (4, 8), (32, 32)])
def test_share_ceiling_is_the_best_one_hot_share(shape):
    # Brute force: every one-hot map of the resolution upsampled and scored on its own.
    masks = scoring.region_masks(np.stack([regions.canonical_landmarks(SIZE),
                                           regions.canonical_landmarks(SIZE) + 3]), SIZE)
    cells = np.eye(shape[0] * shape[1], dtype=np.float32).reshape(-1, *shape)
    brute = [max(regions.heat_in_regions(cell, mask) for cell in cells) for mask in masks]
    np.testing.assert_allclose(regions.share_ceiling(shape, masks), brute, atol=1e-6)
    assert regions.share_ceiling(shape, masks[0]) == pytest.approx(brute[0], abs=1e-6)
    # No non-negative map of the resolution does better (random ones, a blurred region).
    rng = np.random.default_rng(0)
    for heatmap in [*rng.random((20, *shape)) ** 8,
                    regions.upsample(masks[0].astype(np.float32), shape[0])[:, :shape[1]]]:
        assert regions.heat_in_regions(heatmap, masks[0]) <= brute[0] + 1e-6


def test_share_ceiling_grows_with_resolution_and_is_the_area_for_one_cell():
    mask = regions.region_mask(regions.canonical_landmarks(SIZE), SIZE)
    assert regions.share_ceiling((1, 1), mask) == pytest.approx(mask.mean(), abs=1e-9)
    ceilings = [regions.share_ceiling((n, n), mask) for n in (2, 4, 8, 32)]
    assert ceilings == sorted(ceilings) and ceilings[-1] == 1.0  # a pixel inside the mask
    rows = regions.interpolation_matrix(4, SIZE)
    heatmap = np.random.default_rng(1).random((4, 4)).astype(np.float32)
    np.testing.assert_allclose(rows @ heatmap @ rows.T, regions.upsample(heatmap, SIZE),
                               atol=1e-6)


def test_normalised_score_by_hand():
    assert scoring.normalised_score(0.5, 0.2, 0.8) == pytest.approx(0.5)
    assert scoring.normalised_score(0.8, 0.2, 0.8) == pytest.approx(1.0)
    assert scoring.normalised_score(0.2, 0.2, 0.8) == 0.0
    assert scoring.normalised_score(0.1, 0.2, 0.6) == pytest.approx(-0.25)
    assert scoring.normalised_score(0.3, 0.2, 0.2) == 0.0  # no room above uniform heat
    assert scoring.normalised_score(0.3, 0.2, 0.1) == 0.0


def test_selection_by_normalised_score_not_raw_share():
    # `fine` (32 x 32) puts more of its heat on the regions than `coarse` (4 x 4) can reach,
    # but `coarse` is a single hot cell, as concentrated as its resolution allows.
    mask = regions.region_mask(regions.canonical_landmarks(SIZE), SIZE)
    cells = np.eye(16, dtype=np.float32).reshape(-1, 4, 4)
    best = cells[np.argmax([regions.heat_in_regions(cell, mask) for cell in cells])]
    fine = np.where(mask, 1.0, 0.1).astype(np.float32)
    scores = scoring.score_heatmaps({"fine": fine[None], "coarse": best[None]}, mask[None])
    area = mask.mean()
    fine_share = mask.sum() / (mask.sum() + 0.1 * (~mask).sum())
    coarse_share = regions.heat_in_regions(best, mask)
    assert fine_share > coarse_share
    expected = {"fine": (fine_share, 1.0), "coarse": (coarse_share, coarse_share)}
    for entry in scores:
        share, ceiling = expected[entry["name"]]
        assert entry["score"] == pytest.approx(share, abs=1e-6)
        assert entry["area"] == pytest.approx(area)
        assert entry["ceiling"] == pytest.approx(ceiling, abs=1e-6)
        assert entry["normalised"] == pytest.approx((share - area) / (ceiling - area), abs=1e-5)
    assert scores[1]["normalised"] == pytest.approx(1, abs=1e-5)
    assert scoring.select_layer(scores) == "coarse"
    assert max(scores, key=lambda entry: entry["score"])["name"] == "fine"
    # A 1 x 1 map (no room above uniform: normalised 0) loses to layers below uniform.
    below = np.where(mask, 0.0, 1.0).astype(np.float32)
    scores = scoring.score_heatmaps({"below": below[None], "dot": np.ones((1, 1, 1))},
                                    mask[None])
    assert scores[1]["ceiling"] == pytest.approx(area) and scores[1]["normalised"] == 0
    assert scores[0]["normalised"] == pytest.approx(-area / (1 - area))
    assert scoring.select_layer(scores) == "below"
    assert scoring.select_layer(scores[1:]) == "dot"


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
    frames, landmarks, ids, labels, classes = scoring.sample_frames(
        info, [subject], image_size=64, count=3)
    assert frames.shape == (3, 64, 64, 3) and frames.dtype == np.uint8
    assert landmarks.shape == (3, 68, 2) and len(ids) == 3
    assert {c["subject"] for c in info.clips if c["id"] in ids} == {subject}
    assert classes == info.classes and labels.dtype == np.int64
    label_of = {c["id"]: c["label"] for c in info.clips}
    assert [classes[i] for i in labels] == [label_of[clip_id] for clip_id in ids]
    assert len(set(labels.tolist())) == 3  # spread over the classes
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
    assert again.clip_ids == ids and np.array_equal(again.frames, frames)
    assert np.array_equal(again.labels, labels)


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
    assert all(s["ceiling"] == 1.0 for s in scores)  # full-resolution maps: a pixel in a mask
    assert by_name["focused"]["normalised"] == pytest.approx(1, abs=1e-5)
    assert by_name["flat"]["normalised"] == pytest.approx(0, abs=1e-5)
    assert by_name["inverted"]["normalised"] == pytest.approx(
        -masks.mean() / (1 - masks.mean()), abs=1e-5)
    assert scoring.select_layer(scores) == "focused"
    tie = {"score": 0.5, "area": 0.2, "ceiling": 0.8, "normalised": 0.5}
    assert scoring.select_layer([{"name": "a", **tie}, {"name": "b", **tie}]) == "a"

    frozen, trainable = scoring.split(model, "focused")
    backbone = model.get_layer("backbone").layer
    assert all(layer.trainable for layer in backbone.layers)  # split freezes nothing
    assert frozen + trainable == [layer.name for layer in backbone.layers]
    assert trainable[0] == "focused"
    assert freeze_before(backbone, "focused") == frozen
    assert [layer.name for layer in backbone.layers if layer.trainable] == trainable
    with pytest.raises(ValueError, match="valid layers: image, inverted"):
        scoring.split(model, "nope")


def _probe_clip_model():
    """A clip model like `build_clip_model`'s: a preprocessing layer, then a two-conv
    backbone under `FoldedTimeDistributed`, then a head of 3 classes."""
    keras.utils.set_random_seed(5)
    image = keras.Input((SIZE, SIZE, 3), name="image")
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv_a")(image)
    x = keras.layers.Conv2D(6, 3, strides=2, padding="same", activation="relu",
                            name="conv_b")(x)
    backbone = keras.Model(image, keras.layers.GlobalAveragePooling2D(name="pool")(x),
                           name="tiny_backbone")
    frames = keras.Input((None, SIZE, SIZE, 3), name="frames")
    x = keras.layers.Rescaling(1 / 127.5, offset=-1, name="preprocess")(frames)
    x = FoldedTimeDistributed(backbone, name="backbone")(x)
    x = keras.layers.GlobalAveragePooling1D(name="time")(x)
    outputs = keras.layers.Dense(3, activation="softmax", name="probabilities")(x)
    return keras.Model(frames, outputs)


def _two_class_sample(count=8):
    """`count` frames alternately dark red (class 0) and bright blue (class 2; class 1 has
    no frame), with noise, as a `FrameSample`."""
    rng = np.random.default_rng(3)
    labels = np.array([0, 2] * (count // 2), np.int64)
    colours = {0: (90, 30, 30), 2: (150, 170, 230)}
    frames = np.stack([np.clip(np.float32(colours[label]) + rng.normal(0, 25, (SIZE, SIZE, 3)),
                               0, 255) for label in labels]).astype(np.uint8)
    landmarks = np.stack([regions.canonical_landmarks(SIZE)] * count)
    return scoring.FrameSample(frames, landmarks, [f"clip{i}" for i in range(count)], labels,
                               ("a", "b", "c"))


def test_fit_probe_separates_its_frames_deterministically():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 3], 5)
    features = rng.normal(0, 1, (15, 40)) * 50 + 7.0  # badly scaled, far from 0
    features[:, 3] += 40.0 * labels  # one informative dimension
    features[:, 9] = 2.5  # a constant one
    kernel, bias, fit = scoring.fit_probe(features, labels, 4)
    assert kernel.shape == (40, 4) and bias.shape == (4,) and kernel.dtype == np.float32
    assert fit["accuracy"] == 1.0 and fit["steps"] == scoring.PROBE_STEPS
    assert np.array_equal(np.argmax(features @ kernel + bias, axis=1), labels)  # raw features
    assert fit["loss"] < 0.5 * np.log(4)
    again = scoring.fit_probe(features, labels, 4)
    assert np.array_equal(again[0], kernel) and again[2] == fit
    assert scoring.fit_probe(features, labels, 4, steps=0)[2]["loss"] == pytest.approx(np.log(4))
    with pytest.raises(ValueError, match=r"labels \[0, 1, 3\] outside 0..2"):
        scoring.fit_probe(features, labels, 3)
    with pytest.raises(ValueError, match=r"shape \[15, 40\] and labels of shape \[14\]"):
        scoring.fit_probe(features, labels[1:], 4)


def test_probe_target_explains_each_frames_label_through_the_fitted_probe():
    model, sample = _probe_clip_model(), _two_class_sample()
    lines = []
    target = scoring.heatmap_target(model, sample, "probe", lines.append)
    assert target.name == "probe" and np.array_equal(target.class_index, sample.labels)
    assert target.probe["accuracy"] == 1.0 and "training accuracy 1.00" in lines[0]
    probe = target.model
    assert probe.get_layer("backbone") is model.get_layer("backbone")  # shared, not copied
    inputs = sample.frames[:, None].astype(np.float32)
    probabilities = keras.ops.convert_to_numpy(probe(inputs))
    assert probabilities.shape == (8, 3)
    assert np.array_equal(probabilities.argmax(axis=1), sample.labels)  # accuracy 1.0
    # Its features are the backbone's on the preprocessed frames, computed here directly.
    backbone = model.get_layer("backbone").layer
    features = keras.ops.convert_to_numpy(backbone(sample.frames / 127.5 - 1))
    np.testing.assert_allclose(scoring.probe_features(model, sample.frames), features,
                               rtol=1e-5, atol=1e-6)
    # conv_b -> global average pooling -> probe: Grad-CAM is the class activation map of
    # the probe's weights for each frame's label.
    kernel = probe.get_layer("probe").get_weights()[0]
    activations = keras.ops.convert_to_numpy(keras.Model(
        backbone.input, backbone.get_layer("conv_b").output)(sample.frames / 127.5 - 1))
    maps = scoring.layer_heatmaps(probe, sample.frames, ["conv_a", "conv_b"],
                                  target.class_index)
    for heatmap, activation, label in zip(maps["conv_b"], activations, sample.labels):
        cam = np.maximum(np.tensordot(activation, kernel[:, label], axes=([-1], [0])), 0)
        np.testing.assert_allclose(heatmap, cam / cam.max() if cam.max() else cam, atol=1e-5)
    # Per-frame classes give what one call per frame with its class gives.
    for i, label in enumerate(sample.labels):
        single = grad_cams(probe, inputs[i:i + 1], ["conv_a", "conv_b"], class_index=int(label))
        for name in ("conv_a", "conv_b"):
            np.testing.assert_allclose(maps[name][i], single[name][0, 0], atol=1e-5)


def test_heatmap_target_predicted_and_the_one_class_fallback():
    model, sample = _probe_clip_model(), _two_class_sample()
    predicted = scoring.heatmap_target(model, sample, "predicted", print)
    assert predicted.model is model and predicted.class_index is None
    assert predicted.name == "predicted" and predicted.probe is None
    one_class = sample._replace(labels=np.zeros(8, np.int64))
    lines = []
    fallback = scoring.heatmap_target(model, one_class, "probe", lines.append)
    assert fallback.model is model and fallback.name == "predicted"
    assert "warning: all 8 sample frames are of class a" in lines[0]
    with pytest.raises(ValueError, match="unknown Grad-CAM target 'label'; valid: probe, "
                                         "predicted"):
        scoring.heatmap_target(model, sample, "label")
    headless = keras.Model(model.inputs, model.get_layer("time").output, name="headless")
    flat = keras.Sequential([keras.Input((SIZE, SIZE, 3)), keras.layers.Conv2D(2, 3),
                             keras.layers.GlobalAveragePooling2D(),
                             keras.layers.Dense(3, activation="softmax")], name="flat")
    with pytest.raises(ValueError, match=r"model 'flat' has no 'backbone' layer.*--target "
                                         r"predicted"):
        scoring.heatmap_target(flat, sample, "probe")
    assert headless.get_layer("backbone") is model.get_layer("backbone")


def test_gradcam_target_is_validated():
    assert experiments.get("exp3", "quick").model.gradcam_target == "probe"
    config = experiments.get("exp3", "quick", ["model.gradcam_target=predicted"])
    assert config.model.gradcam_target == "predicted"
    with pytest.raises(ValueError, match=r"model.gradcam_target 'label' is not one of "
                                         r"\('probe', 'predicted'\)"):
        experiments.get("exp3", "quick", ["model.gradcam_target=label"])


def test_select_cli_writes_the_report(builtin_dataset, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["select", "--experiment", "exp3", "--data", str(builtin_dataset),
                 "--out", str(out), "--quick", "--count", "4"]) == 0
    printed = capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    assert f"selected layer: {report['selected']}" in printed and "report.html" in printed
    layers = list(experiments.get("exp3").model.gradcam_layers)
    assert [s["name"] for s in report["layers"]] == layers
    assert all(0 <= s["score"] <= 1 and 0 < s["area"] <= s["ceiling"] + 1e-9 <= 1 + 1e-9
               for s in report["layers"])
    roomy = [s for s in report["layers"] if s["ceiling"] - s["area"] > 1e-6]
    assert [s["name"] for s in roomy] == layers[:-3]  # conv5 maps are 1 x 1 at 32 px
    for s in roomy:
        assert s["normalised"] == pytest.approx((s["score"] - s["area"])
                                                / (s["ceiling"] - s["area"]))
    assert report["selected"] == max(roomy, key=lambda s: s["normalised"])["name"]
    backbone = experiments.build(experiments.get("exp3", "quick"), 4).get_layer("backbone").layer
    assert report["frozen"] + report["trainable"] == [layer.name for layer in backbone.layers]
    assert report["trainable"][0] == trainable_from(backbone, report["selected"])
    assert len(report["frames"]) == 4 and report["class_target"] == "probe"
    assert report["probe"]["accuracy"] == 1.0 and report["probe"]["steps"] > 0
    assert "labelled class" in printed and "normalised" in printed
    assert "frames of all 4 subjects" in printed and report["fold"] is None
    assert report["experiment"] == "exp3" and "eyes" in report["regions"]
    for name in ("report.html", "scores.png", "overview.png", f"layers/{layers[0]}.png"):
        assert (out / name).stat().st_size > 0, name
    page = (out / "report.html").read_text()
    assert report["selected"] in page and 'src="overview.png"' in page
    assert "<th>normalised</th>" in page and "labelled class" in page
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
                 "--set", "protocol.protocol=kfold2", "--target", "predicted"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["class_target"] == "predicted" and report["probe"] is None
    assert "predicted class" in capsys.readouterr().out
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
    with pytest.raises(SystemExit):
        main(["select", "--experiment", "exp3", "--out", str(out), "--target", "label"])
    assert "--target: invalid choice: 'label'" in capsys.readouterr().err
