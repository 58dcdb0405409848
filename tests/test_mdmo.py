"""MDMO: a hand-worked flow field, a loop-by-loop transcription, the ROIs on dlib's mean face,
mirror symmetry, the flow-domain alignment, analytic flows and bad input."""

import math

import cv2
import numpy as np
import pytest

from tfmer.handcrafted import mdmo as M

MIRROR_68 = (list(range(16, -1, -1))  # jaw 0..16 reversed
             + list(range(26, 16, -1))  # brows 17..26 reversed
             + [27, 28, 29, 30, 35, 34, 33, 32, 31]  # nose bridge; nostrils reversed
             + [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40]  # eyes swapped
             + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55]  # outer lips
             + [64, 63, 62, 61, 60, 67, 66, 65])  # inner lips
"""The landmark that each iBUG 68-point landmark becomes in the mirrored face."""


def dlib_mean_shape() -> np.ndarray:
    """`[68, 2]` (x, y): the mean shape of dlib's 68-point predictor, read from the model
    file (dlib serialises a version, then the `initial_shape` column as its row and column
    counts and 136 floats, each a compact integer mantissa and exponent; a compact integer
    is a byte of length (low 4 bits) and sign (bit 7), then little-endian bytes). The
    coordinates are fractions of the face detector's box."""
    models = pytest.importorskip("face_recognition_models")
    with open(models.pose_predictor_model_location(), "rb") as file:
        data = file.read(2048)
    position = 0

    def integer():
        nonlocal position
        head = data[position]
        size = head & 0x0F
        value = int.from_bytes(data[position + 1:position + 1 + size], "little")
        position += 1 + size
        return -value if head & 0x80 else value

    assert integer() == 1  # version
    rows, cols = abs(integer()), abs(integer())
    assert (rows, cols) == (136, 1)
    values = []
    for _ in range(rows):
        mantissa = integer()
        values.append(mantissa * 2.0 ** integer())
    return np.array(values).reshape(68, 2)


def face(size: int) -> np.ndarray:
    """dlib's mean face filling about 80 % of a `size` x `size` frame."""
    shape = dlib_mean_shape()
    scale = 0.8 * size / np.ptp(shape, axis=0).max()
    return (shape - shape.min(axis=0)) * scale + 0.1 * size + 0.123


def test_hand_example_main_direction_average_and_normalisation():
    size = 80
    landmarks = face(size)
    masks = M.roi_masks(landmarks, (size, size))
    assert masks.sum(axis=0).max() == 1  # the ROIs do not overlap on this face
    k = 22
    flows = np.zeros((2, size, size, 2))
    flows[..., 0] = 2  # every pixel moves right at 2 px ...
    flows[0][masks[k]] = (0, -3)  # ... but ROI k moves up at 3 px in frame 1;
    pixels = np.argwhere(masks[k])  # in frame 2, 60 % of it right at 3 px, 40 % up at 5 px
    split = int(0.6 * len(pixels)) + 1
    flows[1][tuple(pixels[:split].T)] = (3, 0)
    flows[1][tuple(pixels[split:].T)] = (0, -5)
    feature = M.mdmo(flows, landmarks, align=False)
    # Frame vectors: other ROIs (2, 0) in both frames; ROI k (0, -3) (all up), then (3, 0)
    # (the right bin has more vectors than the up bin, whatever their length). Averaged as
    # vectors: others (2, 0); ROI k (1.5, -1.5): rho = 1.5 sqrt(2), theta = -pi / 4.
    # Normalised by the largest rho, 1.5 sqrt(2): others 2 / (1.5 sqrt(2)), ROI k 1.
    expected_rho = np.full(36, 2 / (1.5 * math.sqrt(2)))
    expected_rho[k] = 1
    expected_theta = np.zeros(36)
    expected_theta[k] = -math.pi / 4
    np.testing.assert_allclose(feature[:36], 0.77 * expected_rho, atol=1e-12)
    np.testing.assert_allclose(feature[36:], 0.23 * expected_theta, atol=1e-12)
    assert feature.shape == (72,) and feature.dtype == np.float64


def _loop_mdmo(flows, masks, lam):
    """MDMO written out one frame, ROI and pixel at a time (module docstring, steps 4-7)."""
    frames, regions = len(flows), len(masks)
    sum_x, sum_y = np.zeros(regions), np.zeros(regions)
    step = math.pi / 4
    for f in range(frames):
        for k in range(regions):
            members = [[] for _ in range(8)]
            for y, x in np.argwhere(masks[k]):
                u, v = flows[f, y, x]
                rho = math.hypot(u, v)
                if rho == 0:
                    continue
                theta = math.atan2(v, u)
                b = int(math.floor((theta + step / 2) / step)) % 8
                offset = theta - b * step
                while offset < -math.pi:
                    offset += 2 * math.pi
                while offset >= math.pi:
                    offset -= 2 * math.pi
                members[b].append((rho, offset))
            counts = [len(m) for m in members]
            if max(counts) == 0:
                continue
            b = counts.index(max(counts))
            mean_rho = sum(r for r, _ in members[b]) / counts[b]
            mean_theta = b * step + sum(o for _, o in members[b]) / counts[b]
            sum_x[k] += mean_rho * math.cos(mean_theta)
            sum_y[k] += mean_rho * math.sin(mean_theta)
    rho = [math.hypot(x / frames, y / frames) for x, y in zip(sum_x, sum_y)]
    theta = [math.atan2(y, x) if r > 0 else 0.0 for x, y, r in zip(sum_x, sum_y, rho)]
    theta = [t if t > -math.pi else math.pi for t in theta]
    largest = max(rho)
    return np.array([lam * r / largest for r in rho] + [(1 - lam) * t for t in theta])


def test_against_loop_transcription():
    size = 48
    rng = np.random.default_rng(3)
    landmarks = face(size) + rng.normal(0, 0.3, (68, 2))
    flows = rng.normal(0, 1, (3, size, size, 2))
    flows[0, :10, :10] = 0  # some still pixels
    masks = M.roi_masks(landmarks, (size, size))
    np.testing.assert_allclose(M.mdmo(flows, landmarks, lam=0.6, align=False),
                               _loop_mdmo(flows, masks, 0.6), atol=1e-12)


def test_roi_masks_match_point_in_polygon():
    size = 40
    landmarks = face(size) + np.random.default_rng(5).normal(0, 0.2, (68, 2))
    masks = M.roi_masks(landmarks, (size, size))
    for k, polygon in enumerate(M.roi_polygons(landmarks)):
        contour = polygon.astype(np.float32).reshape(-1, 1, 2)
        for y in range(size):
            for x in range(size):
                distance = cv2.pointPolygonTest(contour, (float(x), float(y)), True)
                if abs(distance) > 1e-3:  # off the boundary, where the rules agree
                    assert masks[k, y, x] == (distance > 0), (k, x, y)


def test_rois_lie_inside_the_mean_face_and_cover_the_named_areas():
    size = 128
    points = face(size)
    masks = M.roi_masks(points, (size, size))
    assert masks.shape == (36, size, size)
    assert masks.sum(axis=(1, 2)).min() >= 20  # no ROI empty or degenerate
    assert masks.sum(axis=0).max() == 1  # no pixel in two ROIs
    # The face: the landmarks' hull with the brows raised by a quarter of brow to chin.
    brows = points[17:27]
    raised = brows - [0, 0.25 * (points[8, 1] - brows[:, 1].mean())]
    hull = cv2.convexHull(np.vstack([points, raised]).astype(np.float32))
    ys, xs = np.nonzero(masks.any(axis=0))
    assert all(cv2.pointPolygonTest(hull, (float(x), float(y)), False) >= 0
               for x, y in zip(xs, ys))

    def covered(xy):
        x, y = np.rint(xy).astype(int)
        return bool(masks[:, y, x].any())

    def mid(i, j):
        return (points[i] + points[j]) / 2

    named = {  # the action-unit areas (the paper's ROIs are "based partially on AUs")
        "forehead above the brows (AU1, AU2)": [points[19] - [0, 3], points[24] - [0, 3]],
        "between the brows (AU4)": [mid(21, 22) - [0, 2]],
        "between brows and eyes (AU5, AU7)": [mid(19, 37), mid(24, 44)],
        "beside the outer eye corners (AU6)": [mid(0, 36), mid(16, 45)],
        "below the eyes (AU6, AU7)": [mid(40, 31), mid(47, 35)],
        "nose sides (AU9)": [mid(31, 39), mid(35, 42)],
        "cheeks (AU6, AU12)": [mid(2, 31), mid(14, 35)],
        "mouth corners (AU12, AU15)": [points[48], points[54]],
        "upper lip beside the nose (AU10)": [mid(31, 49), mid(35, 53)],
        "chin (AU17)": [mid(57, 8)],
    }
    for area, where in named.items():
        assert all(covered(p) for p in where), area
    assert not covered(np.array([2.0, 2.0]))  # the frame's corner is no face


def _mirror_points(points, width):
    mirrored = np.column_stack([width - 1 - points[:, 0], points[:, 1]])
    return mirrored[MIRROR_68]


def test_mirrored_clip_gives_the_mirrored_feature():
    size = 72
    rng = np.random.default_rng(7)
    landmarks = face(size) + rng.normal(0, 0.4, (68, 2))
    ys, xs = np.mgrid[0:size, 0:size]
    flows = np.zeros((3, size, size, 2))
    for frame in flows:  # a few broad bumps of motion in random directions
        for _ in range(4):
            centre, direction = rng.uniform(0, size, 2), rng.normal(0, 1.5, 2)
            bump = np.exp(-((xs - centre[0]) ** 2 + (ys - centre[1]) ** 2) / (2 * 15 ** 2))
            frame += bump[..., None] * direction
    mirrored = flows[:, :, ::-1] * [-1, 1]
    mirror_landmarks = _mirror_points(landmarks, size)
    # A tie between two bins goes to the lower one, which mirroring does not preserve: the
    # smooth field gives every ROI a single most populated bin, with and without alignment.
    masks = M.roi_masks(landmarks, (size, size))
    for field in np.concatenate([flows, M.align_flows(flows, landmarks)]):
        for mask in masks:
            theta = np.arctan2(field[mask][:, 1], field[mask][:, 0])
            counts = np.sort(np.bincount(np.floor(theta / (np.pi / 4) + 0.5).astype(int) % 8,
                                         minlength=8))
            assert counts[-1] > counts[-2]
    # The mirror of each ROI, found from the polygons alone.
    polygons = M.roi_polygons(landmarks)
    mirror_polygons = M.roi_polygons(mirror_landmarks)
    partner = []
    for polygon in polygons:
        flipped = np.column_stack([size - 1 - polygon[:, 0], polygon[:, 1]])
        distances = [np.abs(np.sort(flipped, axis=0) - np.sort(other, axis=0)).max()
                     for other in mirror_polygons]
        partner.append(int(np.argmin(distances)))
        assert min(distances) < 1e-9
    assert tuple(partner) == M.ROI_MIRROR
    for align in (False, True):
        feature = M.mdmo(flows, landmarks, align=align)
        flipped = M.mdmo(mirrored, mirror_landmarks, align=align)
        np.testing.assert_allclose(flipped[:36][partner], feature[:36], atol=1e-9)
        # theta -> pi - theta, compared on the circle
        turn = np.angle(np.exp(1j * (flipped[36:][partner] / 0.23 - (np.pi - feature[36:]
                                                                      / 0.23))))
        np.testing.assert_allclose(turn, 0, atol=1e-9)


def test_alignment_removes_head_motion():
    size = 80
    landmarks = face(size)
    masks = M.roi_masks(landmarks, (size, size))
    k = 1  # a forehead ROI: none of the alignment points lies in it
    flows = np.zeros((2, size, size, 2))
    flows[:] = (1.5, -0.5)  # the head moves ...
    flows[:, masks[k]] += (0, -2)  # ... and ROI k moves up 2 px on the head
    aligned = M.align_flows(flows, landmarks)
    np.testing.assert_allclose(aligned[:, ~masks[k]], 0, atol=1e-9)
    np.testing.assert_allclose(aligned[:, masks[k]], np.broadcast_to([0, -2], (2, masks[k].sum(),
                                                                               2)), atol=1e-9)
    feature = M.mdmo(flows, landmarks)
    assert feature[k] == pytest.approx(0.77) and feature[36 + k] == pytest.approx(
        0.23 * -math.pi / 2)
    assert np.delete(feature[:36], k).max() < 1e-9
    # A rotation by 2 degrees and a 1 % zoom about the face centre is affine: removed.
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    centre = landmarks.mean(axis=0)
    c, s = 1.01 * math.cos(math.radians(2)), 1.01 * math.sin(math.radians(2))
    dx, dy = xs - centre[0], ys - centre[1]
    rotation = np.stack([c * dx - s * dy - dx, s * dx + c * dy - dy], axis=-1)[None]
    np.testing.assert_allclose(M.align_flows(rotation, landmarks), 0, atol=1e-9)


def _shifted_frames(shifts, size=64):
    """Frames of a smooth random RGB texture translated by (dx, dy) px each."""
    rng = np.random.default_rng(11)
    texture = cv2.GaussianBlur(rng.uniform(0, 255, (size + 32, size + 32, 3)).astype(
        np.float32), (0, 0), 2.5)
    texture = (texture - texture.min()) / np.ptp(texture) * 255
    return np.stack([cv2.warpAffine(texture, np.float32([[1, 0, dx - 16], [0, 1, dy - 16]]),
                                    (size, size), flags=cv2.INTER_CUBIC).astype(np.uint8)
                     for dx, dy in shifts])


@pytest.mark.parametrize("method", ["farneback", "dis"])
def test_flows_from_first_of_an_analytic_translation(method):
    frames = _shifted_frames([(0, 0), (1, 0), (2, 0.5), (0, -1)])
    flows = M.flows_from_first(frames, method)
    assert flows.shape == (3, 64, 64, 2) and flows.dtype == np.float32
    centre = flows[:, 12:-12, 12:-12]
    np.testing.assert_allclose(np.median(centre, axis=(1, 2)), [[1, 0], [2, 0.5], [0, -1]],
                               atol=0.1)


def test_default_flow_and_landmark_mapping():
    assert M.DEFAULT_FLOW == "farneback" and M.LAMBDA == 0.77 and M.BINS == 8
    assert len(M.ROI_VERTICES) == 36 == M.NUM_ROIS
    assert len(M.DRMF_TO_IBUG) == 66 and sorted(set(M.DRMF_TO_IBUG)) == list(M.DRMF_TO_IBUG)
    assert set(range(68)) - set(M.DRMF_TO_IBUG) == {60, 64}


def test_bad_input():
    flows = np.zeros((2, 32, 32, 2))
    for landmarks in (None, np.zeros((66, 2)), np.zeros(136)):
        with pytest.raises(ValueError, match="--crop dlib"):
            M.mdmo(flows, landmarks)
    landmarks = face(32)
    with pytest.raises(ValueError, match="lambda"):
        M.mdmo(flows, landmarks, lam=1.5)
    with pytest.raises(ValueError, match=r"\[T - 1, H, W, 2\]"):
        M.mdmo(np.zeros((32, 32, 2)), landmarks)
    frames = np.zeros((1, 32, 32, 3), np.uint8)
    with pytest.raises(ValueError, match="at least 2 frames, got 1"):
        M.flows_from_first(frames)
    with pytest.raises(ValueError, match="RGB uint8"):
        M.flows_from_first(np.zeros((3, 32, 32, 3)))
    with pytest.raises(ValueError, match="unknown flow method 'rlof'"):
        M.flows_from_first(np.zeros((3, 32, 32, 3), np.uint8), "rlof")
