"""Motion at conversion (`data_prep.flow`): flow and strain against analytic motion, the
apex rules, and records converted with and without flow."""

import json

import cv2
import matplotlib.cbook
import numpy as np
import pytest
import tensorflow as tf

from data_prep import clip, flow, manifest
from tfmer import features
from tests.helpers import CLASSES, labelled_frames, write_clip

SIZE = 96


@pytest.fixture(scope="module")
def face():
    """A real face photo (matplotlib's Grace Hopper portrait), cropped square, 96 px RGB."""
    photo = cv2.imread(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    photo = cv2.cvtColor(photo[20:492, 40:472], cv2.COLOR_BGR2RGB)
    return cv2.resize(photo, (SIZE, SIZE), interpolation=cv2.INTER_AREA)


def _warp(image, matrix):
    """`image` moved by the affine map `matrix` (a point x goes to matrix @ [x, 1])."""
    return cv2.warpAffine(image, np.float32(matrix), (SIZE, SIZE), flags=cv2.INTER_CUBIC,
                          borderMode=cv2.BORDER_REFLECT)


INTERIOR = slice(SIZE // 8, -SIZE // 8)  # away from the border the warp had to invent


@pytest.mark.parametrize("method", flow.METHODS)
def test_flow_of_a_subpixel_shift_is_that_shift(face, method):
    u, v = 0.6, -0.4  # right and up
    found = flow.optical_flow(face, _warp(face, [[1, 0, u], [0, 1, v]]), method)
    assert found.shape == (SIZE, SIZE, 2) and found.dtype == np.float32
    error = np.hypot(found[..., 0] - u, found[..., 1] - v)[INTERIOR, INTERIOR]
    assert error.mean() <= 0.15


@pytest.mark.parametrize("method", flow.METHODS)
def test_strain_of_a_uniform_scaling_is_sqrt2_times_the_scale(face, method):
    scale, centre = 0.02, (SIZE - 1) / 2
    scaled = _warp(face, [[1 + scale, 0, -scale * centre], [0, 1 + scale, -scale * centre]])
    strain = flow.optical_strain(flow.optical_flow(face, scaled, method))[INTERIOR, INTERIOR]
    assert np.median(strain) == pytest.approx(np.sqrt(2) * scale, rel=0.2)


def test_strain_of_linear_fields_is_exact():
    y, x = np.mgrid[0:6, 0:7].astype(np.float64)
    a, b, c, d = 0.03, -0.01, 0.05, 0.02  # u = a x + b y, v = c x + d y
    field = np.stack([a * x + b * y, c * x + d * y], axis=-1)
    expected = np.sqrt(a ** 2 + d ** 2 + 2 * ((b + c) / 2) ** 2)  # exx a, eyy d, exy (b + c) / 2
    np.testing.assert_allclose(flow.optical_strain(field), expected, rtol=1e-6)
    assert flow.optical_strain(np.zeros((3, 4, 2))).max() == 0


def test_motion_stacks_u_v_and_strain(face):
    moved = _warp(face, [[1, 0, 0.5], [0, 1, 0.25]])
    stacked = flow.motion(face, moved, "farneback")
    found = flow.optical_flow(face, moved, "farneback")
    np.testing.assert_array_equal(stacked[..., :2], found)
    np.testing.assert_array_equal(stacked[..., 2], flow.optical_strain(found))


def test_unknown_flow_method_lists_the_known_ones(face):
    with pytest.raises(ValueError, match="unknown flow method 'lk'; known: tvl1, farneback, dis"):
        flow.optical_flow(face, face, "lk")
    with pytest.raises(ValueError, match="--flow 'lk' is not one of tvl1, farneback, dis, none"):
        clip.ConvertOptions(flow="lk")


def test_apex_annotated_middle_or_detected():
    frames = [np.full((4, 4, 3), level, np.uint8) for level in (10, 10, 10, 10, 10)]
    frames[3] = np.tile(np.uint8([[0, 255], [255, 0]]), (2, 2))[..., None].repeat(3, -1)
    numbers = [20, 21, 22, 23, 24]
    assert flow.apex_index(frames, numbers, 22) == (2, "annotated")
    assert flow.apex_index(frames, numbers, -1, "middle") == (2, "middle")
    assert flow.apex_index(frames[:4], numbers[:4], -1, "middle") == (2, "middle")
    assert flow.apex_index(frames[:2], numbers[:2], -1, "middle") == (1, "middle")
    assert flow.apex_index(frames, numbers, -1, "detect") == (3, "detect")
    with pytest.raises(flow.ClipError, match="apex frame 30 is not among the frames 20..24"):
        flow.apex_index(frames, numbers, 30)
    with pytest.raises(flow.ClipError, match="is the onset frame"):
        flow.apex_index(frames, numbers, 20)
    with pytest.raises(flow.ClipError, match=r"apex \(detect, frame 20\) is the onset frame"):
        flow.apex_index(frames[:1] * 3, numbers[:3], -1, "detect")  # nothing moves


def _shards(folder):
    return sorted(folder.glob("*.tfrecord"))


def test_converted_clips_carry_their_onset_to_apex_motion(tiny_manifest, tmp_path):
    options = clip.ConvertOptions(num_frames=4, size=16, clips_per_shard=5, workers=1,
                                  progress=False, flow="farneback")
    info = manifest.convert_manifest(tiny_manifest, tmp_path / "flow", classes="tlcnn4",
                                     options=options)
    assert info["settings"]["flow"] == "farneback"
    assert all(c["flow"] == {"method": "farneback", "from": 6, "to": 9,
                             "apex_source": "annotated"} for c in info["clips"])
    raw = next(iter(tf.data.TFRecordDataset([str(_shards(tmp_path / "flow")[0])])))
    record = features.decode(raw.numpy())
    assert record.motion.uvs.shape == (16, 16, 3) and record.motion.method == "farneback"
    assert (record.motion.source_from, record.motion.source_to) == (6, 9)
    # The stored flow is that of the clip's onset and apex frames, cropped and resized.
    folder = tiny_manifest.parent / record.clip_id
    onset, apex = (cv2.resize(cv2.cvtColor(cv2.imread(str(folder / f"img{n}.png")),
                                           cv2.COLOR_BGR2RGB), (16, 16),
                              interpolation=cv2.INTER_AREA) for n in (6, 9))
    np.testing.assert_allclose(record.motion.uvs, flow.motion(onset, apex, "farneback"),
                               atol=1e-6)
    none = clip.ConvertOptions(num_frames=4, size=16, clips_per_shard=5, workers=1,
                               progress=False, flow="none")
    info = manifest.convert_manifest(tiny_manifest, tmp_path / "none", classes="tlcnn4",
                                     options=none)
    assert not any("flow" in c for c in info["clips"])
    raw = next(iter(tf.data.TFRecordDataset([str(_shards(tmp_path / "none")[0])])))
    assert features.decode(raw.numpy()).motion is None
    assert b"flow/" not in raw.numpy()  # records without motion are as before


def test_clip_whose_apex_is_its_onset_is_skipped_with_a_reason(tmp_path):
    lines = ["path,subject,label,onset,apex,offset"]
    for name, apex in (("good", 3), ("still", 1)):
        write_clip(tmp_path / name, labelled_frames(0, num_frames=5, seed=len(name)),
                   first_number=1)
        lines.append(f"{name},s1,{CLASSES[0]},1,{apex},5")
    (tmp_path / "clips.csv").write_text("\n".join(lines) + "\n")
    options = clip.ConvertOptions(num_frames=4, size=16, workers=1, progress=False)
    info = manifest.convert_manifest(tmp_path / "clips.csv", tmp_path / "out", options=options)
    assert [c["id"] for c in info["clips"]] == ["good"]
    (error,) = info["errors"]
    assert error["clip"] == "still" and "is the onset frame" in error["reason"]
    assert json.loads((tmp_path / "out" / "dataset.json").read_text())["errors"] == [error]
