"""Tests of the built-in synthetic micro-expression data (`data_prep.synthetic`)."""

import csv
import dataclasses
import pathlib

import cv2
import numpy as np
import pytest

from data_prep import synthetic

SMALL = dict(num_subjects=2, clips_per_class=1, size=32, fps=50)


def _files(root: pathlib.Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def _read_manifest(path: pathlib.Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        return reader.fieldnames, list(reader)


def _still(spec: synthetic.ClipSpec) -> synthetic.ClipSpec:
    """The clip without noise, flicker, lighting and head motion."""
    face = dataclasses.replace(spec.face, light_strength=0.0)
    return dataclasses.replace(spec, face=face, noise_sigma=0.0, flicker_std=0.0,
                               drift=(0.0, 0.0, 0.0), head_angle=0.0)


def _with_variant(spec: synthetic.ClipSpec, variant: str) -> synthetic.ClipSpec:
    label = next(k for k, v in synthetic.VARIANTS.items() if variant in v)
    movement = dataclasses.replace(spec.movement, label=label, variant=variant)
    return dataclasses.replace(spec, movement=movement)


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> pathlib.Path:
    out = tmp_path_factory.mktemp("synthetic") / "nested" / "out"
    synthetic.generate(out, seed=7, workers=1, progress=False, **SMALL)
    return out


def test_same_seed_gives_identical_files_whatever_the_workers(generated, tmp_path):
    again = synthetic.generate(tmp_path / "again", seed=7, workers=2, progress=False, **SMALL)
    assert again == tmp_path / "again" / "manifest.csv"
    first, second = _files(generated), _files(tmp_path / "again")
    assert len(first) > 8 * 10
    assert first == second
    synthetic.generate(tmp_path / "other", seed=8, workers=1, progress=False, **SMALL)
    other = _files(tmp_path / "other")
    common = [name for name in first if name.endswith(".png") and name in other]
    assert common and all(first[name] != other[name] for name in common)


def test_generate_writes_into_an_existing_folder_and_replaces_old_clips(generated, tmp_path):
    synthetic.generate(tmp_path, seed=8, workers=1, progress=False, **SMALL)
    synthetic.generate(tmp_path, seed=7, workers=1, progress=False, **SMALL)
    assert _files(tmp_path) == _files(generated)


def test_manifest_rows_and_files(generated):
    columns, rows = _read_manifest(generated / "manifest.csv")
    assert columns == ["path", "subject", "label", "onset", "apex", "offset", "fps",
                       "landmarks"]
    assert len(rows) == SMALL["num_subjects"] * 4 * SMALL["clips_per_class"]
    assert sorted(r["label"] for r in rows) == sorted(["positive", "negative", "surprise",
                                                       "others"] * 2)
    assert {r["subject"] for r in rows} == {"s01", "s02"}
    assert len({r["path"] for r in rows}) == len(rows)
    for row in rows:
        clip = generated / row["path"]
        assert clip.is_dir() and row["path"].startswith(row["subject"] + "/")
        assert (generated / row["landmarks"]).is_file()
        frames = sorted(p.name for p in clip.glob("*.png"))
        assert frames == [f"{t:06d}.png" for t in range(len(frames))]
        onset, apex, offset = (int(row[k]) for k in ("onset", "apex", "offset"))
        fps = float(row["fps"])
        assert fps == SMALL["fps"]
        assert 0 < onset < apex < offset < len(frames) - 1  # neutral frames on both sides
        assert 0.2 <= (offset - onset + 1) / fps <= 0.5
        image = cv2.imread(str(clip / frames[0]), cv2.IMREAD_UNCHANGED)
        assert image.shape == (SMALL["size"], SMALL["size"], 3) and image.dtype == np.uint8


def test_written_frames_and_landmarks_equal_the_rendered_clip(generated):
    specs = synthetic.make_specs(7, **SMALL)
    _, rows = _read_manifest(generated / "manifest.csv")
    assert [r["path"] for r in rows] == [f"{s.subject}/{s.clip_id}" for s in specs]
    spec, row = specs[5], rows[5]
    images, landmarks = synthetic.render_clip(spec)
    for t in (0, spec.movement.apex, spec.num_frames - 1):
        written = cv2.imread(str(generated / row["path"] / f"{t:06d}.png"))
        np.testing.assert_array_equal(cv2.cvtColor(written, cv2.COLOR_BGR2RGB), images[t])
    saved = np.loadtxt(generated / row["landmarks"])
    assert saved.shape == (68, 2)
    np.testing.assert_allclose(saved, landmarks[0], atol=1e-4)
    assert int(row["onset"]) == spec.movement.onset and int(row["apex"]) == spec.movement.apex


def test_specs_timing_at_200_fps():
    specs = synthetic.make_specs(0, num_subjects=3, clips_per_class=2, size=64)
    assert len(specs) == 3 * 4 * 2 and len({s.clip_id for s in specs}) == len(specs)
    for spec in specs:
        m = spec.movement
        assert 40 <= m.offset - m.onset + 1 <= 100
        assert 10 <= m.onset <= 25 and 10 <= spec.num_frames - 1 - m.offset <= 25
        assert 0.3 <= (m.apex - m.onset) / (m.offset - m.onset) <= 0.6
        assert m.variant in synthetic.VARIANTS[m.label]


def test_envelope_is_a_raised_cosine():
    m = synthetic.Movement("positive", "lip_corner_pull", onset=10, apex=20, offset=40,
                           amplitude=2.0)
    e = synthetic.envelope(m, 50)
    assert np.all(e[:11] == 0) and np.all(e[40:] == 0)
    assert e[20] == 1 and e[15] == pytest.approx(0.5) and e[30] == pytest.approx(0.5)
    assert np.all(np.diff(e[10:21]) > 0) and np.all(np.diff(e[20:41]) < 0)


@pytest.mark.parametrize("size", [128, 64])
def test_expression_displacement_is_micro_and_only_within_the_movement(size):
    for spec in synthetic.make_specs(1, num_subjects=2, clips_per_class=2, size=size):
        m = spec.movement
        points = synthetic.render_clip(_still(spec))[1]  # without head motion
        motion = np.linalg.norm(points - points[0], axis=-1).max(axis=-1)  # [T]
        assert np.all(motion[:m.onset + 1] == 0) and np.all(motion[m.offset:] == 0)
        assert motion.argmax() == m.apex
        assert 1.5 * size / 128 - 1e-9 <= motion[m.apex] <= 3.0 * size / 128 + 1e-9
        with_head = synthetic.render_clip(spec)[1]
        moved = np.linalg.norm(with_head - with_head[0], axis=-1).max(axis=-1)
        drift = (synthetic.DRIFT_RANGE[1] * size / 128
                 + np.deg2rad(synthetic.DRIFT_MAX_DEGREES) * size)  # any point within `size`
        assert 0 < moved[m.onset] and moved.max() < drift + motion.max()


@pytest.mark.parametrize("variant,check", [
    ("lip_corner_pull", lambda d: d[48, 1] < 0 and d[54, 1] < 0
     and d[48, 0] < 0 < d[54, 0]),
    ("lip_corner_depress", lambda d: d[48, 1] > 0 and d[54, 1] > 0),
    ("brow_lower", lambda d: np.all(d[17:27, 1] > 0) and d[21, 0] > 0 > d[22, 0]),
    ("brow_lower_lip_corner_depress", lambda d: np.all(d[17:27, 1] > 0)
     and d[48, 1] > 0 and d[54, 1] > 0),
    ("brow_raise_eye_widen", lambda d: np.all(d[17:27, 1] < 0)
     and d[37, 1] < 0 and d[44, 1] < 0),
    ("lip_press", lambda d: d[51, 1] > 0 and d[57, 1] < 0),
    ("partial_blink", lambda d: d[37, 1] > 0 and d[38, 1] > 0 and d[43, 1] > 0),
])
def test_movement_direction_of_each_variant(variant, check):
    spec = _with_variant(synthetic.make_specs(2, num_subjects=1, clips_per_class=1)[0],
                         variant)
    onset, apex = synthetic.render_clip(_still(spec), [spec.movement.onset,
                                                       spec.movement.apex])[1]
    displacement = apex - onset
    assert check(displacement)


@pytest.mark.parametrize("variant", sorted(v for vs in synthetic.VARIANTS.values() for v in vs))
def test_pixels_change_only_near_moving_landmarks(variant):
    spec = synthetic.make_specs(3, num_subjects=1, clips_per_class=1, size=128)[0]
    spec = _with_variant(_still(spec), variant)
    m = spec.movement
    images, landmarks = synthetic.render_clip(spec, [m.onset, m.apex])
    changed = np.abs(images[1].astype(int) - images[0]).max(-1) > 0
    assert changed.sum() > 20
    # Within the movement (<= 3 px), half a brow's thickness (<= 2.1 px), half the spacing of
    # the landmarks along a curve (<= 2.3 px) and anti-aliasing of a moving landmark.
    moving = np.linalg.norm(landmarks[1] - landmarks[0], axis=-1) > 0
    y, x = np.nonzero(changed)
    distance = np.linalg.norm(np.stack([x, y], 1)[:, None] - landmarks[0][moving], axis=-1)
    assert distance.min(axis=1).max() < 8.0
    nose_tip = landmarks[0][30, 1]
    if variant in ("lip_corner_depress", "lip_press"):
        assert y.min() > nose_tip
    if variant in ("brow_lower", "brow_raise_eye_widen", "partial_blink"):
        assert y.max() < nose_tip


def test_landmarks_are_in_output_pixel_coordinates():
    """The pupil is drawn at the midpoint of the eye corners: find it in the image."""
    for spec in synthetic.make_specs(4, num_subjects=3, clips_per_class=1, size=128)[::4]:
        sclera = (235.0, 232.0, 225.0)  # the iris as the sclera: only the pupil is dark
        face = dataclasses.replace(spec.face, iris=sclera, eye_height=0.09)  # lids far off
        images, landmarks = synthetic.render_clip(_still(dataclasses.replace(spec, face=face)),
                                                  [0])
        grey = images[0].astype(float).mean(-1)
        for corners in ((36, 39), (42, 45)):
            cx, cy = landmarks[0][list(corners)].mean(0)
            x0, y0 = int(round(cx)) - 3, int(round(cy)) - 3
            window = grey[y0:y0 + 7, x0:x0 + 7]
            darkness = window.max() - window
            ys, xs = np.mgrid[y0:y0 + 7, x0:x0 + 7]
            centroid = np.array([(xs * darkness).sum(), (ys * darkness).sum()]) / darkness.sum()
            np.testing.assert_allclose(centroid, [cx, cy], atol=0.15)


def test_landmark_layout_and_extent():
    for spec in synthetic.make_specs(5, num_subjects=3, clips_per_class=1, size=64):
        p = synthetic.render_clip(spec, [0])[1][0]
        assert p.shape == (68, 2) and np.all((p >= 0) & (p < spec.size))
        assert p[36:42, 0].mean() < p[27:31, 0].mean() < p[42:48, 0].mean()
        assert p[17:22, 0].mean() < p[22:27, 0].mean()
        assert p[0, 0] < p[8, 0] < p[16, 0] and p[48, 0] < p[54, 0]
        assert p[36, 0] < p[39, 0] < p[42, 0] < p[45, 0]  # outer, inner, inner, outer
        assert p[19, 1] < p[37, 1] < p[30, 1] < p[62, 1] < p[8, 1]  # brow, eye, nose, lip, chin
        face_width = p[16, 0] - p[0, 0]
        assert face_width > 0.6 * spec.size


def test_subjects_differ_and_clips_vary():
    a, b = synthetic.make_face(0, 0), synthetic.make_face(0, 1)
    geometry = ("jaw_width", "chin", "eye_spacing", "eye_width", "brow_gap", "nose_length",
                "mouth_width")
    assert all(getattr(a, g) != getattr(b, g) for g in geometry)
    assert a.skin != b.skin and a.light_angle != b.light_angle
    assert synthetic.make_face(0, 0) == a
    specs = synthetic.make_specs(0, num_subjects=2, clips_per_class=1, size=64)
    means = [synthetic.render_clip(s, [0])[0][0].reshape(-1, 3).mean(0) for s in specs[::4]]
    assert np.abs(means[0] - means[1]).max() > 3
    first, second = specs[0].face, specs[1].face  # one subject, two clips
    assert first.skin == second.skin and first.eye_width != second.eye_width
    assert np.abs(np.array(first.origin) - second.origin).max() <= 2 * 3.0 / 128


def test_rendering_some_frames_equals_rendering_all():
    spec = synthetic.make_specs(6, num_subjects=1, clips_per_class=1, size=32, fps=50)[2]
    images, landmarks = synthetic.render_clip(spec)
    some, some_landmarks = synthetic.render_clip(spec, [spec.movement.apex, 0])
    np.testing.assert_array_equal(some, images[[spec.movement.apex, 0]])
    np.testing.assert_array_equal(some_landmarks, landmarks[[spec.movement.apex, 0]])
    assert images.shape == (spec.num_frames, 32, 32, 3) and images.dtype == np.uint8
    with pytest.raises(ValueError, match=spec.clip_id):
        synthetic.render_clip(spec, [spec.num_frames])


@pytest.mark.parametrize("kwargs", [dict(num_subjects=0), dict(clips_per_class=0),
                                    dict(size=16), dict(fps=5), dict(seed=-1)])
def test_invalid_arguments_name_the_argument(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        synthetic.make_specs(**kwargs)


def test_motion_signal_small():
    """Apex-minus-onset difference images carry the class; the apex frame alone hardly does.

    Linear SVM on standardised 16x16 grey images, subject-independent 5-fold CV, macro F1
    of the pooled predictions.
    """
    from sklearn.metrics import f1_score
    from sklearn.model_selection import GroupKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    motion, still, labels, groups = [], [], [], []
    for spec in synthetic.make_specs(0, num_subjects=12, clips_per_class=2, size=64):
        m = spec.movement
        images, _ = synthetic.render_clip(spec, [m.onset, m.apex])
        grey = [cv2.resize(cv2.cvtColor(i, cv2.COLOR_RGB2GRAY), (16, 16),
                           interpolation=cv2.INTER_AREA).astype(float).ravel() for i in images]
        motion.append(grey[1] - grey[0])
        still.append(grey[1])
        labels.append(synthetic.CLASSES.index(m.label))
        groups.append(spec.subject)

    def uf1(features):
        model = make_pipeline(StandardScaler(), LinearSVC(C=0.01))
        predicted = cross_val_predict(model, np.array(features), labels, groups=groups,
                                      cv=GroupKFold(5))
        return f1_score(labels, predicted, average="macro")

    motion_uf1, still_uf1 = uf1(motion), uf1(still)
    assert motion_uf1 >= 0.45
    assert still_uf1 < 0.45 and still_uf1 < motion_uf1 - 0.1


def test_processes_starting_at_once_build_the_builtin_data_once(tmp_path):
    """Jobs of one run started together (`train.py --folds`) on a fresh checkout: the
    first builds the built-in data under its lock, the others wait and read it."""
    import json
    import threading
    import time

    from data_prep.synthetic import building

    builds, found = [], []

    def slow_build(folder):
        builds.append(folder)
        folder.mkdir()
        time.sleep(0.3)
        (folder / "dataset.json").write_text(json.dumps({"num_frames": 4}))

    def job():
        found.append(building._ensure(tmp_path / "synthetic", "test set", slow_build))

    jobs = [threading.Thread(target=job) for _ in range(3)]
    for thread in jobs:
        thread.start()
    for thread in jobs:
        thread.join()
    assert len(builds) == 1 and found == [{"num_frames": 4}] * 3
