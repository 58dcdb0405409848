"""Bi-WOOF, bi-weighted oriented optical flow (Liong, See, Wong, Phan 2018, "Less is more:
Micro-expression recognition from video using apex frame", Signal Processing: Image
Communication 62, 82-92), of a clip's onset -> apex motion, vectorised numpy, no TensorFlow.

Where each detail comes from ("paper" = Liong et al. 2018, its three steps as its authors
summarise them: flow between onset and apex; orientation, magnitude and optical strain of
each pixel; an orientation histogram, magnitude weighted locally and optical strain weighted
globally; "authors' code" = `biwoof.m`, version 1.0, by the first author, GitHub
christy1206/biwoof; "benchmark" = `BiWOOF.extractfeat` in `core/Features.py` of GitHub
xiazhaoqiang/Benchmark-MicroExpressionRec). Where the authors' code and the benchmark
differ, the authors' code is followed, except for two slips of it (overlapping blocks,
dropped angles) named below:

- input: the onset -> apex flow (u, v) and its optical strain magnitude, tfmer's stored
  motion (`tfmer.optical_flow.motion`: u right, v down, in pixels; strain
  `sqrt(exx^2 + eyy^2 + 2 exy^2)`);
- per pixel the orientation `theta = atan2(v, u)` in [-pi, pi] (v positive down, as OpenCV's
  flow and the benchmark's `np.arctan2(flow[..., 1], flow[..., 0])`: angles grow clockwise
  on the screen) and the magnitude `rho = sqrt(u^2 + v^2)`;
- blocks: the frame cut into `rows x cols` non-overlapping blocks of `floor(H / rows)` by
  `floor(W / cols)` pixels, row-major, the remainder at the bottom and right dropped (as the
  benchmark and `tfmer.handcrafted.lbp`; the authors' code lets neighbouring blocks share a
  row and a column of pixels and stretches the last block to the border);
- orientation bins: `bins` equal bins over the circle starting at -pi, bin k holding
  `-pi + k 2 pi / bins <= theta < -pi + (k + 1) 2 pi / bins`, theta = pi (the direction of
  -pi) in bin 0; 8 bins (authors' code `nBin = 8`, edges `-180 : 360/nBin : 179` degrees;
  `histc` there keeps only exactly 135 degrees in its last bin and drops (135, 180]: not
  followed, the bins here cover the whole circle, as the benchmark's);
- local weight: each pixel votes into its orientation bin with its flow magnitude rho, and
  each block's histogram is divided by its sum (authors' code `histt = histt / sum(histt)`;
  a block without motion keeps a zero histogram where that code would divide by zero);
- global weight: each block's histogram multiplied by the block's optical strain, the mean
  strain magnitude of its pixels (the authors' code multiplies by the sum; the blocks are of
  one size, so the two differ by a constant factor that the normalisation below removes);
- the concatenated vector divided by its Euclidean norm (authors' code
  `Hist = Hist / norm(Hist)`; the benchmark leaves it unnormalised and scales each block's
  histogram by `density=True`, i.e. also by the bin width; a field without motion or strain
  stays the zero vector).

Grid: `BIWOOF_GRID` = 5 x 5, the one grid of the authors' code (`nW = 5; nH = nW`, "5 x 5
block BiWOOF feature extraction"; it has no per-database setting) and the benchmark's default
`blocks=(5, 5)`.

The classifier (not implemented here): a linear SVM; the authors' code releases the feature
only, and the benchmark trains `sklearn.svm.SVC(C, kernel='linear')` with `C = 0.0001` by
default (`script/benchmark_cvtl.py`).
"""

from __future__ import annotations

import numpy as np

BIWOOF_GRID = (5, 5)
BIWOOF_BINS = 8


def orientation_bins(u, v, bins: int = BIWOOF_BINS) -> np.ndarray:
    """int `[...]`: the orientation bin of each flow vector (module docstring): bin k holds
    `-pi + k 2 pi / bins <= atan2(v, u) < -pi + (k + 1) 2 pi / bins`, atan2 = pi in bin 0.

    Args:
        u, v: `[...]` horizontal (right) and vertical (down) flow.
        bins: the number of bins.
    """
    theta = np.arctan2(np.asarray(v, np.float64), np.asarray(u, np.float64))
    width = 2 * np.pi / bins
    return (np.floor(theta / width + bins / 2).astype(np.int64)) % bins


def bi_woof(motion, grid=BIWOOF_GRID, bins: int = BIWOOF_BINS) -> np.ndarray:
    """Bi-WOOF of one onset -> apex motion (module docstring).

    Args:
        motion: float `[H, W, 3]`: u (horizontal px, positive right), v (vertical px,
            positive down), optical strain magnitude, as `tfmer.optical_flow.motion` stores
            it.
        grid: (rows, cols) of blocks (5 x 5 in the authors' setting).
        bins: orientation bins (8).

    Returns:
        float64 `[rows * cols * bins]`: the bins of block (0, 0), then of block (0, 1), ...
        (blocks row-major); each block's magnitude-weighted orientation histogram sums to 1,
        times the block's mean strain; the whole vector of unit Euclidean norm (zero when
        there is no motion or no strain).

    Raises:
        ValueError: not an `[H, W, 3]` motion, non-finite or negative-strain values, a bad
            grid or bins, or a frame smaller than the grid.
    """
    motion = np.asarray(motion, np.float64)
    if motion.ndim != 3 or motion.shape[-1] != 3:
        raise ValueError(f"bi_woof needs an [H, W, 3] motion (u, v, strain), got shape "
                         f"{motion.shape}")
    if not np.all(np.isfinite(motion)):
        raise ValueError("the motion has non-finite values (NaN or infinity)")
    if np.any(motion[..., 2] < 0):
        raise ValueError(f"the strain channel must be a magnitude >= 0, its minimum is "
                         f"{motion[..., 2].min()}")
    if int(bins) != bins or bins < 1:
        raise ValueError(f"bins must be an integer >= 1, got {bins}")
    bins = int(bins)
    rows, cols = (int(g) for g in grid)
    if rows < 1 or cols < 1:
        raise ValueError(f"grid must be (rows, cols) >= (1, 1), got {tuple(grid)}")
    height, width = motion.shape[:2]
    block_height, block_width = height // rows, width // cols
    if block_height < 1 or block_width < 1:
        raise ValueError(f"a {height} x {width} motion cannot be cut into a {rows} x {cols} "
                         "grid of blocks")
    motion = motion[:rows * block_height, :cols * block_width]
    u, v, strain = motion[..., 0], motion[..., 1], motion[..., 2]
    magnitude = np.hypot(u, v)
    block = ((np.arange(rows * block_height) // block_height)[:, None] * cols
             + (np.arange(cols * block_width) // block_width)[None, :])
    flat = (block * bins + orientation_bins(u, v, bins)).ravel()
    histograms = np.bincount(flat, weights=magnitude.ravel(),
                             minlength=rows * cols * bins).reshape(rows * cols, bins)
    totals = histograms.sum(axis=1, keepdims=True)
    histograms = np.divide(histograms, totals, out=np.zeros_like(histograms),
                           where=totals > 0)
    mean_strain = np.bincount(block.ravel(), weights=strain.ravel(),
                              minlength=rows * cols) / (block_height * block_width)
    features = (histograms * mean_strain[:, None]).ravel()
    norm = np.linalg.norm(features)
    return features / norm if norm > 0 else features
