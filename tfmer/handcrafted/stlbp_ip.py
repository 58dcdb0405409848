"""STLBP-IP, spatiotemporal local binary pattern with integral projection (Huang, Wang, Zhao,
Pietikainen 2015, "Facial micro-expression recognition using spatiotemporal local binary
pattern with integral projection", ICCV workshops), vectorised numpy, no TensorFlow;
`stlbp_ip` in the setting of TLCNN's baseline (Wang et al. 2018, Section 4.3).

The method, and where each detail comes from ("paper" = the abstract of Huang et al. 2015 and
its description in TLCNN Section 4.3; "reference" = the public MATLAB re-implementation
`main_STLBPIP.m`, `STLBP_IP_XY.m`, `STLBP_IP_YT.m`, `STLBP_IP_XT.m`, `LBP_1D.m` of GitHub
yuxinhe/Facial-Micro-Expression-Recognition-using-STLBP-with-Integral-Projecti, not by the
paper's authors; "lbp.m" = the Oulu `lbp.m` of Heikkila & Ahonen, version 0.3.3, which the
reference calls for its 2-D LBP):

- difference images (paper: "an integral projection method based on difference images");
  the neutral face subtracted is the clip's first frame, `D_t = I_t - I_1` for t = 2..T,
  signed, as the reference does (`back_image = VolData(:,:,1)`, `imsubtract` of doubles,
  frames 2..Length): a clip of T frames gives T - 1 difference images;
- blocks (paper: 8 x 9 blocks, TLCNN Section 4.3): each difference image is cut into
  `rows x cols` blocks of `floor(H / rows)` by `floor(W / cols)` pixels, row-major, the
  remainder at the bottom and right dropped (as `tfmer.handcrafted.lbp`); the paper writes
  "8 x 9" without saying which number counts rows: rows first, as every tfmer grid;
- integral projections of each block of each difference image: the horizontal projection
  `H(y) = sum_x D(x, y)` (one value per row of the block) and the vertical projection
  `V(x) = sum_y D(x, y)` (one per column), sums as the reference (`sum(diff_image, 2)`,
  `sum(diff_image)`); the 1 / (x2 - x1) of the textbook definition is left out: a positive
  constant per block changes no 1-D LBP comparison, and the sums of integer grey levels are
  exact, so ties stay ties;
- appearance (paper: 1DLBP on the horizontal and vertical projections, P = 8): the 1-D LBP of
  `LBP_1D.m` with linear mask W = P + 1 (`W = 9` in `main_STLBPIP.m`): for every centre at
  least P / 2 from both ends, the P neighbours `c - P/2 .. c - 1, c + 1 .. c + P/2` are
  compared with the centre (bit 1 when neighbour >= centre) and the first (leftmost)
  neighbour is the most significant bit, `sum_k s_k 2^(P - 1 - k)`; one histogram per block
  and projection over all difference images (the reference means to average per-frame
  histograms, each with the same count of codes, which is the same; its running
  `fxy = sum(fxy, 2) / (Length - 1)` inside the loop is a slip not followed);
- shape (paper: 2DLBP of the temporal texture images, radius 3, P neighbours): the horizontal
  projections of a block over time form the image `YT` of `bh x (T - 1)` pixels (rows y,
  columns t, `image_yt = [image_yt, h_ip]` in `STLBP_IP_YT.m`), the vertical ones the image
  `XT` of `(T - 1) x bw` pixels (rows t, columns x, `STLBP_IP_XT.m`); the 2-D LBP is `lbp.m`
  (`lbp(image, R, P, mapping, 'h')`; the reference's R = 1 replaced by the paper's R = 3):
  neighbour i of P at (row, col) offset `(-R sin(2 pi i / P), R cos(2 pi i / P))`, bit i
  (value 2^i), centres every pixel whose neighbourhood box fits (R from each side for
  P = 8); a neighbour within 1e-6 of a pixel is read as it is, the others bilinearly with
  the four weights rounded to 6 decimals (the fourth as 1 minus the other three) and the
  interpolated value rounded to 4 decimals (`roundn`, MATLAB's half away from zero);
- uniform patterns (paper: "uniform pattern is used in 1DLBP and 2DLBP coding"): the
  `getmapping(P, 'u2')` table of the reference: the uniform codes (at most two circular 0/1
  transitions) in bins 0 .. P(P - 1) + 1 in increasing order of the code, every other code
  in the last bin (59 bins for P = 8), i.e. `tfmer.handcrafted.lbp.uniform_mapping` with its
  bin 0 (the non-uniform codes) moved last; else 2^P bins, one per code;
- each histogram divided by its sum (`LBP_1D.m` divides by the count of centres, the
  reference's `fyt / sum(fyt, 2)`), all concatenated.

The classifier of the paper (not implemented here): TLCNN Section 4.3 gives an SVM with a
chi-square kernel and the penalty grid-searched; the kernel's exact form and the grid are
not given there, and the reference trains LIBSVM's defaults (`svmtrain(label, feature)`:
RBF kernel, C = 1).
"""

from __future__ import annotations

import numpy as np

from tfmer.handcrafted.lbp import uniform_mapping

PARTS = ("H-1DLBP", "V-1DLBP", "YT-2DLBP", "XT-2DLBP")
"""The four histograms of each block, in the order of `stlbp_ip`'s output: the 1-D LBP of the
horizontal and of the vertical projections, the 2-D LBP of the `YT` and of the `XT` temporal
texture images (the reference's `[fxy (horizontal; vertical); fyt; fxt]`)."""

STLBP_IP_GRID = (8, 9)
STLBP_IP_POINTS = 8
STLBP_IP_RADIUS = 3


def u2_mapping(points: int = 8) -> np.ndarray:
    """int `[2^points]`: the bin of each LBP code in the Oulu `getmapping(points, 'u2')`
    table: the uniform codes in bins 0, 1, ... in increasing order of the code, every
    non-uniform code in the last bin (59 bins for 8 points)."""
    mapping = uniform_mapping(points)
    return (mapping - 1) % (int(mapping.max()) + 1)


def integral_projections(grey, grid=(1, 1)) -> tuple[np.ndarray, np.ndarray]:
    """Horizontal and vertical integral projections of the difference images of each block.

    Args:
        grey: grey clip `[T, H, W]` (uint8 or float, 0..255), T >= 2.
        grid: (rows, cols) of blocks (module docstring).

    Returns:
        `(horizontal, vertical)`, float64 `[T - 1, rows, cols, bh]` and
        `[T - 1, rows, cols, bw]` (bh = H // rows, bw = W // cols): `horizontal[t - 2, r, c, y]`
        is the sum over the block's columns x of `I_t - I_1` at row y of block (r, c);
        `vertical[t - 2, r, c, x]` the sum over its rows.

    Raises:
        ValueError: not a `[T, H, W]` clip, fewer than 2 frames, a bad grid, or blocks of
            no pixel.
    """
    grey = np.asarray(grey, np.float64)
    if grey.ndim != 3:
        raise ValueError(f"STLBP-IP needs a grey [T, H, W] clip, got shape {grey.shape}")
    frames, height, width = grey.shape
    if frames < 2:
        raise ValueError(f"a clip of {frames} frame(s) has no difference image (needs at "
                         "least 2 frames: each frame minus the first)")
    rows, cols = _grid(grid)
    block_height, block_width = height // rows, width // cols
    if block_height < 1 or block_width < 1:
        raise ValueError(f"a {height} x {width} frame cannot be cut into a {rows} x {cols} "
                         "grid of blocks")
    difference = grey[1:] - grey[:1]
    blocks = difference[:, :rows * block_height, :cols * block_width].reshape(
        frames - 1, rows, block_height, cols, block_width)
    horizontal = blocks.sum(axis=4).transpose(0, 1, 3, 2)
    vertical = blocks.sum(axis=2)
    return horizontal, vertical


def lbp_1d(signal, points: int = 8) -> np.ndarray:
    """1-D LBP codes along the last axis (`LBP_1D.m`, linear mask W = points + 1).

    Args:
        signal: `[..., L]` real values, L >= points + 1.
        points: neighbours P (even): P / 2 on each side of the centre.

    Returns:
        int `[..., L - points]`: the code of each centre c = P/2 .. L - 1 - P/2; neighbour k
        of `c - P/2 .. c - 1, c + 1 .. c + P/2` sets bit `P - 1 - k` when it is >= the
        centre.
    """
    signal = np.asarray(signal, np.float64)
    _check_points(points)
    half = points // 2
    length = signal.shape[-1]
    if length < points + 1:
        raise ValueError(f"a 1-D LBP with {points} neighbours needs a signal of at least "
                         f"{points + 1} values, got {length}")
    count = length - points
    centre = signal[..., half:half + count]
    offsets = [k - half for k in range(half)] + [k + 1 for k in range(half)]
    codes = np.zeros(centre.shape, np.int64)
    for k, offset in enumerate(offsets):
        neighbour = signal[..., half + offset:half + offset + count]
        codes |= (neighbour >= centre).astype(np.int64) << (points - 1 - k)
    return codes


def lbp_2d(image, radius: int = 3, points: int = 8) -> np.ndarray:
    """2-D LBP codes over the last two axes, equal to the Oulu `lbp.m` (module docstring).

    Args:
        image: `[..., rows, cols]` real values (a batch of images over the leading axes).
        radius: R, the radius of the circle.
        points: neighbours P.

    Returns:
        int `[..., rows - by + 1, cols - bx + 1]`: the code of every centre, by x bx being
        `lbp.m`'s neighbourhood box (2R + 1 on each side for P = 8).

    Raises:
        ValueError: an image smaller than the box (naming both).
    """
    image = np.asarray(image, np.float64)
    _check_points(points, even=False)
    if radius < 1:
        raise ValueError(f"the 2-D LBP radius must be >= 1, got {radius}")
    offsets, (box_y, box_x), (origin_y, origin_x) = _circle(radius, points)
    size_y, size_x = image.shape[-2:]
    if size_y < box_y or size_x < box_x:
        raise ValueError(f"an image of {size_y} x {size_x} pixels is smaller than the "
                         f"{box_y} x {box_x} neighbourhood of a 2-D LBP of radius {radius}")
    dy, dx = size_y - box_y, size_x - box_x

    def window(y, x):  # the pixels at 1-based offset (y, x) of every centre
        return image[..., y - 1:y + dy, x - 1:x + dx]

    centre = window(origin_y, origin_x)
    codes = np.zeros(centre.shape, np.int64)
    for i, (offset_y, offset_x) in enumerate(offsets):
        y, x = offset_y + origin_y, offset_x + origin_x
        floor_y, ceil_y, round_y = int(np.floor(y)), int(np.ceil(y)), int(_round(y))
        floor_x, ceil_x, round_x = int(np.floor(x)), int(np.ceil(x)), int(_round(x))
        if abs(x - round_x) < 1e-6 and abs(y - round_y) < 1e-6:
            neighbour = window(round_y, round_x)
        else:
            ty, tx = y - floor_y, x - floor_x
            w1 = _roundn((1 - tx) * (1 - ty), 6)
            w2 = _roundn(tx * (1 - ty), 6)
            w3 = _roundn((1 - tx) * ty, 6)
            w4 = _roundn(1 - w1 - w2 - w3, 6)
            neighbour = _roundn(w1 * window(floor_y, floor_x) + w2 * window(floor_y, ceil_x)
                                + w3 * window(ceil_y, floor_x) + w4 * window(ceil_y, ceil_x), 4)
        codes |= (neighbour >= centre).astype(np.int64) << i
    return codes


def stlbp_ip(grey, grid=STLBP_IP_GRID, points: int = STLBP_IP_POINTS,
             radius: int = STLBP_IP_RADIUS, uniform: bool = True) -> np.ndarray:
    """STLBP-IP of a grey clip (module docstring), in TLCNN's setting by default: 8 x 9
    blocks, P = 8 for the 1-D LBP of the projections and for the 2-D LBP of the temporal
    texture images, radius 3, uniform patterns.

    Args:
        grey: grey clip `[T, H, W]` (uint8 or float, 0..255; `rgb2gray` makes it from RGB).
        grid: (rows, cols) of blocks.
        points: P, neighbours of both LBPs (even: P / 2 on each side in 1-D).
        radius: R of the 2-D LBP.
        uniform: the `u2_mapping` (59 bins for P = 8); else 2^P bins.

    Returns:
        float64 `[4 * bins * rows * cols]`: the `[4, bins, rows * cols]` array flattened, its
        first axis the `PARTS` (1-D LBP of the horizontal and of the vertical projections,
        2-D LBP of `YT` and of `XT`), blocks row-major; each histogram sums to 1.

    Raises:
        ValueError: not a `[T, H, W]` clip, a bad grid, points or radius, a clip too short
            or blocks too small for them (naming the sizes).
    """
    grey = np.asarray(grey)
    if grey.ndim != 3:
        raise ValueError(f"stlbp_ip needs a grey [T, H, W] clip, got shape {grey.shape}")
    _check_points(points)
    if int(radius) != radius or radius < 1:
        raise ValueError(f"radius must be an integer >= 1, got {radius}")
    rows, cols = _grid(grid)
    frames, height, width = grey.shape
    _, (box_y, box_x), _ = _circle(radius, points)
    if frames - 1 < max(box_y, box_x):
        raise ValueError(
            f"a clip of {frames} frames is too short for the 2-D LBP of radius {radius} of its "
            f"temporal texture images (needs at least {max(box_y, box_x) + 1}: "
            f"{max(box_y, box_x)} difference images)")
    block_height, block_width = height // rows, width // cols
    smallest = max(points + 1, box_y, box_x)
    if min(block_height, block_width) < smallest:
        raise ValueError(
            f"blocks of {block_height} x {block_width} pixels ({height} x {width} frames in a "
            f"{rows} x {cols} grid) are too small: the 1-D LBP of {points} neighbours and the "
            f"2-D LBP of radius {radius} need at least {smallest} x {smallest}")
    mapping = u2_mapping(points) if uniform else np.arange(2 ** points)
    bins = int(mapping.max()) + 1
    horizontal, vertical = integral_projections(grey, (rows, cols))
    codes = (
        lbp_1d(horizontal, points).transpose(1, 2, 0, 3),  # [rows, cols, T - 1, bh - P]
        lbp_1d(vertical, points).transpose(1, 2, 0, 3),
        lbp_2d(horizontal.transpose(1, 2, 3, 0), radius, points),  # YT: [rows, cols, bh, T - 1]
        lbp_2d(vertical.transpose(1, 2, 0, 3), radius, points),  # XT: [rows, cols, T - 1, bw]
    )
    blocks = rows * cols
    features = np.zeros((len(PARTS), bins, blocks))
    for part, part_codes in enumerate(codes):
        part_codes = mapping[part_codes.reshape(blocks, -1)]
        flat = (np.arange(blocks)[:, None] * bins + part_codes).ravel()
        counts = np.bincount(flat, minlength=blocks * bins).reshape(blocks, bins)
        features[part] = (counts / counts.sum(axis=1, keepdims=True)).T
    return features.ravel()


def _grid(grid) -> tuple[int, int]:
    rows, cols = (int(g) for g in grid)
    if rows < 1 or cols < 1:
        raise ValueError(f"grid must be (rows, cols) >= (1, 1), got {tuple(grid)}")
    return rows, cols


def _check_points(points, even: bool = True) -> None:
    if int(points) != points or not 2 <= points <= 16 or (even and points % 2):
        raise ValueError(f"points must be an {'even ' if even else ''}integer in 2..16, "
                         f"got {points}")


def _circle(radius, points):
    """`lbp.m`'s neighbour offsets `[(row, col)]`, neighbourhood box (by, bx) and 1-based
    origin (oy, ox) of the centre in the box."""
    angle = 2 * np.pi / points
    offsets = [(-radius * np.sin(i * angle), radius * np.cos(i * angle)) for i in range(points)]
    ys, xs = np.array(offsets).T
    box = (int(np.ceil(max(ys.max(), 0)) - np.floor(min(ys.min(), 0)) + 1),
           int(np.ceil(max(xs.max(), 0)) - np.floor(min(xs.min(), 0)) + 1))
    origin = (int(1 - np.floor(min(ys.min(), 0))), int(1 - np.floor(min(xs.min(), 0))))
    return offsets, box, origin


def _round(value):
    """MATLAB's `round`: to the nearest integer, halves away from zero."""
    value = np.asarray(value, np.float64)
    magnitude = np.abs(value)
    whole = np.floor(magnitude)
    return np.copysign(whole + (magnitude - whole >= 0.5), value)


def _roundn(value, decimals: int):
    """`lbp.m`'s `roundn(x, -decimals)`: `round(p * x) / p` with p = 10^decimals."""
    scale = 10.0 ** decimals
    return _round(scale * value) / scale
