"""Frames of a real face for the dataset fixtures (`tests/layouts.py`,
`tests/image_layouts.py`, their `face=True`): matplotlib's Grace Hopper photo, cropped
around the face and scaled to `WIDTH` x `HEIGHT` (dlib's detector finds its ~100 px face
without upsampling), with a class-dependent local intensity change that grows from the
onset to the apex, so a clip holds a (micro-)movement a classifier can learn.

Deterministic: the same label, intensity and variant give the same pixels. Each clip gets
its own variant (`variant_of`: a shift of up to 2 px and a brightness offset of up to 6
grey levels), so clips differ; the frames of a clip differ by the intensity of the change.
"""

from __future__ import annotations

import functools
import zlib

import cv2
import matplotlib.cbook
import numpy as np

WIDTH, HEIGHT = 160, 192
"""The frame size (pixels)."""

PHOTO_WINDOW = (slice(60, 468), slice(100, 440))
"""The part of the 600 x 512 photo scaled to `WIDTH` x `HEIGHT` (factor 0.47)."""

REGIONS = {
    "mouth": ((62, 103), (95, 102)),   # the mouth corners (landmarks 48 and 54)
    "brows": ((53, 51), (99, 47)),     # the means of landmarks 17-21 and 22-26
    "eyes": ((58, 63), (96, 61)),      # the means of landmarks 36-41 and 42-47
    "nose": ((78, 81),),               # the mean of landmarks 27-35
}
"""(x, y) centres of the changed regions in the frame, where dlib puts those landmarks on
the unshifted frame."""

LANDMARKS = {"mouth": range(48, 68), "brows": range(17, 27), "eyes": range(36, 48),
             "nose": range(27, 36)}
"""The 68-point (iBUG) landmarks of each region."""

CHANGE = {"mouth": 60.0, "brows": -60.0, "eyes": 60.0, "nose": -60.0}
"""Grey levels added at a region's centres at full intensity (a Gaussian of `SIGMA`)."""

SIGMA = 5.0

_REGION_OF = {
    **dict.fromkeys(("happiness", "happy", "amusement", "positive"), "mouth"),
    **dict.fromkeys(("anger", "contempt", "disgust", "fear", "sadness", "sad", "repression",
                     "negative"), "brows"),
    "surprise": "eyes",
}


def region_of(label: str) -> str:
    """The region a label changes: happiness (any spelling) the mouth corners, the negative
    emotions the brows, surprise the eyes, anything else (others, tense, non-micro, ...) the
    nose. `label` as a spreadsheet or folder writes it (any case)."""
    return _REGION_OF.get(str(label).strip().lower(), "nose")


def variant_of(key: str) -> int:
    """A clip's variant, from a stable key such as `sub01/EP02_01f` (crc32, not `hash`)."""
    return zlib.crc32(key.encode("utf-8"))


def intensity(number: int, onset: int, apex: int, offset: int) -> float:
    """The change's strength in frame `number`: 0 outside onset..offset, rising linearly to
    1 at the apex and falling to 0 at the offset."""
    if number < onset or number > offset:
        return 0.0
    if number <= apex:
        return 1.0 if apex == onset else (number - onset) / (apex - onset)
    return 1.0 if offset == apex else (offset - number) / (offset - apex)


@functools.lru_cache(maxsize=1)
def photo() -> np.ndarray:
    """The scaled photo: BGR uint8 `[HEIGHT, WIDTH, 3]` (read-only)."""
    image = cv2.imread(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    image = cv2.resize(image[PHOTO_WINDOW], (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA)
    image.setflags(write=False)
    return image


@functools.lru_cache(maxsize=None)
def _blob(region: str) -> np.ndarray:
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float64)
    blob = sum(np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * SIGMA ** 2))
               for cx, cy in REGIONS[region])
    return CHANGE[region] * blob[..., None]


def frame(label: str, strength: float, variant: int = 0, *, grey: bool = False) -> np.ndarray:
    """One frame: the photo with `label`'s region changed by `strength` (0..1), shifted
    and brightened by the clip's `variant`.

    Returns:
        BGR uint8 `[HEIGHT, WIDTH, 3]` (for `cv2.imwrite`), or grey `[HEIGHT, WIDTH]`.
    """
    dx, dy = variant % 5 - 2, (variant // 5) % 3 - 1
    brightness = 2 * ((variant // 15) % 7 - 3)
    image = photo().astype(np.float64) + strength * _blob(region_of(label)) + brightness
    image = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    image = cv2.warpAffine(image, np.float32([[1, 0, dx], [0, 1, dy]]), (WIDTH, HEIGHT),
                           borderMode=cv2.BORDER_REPLICATE)
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if grey else image
