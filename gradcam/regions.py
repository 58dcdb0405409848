"""Facial-feature regions from 68 landmarks, and how much Grad-CAM heat falls inside them.

Bai & Goecke (2020, Sections 4.3 and 5) choose the layer whose Grad-CAM heat is "closest to
the facial features": the eyes, eyebrows, nose wings and corners of the mouth. Here those
features are discs around their landmarks (iBUG 300-W order, as `data_prep.face.locate`
and the built-in synthetic data give them), and a heatmap scores the share of its heat that
falls inside the discs.

Coordinates are (x, y) pixels, integers at pixel centres (pixel `i` covers
`[i - 0.5, i + 0.5]`), as in `data_prep.face`.
"""

from __future__ import annotations

import cv2
import numpy as np

from tfmer.landmarks import (
    BROWS,
    LEFT_EYE,
    MOUTH_CORNERS,
    NOSE_WINGS,
    NUM_LANDMARKS,
    RIGHT_EYE,
)


def _indices(part: slice) -> tuple:
    return tuple(range(NUM_LANDMARKS)[part])


REGIONS = {
    "brows": _indices(BROWS),
    "eyes": _indices(LEFT_EYE) + _indices(RIGHT_EYE),
    "nose wings": _indices(NOSE_WINGS),
    "mouth corners": MOUTH_CORNERS,
}
"""The facial features of Bai & Goecke (2020, Section 5) as landmark indices."""
REGION_NAMES = ", ".join(REGIONS)
REGION_POINTS = np.array(sorted({i for points in REGIONS.values() for i in points}))

# Disc radius around each region landmark, as a fraction of the inter-ocular distance (IOD).
# In an aligned face crop (CANONICAL_LANDMARKS) the IOD is 0.39 of the crop, an eye 0.36 IOD
# wide, a brow 0.66 IOD long, and neighbouring points of a brow, an eye or the nose wings
# 0.12-0.21 IOD apart. At 0.15 IOD their discs merge into one band per feature that also
# holds a thin rim of the skin its muscles move (the action units of micro-expressions), and
# the whole mask covers about a fifth of the crop (22 %): a uniform heatmap scores ~0.22,
# so a focused one has room to score far more. Much smaller discs would be thinner than one
# cell of ResNet-50's deeper maps (a 14 x 14 map at 224 px has cells of 0.18 IOD), whose
# bilinearly upsampled heat could then never concentrate on them; much larger ones would
# cover the whole face and every layer would score alike.
RADIUS = 0.15

# 68 landmarks of an upright, eye-levelled face in 0..1 units of its square crop (0 and 1
# the crop's outer edges; pixel-centre coordinates in an S-pixel crop are `S * u - 0.5`).
# Made once from matplotlib's `grace_hopper.jpg` sample: `data_prep.face.locate` on the
# photo, `face_crop(points, align=True)` (default margin), then `crop.points(points, 1)
# + 0.5`, rounded to 4 decimals. `tests/test_gradcam_select.py` recomputes it. Valid only
# for aligned face crops (`python -m data_prep ... --crop detect --align`).
CANONICAL_LANDMARKS = np.array([
    [0.0849, 0.2922], [0.0961, 0.3949], [0.1117, 0.4978], [0.1275, 0.5964],
    [0.1616, 0.6873], [0.2142, 0.7660], [0.2859, 0.8238], [0.3717, 0.8692],
    [0.4680, 0.8886], [0.5710, 0.8730], [0.6665, 0.8348], [0.7499, 0.7781],
    [0.8207, 0.7116], [0.8708, 0.6217], [0.8905, 0.5210], [0.9064, 0.4112],
    [0.9179, 0.3011], [0.1126, 0.2053], [0.1527, 0.1325], [0.2251, 0.1105],
    [0.3040, 0.1244], [0.3680, 0.1640], [0.5410, 0.1617], [0.6101, 0.1218],
    [0.6948, 0.1139], [0.7732, 0.1366], [0.8222, 0.2018], [0.4545, 0.2670],
    [0.4547, 0.3335], [0.4546, 0.4045], [0.4501, 0.4751], [0.3548, 0.5089],
    [0.4025, 0.5253], [0.4547, 0.5419], [0.5041, 0.5318], [0.5494, 0.5169],
    [0.2005, 0.2863], [0.2423, 0.2579], [0.2911, 0.2566], [0.3421, 0.2909],
    [0.2927, 0.3010], [0.2394, 0.3021], [0.5858, 0.2932], [0.6323, 0.2606],
    [0.6855, 0.2596], [0.7330, 0.2804], [0.6918, 0.2999], [0.6386, 0.3010],
    [0.2931, 0.6424], [0.3472, 0.6282], [0.4007, 0.6227], [0.4399, 0.6341],
    [0.4805, 0.6234], [0.5506, 0.6367], [0.6304, 0.6374], [0.5513, 0.6944],
    [0.4884, 0.7081], [0.4439, 0.7097], [0.4042, 0.7072], [0.3479, 0.6859],
    [0.3196, 0.6441], [0.4029, 0.6583], [0.4426, 0.6609], [0.4827, 0.6590],
    [0.5989, 0.6443], [0.4827, 0.6590], [0.4470, 0.6612], [0.4029, 0.6583],
])


def canonical_landmarks(size: int) -> np.ndarray:
    """`CANONICAL_LANDMARKS` in pixel coordinates of a `size` x `size` aligned face crop.

    Returns:
        float32 `[68, 2]` (x, y).
    """
    return (CANONICAL_LANDMARKS * size - 0.5).astype(np.float32)


def inter_ocular(landmarks: np.ndarray) -> float:
    """Distance between the two eye centres (the means of points 36-41 and 42-47)."""
    landmarks = np.asarray(landmarks, np.float64)
    return float(np.linalg.norm(landmarks[LEFT_EYE].mean(0) - landmarks[RIGHT_EYE].mean(0)))


def region_mask(landmarks: np.ndarray, size: int) -> np.ndarray:
    """The facial-feature regions of a `size` x `size` image.

    Args:
        landmarks: `[68, 2]` (x, y) landmarks in the image's pixel coordinates.
        size: the image side S.

    Returns:
        bool `[S, S]` (rows y, columns x): True on pixels whose centre lies within
        `RADIUS` x the inter-ocular distance of a landmark in `REGIONS`.

    Raises:
        ValueError: `landmarks` is not `[68, 2]`, or its eye centres coincide.
    """
    landmarks = np.asarray(landmarks, np.float64)
    if landmarks.shape != (NUM_LANDMARKS, 2):
        raise ValueError(f"expected [{NUM_LANDMARKS}, 2] landmarks, got {list(landmarks.shape)}")
    distance = inter_ocular(landmarks)
    if not distance > 0:
        raise ValueError(f"the landmarks' eye centres coincide (inter-ocular distance "
                         f"{distance}); no face to find regions on")
    radius = RADIUS * distance
    points = landmarks[REGION_POINTS]  # [P, 2]
    y, x = np.mgrid[0:size, 0:size]
    squared = ((x[None] - points[:, 0, None, None]) ** 2
               + (y[None] - points[:, 1, None, None]) ** 2)  # [P, S, S]
    return (squared <= radius ** 2).any(axis=0)


def upsample(heatmap: np.ndarray, size: int) -> np.ndarray:
    """A `[h, w]` heatmap resized bilinearly (pixel centres aligned) to float32 `[S, S]`."""
    heatmap = np.asarray(heatmap, np.float32)
    if heatmap.ndim != 2:
        raise ValueError(f"expected a [h, w] heatmap, got shape {list(heatmap.shape)}")
    if heatmap.shape == (size, size):
        return heatmap
    return cv2.resize(heatmap, (size, size), interpolation=cv2.INTER_LINEAR)


def heat_in_regions(heatmap: np.ndarray, mask: np.ndarray) -> float:
    """The share of a heatmap's heat that falls inside a region mask.

    Args:
        heatmap: `[h, w]`, non-negative (a Grad-CAM map at its layer's resolution).
        mask: bool `[S, S]` (see `region_mask`).

    Returns:
        In 0..1: the heatmap resized bilinearly to S x S, its sum inside the mask over its
        total sum; 0 for an all-zero heatmap. A uniform heatmap scores the mask's area
        fraction.
    """
    mask = np.asarray(mask, bool)
    heat = upsample(heatmap, mask.shape[0])
    total = float(heat.sum())
    return float(heat[mask].sum()) / total if total > 0 else 0.0


def interpolation_matrix(length: int, size: int) -> np.ndarray:
    """The weights of `upsample` along one axis, from `length` cells to `size` pixels.

    `upsample` is separable and linear: a `[h, w]` map m becomes `A m B^T` with
    `A = interpolation_matrix(h, S)` and `B = interpolation_matrix(w, S)`. Column i is
    the upsampled one-hot cell i of a `[length, 1]` map (a single column, which bilinear
    resizing spreads unchanged over the width), so the weights are `upsample`'s own.

    Returns:
        float64 `[S, length]`, non-negative.
    """
    cells = np.eye(length, dtype=np.float32)
    return np.stack([upsample(cells[:, i:i + 1], size)[:, 0] for i in range(length)],
                    axis=1).astype(np.float64)


def share_ceiling(shape: tuple[int, int], masks) -> np.ndarray:
    """The highest `heat_in_regions` any non-negative map of a given resolution reaches.

    The share of a map m is `sum(up(m) * mask) / sum(up(m))`. Upsampling is linear with
    non-negative weights, so for m = sum_c m_c e_c (one-hot cells e_c) the share is the
    average of the one-hot shares `share(e_c)` weighted by `m_c * sum(up(e_c))`: it is
    never above the best single cell's, which a one-hot map reaches. With the separable
    form `up(m) = A m B^T` (`interpolation_matrix`), the in-mask heat of cell (i, j) is
    `(A^T mask B)[i, j]` and its total heat `colsum(A)[i] * colsum(B)[j]`, so every cell's
    share comes from one matrix product per mask.

    Args:
        shape: the maps' `(h, w)`.
        masks: bool `[N, S, S]` region masks (`region_mask`), or one `[S, S]` mask.

    Returns:
        float64 `[N]` in 0..1 (a float for one mask): per mask, the largest one-hot share.
        A 1 x 1 map's is the mask's area fraction (its upsampled heat is uniform).
    """
    masks = np.asarray(masks, bool)
    single = masks.ndim == 2
    masks = masks[None] if single else masks
    size = masks.shape[-1]
    rows, columns = (interpolation_matrix(n, size) for n in shape)  # [S, h], [S, w]
    inside = rows.T @ masks.astype(np.float64) @ columns  # [N, h, w]
    total = np.outer(rows.sum(axis=0), columns.sum(axis=0))  # [h, w]
    shares = np.divide(inside, total, out=np.zeros_like(inside), where=total > 0)
    ceilings = shares.reshape(len(masks), -1).max(axis=1)
    return float(ceilings[0]) if single else ceilings
