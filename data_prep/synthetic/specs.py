"""Clip specs of the synthetic data: which clips exist, their movement, timing and seeds.

`make_specs` draws the `ClipSpec` of every micro-expression clip (subject, class, the one
`Movement` and its timing, the clip's variation of the neutral pose, head drift, flicker and
noise), `make_expression_specs` those of the still expression images; `envelope` is a
movement's intensity per frame. Everything is a function of the seed: each subject and each
clip draws from its own `numpy.random.default_rng` stream, so the output does not depend on
the order or the number of processes that render it.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from data_prep.synthetic.faces import Face, make_face

CLASSES = ("positive", "negative", "surprise", "others")
"""The label strings, in class-index order."""

VARIANTS = {
    "positive": ("lip_corner_pull",),
    "negative": ("brow_lower", "lip_corner_depress", "brow_lower_lip_corner_depress"),
    "surprise": ("brow_raise_eye_widen",),
    "others": ("lip_press", "partial_blink"),
}
"""The movements each class draws from, one per clip."""

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

_CLIP_STREAM = 1
_NOISE_STREAM = 2
_EXPRESSION_STREAM = 3
_EXPRESSION_NOISE_STREAM = 4


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
