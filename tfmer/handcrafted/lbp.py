"""Handcrafted spatiotemporal features: LBP-TOP (Zhao & Pietikainen 2007), vectorised numpy,
no TensorFlow; `lbp_top_tlcnn` in the setting of TLCNN's Table 3 baseline.

`lbp_top` equals the Oulu MATLAB `LBPTOP.m` (Guoying Zhao, Matti Pietikainen; MATLAB version
by Xiaohua Huang, 2009: `LBPTOP(VolData, FxRadius, FyRadius, TInterval, NeighborPoints,
TimeLength, BorderLength, bBilinearInterpolation, Bincount, Code)`), run on each block:

- centres: every pixel at least `max(Rx, Ry)` from the block's sides and `Rt` from its first
  and last frame (`BorderLength = max(FxRadius, FyRadius)`, `TimeLength = TInterval`, as
  the function's documentation recommends);
- neighbour p of P at angle 2 pi p / P: XY plane (x + Rx cos, y - Ry sin) in the centre's
  frame; XT plane (x + Rx cos, t + Rt sin) in the centre's row; YT plane (y - Ry sin,
  t + Rt cos) in the centre's column; bit p (value 2^p) is set when the neighbour is >= the
  centre;
- nearest sampling rounds each coordinate with floor(v + 0.5); the bilinear option
  interpolates the four surrounding pixels in single precision (`single(...)` coordinates,
  the weighted sum in single, as MATLAB evaluates double * single) and floors the result;
- uniform patterns (`Bincount = 59` with the uniform `Code` table): bin 0 for every
  pattern with more than two circular 0/1 transitions, bins 1..58 the uniform patterns in
  increasing order of their code; otherwise 2^P bins, one per code;
- each plane's histogram divided by its sum.

Blocks (`grid`): the frame is cut into `rows x cols` blocks of `floor(H / rows)` by
`floor(W / cols)` pixels, row-major, the remainder at the bottom and right dropped; each
block is one `LBPTOP.m` volume (its own borders excluded). This is how the block features
of the LBP-TOP baselines (TLCNN's Section 4.3: 6 x 6 blocks) are built from the Oulu
function.
"""

from __future__ import annotations

import numpy as np

PLANES = ("XY", "XT", "YT")


def uniform_mapping(points: int = 8) -> np.ndarray:
    """int `[2^points]`: the histogram bin of each LBP code: 0 for the non-uniform codes
    (more than two 0/1 transitions around the circle), 1, 2, ... for the uniform ones in
    increasing order of the code (59 bins for 8 points)."""
    codes = np.arange(2 ** points)
    bits = (codes[:, None] >> np.arange(points)) & 1
    transitions = np.sum(bits != np.roll(bits, -1, axis=1), axis=1)
    uniform = transitions <= 2
    mapping = np.zeros(2 ** points, int)
    mapping[uniform] = np.arange(1, uniform.sum() + 1)
    return mapping


def _axis_offsets(first: int, stop: int, delta: float):
    """The rounded offsets of neighbours at `delta` from centres `first..stop-1` (0-based)
    along one axis, as `LBPTOP.m` rounds MATLAB's 1-based `floor(c + delta + 0.5)`: an int
    when the same for every centre (a slice will do), else an int array per centre."""
    centres = np.arange(first, stop) + 1
    offsets = np.floor(centres + delta + 0.5).astype(int) - centres
    return int(offsets[0]) if np.all(offsets == offsets[0]) else offsets


def _shifted(volume, ranges, offsets):
    """`volume` at every centre of `ranges` (`[(first, stop)]` per axis) moved by
    `offsets` (an int or a per-centre array per axis, `_axis_offsets`)."""
    if all(isinstance(o, int) for o in offsets):
        return volume[tuple(slice(first + o, stop + o)
                            for (first, stop), o in zip(ranges, offsets))]
    return volume[np.ix_(*[np.arange(first, stop) + o for (first, stop), o in zip(ranges,
                                                                                 offsets)])]


def _bilinear(volume, t, y, x, fixed: str):
    """`LBPTOP.m`'s bilinear sample in single precision, at MATLAB's 1-based coordinates
    (their float32 rounding, hence u and v, depends on it): `u` along the first of the
    plane's two moving axes, `v` along the second (x, y in XY; x, t in XT; y, t in YT), the
    four corners summed in the order of `LBPTOP.m`; `fixed` names the axis that does not
    move."""
    t, y, x = (np.asarray(np.broadcast_to(a, np.broadcast_shapes(
        np.shape(t), np.shape(y), np.shape(x))), np.float32) for a in (t, y, x))
    moving = {"t": ("x", "y"), "y": ("x", "t"), "x": ("y", "t")}[fixed]
    coords = {"t": t, "y": y, "x": x}
    first, second = coords[moving[0]], coords[moving[1]]
    u, v = first - np.floor(first), second - np.floor(second)

    def at(first_index, second_index):
        sample = dict(coords)
        sample[moving[0]], sample[moving[1]] = first_index, second_index
        return volume[sample["t"].astype(int) - 1, sample["y"].astype(int) - 1,
                      sample["x"].astype(int) - 1].astype(np.float32)

    one = np.float32(1)
    f0, f1 = np.floor(first), np.ceil(first)
    s0, s1 = np.floor(second), np.ceil(second)
    value = (at(f0, s0) * (one - u) * (one - v) + at(f0, s1) * (one - u) * v
             + at(f1, s0) * u * (one - v) + at(f1, s1) * u * v)
    return np.floor(value)


def _codes(volume, radii, points: int, bilinear: bool) -> np.ndarray:
    """uint16 `[3, T - 2 Rt, H - 2 B, W - 2 B]`: the XY, XT and YT codes of every centre at
    least B = max(Rx, Ry) pixels from the frame's sides and Rt frames from the clip's ends.

    A block's centres are a part of these, and their neighbours lie inside the block, so
    the codes of the whole volume serve every block. Nearest samples are slices of the
    volume where the rounded offset is the same for every centre (always, but for radii
    and angles whose neighbour falls on a rounding tie)."""
    rx, ry, rt = radii
    border = max(rx, ry)
    frames, height, width = volume.shape
    ranges = ((rt, frames - rt), (border, height - border), (border, width - border))
    centre = volume[tuple(slice(first, stop) for first, stop in ranges)]
    codes = np.zeros((3,) + centre.shape, np.uint16)
    if bilinear:
        t, y, x = np.meshgrid(*[np.arange(first, stop) + 1 for first, stop in ranges],
                              indexing="ij")  # MATLAB's coordinates, whose rounding counts
    for p in range(points):
        angle = 2 * np.pi * p / points
        cos, sin = np.cos(angle), np.sin(angle)
        planes = (  # (dt, dy, dx) of the neighbour in XY, XT, YT, and the fixed axis
            ((0, -ry * sin, rx * cos), "t"),
            ((rt * sin, 0, rx * cos), "y"),
            ((rt * cos, -ry * sin, 0), "x"),
        )
        for plane, ((dt, dy, dx), fixed) in enumerate(planes):
            if bilinear:
                neighbour = _bilinear(volume, t + dt, y + dy, x + dx, fixed)
            else:
                offsets = [_axis_offsets(first, stop, delta)
                           for (first, stop), delta in zip(ranges, (dt, dy, dx))]
                neighbour = _shifted(volume, ranges, offsets)
            codes[plane] |= (neighbour >= centre).astype(np.uint16) << np.uint16(p)
    return codes


def lbp_top(volume, radii=(1, 1, 1), points: int = 8, grid=(1, 1), bilinear: bool = False,
            uniform: bool = True) -> np.ndarray:
    """LBP-TOP of a grey volume, equal to the Oulu `LBPTOP.m` on each block (module
    docstring).

    Args:
        volume: grey `[T, H, W]` (any real dtype; grey levels 0..255 as the MATLAB code
            reads them).
        radii: (Rx, Ry, Rt), the radii along x, y and t.
        points: neighbours P in each plane (8 in the TLCNN setting).
        grid: (rows, cols) of blocks.
        bilinear: bilinear sampling of the neighbours (else nearest).
        uniform: the uniform mapping (`uniform_mapping`: 59 bins for P = 8, bin 0 the
            non-uniform codes); else 2^P bins.

    Returns:
        float64 `[3, bins, rows * cols]`: planes XY, XT, YT; blocks row-major; each plane
        histogram of each block sums to 1.

    Raises:
        ValueError: not a `[T, H, W]` volume, bad radii, points or grid, or a block too small
            for the radii (naming the sizes).
    """
    volume = np.asarray(volume)
    if not np.issubdtype(volume.dtype, np.integer):
        volume = volume.astype(np.float64)
    if volume.ndim != 3:
        raise ValueError(f"lbp_top needs a grey [T, H, W] volume, got shape {volume.shape}")
    radii = tuple(int(r) for r in radii)
    if len(radii) != 3 or min(radii) < 1:
        raise ValueError(f"radii must be three integers >= 1 (Rx, Ry, Rt), got {radii}")
    if not 1 <= points <= 16:
        raise ValueError(f"points must be in 1..16, got {points}")
    rows, cols = (int(g) for g in grid)
    if rows < 1 or cols < 1:
        raise ValueError(f"grid must be (rows, cols) >= (1, 1), got {tuple(grid)}")
    mapping = uniform_mapping(points) if uniform else np.arange(2 ** points)
    bins = int(mapping.max()) + 1
    frames, height, width = volume.shape
    rx, ry, rt = radii
    border = max(rx, ry)
    block_height, block_width = height // rows, width // cols
    if frames - 2 * rt < 1 or block_height - 2 * border < 1 or block_width - 2 * border < 1:
        raise ValueError(f"a block of {frames} x {block_height} x {block_width} (T x H x W) has "
                         f"no centre pixel at least {border} px from its sides and {rt} frames "
                         f"from its ends (radii {radii})")
    # Each centre's block (row-major), -1 where it lies within a block's border or in the
    # dropped remainder; centres are those of `_codes`, from `border` on in y and x.
    def block_of(size, count, length):
        position = np.arange(border, size - border)
        index, within = position // length, position % length
        keep = (index < count) & (within >= border) & (within < length - border)
        return np.where(keep, index, -1)

    block_rows = block_of(height, rows, block_height)
    block_cols = block_of(width, cols, block_width)
    block = np.where((block_rows[:, None] >= 0) & (block_cols[None, :] >= 0),
                     block_rows[:, None] * cols + block_cols[None, :], -1)
    keep = np.broadcast_to(block >= 0, (frames - 2 * rt,) + block.shape).ravel()
    slot = np.broadcast_to(block * bins, (frames - 2 * rt,) + block.shape).ravel()[keep]
    features = np.zeros((3, bins, rows * cols))
    for plane, codes in enumerate(_codes(volume, radii, points, bilinear)):
        counts = np.bincount(slot + mapping[codes.ravel()[keep]], minlength=rows * cols * bins)
        histograms = counts.reshape(rows * cols, bins).astype(np.float64)
        features[plane] = (histograms / histograms.sum(axis=1, keepdims=True)).T
    return features


TLCNN_GRID = (6, 6)
TLCNN_RADII = (3, 3, 3)


def lbp_top_tlcnn(clip, grid=TLCNN_GRID, radii=TLCNN_RADII, points: int = 8) -> np.ndarray:
    """LBP-TOP in the setting of TLCNN's baseline (Wang et al. 2018, Section 4.3): on the
    R, G and B channels, concatenated; 6 x 6 blocks; radii 3 in X, Y and T; 8 neighbours in
    each plane; uniform patterns; nearest sampling (the Oulu default, the paper names
    none).

    Args:
        clip: `[T, H, W, 3]` RGB frames, 0..255.
        grid, radii, points: as `lbp_top` (the paper's 6 x 6, (3, 3, 3), 8 by default).

    Returns:
        float64 `[3 * 3 * 59 * rows * cols]` (59 bins for 8 points): `lbp_top` of R, then
        G, then B, each flattened in its `[3, 59, blocks]` order.
    """
    clip = np.asarray(clip)
    if clip.ndim != 4 or clip.shape[-1] != 3:
        raise ValueError(f"lbp_top_tlcnn needs a [T, H, W, 3] RGB clip, got shape {clip.shape}")
    return np.concatenate([lbp_top(clip[..., channel], radii=radii, points=points,
                                   grid=grid).ravel() for channel in range(3)])
