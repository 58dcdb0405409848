"""Rendering of the synthetic clips: a `ClipSpec` to frames and landmarks in memory.

Faces are drawn procedurally with OpenCV at 4x supersampling (anti-aliased shapes at
sub-pixel coordinates, downsampled with `cv2.INTER_AREA`), so that movements of a fraction
of a pixel change the image smoothly. On each frame the landmarks move by the clip's
movement (`MOVEMENT_FIELDS` times the `envelope`) and the head pose (rotation at frame 0 and
a slow drift); the frame then gets the face's lighting, the clip's brightness flicker and
sensor noise. `render_clip` is a function of the spec alone.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from data_prep.synthetic.faces import MOVEMENT_FIELDS, Face, neutral_landmarks
from data_prep.synthetic.specs import ClipSpec, envelope
from tfmer.landmarks import JAW, LEFT_EYE, NOSE_WINGS, NUM_LANDMARKS, RIGHT_EYE

_SUPERSAMPLE = 4
_SHIFT = 4  # fractional bits of the fixed-point coordinates given to cv2 drawing functions


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
    displacement = MOVEMENT_FIELDS[spec.movement.variant] * spec.movement.amplitude
    intensity = envelope(spec.movement, spec.num_frames)[:, None, None]
    return neutral_landmarks(spec.face) * spec.size + intensity * displacement


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
    identity = np.eye(NUM_LANDMARKS)
    rows, shifts, slices = [], [], {}

    def add(name: str, weights: np.ndarray, shift: np.ndarray | float = 0.0) -> None:
        start = sum(len(r) for r in rows)
        rows.append(weights)
        shifts.append(np.broadcast_to(shift, (len(weights), 2)))
        slices[name] = slice(start, start + len(weights))

    for name, points in _layout(face).items():  # shapes that move only with the head
        add(name, np.zeros((len(points), NUM_LANDMARKS)), points * size)
    for name, first, taper in (("brow_right", 17, (0.55, 1.0)), ("brow_left", 22, (1.0, 0.55))):
        centre = _spline(identity[first:first + 5], 6)
        half = 0.5 * face.brow_thickness * size * np.linspace(*taper, len(centre))
        down = np.stack([np.zeros_like(half), half], 1)
        add(name, np.concatenate([centre, centre[::-1]]), np.concatenate([-down, down[::-1]]))
    # Eyelid covers: skin from each lid outward, drawn over the iris where it leaves the eye.
    reach = (face.eye_height + 0.2 * face.eye_width) * size + amplitude + 1
    # The subject's right eye is on the image's left (`LEFT_EYE`).
    for name, first in (("eye_right", LEFT_EYE.start), ("eye_left", RIGHT_EYE.start)):
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
    add("nose_base", _spline(identity[NOSE_WINGS], 4))
    return np.concatenate(rows), np.concatenate(shifts), slices


def _layout(face: Face) -> dict[str, np.ndarray]:
    """Shapes that move only with the head, face-frame fractions of the image side."""
    p = neutral_landmarks(face)
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
        "outline": np.concatenate([p[JAW], forehead]),
        "fringe": np.concatenate([arc, hairline]),
        "eye_right_iris": p[LEFT_EYE][[0, 3]].mean(0, keepdims=True),  # between the corners
        "eye_left_iris": p[RIGHT_EYE][[0, 3]].mean(0, keepdims=True),
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
