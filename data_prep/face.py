"""Face cropping as TLCNN does it (Wang et al. 2018, Section 4.1): find 68 landmarks on the
first frame of a clip, then crop every frame with the square that holds them and resize.

`locate` runs dlib's HOG face detector and the 68-point shape predictor (iBUG 300-W order)
that ships with `face_recognition_models`; nothing is downloaded. `face_crop` turns the
landmarks into a `FaceCrop`, an affine map that `apply` runs on every frame of the clip and
`points` runs on landmarks. Coordinates are (x, y) in pixels, integers at pixel centres.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import pathlib

import cv2
import numpy as np

from data_prep.frames import ClipError
from tfmer.landmarks import LEFT_EYE, NUM_LANDMARKS, RIGHT_EYE

# TLCNN crops "a rectangle that is mostly suitable for containing all the feature points".
# The box of the 68 points ends on the brows and on the chin's contour; a margin of 10 % of
# its larger side on every side keeps the brows' upper edge and the chin inside the crop
# while the landmarks still fill 1 / 1.2 = 83 % of it.
MARGIN = 0.1
PREDICTOR = "shape_predictor_68_face_landmarks.dat"

_models = None


def _load_models():
    """dlib's face detector and 68-point shape predictor, loaded once per process.

    The predictor's file is found beside the `face_recognition_models` package without
    importing it (its `__init__` needs `pkg_resources`, which newer setuptools removed).
    """
    global _models
    if _models is None:
        spec = importlib.util.find_spec("face_recognition_models")
        try:
            import dlib
        except ImportError as error:
            raise ImportError(f"face cropping needs dlib (pip install dlib-bin): {error}") from None
        if spec is None or not spec.submodule_search_locations:
            raise ImportError("face cropping needs the landmark model of face_recognition_models "
                              "(pip install face_recognition_models)")
        model = pathlib.Path(spec.submodule_search_locations[0], "models", PREDICTOR)
        _models = (dlib.get_frontal_face_detector(), dlib.shape_predictor(str(model)))
    return _models


def locate(image: np.ndarray) -> np.ndarray:
    """Finds the 68 landmarks of the largest face in a frame.

    Detects without upsampling first and, when that finds no face, again with the frame
    upsampled once (faces smaller than about 80 px).

    Args:
        image: RGB uint8 `[H, W, 3]` or grey uint8 `[H, W]`.

    Returns:
        float32 `[68, 2]` (x, y) landmarks of the face with the largest detection rectangle.

    Raises:
        ValueError: `image` is not uint8 `[H, W]` or `[H, W, 3]`.
        ClipError: no face is found (the caller names the file).
    """
    if image.dtype != np.uint8 or not (image.ndim == 2 or image.shape[2:] == (3,)):
        raise ValueError(f"expected a uint8 [H, W, 3] or [H, W] image, got {image.dtype} "
                         f"{list(image.shape)}")
    detector, predictor = _load_models()
    image = np.ascontiguousarray(image)
    faces = detector(image, 0) or detector(image, 1)
    if not faces:
        raise ClipError(f"no face found in the {image.shape[1]}x{image.shape[0]} frame "
                        f"(dlib HOG detector, also with the frame upsampled 2x)")
    largest = max(faces, key=lambda rectangle: rectangle.area())
    return np.array([(p.x, p.y) for p in predictor(image, largest).parts()], np.float32)


@dataclasses.dataclass(frozen=True)
class FaceCrop:
    """A square face crop, the same for every frame of a clip.

    Attributes:
        matrix: float64 `[2, 3]` affine map from source pixel coordinates to crop pixel
            coordinates: a rotation about the eye centre (identity when not aligned), then
            an integer translation to the crop's top-left corner.
        side: the side of the square crop, in source pixels.
    """

    matrix: np.ndarray
    side: int

    def apply(self, frame: np.ndarray, size: int) -> np.ndarray:
        """Crops and resizes one frame.

        Parts of the crop outside the frame repeat the frame's edge pixels.

        Args:
            frame: RGB uint8 `[H, W, 3]` (or grey `[H, W]`).
            size: the output side in pixels.

        Returns:
            uint8 `[size, size, 3]` (`[size, size]` for grey).
        """
        crop = cv2.warpAffine(frame, self.matrix, (self.side, self.side), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)
        return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA
                          if self.side > size else cv2.INTER_LINEAR)

    def points(self, points: np.ndarray, size: int) -> np.ndarray:
        """Maps `[N, 2]` source (x, y) coordinates to float32 `[N, 2]` coordinates in the
        `size` x `size` output of `apply`."""
        crop = np.asarray(points, np.float64) @ self.matrix[:, :2].T + self.matrix[:, 2]
        return ((crop + 0.5) * (size / self.side) - 0.5).astype(np.float32)


def face_crop(landmarks: np.ndarray, *, margin: float = MARGIN, align: bool = False) -> FaceCrop:
    """The square crop that holds all landmarks plus a margin.

    The box is centred on the landmarks' bounding box and its side is that box's larger
    side times `1 + 2 * margin`, rounded to whole pixels; its corner is rounded half up, so
    the same landmarks always give the same crop.

    Args:
        landmarks: `[68, 2]` (x, y) landmarks of the clip's first frame (see `locate`).
        margin: the margin on every side, as a fraction of the landmark box's larger side.
        align: first rotate the frame about the midpoint of the two eye centres (the means
            of points 36-41 and 42-47) so the eyes are level; the box then holds the
            rotated landmarks.

    Returns:
        A `FaceCrop`.

    Raises:
        ValueError: `landmarks` is not `[68, 2]`.
        ClipError: the landmarks span less than a pixel.
    """
    landmarks = np.asarray(landmarks, np.float64)
    if landmarks.shape != (NUM_LANDMARKS, 2):
        raise ValueError(f"expected [{NUM_LANDMARKS}, 2] landmarks, got {list(landmarks.shape)}")
    rotation = np.eye(3)[:2]
    if align:
        left, right = landmarks[LEFT_EYE].mean(axis=0), landmarks[RIGHT_EYE].mean(axis=0)
        angle = math.degrees(math.atan2(right[1] - left[1], right[0] - left[0]))
        rotation = cv2.getRotationMatrix2D(tuple((left + right) / 2), angle, 1.0)
    rotated = landmarks @ rotation[:, :2].T + rotation[:, 2]
    low, high = rotated.min(axis=0), rotated.max(axis=0)
    extent = float((high - low).max())
    if extent < 1:
        raise ClipError(f"the landmarks span {extent:.2f} pixels; no face to crop")
    side = round(extent * (1 + 2 * margin))
    # Pixel centres x0 .. x0 + side - 1 are centred on the landmark box.
    corner = np.floor((low + high) / 2 - (side - 1) / 2 + 0.5)
    matrix = rotation - np.column_stack([np.zeros((2, 2)), corner])
    return FaceCrop(matrix=matrix, side=side)
