"""STCLQP: spatiotemporal completed local quantized patterns (Huang, Zhao, Hong, Zheng &
Pietikainen 2016, "Spontaneous facial micro-expression analysis using Spatiotemporal
Completed Local Quantized Patterns", Neurocomputing 175: 564-578), vectorised numpy, no
TensorFlow. No public code of the paper is known, and its equations were not at hand:
this module is written from its summary (abstract, highlights: "the sign-based,
magnitude-based and orientation-based difference of pixels"), TLCNN's account of its
setting, and the methods it builds on (CLBP, LQP, LBP-TOP); the orientation component in
particular is a reading of that summary (below). It comes in three stages, so that the
codebooks can be learned from the training clips of each fold alone:

    stclqp_codes(grey)             per clip, fold-independent (worker processes, cached):
                                   each block's and plane's counts of every pattern code
    fit_codebooks(codes_of_train)  per fold: k-means codebooks of the pattern vectors
    stclqp_histograms(codes, books) per clip and fold: codeword histograms, concatenated

The setting (TLCNN, Wang et al. 2018, Section 4.3, STCLQP baseline; Huang et al. 2016):
grey clips; 8 x 8 blocks; one circular neighbourhood of radius 2 with 16 points on each of
the XY, XT and YT planes; orientation from a 3 x 3 Gaussian kernel, 16 orientation levels,
4 quantisation levels; k-means codebooks of 20 words; then (outside this module)
supervised locality preserving projection of each component (`tfmer.handcrafted.slpp`)
and a linear SVM.

The three components of a centre pixel g_c with neighbours g_0 .. g_{P-1} (one plane):

- sign (LBP, CLBP_S of Guo, Zhang & Zhang 2010): bit p = [g_p - g_c >= 0];
- magnitude (CLBP_M of Guo et al. 2010): bit p = [|g_p - g_c| >= c], c the mean of
  |g_p - g_c| over all centres and neighbours, as CLBP's "mean value of m_p from the whole
  image";
- orientation (the paper's "orientation-based difference of pixels"): each pixel's
  gradient orientation theta in the plane, estimated with 3 x 3 Gaussian-derivative
  kernels and quantised to 16 levels q = floor(16 theta / 2 pi); level p of the pattern
  is the neighbour's orientation relative to the centre's, quantised to 4 levels:
  ((q_p - q_c) mod 16) // 4.

Local quantized patterns (LQP, Hussain & Triggs 2012): each component's pattern is the
vector of its P bits (sign, magnitude) or levels (orientation); a k-means codebook of 20
words is learned from the patterns of the training clips, and each pattern is replaced by
its nearest word (Euclidean) before the histograms are made.

Choices the paper (as far as its description reaches us) leaves open, made here:

- Neighbours: at angle 2 pi p / P, as `tfmer.handcrafted.lbp` (the Oulu `LBPTOP.m`): XY
  (x + R cos, y - R sin) in the centre's frame; XT (x + R cos, t + R sin) in the centre's
  row; YT (y - R sin, t + R cos) in the centre's column; bit or level p weighs 2^p (sign,
  magnitude) or 4^p (orientation) in the code. Offsets within 1e-9 of an integer are
  taken as that integer (cos(pi / 2) is 6e-17 in floating point).
- Grey values of the neighbours (sign, magnitude) are bilinear, as in CLBP and LBP
  (Ojala et al. 2002): linear along the plane's cos axis, then along its sin axis, each
  step as a + u (b - a), so that equal corners give their value exactly (a tie with the
  centre stays a tie). The fraction u is the offset's, the same for every centre.
- Orientation is an angle and cannot be interpolated: the neighbour's quantised
  orientation is taken at the nearest pixel (each offset rounded by floor(v + 0.5)).
- Gradient: the 3 x 3 derivative-of-Gaussian kernels with sigma 0.5 (MATLAB's
  `fspecial('gaussian')` default for a 3 x 3 kernel): along the plane's cos axis u,
  du = sum_w g(w) (I(u + 1, w) - I(u - 1, w)) over the other axis w, g = (e^{-1 / (2
  sigma^2)}, 1, e^{-1 / (2 sigma^2)}) (the kernel's common factor drops out of the angle),
  likewise dv along the sin axis, which points to -y where y is an axis of the plane (as
  the sampling circle); the clip's sides replicated (the gradient is defined at every
  pixel); theta = atan2(dv, du) in [0, 2 pi), orientation 0 where du = dv = 0.
- The magnitude threshold c is the clip's, one per plane (the "whole image" of CLBP is
  the clip here, so a clip's codes depend on nothing else).
- Centres: every pixel at least R from the frame's sides and R frames from the clip's
  ends, inside the blocks (the frame cut into `rows x cols` blocks of floor(H / rows) x
  floor(W / cols) pixels, row-major, the remainder at the bottom and right dropped, as
  `tfmer.handcrafted.lbp`); a centre's neighbours may lie in other blocks. (The Oulu code
  cuts the border of each block instead, which would leave 12 x 12 of 16 x 16 centres.)
- Codebooks: one per component and plane (the paper: codebooks "for each component in
  appearance and temporal domains"), learned by k-means++ seeding and Lloyd iterations
  over the distinct patterns weighted by their counts (the same as k-means over every
  centre's pattern); exact for the sign and magnitude (2^16 codes), on a seeded random
  sample of 16384 training centres for the orientation (4^16 codes, nearly one per
  centre: `fit_codebooks`). The paper's discriminative codebook selection is not part of
  the TLCNN setting (k-means, 20 words) and is not done.
- Histograms: each block's, plane's and component's histogram of the 20 words divided by
  its sum (as LBP-TOP); concatenated component-major (sign, magnitude, orientation), then
  plane (XY, XT, YT), then block (row-major), then word: 3 x 3 x 64 x 20 = 11520 values
  for the paper's setting, the columns of component c being c * L .. (c + 1) * L - 1 with
  L = 3 x blocks x words.

The codes of a clip are a plain dict of numpy arrays (they pickle, save with
`np.savez(path, **codes)` and load with `dict(np.load(path))`): for each component, a
compressed-sparse-row table of counts whose rows are plane-major (row = plane x blocks +
block): `"{component}_indptr"` int64 `[3 * blocks + 1]`, `"{component}_code"` (the
codes of each row in increasing order; uint16 for 16-point sign and magnitude codes,
uint32 for 16-point 4-level orientation codes), `"{component}_count"` (uint16, or uint32
where a count exceeds 65535); and the setting: `"grid"`, `"radius"`, `"points"`,
`"orientations"`, `"levels"`, `"sigma"`.

Cost on one core for a `[32, 128, 128]` clip (8 x 8 blocks, 16 points; measured on a
busy 2-core machine): `stclqp_codes` about 0.3 s and 10-13 MB of codes (6-8 MB with
`np.savez_compressed`), nearly two thirds of it the orientation codes, of which a clip's
1.3 million centres have about as many distinct ones; `fit_codebooks` of 80 clips about
3 s; `stclqp_histograms` about 0.13 s, 90 % of it finding the nearest of 20 words for
each of those orientation patterns (the sign and magnitude go through a lookup table).
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from threadpoolctl import threadpool_limits

PLANES = ("XY", "XT", "YT")
COMPONENTS = ("sign", "magnitude", "orientation")

STCLQP_GRID = (8, 8)
STCLQP_RADIUS = 2
STCLQP_POINTS = 16
STCLQP_ORIENTATIONS = 16
STCLQP_LEVELS = 4
STCLQP_WORDS = 20
STCLQP_SIGMA = 0.5
"""The TLCNN setting (Section 4.3): 8 x 8 blocks, (R, P) = (2, 16), 16 orientation and 4
quantisation levels, 20 words; sigma of the 3 x 3 Gaussian kernel (not given) is MATLAB's
default."""

_AXES = ((2, 1), (2, 0), (0, 1))
"""(cos axis, sin axis) of XY, XT and YT in a `[T, H, W]` clip (0 = t, 1 = y, 2 = x)."""

_SETTING = ("grid", "radius", "points", "orientations", "levels", "sigma")


def neighbour_offsets(radius: int, points: int) -> np.ndarray:
    """float64 `[3, points, 3]`: the (dt, dy, dx) of neighbour p on XY, XT and YT (module
    docstring), near-integers snapped to integers."""
    angles = 2 * np.pi * np.arange(points) / points
    cos, sin = radius * np.cos(angles), radius * np.sin(angles)
    cos, sin = (np.where(np.abs(v - np.round(v)) < 1e-9, np.round(v), v) + 0.0
                for v in (cos, sin))
    zero = np.zeros(points)
    return np.stack([np.stack([zero, -sin, cos], -1), np.stack([sin, zero, cos], -1),
                     np.stack([cos, -sin, zero], -1)]) + 0.0


def _code_dtype(space: int):
    for dtype in (np.uint8, np.uint16, np.uint32, np.uint64):
        if space - 1 <= np.iinfo(dtype).max:
            return dtype
    raise ValueError(f"a code space of {space} does not fit 64 bits")


def _digits(codes, base: int, points: int) -> np.ndarray:
    """float64 `[n, points]`: digit p (weight base^p) of each code."""
    codes = np.asarray(codes, np.uint64)
    weights = np.uint64(base) ** np.arange(points, dtype=np.uint64)
    return ((codes[:, None] // weights) % np.uint64(base)).astype(np.float64)


def _check_setting(radius, points, orientations, levels, sigma):
    if int(radius) != radius or radius < 1:
        raise ValueError(f"radius must be an integer >= 1, got {radius}")
    if int(points) != points or not 1 <= points <= 16:
        raise ValueError(f"points must be an integer in 1..16, got {points}")
    if int(orientations) != orientations or orientations < 2:
        raise ValueError(f"orientations must be an integer >= 2, got {orientations}")
    if int(levels) != levels or levels < 2 or orientations % levels:
        raise ValueError(f"levels must be an integer >= 2 dividing orientations "
                         f"({orientations}), got {levels}")
    if levels ** points > 1 << 32:
        raise ValueError(f"levels ** points must be at most 2^32 (codes of 32 bits), got "
                         f"{levels} ** {points}")
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")


def _sample_bilinear(volume, lo, hi, offset, axes) -> np.ndarray:
    """The neighbours at `offset` (dt, dy, dx) of the centres `volume[lo:hi]` (per axis):
    linear along `axes[0]`, then along `axes[1]`."""
    base = np.floor(offset).astype(int)
    frac = offset - base

    def at(shift):
        return volume[tuple(slice(a + s, b + s) for a, b, s in zip(lo, hi, shift))]

    def along_first(shift):
        near = at(shift)
        if frac[axes[0]] == 0:
            return near
        far = shift.copy()
        far[axes[0]] += 1
        return near + frac[axes[0]] * (at(far) - near)

    near = along_first(base)
    if frac[axes[1]] == 0:
        return near
    far = base.copy()
    far[axes[1]] += 1
    return near + frac[axes[1]] * (along_first(far) - near)


def _derivative(volume, along: int, across: int, weight: float) -> np.ndarray:
    """sum_w g(w) (I(u + 1, w) - I(u - 1, w)): the central difference along `along`,
    smoothed by (weight, 1, weight) along `across`, the sides replicated."""
    padded = np.pad(volume, [(1, 1) if axis in (along, across) else (0, 0)
                             for axis in range(3)], mode="edge")

    def window(axis_shifts):
        index = []
        for axis in range(3):
            if axis in (along, across):
                shift = axis_shifts.get(axis, 0)
                index.append(slice(1 + shift, padded.shape[axis] - 1 + shift))
            else:
                index.append(slice(None))
        return padded[tuple(index)]

    def difference(across_shift):
        return (window({along: 1, across: across_shift})
                - window({along: -1, across: across_shift}))

    return difference(0) + weight * (difference(-1) + difference(1))


def quantised_orientation(volume, plane: int, orientations: int = STCLQP_ORIENTATIONS,
                          sigma: float = STCLQP_SIGMA) -> np.ndarray:
    """int16 `[T, H, W]`: each pixel's gradient orientation on plane `plane` (0 XY, 1 XT,
    2 YT), quantised to `orientations` levels (module docstring)."""
    volume = np.asarray(volume, np.float64)
    cos_axis, sin_axis = _AXES[plane]
    weight = float(np.exp(-1.0 / (2.0 * sigma ** 2)))
    du = _derivative(volume, cos_axis, sin_axis, weight)
    dv = _derivative(volume, sin_axis, cos_axis, weight)
    if sin_axis == 1:  # the sin axis points to -y
        dv = 0.0 - dv
    theta = np.arctan2(dv, du)
    q = np.floor(theta * (orientations / (2 * np.pi))) % orientations
    q[(du == 0) & (dv == 0)] = 0
    return q.astype(np.int16)


def _counts(block, code, blocks: int, space: int):
    """(indptr `[blocks + 1]`, codes, counts) of the `(block, code)` pairs, one row per
    block, codes increasing within a row."""
    key_dtype = np.uint32 if blocks * space < 1 << 32 else np.uint64
    keys, counts = np.unique(block.astype(key_dtype) * key_dtype(space)
                             + code.astype(key_dtype), return_counts=True)
    rows = keys // key_dtype(space)
    indptr = np.searchsorted(rows, np.arange(blocks + 1, dtype=key_dtype))
    return indptr, keys - rows * key_dtype(space), counts


def _relative_levels(neighbour, centre, orientations: int, step: int) -> np.ndarray:
    """((q_p - q_c) mod orientations) // step, by bit operations where both are powers
    of two."""
    if orientations & (orientations - 1) == 0 and step & (step - 1) == 0:
        return ((neighbour - centre) & (orientations - 1)) >> (step.bit_length() - 1)
    return ((neighbour - centre) % orientations) // step


def stclqp_codes(grey, grid=STCLQP_GRID, radius: int = STCLQP_RADIUS,
                 points: int = STCLQP_POINTS, orientations: int = STCLQP_ORIENTATIONS,
                 levels: int = STCLQP_LEVELS, sigma: float = STCLQP_SIGMA) -> dict:
    """The fold-independent part of STCLQP: each block's and plane's counts of every sign,
    magnitude and orientation code (module docstring).

    Args:
        grey: grey clip `[T, H, W]` (any real dtype; 0..255 as `rgb2gray` makes it).
        grid: (rows, cols) of blocks (8 x 8 in the paper's setting).
        radius: R of the circular neighbourhood, the same along x, y and t (2).
        points: neighbours P on each plane (16).
        orientations: levels of the gradient orientation (16).
        levels: levels of a neighbour's relative orientation (4).
        sigma: of the 3 x 3 Gaussian kernel (0.5).

    Returns:
        A dict of numpy arrays (module docstring): per component a sparse table of counts,
        rows plane-major (`plane * blocks + block`), with the setting.

    Raises:
        ValueError: not a `[T, H, W]` clip, too short or small for the radius, a bad
            setting, or a block without a centre pixel (naming the sizes).
    """
    grey = np.asarray(grey)
    if grey.ndim != 3:
        raise ValueError(f"stclqp_codes needs a grey [T, H, W] clip, got shape {grey.shape}")
    if not (np.issubdtype(grey.dtype, np.integer) or np.issubdtype(grey.dtype, np.floating)):
        raise ValueError(f"stclqp_codes needs real grey levels, got dtype {grey.dtype}")
    _check_setting(radius, points, orientations, levels, sigma)
    radius, points, orientations, levels = (int(v) for v in (radius, points, orientations,
                                                                levels))
    grid = tuple(grid)
    if len(grid) != 2 or any(int(g) != g or g < 1 for g in grid):
        raise ValueError(f"grid must be (rows, cols) of integers >= 1, got {grid}")
    rows, cols = int(grid[0]), int(grid[1])
    frames, height, width = grey.shape
    if frames < 2 * radius + 1:
        raise ValueError(f"a clip of {frames} frames is too short for temporal radius "
                         f"{radius} (needs at least {2 * radius + 1})")
    block_height, block_width = height // rows, width // cols
    # the first block of a row or column must hold a centre (radius < block size), and so
    # must the last (its first pixel at least radius from the far side)
    if (block_height <= radius or block_width <= radius
            or (rows - 1) * block_height >= height - radius
            or (cols - 1) * block_width >= width - radius):
        raise ValueError(f"frames of {height} x {width} px in {rows} x {cols} blocks of "
                         f"{block_height} x {block_width} px leave a block without a centre "
                         f"pixel at least {radius} px (the radius) from the frame's sides")
    lo = (radius, radius, radius)
    hi = (frames - radius, min(height - radius, rows * block_height),
          min(width - radius, cols * block_width))
    block_y = np.arange(lo[1], hi[1]) // block_height
    block_x = np.arange(lo[2], hi[2]) // block_width
    volume = grey.astype(np.float64)
    centres = volume[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
    shape = centres.shape
    block = np.broadcast_to((block_y[:, None] * cols + block_x[None, :])[None],
                            shape).ravel()
    blocks = rows * cols
    offsets = neighbour_offsets(radius, points)
    rounded = np.floor(offsets + 0.5).astype(int)
    binary_space, orientation_space = 2 ** points, levels ** points
    step = orientations // levels
    tables = {name: [] for name in COMPONENTS}
    for plane in range(3):
        sign = np.zeros(shape, _code_dtype(binary_space))
        magnitude = np.zeros(shape, _code_dtype(binary_space))
        differences = np.empty((points,) + shape)
        for p in range(points):
            difference = _sample_bilinear(volume, lo, hi, offsets[plane, p], _AXES[plane])
            difference = difference - centres
            sign |= (difference >= 0).astype(sign.dtype) << p
            np.abs(difference, out=differences[p])
        threshold = differences.mean()
        for p in range(points):
            magnitude |= (differences[p] >= threshold).astype(magnitude.dtype) << p
        del differences
        q = quantised_orientation(volume, plane, orientations, sigma)
        q_centre = q[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
        orientation = np.zeros(shape, _code_dtype(orientation_space))
        for p in range(points):
            neighbour = q[tuple(slice(a + s, b + s) for a, b, s in zip(lo, hi, rounded[plane, p]))]
            level = _relative_levels(neighbour, q_centre, orientations, step)
            orientation += level.astype(orientation.dtype) * orientation.dtype.type(levels ** p)
        for name, code, space in (("sign", sign, binary_space),
                                  ("magnitude", magnitude, binary_space),
                                  ("orientation", orientation, orientation_space)):
            tables[name].append(_counts(block, code.ravel(), blocks, space))
    codes = {}
    for name, space in (("sign", binary_space), ("magnitude", binary_space),
                        ("orientation", orientation_space)):
        parts = tables[name]
        starts = np.cumsum([0] + [len(part[1]) for part in parts[:-1]])
        codes[f"{name}_indptr"] = np.concatenate(
            [parts[0][0][:1]] + [part[0][1:] + start for part, start in zip(parts, starts)]
        ).astype(np.int64)
        codes[f"{name}_code"] = np.concatenate([part[1] for part in parts]).astype(
            _code_dtype(space))
        counts = np.concatenate([part[2] for part in parts])
        codes[f"{name}_count"] = counts.astype(np.uint16 if counts.max() <= 65535
                                               else np.uint32)
    codes.update(grid=np.array([rows, cols]), radius=np.array(radius),
                 points=np.array(points), orientations=np.array(orientations),
                 levels=np.array(levels), sigma=np.array(float(sigma)))
    return codes


def _bases(codes) -> dict:
    """The base of each component's digits: 2 (bits) or the orientation levels."""
    return {"sign": 2, "magnitude": 2, "orientation": int(codes["levels"])}


def _check_codes(codes, what: str = "codes"):
    if not isinstance(codes, dict):
        raise ValueError(f"{what} must be the dict of arrays stclqp_codes returns, got "
                         f"{type(codes).__name__}")
    missing = [key for key in _SETTING + tuple(f"{name}_{part}" for name in COMPONENTS
                                               for part in ("indptr", "code", "count"))
               if key not in codes]
    if missing:
        raise ValueError(f"{what} lack the arrays {', '.join(missing)}: not the output of "
                         f"stclqp_codes")


def _setting(codes) -> tuple:
    return tuple(tuple(np.ravel(codes[key]).tolist()) for key in _SETTING)


def _draw(weights, rng) -> int:
    """An index drawn with probability proportional to `weights`."""
    cumulative = np.cumsum(weights)
    index = int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"))
    return min(index, len(weights) - 1)


def weighted_kmeans(patterns, weights, words: int, rng, max_iter: int = 100,
                    tol: float = 1e-4) -> np.ndarray:
    """k-means of weighted points: k-means++ seeding (Arthur & Vassilvitskii 2007, each
    point's chance times its weight), then Lloyd iterations until no assignment changes
    or the words move by at most `tol` times the points' mean variance per dimension in
    all (squared; scikit-learn's rule), at most `max_iter` of them; the same as k-means
    over every point repeated `weight` times. A word left without points stays.

    Args:
        patterns: float64 `[n, dims]` distinct points.
        weights: `[n]` positive weights (counts).
        words: k.
        rng: a `numpy.random.Generator`.

    Returns:
        float64 `[words, dims]`.
    """
    patterns = np.ascontiguousarray(patterns, np.float64)
    weights = np.asarray(weights, np.float64)
    count = len(patterns)
    if count < words:
        raise ValueError(f"{count} distinct patterns cannot make {words} words")
    centres = np.empty((words, patterns.shape[1]))
    centres[0] = patterns[_draw(weights, rng)]
    closest = ((patterns - centres[0]) ** 2).sum(axis=1)
    for k in range(1, words):
        chance = weights * closest
        if not chance.sum() > 0:
            raise ValueError(f"{k} distinct patterns cannot make {words} words")
        centres[k] = patterns[_draw(chance, rng)]
        np.minimum(closest, ((patterns - centres[k]) ** 2).sum(axis=1), out=closest)
    mean = weights @ patterns / weights.sum()
    threshold = tol * float((weights @ (patterns - mean) ** 2).mean()) / weights.sum()
    labels, columns = None, np.arange(count + 1)
    with threadpool_limits(1, user_api="blas"):  # 2 BLAS threads on 2 busy cores: 3x slower
        for _ in range(max_iter):
            new = ((centres ** 2).sum(axis=1) - 2 * (patterns @ centres.T)).argmin(axis=1)
            if labels is not None and np.array_equal(new, labels):
                break
            labels = new
            membership = sparse.csc_matrix((weights, labels, columns), shape=(words, count))
            mass = np.bincount(labels, weights=weights, minlength=words)
            kept = mass > 0
            moved = centres.copy()
            moved[kept] = (membership @ patterns)[kept] / mass[kept, None]
            shift = float(((moved - centres) ** 2).sum())
            centres = moved
            if shift <= threshold:
                break
    return centres


_EXACT_SPACE = 1 << 16
"""Code spaces up to this size are counted in full (and mapped to words by a lookup
table); larger ones (orientation, 4^16) are sampled."""


def _training_patterns(codes: list, name: str, plane: int, space: int, sample: int, rng):
    """(distinct codes, weights) of component `name` on `plane` over the clips: exact
    counts, or, for a code space above `_EXACT_SPACE`, the counts of the patterns of
    `sample` centres drawn at random (when the clips hold more)."""
    blocks = int(np.prod(codes[0]["grid"]))
    pieces = []
    for clip in codes:
        indptr = clip[f"{name}_indptr"]
        start, stop = indptr[plane * blocks], indptr[(plane + 1) * blocks]
        pieces.append((clip[f"{name}_code"][start:stop], clip[f"{name}_count"][start:stop]))
    totals = np.array([count.sum(dtype=np.int64) for _, count in pieces], np.float64)
    if space <= _EXACT_SPACE:
        weights = np.zeros(space)
        for code, count in pieces:
            weights += np.bincount(code.astype(np.intp), weights=count, minlength=space)
        distinct = np.flatnonzero(weights)
        return distinct, weights[distinct]
    if totals.sum() > sample:
        draws = rng.multinomial(sample, totals / totals.sum())
        sampled = []
        for (code, count), total, draw in zip(pieces, totals, draws):
            if draw:
                positions = rng.random(draw) * total
                index = np.searchsorted(np.cumsum(count, dtype=np.int64), positions,
                                        side="right")
                sampled.append(code[np.minimum(index, len(code) - 1)])
        distinct, weights = np.unique(np.concatenate(sampled), return_counts=True)
        return distinct, weights.astype(np.float64)
    distinct, inverse = np.unique(np.concatenate([code for code, _ in pieces]),
                                  return_inverse=True)
    weights = np.bincount(inverse.ravel(), weights=np.concatenate(
        [count for _, count in pieces]).astype(np.float64), minlength=len(distinct))
    return distinct, weights


def fit_codebooks(codes: list, words: int = STCLQP_WORDS, seed: int = 0,
                  sample: int = 1 << 14, max_iter: int = 100) -> dict:
    """The k-means codebooks of STCLQP (LQP, Hussain & Triggs 2012) from the codes of the
    training clips: one per component and plane, over the pattern vectors (the P bits of
    a sign or magnitude code, the P levels of an orientation code, as floats), each
    distinct pattern weighted by its count (`weighted_kmeans`, the same as k-means over
    every centre's pattern).

    The orientation codes (4^16 of them) are nearly all distinct: 80 clips of 32 x 128 x
    128 hold about 34 million centres per plane and as many distinct patterns, too many
    for k-means in seconds. For a code space above 2^16, k-means therefore runs on the
    patterns of `sample` centres drawn at random (seeded, uniformly over all the
    training centres), as codebooks of visual words are commonly learned; the sign and
    magnitude codebooks (2^16 codes) are exact.

    Args:
        codes: `stclqp_codes` of the training clips (one setting).
        words: codebook size (20 in the paper's setting).
        seed: seeds k-means++ and the sample; the same seed gives the same codebooks.
        sample: centres drawn for a large code space (above), 16384.
        max_iter: Lloyd iterations at most.

    Returns:
        A dict of numpy arrays: `"{component}_{plane}_words"` float64 `[words, P]`;
        `"{component}_{plane}_lut"` uint8 `[2^P]`, the nearest word of every code, for the
        sign and magnitude; `"words"`; the clips' setting (`"grid"`, `"radius"`, ...).

    Raises:
        ValueError: no clips, clips of different settings, or fewer distinct patterns
            than words.
    """
    codes = list(codes)
    if not codes:
        raise ValueError("fit_codebooks needs the codes of at least one training clip")
    for i, clip in enumerate(codes):
        _check_codes(clip, f"codes[{i}]")
        if _setting(clip) != _setting(codes[0]):
            raise ValueError(f"codes[{i}] have the setting {_setting(clip)}, codes[0] "
                             f"{_setting(codes[0])} ({', '.join(_SETTING)})")
    if int(words) != words or not 1 <= words <= 255:
        raise ValueError(f"words must be an integer in 1..255, got {words}")
    if int(sample) != sample or sample < words:
        raise ValueError(f"sample must be an integer >= words ({words}), got {sample}")
    points = int(codes[0]["points"])
    books = {key: np.array(codes[0][key]) for key in _SETTING}
    books["words"] = np.array(int(words))
    for c, (name, base) in enumerate(_bases(codes[0]).items()):
        space = base ** points
        for plane, plane_name in enumerate(PLANES):
            rng = np.random.default_rng([seed, c, plane])
            distinct, weights = _training_patterns(codes, name, plane, space, sample, rng)
            if len(distinct) < words:
                raise ValueError(f"the {name} codes on {plane_name} of {len(codes)} clip(s) "
                                 f"hold {len(distinct)} distinct patterns, fewer than "
                                 f"{words} words")
            centres = weighted_kmeans(_digits(distinct, base, points), weights, int(words), rng,
                                      max_iter)
            books[f"{name}_{plane_name}_words"] = centres
            if space <= _EXACT_SPACE:
                books[f"{name}_{plane_name}_lut"] = nearest_words(
                    np.arange(space), centres, base).astype(np.uint8)
    return books


CODEBOOK_SAMPLE = 2048
"""Orientation centres per plane a clip keeps for learning codebooks (`codebook_sample`):
more than the 16384 `fit_codebooks` draws from the training clips of a fold once there
are 8 of them."""


def codebook_sample(codes: dict, centres: int = CODEBOOK_SAMPLE, seed: int = 0) -> dict:
    """What `fit_codebooks` needs of one clip, small enough to keep for every clip of a
    run: codes in `stclqp_codes`' format (and setting) holding, for each plane, the
    clip's counts of every sign and magnitude code summed over the blocks (in the first
    block's row; `fit_codebooks` counts those exactly, over all blocks) and the
    orientation codes of `centres` of its centres drawn at random (seeded, with
    replacement, each centre equally likely; `fit_codebooks` samples orientation codes
    anyway). A clip's sample depends on the clip and the seed alone.

    Args:
        codes: `stclqp_codes` of the clip.
        centres: orientation centres kept per plane.
        seed: seeds the draw.

    Returns:
        The sample, a dict of numpy arrays like `codes` (other blocks' rows empty).
    """
    _check_codes(codes)
    blocks = int(np.prod(codes["grid"]))
    rng = np.random.default_rng(seed)
    sample = {key: np.array(codes[key]) for key in _SETTING}
    for name in COMPONENTS:
        indptr, code, count = (codes[f"{name}_{part}"] for part in ("indptr", "code", "count"))
        rows, kept_codes, kept_counts = [0], [], []
        for plane in range(len(PLANES)):
            start, stop = indptr[plane * blocks], indptr[(plane + 1) * blocks]
            plane_codes, plane_counts = code[start:stop], count[start:stop].astype(np.int64)
            if name == "orientation":
                positions = rng.integers(0, plane_counts.sum(), centres)
                drawn = plane_codes[np.searchsorted(np.cumsum(plane_counts), positions,
                                                    side="right")]
                distinct, totals = np.unique(drawn, return_counts=True)
            else:
                distinct, inverse = np.unique(plane_codes, return_inverse=True)
                totals = np.bincount(inverse.ravel(), weights=plane_counts).astype(np.int64)
            kept_codes.append(distinct)
            kept_counts.append(totals)
            rows += [rows[-1] + len(distinct)] + [rows[-1] + len(distinct)] * (blocks - 1)
        sample[f"{name}_indptr"] = np.array(rows, np.int64)
        sample[f"{name}_code"] = np.concatenate(kept_codes).astype(code.dtype)
        sample[f"{name}_count"] = np.concatenate(kept_counts).astype(np.uint32)
    return sample


def nearest_words(codes, centres, base: int) -> np.ndarray:
    """int `[n]`: the nearest word (Euclidean; the lowest index on a tie) of the pattern
    vector of each code (digit p of weight base^p, `[n]` unsigned integers). The scores
    ||c||^2 - 2 v . c are summed from tables of groups of digits of at most 256 values
    (4 levels: 4 digits a group, a byte of the code), a chunk of codes at a time."""
    codes = np.asarray(codes)
    centres = np.asarray(centres, np.float64)
    points = centres.shape[1]
    group = max(1, int(np.floor(np.log(256) / np.log(base) + 1e-9)))
    power_of_two = base & (base - 1) == 0
    if not power_of_two:
        codes = codes.astype(np.uint64)
    tables = []
    for first in range(0, points, group):
        width = min(group, points - first)
        table = _digits(np.arange(base ** width), base, width) @ (
            -2 * centres[:, first:first + width].T)
        if first == 0:
            table += (centres ** 2).sum(axis=1)
        tables.append((table, first, width))

    def group_values(part, first, width):
        if power_of_two:
            bits = base.bit_length() - 1
            return (part >> (first * bits)) & ((1 << (width * bits)) - 1)
        return (part // np.uint64(base ** first)) % np.uint64(base ** width)

    out = np.empty(len(codes), np.intp)
    chunk = 16384
    for start in range(0, len(codes), chunk):
        part = codes[start:start + chunk]
        scores = None
        for table, first, width in tables:
            values = table[group_values(part, first, width)]
            if scores is None:
                scores = values
            else:
                scores += values
        out[start:start + chunk] = scores.argmin(axis=1)
    return out


def stclqp_histograms(codes: dict, codebooks: dict) -> np.ndarray:
    """STCLQP of one clip: each block's, plane's and component's histogram of codewords
    (each pattern replaced by its nearest word), divided by its sum, concatenated.

    Args:
        codes: `stclqp_codes` of the clip.
        codebooks: `fit_codebooks` of the fold's training clips (the same setting).

    Returns:
        float64 `[3 * 3 * blocks * words]`: component-major (sign, magnitude,
        orientation), then plane (XY, XT, YT), then block (row-major), then word; each
        run of `words` values sums to 1. (11520 values in the paper's setting.)

    Raises:
        ValueError: not codes or codebooks, or codes of another setting than the
            codebooks'.
    """
    _check_codes(codes)
    if not isinstance(codebooks, dict) or "words" not in codebooks:
        raise ValueError("codebooks must be the dict fit_codebooks returns")
    if _setting(codes) != _setting(codebooks):
        raise ValueError(f"codes of the setting {_setting(codes)} do not fit codebooks of "
                         f"{_setting(codebooks)} ({', '.join(_SETTING)})")
    blocks = int(np.prod(codes["grid"]))
    words = int(codebooks["words"])
    parts = []
    for name, base in _bases(codes).items():
        indptr, code, count = (codes[f"{name}_{part}"] for part in ("indptr", "code", "count"))
        for plane, plane_name in enumerate(PLANES):
            rows = indptr[plane * blocks:(plane + 1) * blocks + 1]
            entries = slice(rows[0], rows[-1])
            lut = codebooks.get(f"{name}_{plane_name}_lut")
            if lut is not None:
                word = lut[code[entries]]
            else:
                word = nearest_words(code[entries], codebooks[f"{name}_{plane_name}_words"],
                                     base)
            block = np.repeat(np.arange(blocks), np.diff(rows))
            histogram = np.bincount(block * words + word, weights=count[entries],
                                    minlength=blocks * words).reshape(blocks, words)
            parts.append(histogram / histogram.sum(axis=1, keepdims=True))
    return np.concatenate([part.ravel() for part in parts])
