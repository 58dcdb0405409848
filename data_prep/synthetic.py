"""Built-in synthetic micro-expression clips, so that training runs with no licensed data.

Faces are drawn procedurally with OpenCV at 4x supersampling (anti-aliased shapes at
sub-pixel coordinates, downsampled with `cv2.INTER_AREA`), so that movements of a fraction
of a pixel change the image smoothly. Every subject has its own face geometry, skin, hair,
background and lighting; every clip has a little variation of the neutral pose, a slow head
drift, brightness flicker and sensor noise, and one brief movement of at most 3 px (at
128 px) in one of the four classes of the TLCNN scheme:

- `positive`: lip corners pulled up and slightly outward;
- `negative`: brows lowered and drawn together, lip corners pulled down, or both;
- `surprise`: brows raised, eyes widened;
- `others`: a lip press or a partial blink.

`build_expression` draws still expression images for TLCNN's first stage the same way: other
faces, the movements at the full intensity of a macro-expression, labelled with the emotions
of the `expression9` scheme (`EXPRESSION_MOVEMENTS`), converted with the `expression`
converter.

`generate` writes the clips as folders of PNG frames with a manifest CSV (see its
docstring); `make_specs` and `render_clip` give the same clips in memory. Everything is a
function of the seed: each subject and each clip draws from its own
`numpy.random.default_rng` stream, so the output does not depend on the order or the
number of processes that render it.

Coordinates are image pixels `(x, y)` of the output frame, `x` to the right and `y` down,
pixel `i` covering `[i - 0.5, i + 0.5]`. The 68 landmarks follow the iBUG 300-W layout
(0-16 jaw, 17-21 right brow, 22-26 left brow, 27-35 nose, 36-41 right eye, 42-47 left eye,
48-59 outer lip, 60-67 inner lip), right and left from the subject's point of view as in
dlib: the right eye (36-41) is on the left of the image.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import multiprocessing
import os
import pathlib
import shutil
from typing import Sequence

import cv2
import numpy as np
from tqdm import tqdm


CLASSES = ("positive", "negative", "surprise", "others")
"""The label strings, in class-index order."""

VARIANTS = {
    "positive": ("lip_corner_pull",),
    "negative": ("brow_lower", "lip_corner_depress", "brow_lower_lip_corner_depress"),
    "surprise": ("brow_raise_eye_widen",),
    "others": ("lip_press", "partial_blink"),
}
"""The movements each class draws from, one per clip."""

MANIFEST_COLUMNS = ("path", "subject", "label", "onset", "apex", "offset", "fps", "landmarks")

REFERENCE_SIZE = 128
"""Image side (px) at which the pixel amounts below hold; they scale with the side."""
AMPLITUDE_RANGE = (1.5, 3.0)  # peak displacement of the most moving landmark
DRIFT_RANGE = (0.5, 1.5)  # head translation over the clip, px at REFERENCE_SIZE
DRIFT_MAX_DEGREES = 0.5  # head rotation over the clip
NOISE_SIGMA_RANGE = (2.0, 4.0)  # Gaussian sensor noise, grey levels
FLICKER_STD_RANGE = (0.01, 0.02)  # relative brightness flicker per frame
MOVEMENT_SECONDS = (0.2, 0.5)  # onset..offset inclusive
NEUTRAL_SECONDS = (0.05, 0.125)  # neutral frames before the onset and after the offset
APEX_FRACTION = (0.3, 0.6)  # apex position within the movement
POSE_SHIFT = 3.0  # per-clip shift of the neutral face, up to this many px at REFERENCE_SIZE
POSE_DEGREES = 2.0  # standard deviation of the per-clip head rotation
SHAPE_VARIATION = 0.03  # per-clip relative variation of the face's proportions

EXPRESSION_MOVEMENTS = {
    "neutral": None,
    "happiness": "lip_corner_pull",
    "sadness": "lip_corner_depress",
    "anger": "brow_lower",
    "disgust": "brow_lower_lip_corner_depress",
    "surprise": "brow_raise_eye_widen",
}
"""The still expression images' emotions (`expression9` names) and the movement each shows
(neutral: none). Fear, shame and contempt have no synthetic movement: their classes stay
empty."""
EXPRESSION_AMPLITUDE = (6.0, 10.0)  # px at REFERENCE_SIZE: 3 to 4 times the micro-movements
EXPRESSION_SEED = 1  # other faces than the clips' (seed 0): other people, as in the paper

_SUPERSAMPLE = 4
_SHIFT = 4  # fractional bits of the fixed-point coordinates given to cv2 drawing functions
_SUBJECT_STREAM = 0
_CLIP_STREAM = 1
_NOISE_STREAM = 2
_EXPRESSION_STREAM = 3
_EXPRESSION_NOISE_STREAM = 4


@dataclasses.dataclass(frozen=True)
class Face:
    """A subject's neutral face and appearance.

    Lengths are fractions of the image side, in a face frame whose origin is the midpoint
    between the eye centres (`y` down); `origin` places that frame in the image.

    Attributes:
        origin: `(x, y)` of the face frame's origin, fractions of the image side.
        jaw_width: half the face width at the top of the jaw (eye level).
        jaw_top: `y` of the jaw's upper ends (landmarks 0 and 16).
        chin: `y` of the chin (landmark 8).
        jaw_squareness: superellipse exponent of the jaw (2 round, larger squarer).
        forehead: height of the skull above `jaw_top`.
        eye_spacing: half the distance between the eye centres.
        eye_width: corner-to-corner width of one eye.
        eye_height: lid-to-lid opening of one eye.
        brow_gap: height of the brow centre line above the eye centres.
        brow_thickness: brow thickness at the inner end.
        brow_arch: how much the middle of a brow rises above its ends.
        nose_length: `y` of the nose tip (landmark 30).
        nose_width: half the width of the nose base.
        mouth_y: `y` of the line between the lips.
        mouth_width: half the distance between the lip corners.
        upper_lip: upper lip thickness.
        lower_lip: lower lip thickness.
        mouth_curve: how much the lip line sags in its middle (negative: bows up).
        hair_thickness: hair beyond the skull outline.
        hairline: `y` of the hairline at the temples.
        hairline_dip: how much higher the hairline is at the middle than at the temples.
        skin: RGB, 0-255.
        lips: RGB.
        hair: RGB; brows use a darker shade.
        iris: RGB.
        background: RGB.
        light_angle: direction the light comes from, radians (0: from the image's left).
        light_strength: relative brightness change from the face centre to the image edge.
    """

    origin: tuple[float, float]
    jaw_width: float
    jaw_top: float
    chin: float
    jaw_squareness: float
    forehead: float
    eye_spacing: float
    eye_width: float
    eye_height: float
    brow_gap: float
    brow_thickness: float
    brow_arch: float
    nose_length: float
    nose_width: float
    mouth_y: float
    mouth_width: float
    upper_lip: float
    lower_lip: float
    mouth_curve: float
    hair_thickness: float
    hairline: float
    hairline_dip: float
    skin: tuple[float, float, float]
    lips: tuple[float, float, float]
    hair: tuple[float, float, float]
    iris: tuple[float, float, float]
    background: tuple[float, float, float]
    light_angle: float
    light_strength: float


@dataclasses.dataclass(frozen=True)
class Movement:
    """The one facial movement of a clip.

    Attributes:
        label: one of `CLASSES` (a still expression image: an `EXPRESSION_MOVEMENTS` emotion).
        variant: one of `VARIANTS[label]` (a still: its emotion's movement).
        onset: first frame of the movement (expression displacement still 0).
        apex: frame of the largest displacement.
        offset: last frame of the movement (displacement back to 0).
        amplitude: peak displacement of the most moving landmark, px of the clip's size.
    """

    label: str
    variant: str
    onset: int
    apex: int
    offset: int
    amplitude: float


@dataclasses.dataclass(frozen=True)
class ClipSpec:
    """Everything needed to render one clip; `render_clip` is a function of it alone.

    Attributes:
        subject: subject id, e.g. `s01`.
        clip_id: clip id, unique over the data set, e.g. `s01_positive_1`.
        face: the subject's face with this clip's small variation of the neutral pose.
        movement: the clip's movement.
        num_frames: frames in the clip, neutral ones before and after included.
        size: image side, px.
        fps: frame rate.
        head_angle: head rotation at frame 0, degrees (positive: clockwise in the image).
        drift: `(dx, dy, degrees)` head translation (px) and rotation reached at the last
            frame, along a raised-cosine path from frame 0.
        noise_sigma: standard deviation of the per-pixel Gaussian noise, grey levels.
        flicker_std: standard deviation of the per-frame brightness gain around 1.
        noise_seed: entropy of the noise and flicker streams.
    """

    subject: str
    clip_id: str
    face: Face
    movement: Movement
    num_frames: int
    size: int
    fps: int
    head_angle: float
    drift: tuple[float, float, float]
    noise_sigma: float
    flicker_std: float
    noise_seed: tuple[int, ...]


def _unit_fields() -> dict[str, np.ndarray]:
    """Per-variant landmark displacement directions, `[68, 2]`, largest row norm 1.

    Image directions: `x` right, `y` down; the subject's right side is the image's left.
    """

    def field(moves: dict[int, tuple[float, float]]) -> np.ndarray:
        f = np.zeros((68, 2))
        for index, vector in moves.items():
            f[index] = vector
        return f / np.linalg.norm(f, axis=1).max()

    def mirrored(moves: dict[int, tuple[float, float]]) -> dict[int, tuple[float, float]]:
        """Adds the left-side twins of right-side moves (x direction flipped)."""
        twins = {17: 26, 18: 25, 19: 24, 20: 23, 21: 22, 36: 45, 37: 44, 38: 43, 39: 42,
                 40: 47, 41: 46, 48: 54, 49: 53, 50: 52, 59: 55, 58: 56, 60: 64, 61: 63,
                 67: 65}
        out = dict(moves)
        for index, (dx, dy) in moves.items():
            if index in twins:
                out[twins[index]] = (-dx, dy)
        return out

    lip_pull = mirrored({48: (-0.35, -0.94), 60: (-0.35, -0.94), 49: (-0.15, -0.5),
                         59: (-0.15, -0.5), 61: (-0.1, -0.4), 67: (-0.1, -0.4),
                         41: (0.0, -0.2), 40: (0.0, -0.2)})
    brow_lower = mirrored({21: (0.5, 0.87), 20: (0.35, 0.75), 19: (0.2, 0.6),
                           18: (0.1, 0.45), 17: (0.05, 0.3), 37: (0.0, 0.15),
                           38: (0.0, 0.2)})
    lip_depress = mirrored({48: (-0.15, 0.99), 60: (-0.15, 0.99), 59: (-0.05, 0.5),
                            49: (-0.05, 0.4), 67: (-0.05, 0.45), 61: (-0.05, 0.45)})
    brow_raise = mirrored({17: (0.0, -0.7), 18: (0.0, -0.9), 19: (0.0, -1.0),
                           20: (0.0, -1.0), 21: (0.0, -0.9), 37: (0.0, -0.6),
                           38: (0.0, -0.6), 40: (0.0, 0.15), 41: (0.0, 0.15)})
    lip_press = mirrored({49: (0.0, 0.7), 50: (0.0, 0.9), 59: (0.0, -0.7),
                          58: (0.0, -0.9), 48: (0.25, 0.0), 60: (0.15, 0.0)})
    lip_press.update({51: (0.0, 1.0), 57: (0.0, -1.0)})
    blink = mirrored({37: (0.0, 1.0), 38: (0.0, 1.0), 40: (0.0, -0.2), 41: (0.0, -0.2)})
    return {
        "lip_corner_pull": field(lip_pull),
        "brow_lower": field(brow_lower),
        "lip_corner_depress": field(lip_depress),
        "brow_lower_lip_corner_depress": field({**brow_lower, **lip_depress}),
        "brow_raise_eye_widen": field(brow_raise),
        "lip_press": field(lip_press),
        "partial_blink": field(blink),
    }


_FIELDS = _unit_fields()


def make_face(seed: int, subject_index: int) -> Face:
    """Draws subject `subject_index`'s face from the seed.

    Args:
        seed: data set seed, a non-negative integer.
        subject_index: 0-based subject number.

    Returns:
        The subject's neutral `Face`.
    """
    rng = np.random.default_rng([seed, _SUBJECT_STREAM, subject_index])
    u = rng.uniform
    light_skin, dark_skin = np.array([236.0, 200.0, 172.0]), np.array([96.0, 62.0, 44.0])
    skin = (light_skin + u(0, 1) * (dark_skin - light_skin)) * rng.normal(1, 0.03, 3)
    lips = skin * np.array([0.86, 0.62, 0.62]) * rng.normal(1, 0.04, 3)
    hair_palette = np.array([[25, 20, 18], [60, 40, 28], [110, 75, 45], [190, 160, 105],
                             [150, 150, 150], [130, 60, 30]], dtype=float)
    hair = hair_palette[rng.integers(len(hair_palette))] * u(0.85, 1.15)
    iris_palette = np.array([[70, 45, 25], [40, 28, 20], [70, 110, 150], [80, 110, 70]], float)
    iris = iris_palette[rng.integers(len(iris_palette))]
    background = u(40, 220) * np.ones(3) + rng.normal(0, 25, 3)

    def rgb(c: np.ndarray) -> tuple[float, float, float]:
        return tuple(float(v) for v in np.clip(c, 0, 255))

    return Face(
        origin=(u(0.485, 0.515), u(0.39, 0.42)),
        jaw_width=u(0.36, 0.43), jaw_top=u(0.0, 0.04), chin=u(0.5, 0.57),
        jaw_squareness=u(2.0, 2.8), forehead=u(0.36, 0.44),
        eye_spacing=u(0.14, 0.18), eye_width=u(0.10, 0.135), eye_height=u(0.038, 0.052),
        brow_gap=u(0.075, 0.105), brow_thickness=u(0.018, 0.032), brow_arch=u(0.008, 0.022),
        nose_length=u(0.16, 0.22), nose_width=u(0.045, 0.062),
        mouth_y=u(0.30, 0.36), mouth_width=u(0.08, 0.11),
        upper_lip=u(0.018, 0.03), lower_lip=u(0.024, 0.04), mouth_curve=u(-0.006, 0.006),
        hair_thickness=u(0.02, 0.07), hairline=u(-0.24, -0.19), hairline_dip=u(0.0, 0.05),
        skin=rgb(skin), lips=rgb(lips), hair=rgb(hair), iris=rgb(iris),
        background=rgb(background),
        light_angle=u(0, 2 * np.pi), light_strength=u(0.08, 0.3),
    )


def _vary_face(face: Face, rng: np.random.Generator) -> Face:
    """`face` with a small random variation of its neutral pose and proportions."""
    scale = 1 + rng.uniform(-1, 1) * SHAPE_VARIATION
    changes = {}
    for name in ("jaw_width", "chin", "forehead", "eye_spacing", "eye_width", "eye_height",
                 "brow_gap", "nose_length", "nose_width", "mouth_y", "mouth_width",
                 "upper_lip", "lower_lip"):
        own = 1 + rng.uniform(-1, 1) * SHAPE_VARIATION
        changes[name] = getattr(face, name) * scale * own
    changes["mouth_curve"] = face.mouth_curve + rng.uniform(-0.002, 0.002)
    shift = rng.uniform(-1, 1, 2) * POSE_SHIFT / REFERENCE_SIZE
    changes["origin"] = (face.origin[0] + shift[0], face.origin[1] + shift[1])
    return dataclasses.replace(face, **changes)


def make_specs(seed: int = 0, num_subjects: int = 12, clips_per_class: int = 2,
               size: int = 128, fps: int = 200) -> list[ClipSpec]:
    """Draws the specs of every clip of the data set.

    Clips are ordered by subject, then class (`CLASSES` order), then repetition; clip `k`
    (1-based) of class `label` of subject `sNN` is `sNN_<label>_<k>`.

    Args:
        seed: data set seed, a non-negative integer.
        num_subjects: number of subjects (`s01`, `s02`, ...).
        clips_per_class: clips per class and subject.
        size: image side, px.
        fps: frame rate; sets the number of frames of each phase.

    Returns:
        `num_subjects * len(CLASSES) * clips_per_class` specs.

    Raises:
        ValueError: an argument is out of range.
    """
    _check_arguments(seed=seed, num_subjects=num_subjects, clips_per_class=clips_per_class,
                     size=size, fps=fps)
    specs = []
    scale = size / REFERENCE_SIZE
    for s in range(num_subjects):
        subject = f"s{s + 1:02d}"
        face = make_face(seed, s)
        for c, label in enumerate(CLASSES):
            for k in range(clips_per_class):
                index = c * clips_per_class + k
                rng = np.random.default_rng([seed, _CLIP_STREAM, s, index])
                variant = VARIANTS[label][rng.integers(len(VARIANTS[label]))]
                before = _frames(rng, NEUTRAL_SECONDS, fps)
                length = _frames(rng, MOVEMENT_SECONDS, fps)
                after = _frames(rng, NEUTRAL_SECONDS, fps)
                onset, offset = before, before + length - 1
                apex = onset + int(round(rng.uniform(*APEX_FRACTION) * (length - 1)))
                movement = Movement(label, variant, onset, apex, offset,
                                    rng.uniform(*AMPLITUDE_RANGE) * scale)
                drift_angle = rng.uniform(0, 2 * np.pi)
                drift_px = rng.uniform(*DRIFT_RANGE) * scale
                specs.append(ClipSpec(
                    subject=subject, clip_id=f"{subject}_{label}_{k + 1}",
                    face=_vary_face(face, rng), movement=movement,
                    num_frames=before + length + after, size=size, fps=fps,
                    head_angle=rng.normal(0, POSE_DEGREES),
                    drift=(drift_px * np.cos(drift_angle), drift_px * np.sin(drift_angle),
                           rng.uniform(-DRIFT_MAX_DEGREES, DRIFT_MAX_DEGREES)),
                    noise_sigma=rng.uniform(*NOISE_SIGMA_RANGE),
                    flicker_std=rng.uniform(*FLICKER_STD_RANGE),
                    noise_seed=(seed, _NOISE_STREAM, s, index)))
    return specs


def _frames(rng: np.random.Generator, seconds: tuple[float, float], fps: int) -> int:
    """A random whole number of frames whose duration lies within `seconds`."""
    return int(rng.integers(int(np.ceil(seconds[0] * fps)), int(seconds[1] * fps) + 1))


_LOWEST = {"seed": 0, "num_subjects": 1, "clips_per_class": 1, "images_per_emotion": 1,
           "size": 32, "fps": 20}


def _check_arguments(**values) -> None:
    """Checks that each named argument is an integer >= its `_LOWEST` value."""
    for name, value in values.items():
        low = _LOWEST[name]
        if not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"synthetic data: {name} must be an integer >= {low}, "
                             f"got {value!r}")


def envelope(movement: Movement, num_frames: int) -> np.ndarray:
    """Raised-cosine intensity of the movement per frame.

    Args:
        movement: the clip's movement.
        num_frames: frames in the clip.

    Returns:
        `[num_frames]` float64: 0 outside `onset..offset` and at both ends, rising as
        `(1 - cos)/2` to 1 at the apex and falling back as `(1 + cos)/2`.
    """
    t = np.arange(num_frames, dtype=float)
    rise = (t - movement.onset) / (movement.apex - movement.onset)
    fall = (t - movement.apex) / (movement.offset - movement.apex)
    e = np.where(t <= movement.apex, 0.5 - 0.5 * np.cos(np.pi * rise),
                 0.5 + 0.5 * np.cos(np.pi * fall))
    return np.where((t >= movement.onset) & (t <= movement.offset), e, 0.0)


def _neutral_landmarks(face: Face) -> np.ndarray:
    """The 68 neutral landmarks in the face frame, `[68, 2]` fractions of the image side."""
    p = np.zeros((68, 2))
    phi = np.linspace(0, np.pi, 17)
    c, s = np.cos(phi), np.sin(phi)
    power = 2 / face.jaw_squareness
    p[0:17, 0] = -face.jaw_width * np.sign(c) * np.abs(c) ** power
    p[0:17, 1] = face.jaw_top + (face.chin - face.jaw_top) * np.abs(s) ** power

    for first, side in ((17, -1), (22, 1)):  # right brow on the image's left
        u = np.linspace(-1, 1, 5) * side  # -1: outer end of the right brow
        x = side * face.eye_spacing + 0.65 * face.eye_width * u
        y = -face.brow_gap - face.brow_arch * (1 - u ** 2)
        p[first:first + 5] = np.stack([x, y], 1)

    p[27:31, 0] = 0.0
    p[27:31, 1] = np.linspace(-0.01, face.nose_length, 4)
    base = face.nose_length + np.array([0.015, 0.025, 0.03, 0.025, 0.015])
    p[31:36] = np.stack([face.nose_width * np.array([-1, -0.5, 0, 0.5, 1]), base], 1)

    w, h = face.eye_width / 2, face.eye_height / 2
    shape = np.array([[-w, 0], [-w / 3, -1.1 * h], [w / 3, -1.1 * h],
                      [w, 0], [w / 3, 0.9 * h], [-w / 3, 0.9 * h]])
    p[36:42] = shape + [-face.eye_spacing, 0]
    p[42:48] = shape + [face.eye_spacing, 0]

    mw, my = face.mouth_width, face.mouth_y
    ut, lt = face.upper_lip, face.lower_lip

    def line(x: np.ndarray) -> np.ndarray:
        return my + face.mouth_curve * (1 - (x / mw) ** 2)

    outer_x = mw * np.array([-1, -0.6, -0.25, 0, 0.25, 0.6, 1, 0.6, 0.3, 0, -0.3, -0.6])
    outer_dy = np.array([0, -0.8 * ut, -ut, -0.85 * ut, -ut, -0.8 * ut,
                         0, 0.75 * lt, 0.97 * lt, lt, 0.97 * lt, 0.75 * lt])
    p[48:60] = np.stack([outer_x, line(outer_x) + outer_dy], 1)
    inner_x = mw * np.array([-0.88, -0.4, 0, 0.4, 0.88, 0.4, 0, -0.4])
    p[60:68] = np.stack([inner_x, line(inner_x)], 1)
    return p


def _head_pose(spec: ClipSpec) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame head pose: rotations `[T, 2, 2]` and translations `[T, 2]` (image px).

    A face-frame point `p` (px) is at `rotation @ p + translation` in the image.
    """
    t = np.arange(spec.num_frames) / max(spec.num_frames - 1, 1)
    path = 0.5 - 0.5 * np.cos(np.pi * t)
    angle = np.deg2rad(spec.head_angle + spec.drift[2] * path)
    c, s = np.cos(angle), np.sin(angle)
    rotation = np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2)
    translation = np.array(spec.face.origin) * spec.size + path[:, None] * spec.drift[:2]
    return rotation, translation


def _expression_landmarks(spec: ClipSpec) -> np.ndarray:
    """The 68 landmarks in the face frame with the expression, `[T, 68, 2]` px."""
    displacement = _FIELDS[spec.movement.variant] * spec.movement.amplitude
    intensity = envelope(spec.movement, spec.num_frames)[:, None, None]
    return _neutral_landmarks(spec.face) * spec.size + intensity * displacement


def clip_landmarks(spec: ClipSpec, head_motion: bool = True) -> np.ndarray:
    """The 68 landmarks of every frame of a clip.

    Args:
        spec: the clip.
        head_motion: apply the head pose (rotation at frame 0 and drift). Without it the
            face stays upright at its `origin`, so the landmarks change only by the
            expression.

    Returns:
        `[T, 68, 2]` float64 `(x, y)` in output image pixels.
    """
    points = _expression_landmarks(spec)
    if not head_motion:
        return points + np.array(spec.face.origin) * spec.size
    rotation, translation = _head_pose(spec)
    return points @ rotation.transpose(0, 2, 1) + translation[:, None]


def render_clip(spec: ClipSpec, frames: Sequence[int] | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """Renders a clip (or some of its frames) into memory.

    Each frame's noise has its own random stream, so rendering a subset of the frames
    gives the same images as rendering the whole clip.

    Args:
        spec: the clip.
        frames: frame numbers to render; all `spec.num_frames` when None.

    Returns:
        `(images, landmarks)`: `images` `[N, size, size, 3]` uint8 RGB and `landmarks`
        `[N, 68, 2]` float64 `(x, y)` pixels, for the requested frames in order.

    Raises:
        ValueError: a frame number is outside the clip.
    """
    indices = np.arange(spec.num_frames) if frames is None else np.asarray(frames, int)
    if indices.size and (indices.min() < 0 or indices.max() >= spec.num_frames):
        raise ValueError(f"clip {spec.clip_id}: frame numbers must lie in "
                         f"0..{spec.num_frames - 1}, got {indices.tolist()}")
    face, size = spec.face, spec.size
    matrix, offsets, slices = _shape_model(face, size, spec.movement.amplitude)
    rotation, translation = _head_pose(spec)
    rotation, translation = rotation[indices], translation[indices]
    landmarks = _expression_landmarks(spec)[indices]
    shapes = (matrix @ landmarks + offsets) @ rotation.transpose(0, 2, 1) + translation[:, None]
    landmarks = landmarks @ rotation.transpose(0, 2, 1) + translation[:, None]
    fixed = _fixed(shapes)
    background = _background(face, size)
    gain = _light(face, size)[..., None]
    flicker = 1 + spec.flicker_std * np.random.default_rng(
        [*spec.noise_seed, 0]).standard_normal(spec.num_frames)
    canvas = np.empty_like(background)
    images = np.empty((len(indices), size, size, 3), np.uint8)
    for n, t in enumerate(indices):
        np.copyto(canvas, background)
        _draw(canvas, face, size, {name: fixed[n, s] for name, s in slices.items()})
        small = cv2.resize(canvas, (size, size), interpolation=cv2.INTER_AREA)
        noise = np.random.default_rng([*spec.noise_seed, 1, int(t)]).standard_normal(
            small.shape, np.float32)
        image = small * (gain * np.float32(flicker[t])) + np.float32(spec.noise_sigma) * noise
        images[n] = np.clip(np.rint(image), 0, 255)
    return images, landmarks


def _shape_model(face: Face, size: int, amplitude: float
                 ) -> tuple[np.ndarray, np.ndarray, dict[str, slice]]:
    """Every drawn point as a linear function of the landmarks, in the face frame (px).

    Args:
        face: the face.
        size: image side, px.
        amplitude: the clip's peak displacement, px (keeps the eyelid covers clear of it).

    Returns:
        `(matrix, offsets, slices)`: the points of a frame are
        `matrix [P, 68] @ landmarks [68, 2] + offsets [P, 2]`; `slices` names the rows of
        each shape (polygons, curves, or single centre points).
    """
    identity = np.eye(68)
    rows, shifts, slices = [], [], {}

    def add(name: str, weights: np.ndarray, shift: np.ndarray | float = 0.0) -> None:
        start = sum(len(r) for r in rows)
        rows.append(weights)
        shifts.append(np.broadcast_to(shift, (len(weights), 2)))
        slices[name] = slice(start, start + len(weights))

    for name, points in _layout(face).items():  # shapes that move only with the head
        add(name, np.zeros((len(points), 68)), points * size)
    for name, first, taper in (("brow_right", 17, (0.55, 1.0)), ("brow_left", 22, (1.0, 0.55))):
        centre = _spline(identity[first:first + 5], 6)
        half = 0.5 * face.brow_thickness * size * np.linspace(*taper, len(centre))
        down = np.stack([np.zeros_like(half), half], 1)
        add(name, np.concatenate([centre, centre[::-1]]), np.concatenate([-down, down[::-1]]))
    # Eyelid covers: skin from each lid outward, drawn over the iris where it leaves the eye.
    reach = (face.eye_height + 0.2 * face.eye_width) * size + amplitude + 1
    for name, first in (("eye_right", 36), ("eye_left", 42)):
        upper = _spline(identity[[first, first + 1, first + 2, first + 3]], 6)
        lower = _spline(identity[[first + 3, first + 4, first + 5, first]], 6)
        add(name, np.concatenate([upper, lower[1:-1]]))
        add(name + "_lid", upper)
        corners = identity[[first + 3, first]]
        up = np.zeros((len(upper) + 2, 2))
        up[-2:, 1] = -reach
        add(name + "_upper_cover", np.concatenate([upper, corners]), up)
        add(name + "_lower_cover", np.concatenate([lower, corners[::-1]]), -up)
    add("lips", np.concatenate([_spline(identity[48:55], 5),
                                _spline(identity[[54, 55, 56, 57, 58, 59, 48]], 5)[1:-1]]))
    add("lip_line", _spline(identity[60:65], 6))
    add("nose_base", _spline(identity[31:36], 4))
    return np.concatenate(rows), np.concatenate(shifts), slices


def _layout(face: Face) -> dict[str, np.ndarray]:
    """Shapes that move only with the head, face-frame fractions of the image side."""
    p = _neutral_landmarks(face)
    phi = np.linspace(0, np.pi, 25)[1:-1]
    forehead = np.stack([face.jaw_width * np.cos(phi),
                         face.jaw_top - face.forehead * np.sin(phi)], 1)
    width, height = face.jaw_width + face.hair_thickness, face.forehead + face.hair_thickness
    phi = np.linspace(-0.3, np.pi + 0.3, 40)
    back_hair = np.stack([width * np.cos(phi), face.jaw_top - height * np.sin(phi)], 1)
    # The fringe: the hair's outer arc down to the temples, closed by the hairline.
    temple = np.arcsin(np.clip((face.jaw_top - face.hairline) / height, 0, 1))
    phi = np.linspace(temple, np.pi - temple, 30)
    arc = np.stack([width * np.cos(phi), face.jaw_top - height * np.sin(phi)], 1)
    x = np.linspace(arc[-1, 0], arc[0, 0], 20)
    hairline = np.stack([x, face.hairline - face.hairline_dip * (1 - (x / x[-1]) ** 2)], 1)
    nostril = np.array([[0.5 * face.nose_width, face.nose_length + 0.012]])
    return {
        "back_hair": back_hair,
        "neck": np.array([p[4], p[12], [p[12, 0] + 0.03, 1.0], [p[4, 0] - 0.03, 1.0]]),
        "outline": np.concatenate([p[0:17], forehead]),
        "fringe": np.concatenate([arc, hairline]),
        "eye_right_iris": p[[36, 39]].mean(0, keepdims=True),
        "eye_left_iris": p[[42, 45]].mean(0, keepdims=True),
        "nostril_right": nostril * [-1, 1],
        "nostril_left": nostril,
    }


def _spline(points: np.ndarray, samples: int) -> np.ndarray:
    """Catmull-Rom curve through `points` `[N, D]`, `samples` per segment.

    Returns:
        `[(N - 1) * samples + 1, D]`, from the first point to the last.
    """
    t = np.arange(samples)[:, None] / samples
    basis = 0.5 * np.concatenate([-t ** 3 + 2 * t ** 2 - t, 3 * t ** 3 - 5 * t ** 2 + 2,
                                  -3 * t ** 3 + 4 * t ** 2 + t, t ** 3 - t ** 2], 1)
    padded = np.concatenate([points[:1], points, points[-1:]])
    windows = np.stack([padded[i:i + 4] for i in range(len(points) - 1)])
    curve = np.einsum("sk,nkd->nsd", basis, windows).reshape(-1, points.shape[1])
    return np.concatenate([curve, points[-1:]])


def _fixed(points: np.ndarray) -> np.ndarray:
    """Image-pixel `(x, y)` to fixed-point coordinates of the supersampled canvas, int32."""
    return _fixed_length(points + 0.5) - (1 << _SHIFT) // 2


def _fixed_length(pixels: float | np.ndarray) -> np.ndarray:
    """Image-pixel lengths to fixed-point lengths of the supersampled canvas, int32."""
    return np.rint(np.asarray(pixels) * _SUPERSAMPLE * (1 << _SHIFT)).astype(np.int32)


def _background(face: Face, size: int) -> np.ndarray:
    """The supersampled background, `[4 size, 4 size, 3]` uint8: a soft vertical ramp."""
    side = size * _SUPERSAMPLE
    ramp = np.linspace(1.08, 0.92, side)[:, None, None] * np.array(face.background)
    return np.repeat(np.clip(ramp, 0, 255).astype(np.uint8), side, axis=1)


def _light(face: Face, size: int) -> np.ndarray:
    """Directional lighting gain, `[size, size]` float32, 1 at the image centre."""
    coords = (np.arange(size) + 0.5) / size - 0.5
    x, y = np.meshgrid(coords, coords)
    along = -(x * np.cos(face.light_angle) + y * np.sin(face.light_angle))
    return (1 + 2 * face.light_strength * along).astype(np.float32)


def _draw(canvas: np.ndarray, face: Face, size: int, shapes: dict[str, np.ndarray]) -> None:
    """Draws one face on the supersampled `canvas` `[4 size, 4 size, 3]` (RGB, in place).

    Args:
        canvas: the background, drawn over.
        face: the face (colours and feature sizes).
        size: image side, px.
        shapes: the frame's shapes in fixed-point canvas coordinates, see `_shape_model`.
    """
    aa, shift = cv2.LINE_AA, _SHIFT
    skin, hair = np.array(face.skin), np.array(face.hair)

    def fill(name: str, colour) -> None:
        cv2.fillPoly(canvas, [shapes[name]], tuple(colour), aa, shift)

    def line(name: str, colour, width: float) -> None:  # width: fraction of the side
        thickness = max(1, int(round(width * size * _SUPERSAMPLE)))
        cv2.polylines(canvas, [shapes[name]], False, tuple(colour), thickness, aa, shift)

    def disc(name: str, radius: float, colour) -> None:
        centre = tuple(int(v) for v in shapes[name][0])
        cv2.circle(canvas, centre, int(_fixed_length(radius * size)), tuple(colour), -1, aa,
                   shift)

    fill("back_hair", hair)
    fill("neck", skin * 0.8)
    fill("outline", skin)
    fill("fringe", hair)
    for eye in ("eye_right", "eye_left"):
        fill(eye, (235, 232, 225))
        disc(eye + "_iris", 0.2 * face.eye_width, face.iris)
        disc(eye + "_iris", 0.09 * face.eye_width, (15, 12, 12))
        fill(eye + "_upper_cover", skin)
        fill(eye + "_lower_cover", skin)
        line(eye + "_lid", skin * 0.3, 0.008)
    fill("brow_right", hair * 0.6 + 10)
    fill("brow_left", hair * 0.6 + 10)
    line("nose_base", skin * 0.72, 0.006)
    axes = tuple(int(v) for v in _fixed_length(np.array([0.2, 0.11]) * face.nose_width * size))
    for nostril in ("nostril_right", "nostril_left"):
        centre = tuple(int(v) for v in shapes[nostril][0])
        cv2.ellipse(canvas, centre, axes, 0, 0, 360, tuple(skin * 0.45), -1, aa, shift)
    fill("lips", face.lips)
    line("lip_line", np.array(face.lips) * 0.45, 0.007)


def generate(out_dir: str | os.PathLike, *, seed: int = 0, num_subjects: int = 12,
             clips_per_class: int = 2, size: int = 128, fps: int = 200,
             workers: int | None = None, progress: bool = True) -> pathlib.Path:
    """Writes the synthetic data set as frame folders and a manifest.

    Layout::

        out_dir/manifest.csv                        header: the MANIFEST_COLUMNS
        out_dir/<subject>/<clip_id>/000000.png ...  8-bit colour PNG frames, numbered from 0
        out_dir/<subject>/<clip_id>/landmarks.txt   68 lines "x y": the landmarks of frame 0

    `path` and `landmarks` are relative to the manifest's folder; `onset`, `apex` and
    `offset` are frame numbers as in the file names. The PNGs hold the frames of
    `render_clip` losslessly (`cv2.imread` gives them back in BGR order). Each clip folder
    is written under a temporary name and renamed into place (replacing an older one), the
    manifest likewise. The same arguments give byte-identical files whatever `workers` is.

    Args:
        out_dir: output folder, created if needed.
        seed: data set seed, a non-negative integer.
        num_subjects: number of subjects.
        clips_per_class: clips per class and subject.
        size: image side, px.
        fps: frame rate.
        workers: processes rendering clips; default `min(2, os.cpu_count())`.
        progress: show a progress bar over clips.

    Returns:
        The path of `manifest.csv`.

    Raises:
        ValueError: an argument is out of range.
    """
    specs = make_specs(seed, num_subjects, clips_per_class, size, fps)
    workers = min(2, os.cpu_count() or 1) if workers is None else workers
    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"synthetic data: workers must be an integer >= 1, got {workers!r}")
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(spec, out) for spec in specs]
    bar = dict(total=len(jobs), disable=not progress, unit="clip", desc="synthetic clips")
    if workers == 1:
        rows = [_write_clip(job) for job in tqdm(jobs, **bar)]
    else:
        # spawn, not fork: a forked child hangs in OpenCV when the parent has already run
        # OpenCV's thread pool (e.g. after a face crop); workers need only numpy and cv2.
        with multiprocessing.get_context("spawn").Pool(workers, _init_worker) as pool:
            rows = list(tqdm(pool.imap(_write_clip, jobs), **bar))
    manifest = out / "manifest.csv"
    temporary = out / f".manifest.csv.{os.getpid()}.tmp"
    with open(temporary, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(MANIFEST_COLUMNS)
        writer.writerows(rows)
    os.replace(temporary, manifest)
    return manifest


def _init_worker() -> None:
    """One OpenCV thread per worker process: the processes already fill the cores."""
    cv2.setNumThreads(1)


def _write_clip(job: tuple[ClipSpec, pathlib.Path]) -> list:
    """Renders and writes one clip; returns its manifest row."""
    spec, out = job
    images, landmarks = render_clip(spec)
    relative = pathlib.PurePosixPath(spec.subject, spec.clip_id)
    final = out / spec.subject / spec.clip_id
    temporary = out / spec.subject / f".{spec.clip_id}.{os.getpid()}.tmp"
    if temporary.exists():
        shutil.rmtree(temporary)
    temporary.mkdir(parents=True)
    for t, image in enumerate(images):
        path = str(temporary / f"{t:06d}.png")
        if not cv2.imwrite(path, np.ascontiguousarray(image[..., ::-1])):
            raise OSError(f"synthetic data: could not write {path}")
    np.savetxt(temporary / "landmarks.txt", landmarks[0], fmt="%.4f")
    if final.exists():
        shutil.rmtree(final)
    os.replace(temporary, final)
    m = spec.movement
    return [str(relative), spec.subject, m.label, m.onset, m.apex, m.offset, spec.fps,
            str(relative / "landmarks.txt")]


def build(out_dir, *, seed: int = 0, num_subjects: int = 12, clips_per_class: int = 2,
          options=None, keep_raw: bool = False) -> dict:
    """Generates the synthetic clips and converts them with the real `manifest` converter.

    `out_dir` ends up holding a converted dataset (`dataset.json` and shards, `tlcnn4`
    classes, subjects namespaced `synthetic/sNN`); the frame folders go to `out_dir/raw` and
    are deleted afterwards unless `keep_raw`.

    Args:
        options: `data_prep.clip.ConvertOptions`; default TIM to 32 frames of 128 px.

    Returns:
        The content of `dataset.json`.
    """
    from data_prep import manifest  # here: generate()'s workers stay TensorFlow-free

    options = options or clip_options()
    out = pathlib.Path(out_dir)
    raw = out / "raw"
    csv_path = generate(raw, seed=seed, num_subjects=num_subjects,
                        clips_per_class=clips_per_class, size=options.size,
                        progress=options.progress)
    info = manifest.convert_manifest(csv_path, out, classes="tlcnn4", name="synthetic",
                                     options=options)
    if not keep_raw:
        shutil.rmtree(raw)
    return info


def ensure(out_dir, num_frames: int = 32) -> pathlib.Path:
    """The built-in dataset at `out_dir`, built on first use (seed 0, default size, TIM to
    `num_frames` frames).

    It is built in a temporary folder beside `out_dir` and renamed when complete, so an
    interrupted build is redone rather than used.

    Returns:
        `out_dir` as a path.

    Raises:
        ValueError: `out_dir` holds a dataset of another length (names both), or other files.
    """
    out = pathlib.Path(out_dir)
    info = _ensure(out, "synthetic dataset", lambda building: build(
        building, options=clip_options(num_frames)))
    if info["num_frames"] != num_frames:
        raise ValueError(f"{out} holds {info['num_frames']}-frame clips, not {num_frames}; "
                         f"remove it to rebuild the built-in data")
    return out


def clip_options(num_frames: int = 32):
    """The built-in data's `ConvertOptions`: TIM to `num_frames` frames of 128 px."""
    from data_prep import clip  # here: generate()'s workers stay TensorFlow-free

    return clip.ConvertOptions(num_frames=num_frames, size=128)


def _ensure(out: pathlib.Path, what: str, build_into) -> dict:
    """Builds a dataset with `build_into(folder)` unless `out` holds one; returns its
    `dataset.json` content. Builds in `.<name>.building` beside `out`, then renames."""
    meta = out / "dataset.json"
    if not meta.is_file():
        if out.exists() and any(out.iterdir()):
            raise ValueError(f"{out} exists but holds no dataset.json; remove it to rebuild "
                             f"the built-in {what}")
        print(f"building the built-in {what} in {out} (once)")
        building = out.with_name(f".{out.name}.building")
        shutil.rmtree(building, ignore_errors=True)
        build_into(building)
        shutil.rmtree(out, ignore_errors=True)
        os.replace(building, out)
    return json.loads(meta.read_text(encoding="utf-8"))


def make_expression_specs(seed: int = EXPRESSION_SEED, num_subjects: int = 12,
                          images_per_emotion: int = 3, size: int = 128) -> list[ClipSpec]:
    """Draws the specs of the still expression images.

    Each image is frame 1, the apex, of a 3-frame clip spec whose movement is the emotion's
    (`EXPRESSION_MOVEMENTS`) at an amplitude drawn from `EXPRESSION_AMPLITUDE` (neutral: 0),
    with the clips' variation of pose, lighting and noise but no drift or flicker. Subjects
    `e01`, `e02`, ... have the faces of `seed`; images are ordered by subject, emotion and
    repetition, image `k` of `emotion` of subject `eNN` being `eNN_<emotion>_<k>`.

    Raises:
        ValueError: an argument is out of range.
    """
    _check_arguments(seed=seed, num_subjects=num_subjects,
                     images_per_emotion=images_per_emotion, size=size)
    specs, scale = [], size / REFERENCE_SIZE
    for s in range(num_subjects):
        subject = f"e{s + 1:02d}"
        face = make_face(seed, s)
        for e, (emotion, variant) in enumerate(EXPRESSION_MOVEMENTS.items()):
            for k in range(images_per_emotion):
                index = e * images_per_emotion + k
                rng = np.random.default_rng([seed, _EXPRESSION_STREAM, s, index])
                amplitude = 0.0 if variant is None else rng.uniform(*EXPRESSION_AMPLITUDE) * scale
                # Neutral: any movement field at amplitude 0 leaves the face as it is.
                movement = Movement(emotion, variant or "lip_press", onset=0, apex=1, offset=2,
                                    amplitude=amplitude)
                specs.append(ClipSpec(
                    subject=subject, clip_id=f"{subject}_{emotion}_{k + 1}",
                    face=_vary_face(face, rng), movement=movement, num_frames=3, size=size,
                    fps=25, head_angle=rng.normal(0, POSE_DEGREES), drift=(0.0, 0.0, 0.0),
                    noise_sigma=rng.uniform(*NOISE_SIGMA_RANGE), flicker_std=0.0,
                    noise_seed=(seed, _EXPRESSION_NOISE_STREAM, s, index)))
    return specs


def generate_expressions(out_dir, *, seed: int = EXPRESSION_SEED, num_subjects: int = 12,
                         images_per_emotion: int = 3, size: int = 128) -> pathlib.Path:
    """Writes the still expression images in the folder-per-emotion layout of the
    `expression` converter: `out_dir/<emotion>/<image id>.png` (8-bit RGB PNG).

    Returns:
        `out_dir` as a path.
    """
    out = pathlib.Path(out_dir)
    for spec in make_expression_specs(seed, num_subjects, images_per_emotion, size):
        images, _ = render_clip(spec, [spec.movement.apex])
        folder = out / spec.movement.label
        folder.mkdir(parents=True, exist_ok=True)
        path = str(folder / f"{spec.clip_id}.png")
        if not cv2.imwrite(path, np.ascontiguousarray(images[0][..., ::-1])):
            raise OSError(f"synthetic data: could not write {path}")
    return out


def build_expression(out_dir, *, seed: int = EXPRESSION_SEED, num_subjects: int = 12,
                     images_per_emotion: int = 3, size: int = 128, keep_raw: bool = False,
                     progress: bool = True) -> dict:
    """Generates the still expression images and converts them with the real `expression`
    converter (`--classes expression9 --crop none`): one-frame records of 9 classes, the
    ones without a synthetic movement empty. The images go to `out_dir/raw` and are deleted
    afterwards unless `keep_raw`.

    Returns:
        The content of `dataset.json`.
    """
    from data_prep import clip, databases  # here: the rendering stays TensorFlow-free

    out = pathlib.Path(out_dir)
    raw = generate_expressions(out / "raw", seed=seed, num_subjects=num_subjects,
                               images_per_emotion=images_per_emotion, size=size)
    options = clip.ConvertOptions(size=size, crop="none", clips_per_shard=1024, workers=1,
                                  progress=progress)
    info = databases.convert_database("expression", raw, out, classes="expression9",
                                      options=options)
    if not keep_raw:
        shutil.rmtree(raw)
    return info


def ensure_expression(out_dir) -> pathlib.Path:
    """The built-in expression set at `out_dir`, built on first use (`build_expression` with
    its defaults), like `ensure`.

    Returns:
        `out_dir` as a path.
    """
    out = pathlib.Path(out_dir)
    _ensure(out, "synthetic expression set", build_expression)
    return out
