"""MDMO, the main directional mean optical flow feature (Liu, Zhang, Yan, Wang, Zhao, Fu 2016,
"A main directional mean optical flow feature for spontaneous micro-expression recognition",
IEEE Trans. Affective Computing 7(4)), in the setting of TLCNN's baseline (Wang et al. 2018,
Section 4.3), vectorised numpy, no TensorFlow.

Sources: the paper's abstract, TLCNN's Section 4.3 summary of it, and two public Python
implementations read for facts (`meb`'s `meb/utils/traditional_methods.py`, `MDMO_video` and
`load_roi_36`, on dlib's 68 points; a `MDMOFeature` class on dlib's 68 points). The paper's
full text was not at hand: where a setting comes from elsewhere than the paper, it says so.

Steps (`flows_from_first`, then `mdmo`):

1. Flow from the first frame f_1 to every later frame f_i (TLCNN 4.3 step 2). The paper
   used "a robust optical flow method" (abstract), RLOF (robust local optical flow, Senst
   et al.), which `tfmer.optical_flow` does not offer. Default here: `farneback`, like RLOF
   a local method (and `meb`'s choice), well within the budget of 0.5 s per 32 x 128 x 128
   clip on one core: 31 flows took 0.10 s with `farneback` (0.17 s with the feature),
   0.04 s with `dis`, 4.3 s with `tvl1` (a smooth random texture shifted a little per
   frame); on an analytic 0.3 px bump of motion `farneback` and `dis` erred alike
   (0.046 px mean), and `tvl1` is over the budget.
2. Alignment in the flow domain (abstract: "an optical-flow-driven method to align all
   frames"): for each f_i, the affine map `A` that best takes (least squares) the moved
   stable landmarks `p + w(p)` back to `p`, and the aligned flow `w'(x) = A(x + w(x)) - x`,
   which removes a rigid head motion of the frame. The stable points `ALIGNMENT_POINTS`
   (jaw 0-5, 11-16 and the nose tip 30) are `meb`'s; `meb` fits a 2 x 2 linear map, here a
   full affine map (a translation is the commonest head motion). `w(p)` is interpolated
   bilinearly (exact for an affine motion), `p` clipped to the frame.
3. 36 ROIs (`roi_polygons`): quadrilaterals on the landmarks of the first frame, on the
   forehead, brows, around the eyes, the nose, cheeks, mouth corners and chin (the regions
   "based partially on action units" of the abstract; TLCNN 4.3 step 1). The paper drew them
   on DRMF's 66 points; `DRMF_TO_IBUG` maps those to the 68-point iBUG/dlib layout that
   tfmer stores (DRMF lacks the inner mouth corners 60 and 64; no ROI uses the inner lips,
   so the ROIs need no other change). The ROI layout follows `meb`'s `load_roi_36`, the
   only transcription of the paper's figure to 68 points at hand, with one change: the
   forehead points lie `FOREHEAD_HEIGHT` times the outer-eye-corner distance (36 to 45)
   above the brow points, perpendicular to the eye line, instead of a fixed 20 px, so
   the ROIs scale with the face (about 10 px on tfmer's 128 px face crops). A pixel
   belongs to a ROI when its centre lies inside the quadrilateral (crossing rule, so ROIs
   sharing an edge do not share its pixels). As in `meb`'s layout, the ROIs beside the
   mouth end on the lines from the nose base 33 to the lower lip (59 and 55), so the lips'
   middle belongs to no ROI.
4. In each ROI and frame (TLCNN 4.3 step 3): the vectors in polar form `(rho, theta)`,
   `theta = atan2(v, u)` in image coordinates (x right, y down: moving up is -pi/2); 8
   direction bins centred on 0, pi/4, ..., 7 pi/4 (bin b holds
   `[b pi/4 - pi/8, b pi/4 + pi/8)`, as `meb` bins; a motion straight along an axis lies
   mid-bin); the main direction is the bin with most vectors (ties: the lowest bin); the
   frame's ROI vector is the mean of that bin's vectors, mean magnitude and mean angle as
   both implementations read take it (angles averaged as offsets from the bin centre, so
   the bin around 0 does not wrap, as it does in `meb`).
   Vectors of length 0 have no direction and are not counted; a ROI with none has the
   vector 0.
5. Over the frames (the frame-level features averaged: "the MDMO feature is computed by
   averaging a set of atomic features frame-by-frame", the abstract of Liu et al.'s
   "Sparse MDMO", 2018; TLCNN's "the bin ... maximum from all frames" could also be read
   as one bin over the pooled frames, but the first author's later account and both
   implementations read take it per frame): the ROI's frame vectors averaged as Cartesian
   vectors, then back to polar `(rho_k, theta_k)`, `theta_k` in (-pi, pi], 0 for a zero
   vector.
6. Normalisation ("a normalized statistic feature", abstract): `rho_k / max_j rho_j`
   (as both implementations read do), 0 where no ROI moves.
7. `lambda = 0.77` balances magnitude against angle in the feature itself:
   `(lambda rho_1, ..., lambda rho_36, (1 - lambda) theta_1, ..., (1 - lambda) theta_36)`
   (TLCNN 4.3 step 4 and its Fig. 11, lambda in (0, 1)); TLCNN classifies it with a
   polynomial-kernel SVM.
"""

from __future__ import annotations

import numpy as np

from tfmer.landmarks import LEFT_EYE, NUM_LANDMARKS, RIGHT_EYE
from tfmer.optical_flow import METHODS, optical_flow

DEFAULT_FLOW = "farneback"
"""The flow method MDMO uses unless told (module docstring, step 1)."""

LAMBDA = 0.77
"""The paper's lambda: the weight of the magnitudes, 1 - lambda that of the angles (TLCNN
Section 4.3, Fig. 11)."""

BINS = 8
"""Direction bins (TLCNN Section 4.3, step 3)."""

NUM_ROIS = 36

ALIGNMENT_POINTS = (0, 1, 2, 3, 4, 5, 11, 12, 13, 14, 15, 16, 30)
"""The landmarks whose flow gives each frame's head motion (`meb`'s choice; step 2)."""

FOREHEAD_HEIGHT = 1 / 6
"""Forehead points above the brows, as a fraction of the outer-eye-corner distance."""

DRMF_TO_IBUG = tuple(range(60)) + (61, 62, 63, 65, 66, 67)
"""The iBUG/dlib 68-point index (0-based) of each of DRMF's 66 points (0-based): the same
up to the outer lips (0-59); DRMF's 6 inner-lip points skip the inner corners 60 and 64."""


def _forehead(i):
    return ("forehead", i)


def _mid(i, j):
    return ("mid", i, j)


_GLABELLA = ("glabella",)
"""Above the midpoint of the brows' inner ends 21 and 22."""

# The 36 ROIs, quadrilaterals in drawing order: a vertex is a landmark index, a point above
# a brow point (`_forehead`), the midpoint of two landmarks (`_mid`) or `_GLABELLA`. ROI k
# and ROI `ROI_MIRROR[k]` are each other's mirror images.
ROI_VERTICES = (
    # forehead above the brows, and between them (AU1, AU2, AU4)
    (17, _forehead(17), _forehead(19), 19),
    (19, _forehead(19), _forehead(21), 21),
    (21, _forehead(21), _GLABELLA, 27),
    (27, _GLABELLA, _forehead(22), 22),
    (22, _forehead(22), _forehead(24), 24),
    (24, _forehead(24), _forehead(26), 26),
    # temples, between eyes and brows, top of the nose bridge
    (1, 0, 17, 36),
    (36, 17, 19, 38),
    (38, 19, 21, 39),
    (39, 21, 27, 28),
    (28, 27, 22, 42),
    (42, 22, 24, 43),
    (43, 24, 26, 45),
    (45, 26, 16, 15),
    # below the eyes and beside the nose bridge (AU6, AU7, AU9)
    (3, 2, _mid(2, 41), _mid(3, 29)),
    (_mid(3, 29), _mid(2, 41), 41, 39),
    (_mid(3, 29), 39, 28, 29),
    (29, 28, 42, _mid(13, 29)),
    (_mid(13, 29), 42, 46, _mid(14, 46)),
    (_mid(13, 29), _mid(14, 46), 14, 13),
    # nose wings and the upper lip to the mouth corners (AU9, AU10, AU12, AU15)
    (_mid(4, 33), _mid(3, 29), 29, 33),
    (33, 29, _mid(13, 29), _mid(12, 33)),
    (_mid(5, 59), _mid(4, 33), 33, 59),
    (55, 33, _mid(12, 33), _mid(11, 55)),
    # below the lower lip (AU17)
    (_mid(6, 58), _mid(5, 59), 59, 58),
    (_mid(8, 57), _mid(6, 58), 58, 57),
    (_mid(10, 56), _mid(8, 57), 57, 56),
    (_mid(11, 55), _mid(10, 56), 56, 55),
    # cheeks (AU6, AU12, AU14)
    (4, 3, _mid(3, 29), _mid(4, 33)),
    (_mid(12, 33), _mid(13, 29), 13, 12),
    (5, 4, _mid(4, 33), _mid(5, 59)),
    (_mid(11, 55), _mid(12, 33), 12, 11),
    # jaw and chin
    (6, 5, _mid(5, 59), _mid(6, 58)),
    (8, 6, _mid(6, 58), _mid(8, 57)),
    (10, 8, _mid(8, 57), _mid(10, 56)),
    (11, 10, _mid(10, 56), _mid(11, 55)),
)

ROI_MIRROR = (5, 4, 3, 2, 1, 0, 13, 12, 11, 10, 9, 8, 7, 6, 19, 18, 17, 16, 15, 14,
              21, 20, 23, 22, 27, 26, 25, 24, 29, 28, 31, 30, 35, 34, 33, 32)
"""The ROI that mirrors each ROI (left and right of the image swapped)."""

LANDMARKS_HINT = ("convert with --crop dlib so that landmarks are stored (MDMO draws its 36 "
                  "ROIs on the first frame's 68 landmarks)")


def _check_landmarks(landmarks) -> np.ndarray:
    if landmarks is None:
        raise ValueError(f"MDMO needs the clip's 68 landmarks, got none: {LANDMARKS_HINT}")
    points = np.asarray(landmarks, np.float64)
    if points.shape != (NUM_LANDMARKS, 2):
        raise ValueError(f"MDMO needs [{NUM_LANDMARKS}, 2] (x, y) landmarks, got shape "
                         f"{list(points.shape)}: {LANDMARKS_HINT}")
    if not np.all(np.isfinite(points)):
        raise ValueError("MDMO landmarks must be finite numbers, got NaN or infinity")
    return points


def roi_polygons(landmarks) -> np.ndarray:
    """The 36 ROIs of a face (module docstring, step 3).

    Args:
        landmarks: `[68, 2]` (x, y) iBUG/dlib landmarks in pixels.

    Returns:
        float64 `[36, 4, 2]`: each ROI's quadrilateral, (x, y) vertices in drawing order.

    Raises:
        ValueError: landmarks missing or not `[68, 2]` (naming the way out).
    """
    points = _check_landmarks(landmarks)
    eye_line = points[RIGHT_EYE].mean(axis=0) - points[LEFT_EYE].mean(axis=0)
    norm = np.hypot(*eye_line)
    if norm == 0:
        raise ValueError("MDMO landmarks: the two eye centres coincide; no face to draw on")
    up = np.array([eye_line[1], -eye_line[0]]) / norm  # perpendicular, away from the chin
    height = FOREHEAD_HEIGHT * np.hypot(*(points[45] - points[36]))

    def vertex(spec):
        if isinstance(spec, int):
            return points[spec]
        if spec[0] == "forehead":
            return points[spec[1]] + height * up
        if spec[0] == "mid":
            return (points[spec[1]] + points[spec[2]]) / 2
        return (points[21] + points[22]) / 2 + height * up

    return np.array([[vertex(spec) for spec in quad] for quad in ROI_VERTICES])


def _inside(polygon, xs, ys) -> np.ndarray:
    """Whether each point (xs, ys) lies inside the polygon `[n, 2]` (crossing rule: a ray to
    +x crosses an odd number of edges, each edge half-open in y)."""
    inside = np.zeros(np.broadcast(xs, ys).shape, bool)
    for (x1, y1), (x2, y2) in zip(polygon, np.roll(polygon, -1, axis=0)):
        spans = (y1 > ys) != (y2 > ys)
        with np.errstate(divide="ignore", invalid="ignore"):
            crossing = x1 + (ys - y1) * (x2 - x1) / (y2 - y1)
        inside ^= spans & (xs < crossing)
    return inside


def roi_masks(landmarks, shape) -> np.ndarray:
    """The pixels of each ROI: those whose centre lies inside its quadrilateral.

    Args:
        landmarks: `[68, 2]` (x, y) landmarks in pixels (pixel (x, y) centred at x, y).
        shape: (H, W) of the frames.

    Returns:
        bool `[36, H, W]`.
    """
    height, width = (int(s) for s in shape)
    polygons = roi_polygons(landmarks)
    masks = np.zeros((NUM_ROIS, height, width), bool)
    for k, polygon in enumerate(polygons):
        x0, y0 = np.maximum(np.floor(polygon.min(axis=0)).astype(int), 0)
        x1, y1 = np.ceil(polygon.max(axis=0)).astype(int) + 1
        x1, y1 = min(x1, width), min(y1, height)
        if x1 <= x0 or y1 <= y0:
            continue
        ys, xs = np.mgrid[y0:y1, x0:x1]
        masks[k, y0:y1, x0:x1] = _inside(polygon, xs, ys)
    return masks


def _check_frames(frames, name: str) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"{name} needs RGB uint8 frames [T, H, W, 3], got shape "
                         f"{list(frames.shape)} of {frames.dtype}")
    if len(frames) < 2:
        raise ValueError(f"{name} needs a clip of at least 2 frames, got {len(frames)}")
    return frames


def flows_from_first(frames, method: str = DEFAULT_FLOW) -> np.ndarray:
    """Optical flow from the first frame to each later one (`tfmer.optical_flow`).

    Args:
        frames: RGB uint8 `[T, H, W, 3]`, T >= 2.
        method: a flow method of `tfmer.optical_flow.METHODS` (default `farneback`: module
            docstring, step 1).

    Returns:
        float32 `[T - 1, H, W, 2]`: flow i is (u, v) from frame 0 to frame i + 1.

    Raises:
        ValueError: not RGB uint8 `[T, H, W, 3]`, fewer than 2 frames, an unknown method.
    """
    frames = _check_frames(frames, "flows_from_first")
    if method not in METHODS:
        raise ValueError(f"unknown flow method {method!r}; known: {', '.join(METHODS)}")
    return np.stack([optical_flow(frames[0], frame, method) for frame in frames[1:]])


def _check_flows(flows) -> np.ndarray:
    flows = np.asarray(flows)
    if flows.ndim != 4 or flows.shape[-1] != 2 or len(flows) < 1:
        raise ValueError(f"MDMO needs flows [T - 1, H, W, 2] with at least one frame, got "
                         f"shape {list(flows.shape)}")
    return flows.astype(np.float64)


def align_flows(flows, landmarks) -> np.ndarray:
    """Removes each frame's head motion in the flow domain (module docstring, step 2).

    Args:
        flows: `[F, H, W, 2]` flows from the first frame.
        landmarks: `[68, 2]` (x, y) landmarks of the first frame.

    Returns:
        float64 `[F, H, W, 2]`: `A_i(x + w_i(x)) - x`, `A_i` the least-squares affine map
        that takes the moved `ALIGNMENT_POINTS` back to their place in the first frame.
    """
    flows = _check_flows(flows)
    points = _check_landmarks(landmarks)[list(ALIGNMENT_POINTS)]
    _, height, width, _ = flows.shape
    points = np.clip(points, 0, [width - 1, height - 1])
    left = np.minimum(np.floor(points).astype(int), [max(width - 2, 0), max(height - 2, 0)])
    right = np.minimum(left + 1, [width - 1, height - 1])
    fx, fy = (points - left).T[:, :, None]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    aligned = np.empty_like(flows)
    for i, flow in enumerate(flows):
        top = (1 - fx) * flow[left[:, 1], left[:, 0]] + fx * flow[left[:, 1], right[:, 0]]
        bottom = (1 - fx) * flow[right[:, 1], left[:, 0]] + fx * flow[right[:, 1], right[:, 0]]
        moved = points + (1 - fy) * top + fy * bottom
        design = np.column_stack([moved, np.ones(len(moved))])
        affine, *_ = np.linalg.lstsq(design, points, rcond=None)  # [3, 2]: x' = [x y 1] A
        x, y = xs + flow[..., 0], ys + flow[..., 1]
        aligned[i, ..., 0] = x * affine[0, 0] + y * affine[1, 0] + affine[2, 0] - xs
        aligned[i, ..., 1] = x * affine[0, 1] + y * affine[1, 1] + affine[2, 1] - ys
    return aligned


def roi_frame_vectors(flows, masks) -> np.ndarray:
    """Each frame's main-direction mean vector of each ROI (module docstring, step 4).

    Args:
        flows: `[F, H, W, 2]` flows.
        masks: bool `[R, H, W]` ROI pixels.

    Returns:
        float64 `[F, R, 2]`: (mean magnitude, mean angle) of the vectors in the ROI's most
        populated direction bin; (0, 0) for a ROI without a non-zero vector.
    """
    flows = np.asarray(flows, np.float64)
    frames, regions = len(flows), len(masks)
    roi, pixel = np.nonzero(masks.reshape(regions, -1))  # every (ROI, pixel) pair
    vectors = flows.reshape(frames, -1, 2)[:, pixel]  # [F, M, 2]
    rho = np.hypot(vectors[..., 0], vectors[..., 1])
    theta = np.arctan2(vectors[..., 1], vectors[..., 0])
    width = 2 * np.pi / BINS
    bins = np.floor((theta + width / 2) / width).astype(int) % BINS
    offset = (theta - bins * width + np.pi) % (2 * np.pi) - np.pi  # in [-width/2, width/2)
    directed = rho > 0
    cell = np.arange(frames)[:, None] * regions + roi  # [F, M]: (frame, ROI) index
    size = frames * regions
    counts = np.bincount((cell * BINS + bins)[directed], minlength=size * BINS)
    main = np.argmax(counts.reshape(size, BINS), axis=1)  # ties to the lowest bin
    chosen = directed & (bins == main[cell])
    number = np.bincount(cell[chosen], minlength=size)
    mean_rho = np.bincount(cell[chosen], rho[chosen], minlength=size) / np.maximum(number, 1)
    mean_offset = (np.bincount(cell[chosen], offset[chosen], minlength=size)
                   / np.maximum(number, 1))
    angle = np.where(number > 0, main * width + mean_offset, 0.0)
    angle = np.pi - (np.pi - angle) % (2 * np.pi)  # into (-pi, pi]
    return np.stack([mean_rho, angle], axis=-1).reshape(frames, regions, 2)


def mdmo(flows, landmarks, lam: float = LAMBDA, align: bool = True) -> np.ndarray:
    """The MDMO feature of a clip (module docstring, steps 2-7).

    Args:
        flows: `[T - 1, H, W, 2]` flows from the first frame to each later one
            (`flows_from_first`).
        landmarks: `[68, 2]` (x, y) iBUG/dlib landmarks of the first frame, in the frames'
            pixels (a record's `clip/landmarks`).
        lam: the weight of the magnitudes, in (0, 1) (the paper's 0.77).
        align: remove each frame's head motion first (`align_flows`; the paper does).

    Returns:
        float64 `[72]`: `lam * rho_k / max_j rho_j` for the 36 ROIs, then
        `(1 - lam) * theta_k`, `theta_k` in (-pi, pi] (ROI order `ROI_VERTICES`).

    Raises:
        ValueError: landmarks missing or not `[68, 2]` (naming `--crop dlib`), flows not
            `[F, H, W, 2]`, lam outside (0, 1).
    """
    points = _check_landmarks(landmarks)
    flows = _check_flows(flows)
    if not 0 < lam < 1:
        raise ValueError(f"MDMO lambda must lie in (0, 1), got {lam}")
    if align:
        flows = align_flows(flows, points)
    frame_vectors = roi_frame_vectors(flows, roi_masks(points, flows.shape[1:3]))
    rho, theta = frame_vectors[..., 0], frame_vectors[..., 1]
    mean_x = np.mean(rho * np.cos(theta), axis=0)
    mean_y = np.mean(rho * np.sin(theta), axis=0)
    magnitude = np.hypot(mean_x, mean_y)
    angle = np.arctan2(mean_y, mean_x)
    angle = np.where(magnitude > 0, np.pi - (np.pi - angle) % (2 * np.pi), 0.0)
    largest = magnitude.max()
    magnitude = magnitude / largest if largest > 0 else magnitude
    return np.concatenate([lam * magnitude, (1 - lam) * angle])
