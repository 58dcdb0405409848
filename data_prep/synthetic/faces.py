"""Face geometry of the synthetic data: a subject's face, its 68 landmarks, the movements.

`Face` holds a subject's neutral face and appearance (`make_face` draws it from the seed),
`neutral_landmarks` places its 68 landmarks, and `MOVEMENT_FIELDS` gives the direction each
landmark moves in for each movement variant:

- `lip_corner_pull` (`positive`): lip corners pulled up and slightly outward;
- `brow_lower`, `lip_corner_depress` and both together (`negative`): brows lowered and
  drawn together, lip corners pulled down;
- `brow_raise_eye_widen` (`surprise`): brows raised, eyes widened;
- `lip_press`, `partial_blink` (`others`): a lip press or a partial blink.

Coordinates are image pixels `(x, y)` of the output frame, `x` to the right and `y` down,
pixel `i` covering `[i - 0.5, i + 0.5]`. The 68 landmarks follow the iBUG 300-W layout
(`tfmer.landmarks`: 0-16 jaw, 17-21 right brow, 22-26 left brow, 27-35 nose, 36-41 right
eye, 42-47 left eye, 48-59 outer lip, 60-67 inner lip), right and left from the subject's
point of view as in dlib: the right eye (36-41, `LEFT_EYE`) is on the left of the image.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from tfmer.landmarks import (INNER_LIPS, JAW, LEFT_EYE, NOSE_BRIDGE, NOSE_WINGS,
                             NUM_LANDMARKS, OUTER_LIPS, RIGHT_EYE)

_SUBJECT_STREAM = 0


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


def _unit_fields() -> dict[str, np.ndarray]:
    """Per-variant landmark displacement directions, `[68, 2]`, largest row norm 1.

    Image directions: `x` right, `y` down; the subject's right side is the image's left.
    """

    def field(moves: dict[int, tuple[float, float]]) -> np.ndarray:
        f = np.zeros((NUM_LANDMARKS, 2))
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


MOVEMENT_FIELDS = _unit_fields()
"""Each movement variant's landmark displacement directions, `[68, 2]` image directions
with largest row norm 1: a movement of amplitude `a` moves the landmarks by `a` times it."""


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


def neutral_landmarks(face: Face) -> np.ndarray:
    """The 68 neutral landmarks in the face frame, `[68, 2]` fractions of the image side."""
    p = np.zeros((NUM_LANDMARKS, 2))
    phi = np.linspace(0, np.pi, 17)
    c, s = np.cos(phi), np.sin(phi)
    power = 2 / face.jaw_squareness
    p[JAW, 0] = -face.jaw_width * np.sign(c) * np.abs(c) ** power
    p[JAW, 1] = face.jaw_top + (face.chin - face.jaw_top) * np.abs(s) ** power

    for first, side in ((17, -1), (22, 1)):  # right brow on the image's left
        u = np.linspace(-1, 1, 5) * side  # -1: outer end of the right brow
        x = side * face.eye_spacing + 0.65 * face.eye_width * u
        y = -face.brow_gap - face.brow_arch * (1 - u ** 2)
        p[first:first + 5] = np.stack([x, y], 1)

    p[NOSE_BRIDGE, 0] = 0.0
    p[NOSE_BRIDGE, 1] = np.linspace(-0.01, face.nose_length, 4)
    base = face.nose_length + np.array([0.015, 0.025, 0.03, 0.025, 0.015])
    p[NOSE_WINGS] = np.stack([face.nose_width * np.array([-1, -0.5, 0, 0.5, 1]), base], 1)

    w, h = face.eye_width / 2, face.eye_height / 2
    shape = np.array([[-w, 0], [-w / 3, -1.1 * h], [w / 3, -1.1 * h],
                      [w, 0], [w / 3, 0.9 * h], [-w / 3, 0.9 * h]])
    p[LEFT_EYE] = shape + [-face.eye_spacing, 0]
    p[RIGHT_EYE] = shape + [face.eye_spacing, 0]

    mw, my = face.mouth_width, face.mouth_y
    ut, lt = face.upper_lip, face.lower_lip

    def line(x: np.ndarray) -> np.ndarray:
        return my + face.mouth_curve * (1 - (x / mw) ** 2)

    outer_x = mw * np.array([-1, -0.6, -0.25, 0, 0.25, 0.6, 1, 0.6, 0.3, 0, -0.3, -0.6])
    outer_dy = np.array([0, -0.8 * ut, -ut, -0.85 * ut, -ut, -0.8 * ut,
                         0, 0.75 * lt, 0.97 * lt, lt, 0.97 * lt, 0.75 * lt])
    p[OUTER_LIPS] = np.stack([outer_x, line(outer_x) + outer_dy], 1)
    inner_x = mw * np.array([-0.88, -0.4, 0, 0.4, 0.88, 0.4, 0, -0.4])
    p[INNER_LIPS] = np.stack([inner_x, line(inner_x)], 1)
    return p
