"""Tests of data_prep.face on a real portrait (matplotlib's Grace Hopper photo) and on
hand-made landmarks whose crop is worked out by hand."""

import math

import cv2
import numpy as np
import pytest
from matplotlib import cbook

from data_prep import face
from data_prep.frames import ClipError


# dlib's detection rectangle (left, top, right, bottom) on the 512 x 600 photo.
PHOTO_FACE = np.array([161, 137, 376, 352])


def eye_centres(points):
    return points[36:42].mean(axis=0), points[42:48].mean(axis=0)


def within(points, rectangle, slack):
    left, top, right, bottom = rectangle
    return bool(np.all((points >= [left - slack, top - slack])
                       & (points <= [right + slack, bottom + slack])))


@pytest.fixture(scope="module")
def photo():
    """RGB uint8 [600, 512, 3]."""
    path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="module")
def landmarks(photo):
    return face.locate(photo)


def box_landmarks(left, top, right, bottom):
    """68 points spread inside the box, with points on all four of its sides."""
    points = np.random.default_rng(0).uniform([left, top], [right, bottom], size=(68, 2))
    points[0, 0], points[1, 0] = left, right
    points[2, 1], points[3, 1] = top, bottom
    return points


def test_locate_finds_the_photos_face(landmarks):
    assert landmarks.shape == (68, 2) and landmarks.dtype == np.float32
    assert within(landmarks, PHOTO_FACE, slack=0.1 * 215)
    assert landmarks[36:48, 1].max() < landmarks[48:68, 1].min()  # eyes above the mouth
    left, right = eye_centres(landmarks)
    assert left[0] < landmarks[30, 0] < right[0]  # nose tip between the eyes


def test_locate_accepts_grey(photo):
    grey = face.locate(cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY))
    assert within(grey, PHOTO_FACE, slack=0.1 * 215)


def test_locate_takes_the_largest_face(photo):
    canvas = np.full((620, 900, 3), 200, np.uint8)
    canvas[10:310, 10:266] = cv2.resize(photo, (256, 300), interpolation=cv2.INTER_AREA)
    canvas[15:615, 380:892] = photo
    detector, _ = face._load_models()
    assert len(detector(canvas, 0)) == 2  # both faces are found, the small one too
    points = face.locate(canvas)
    assert within(points, PHOTO_FACE + [380, 15, 380, 15], slack=0.1 * 215)


def test_locate_upsamples_for_a_small_face(photo):
    canvas = np.full((200, 200, 3), 200, np.uint8)
    canvas[20:170, 30:158] = cv2.resize(photo, (128, 150), interpolation=cv2.INTER_AREA)
    detector, _ = face._load_models()
    assert not detector(canvas, 0)  # the 54 px face is too small without upsampling
    points = face.locate(canvas)
    assert within(points, PHOTO_FACE * 0.25 + [30, 20, 30, 20], slack=0.1 * 54)


@pytest.mark.parametrize("image", [np.full((90, 120, 3), 128, np.uint8),
                                   np.random.default_rng(0).integers(0, 256, (90, 120, 3),
                                                                     dtype=np.uint8)],
                         ids=["flat", "noise"])
def test_locate_without_a_face_raises(image):
    with pytest.raises(ClipError, match=r"no face found in the 120x90 frame"):
        face.locate(image)


def test_locate_rejects_other_images():
    with pytest.raises(ValueError, match=r"uint8 .* got float32 \[90, 120, 3\]"):
        face.locate(np.zeros((90, 120, 3), np.float32))
    with pytest.raises(ValueError, match=r"got uint8 \[90, 120, 4\]"):
        face.locate(np.zeros((90, 120, 4), np.uint8))


@pytest.mark.parametrize("margin, side, corner", [(0.1, 120, (91, 31)), (0.25, 150, (76, 16))])
def test_face_crop_box_by_hand(margin, side, corner):
    # Landmark box x 100.25..200.25, y 50.25..130.25: larger side 100, centre (150.25, 90.25).
    # side = 100 * (1 + 2 * margin); pixel centres x0 .. x0 + side - 1 are centred on the
    # box: x0 = 150.25 - (side - 1) / 2 rounded (90.75 -> 91 for side 120).
    crop = face.face_crop(box_landmarks(100.25, 50.25, 200.25, 130.25), margin=margin)
    assert crop.side == side
    np.testing.assert_array_equal(crop.matrix, [[1, 0, -corner[0]], [0, 1, -corner[1]]])


@pytest.mark.parametrize("margin", [0.1, 0.25])
def test_points_leave_the_margin_on_the_larger_side(margin):
    # A box whose crop needs no rounding (see test_face_crop_box_by_hand).
    points = box_landmarks(100.5, 50.5, 200.5, 130.5)
    mapped = face.face_crop(points, margin=margin).points(points, 128)
    assert mapped.dtype == np.float32
    # In pixel-edge coordinates (pixel centres at +0.5) the landmarks span 1 / (1 + 2 m)
    # of the output along x, with m / (1 + 2 m) left on either side.
    edge = mapped[:, 0] + 0.5
    np.testing.assert_allclose(edge.min(), 128 * margin / (1 + 2 * margin), atol=1e-4)
    np.testing.assert_allclose(edge.max(), 128 * (1 + margin) / (1 + 2 * margin), atol=1e-4)
    # and along y the shorter (80 px) extent is centred.
    height = (mapped[:, 1].max() - mapped[:, 1].min()) / 128
    np.testing.assert_allclose(height, 0.8 / (1 + 2 * margin), atol=1e-5)
    np.testing.assert_allclose(mapped[:, 1].min() + mapped[:, 1].max(), 127, atol=1e-4)


@pytest.mark.parametrize("size, interpolation", [(64, cv2.INTER_AREA), (200, cv2.INTER_LINEAR)],
                         ids=["shrink", "enlarge"])
def test_apply_is_slicing_then_resizing(size, interpolation):
    image = np.random.default_rng(1).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    crop = face.face_crop(box_landmarks(100.25, 50.25, 200.25, 130.25))  # x 91..210, y 31..150
    want = cv2.resize(image[31:151, 91:211], (size, size), interpolation=interpolation)
    np.testing.assert_array_equal(crop.apply(image, size), want)


def test_border_repeats_the_edge(photo):
    frame = np.ascontiguousarray(photo[140:400, 170:400])  # the face touches the top-left
    crop = face.face_crop(face.locate(frame))
    x0, y0 = -crop.matrix[:, 2].astype(int)
    assert x0 < 0 or y0 < 0 or x0 + crop.side > 230 or y0 + crop.side > 260
    padded = np.pad(frame, ((300, 300), (300, 300), (0, 0)), mode="edge")
    region = padded[300 + y0:300 + y0 + crop.side, 300 + x0:300 + x0 + crop.side]
    out = crop.apply(frame, 128)
    assert out.shape == (128, 128, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, cv2.resize(region, (128, 128),
                                                  interpolation=cv2.INTER_AREA))


def test_face_fills_the_crop(photo, landmarks):
    crop = face.face_crop(landmarks)
    mapped = crop.points(landmarks, 128)
    assert np.ptp(mapped[:, 0]) >= 0.75 * 128
    found = face.locate(crop.apply(photo, 128))  # the detector agrees on the crop
    assert np.ptp(found[:, 0]) >= 0.75 * 128
    assert np.abs(found - mapped).mean() < 3


@pytest.mark.parametrize("angle", [15.0, -20.0])
def test_align_levels_the_eyes(photo, landmarks, angle):
    rotation = cv2.getRotationMatrix2D((256, 300), angle, 1.0)
    rotated = cv2.warpAffine(photo, rotation, (512, 600), borderMode=cv2.BORDER_REPLICATE)
    points = face.locate(rotated)
    crop = face.face_crop(points, align=True)
    # The crop's rotation is the eye line's angle, [[cos a, sin a], [-sin a, cos a]]; turning
    # the photo by `angle` (counter-clockwise on screen) changes that angle by -`angle`.
    own = face.face_crop(landmarks, align=True).matrix
    turn = math.degrees(math.atan2(crop.matrix[0, 1], crop.matrix[0, 0])
                        - math.atan2(own[0, 1], own[0, 0]))
    assert abs(turn + angle) < 1.5
    out = crop.apply(rotated, 128)
    mapped = crop.points(points, 128)
    left, right = eye_centres(mapped)
    assert abs(right[1] - left[1]) < 1.5 and right[0] - left[0] > 30
    found = face.locate(out)
    left, right = eye_centres(found)
    assert abs(right[1] - left[1]) < 1.5
    errors = np.linalg.norm(found - mapped, axis=1)
    assert errors.mean() < 2 and errors.max() < 6


def test_same_landmarks_give_the_same_bytes(photo, landmarks):
    first, second = face.face_crop(landmarks, align=True), face.face_crop(landmarks.copy(),
                                                                          align=True)
    assert first.side == second.side and first.matrix.tobytes() == second.matrix.tobytes()
    assert first.apply(photo, 96).tobytes() == second.apply(photo.copy(), 96).tobytes()


def test_face_crop_rejects_bad_landmarks():
    with pytest.raises(ValueError, match=r"expected \[68, 2\] landmarks, got \[5, 2\]"):
        face.face_crop(np.zeros((5, 2)))
    with pytest.raises(ClipError, match="span 0.00 pixels"):
        face.face_crop(np.full((68, 2), 40.0))
