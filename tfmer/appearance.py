"""The appearance input of STRCN-A and its temporal jittering, as plain TensorFlow functions.

Source: Xia, Hong, Gao, Feng, Zhao, "Spatiotemporal recurrent convolutional networks for
recognizing spontaneous micro-expressions", IEEE TMM 2020; its MatConvNet release, GitHub
xiazhaoqiang/STRCN-MicroExpressionRec (commit 0eef425), folder `AppearanceConnect/`. Line
numbers below are of that commit.

Pipeline (each stage a plain function that works eagerly and inside `Dataset.map`, except
the mask, computed once per fold outside the graph and then passed as a constant):

    frames uint8 [T, H, W, 3] --grey_small--> grey [T, 64, 48]
    training clips: grey --clip_energy--> [64, 48] --appearance_mask--> bool [64, 48]
    grey, mask --appearance_matrix--> [P, T] (columns=None) or [P, 150]
    matrix --jittered_copies--> [96, P, C] (training only)

What the release does, file and line:

- Mask size (`GenerateMask_firstframe.m` 10-11): `rows = 64; cols = 48`, i.e. 64 high and
  48 wide (`imresize(I, [rows cols])`, 38): `MASK_SIZE = (64, 48)`. Beware:
  `GenerateTrainData.m` 6 and `_5folds.m` 6 load `EnergyMap4Face64_32.mat`, a 64 x 32 mask
  that no released script writes (the mask scripts write `..._64_48_ff.mat`, 67);
  `[rows, cols] = size(mask)` (12 / 11) then sets the frame size of the matrix.
- Grey frames (`GenerateMask_firstframe.m` 37-38, `GenerateTrainData.m` 47-48):
  `double(rgb2gray(imread(f)))` then `imresize(I, [rows cols])` with imresize's defaults,
  bicubic with antialiasing. `grey_small`: MATLAB's rgb2gray weights `GREY_WEIGHTS`,
  rounded half up to integers (rgb2gray of a uint8 image is uint8), then MATLAB's bicubic
  imresize (`resize_weights`, below).
- Energy (`GenerateMask_firstframe.m` 41-45): `sum(abs(I_k - I_1), 3)` over all K frames
  of a clip, divided by its maximum (per clip). `clip_energy`; a clip without any change
  (maximum 0, a NaN map in MATLAB) gives zeros here. `GenerateMask_fixedintervals.m` 40-41
  is a variant (frame k against frame k + 10, circularly) that is not implemented.
  The mask script reads the EVM-magnified frames (`dataset_alpha8`, 6), the matrix script
  the unmagnified crops (`GenerateTrainData.m` 9); the README asks for EVM frames.
- Mask (`GenerateMask_firstframe.m` 51-64): the mean of the clips' maps (51), its 75th
  percentile by `prctile` (52; MATLAB's definition, NumPy's `method="hazen"`), pixels >= it
  set to 1 (54-55), `imopen` with `strel('disk', 1)` because rows < 100 (60; disk 3 below
  200 rows, disk 5 above, 61-62), `im2bw` (64). `appearance_mask`. `strel('disk', r)` is the
  Euclidean disk `x^2 + y^2 <= r^2` for r < 3 (for r = 1 the 3 x 3 cross); larger radii
  are a periodic-line approximation in MATLAB that is not reproduced (the Euclidean disk
  is used). `imerode` pads with the type's maximum and `imdilate` with its minimum, so
  the border counts as kept for the erosion and as not kept for the dilation; the same
  here.
- The release computes the mask from every clip of every subject (loops 15-49, no
  train/test filter), test clips included. tfmer does this differently: `appearance_mask`
  takes whatever energies it is given, and the caller passes the training clips of a
  fold only.
- Matrix (`GenerateTrainData.m` 19, 45-50): `imgMatrix(:, k) = I(mask)`, one column per
  frame, P = `numel(find(mask == 1))` rows, pixels in MATLAB's column-major order (down
  each image column, then the next column); `appearance_matrix` uses the same order
  (`masked_pixel_order`). Values are the grey levels 0..255 as they are: no scaling to
  0..1 and no mean subtraction anywhere in the release (`strcnInit.m` 152 leaves
  `averageImage` commented out; the training function `rcnnTrain` is not released).
  Kernels with negative lobes (bicubic, Lanczos) may leave 0..255 slightly; not clipped
  (MATLAB does not clip doubles either).
- 150 columns (`GenerateTrainData.m` 14, `colsT = 150`; `_5folds.m` 21 uses 30): the
  release never resizes the matrix on its own; `dataAug(imgMatrix, colsT)` (51) resizes
  every jittered copy of the raw [P, K] matrix straight to [P, 150] with each of the 8
  kernels (`dataAug.m` 21, `imresize(resMatrix, [rows targCols], method)`: rows kept, as
  every MATLAB kernel is the identity at scale 1). So the release's pipeline is
  `jittered_copies(appearance_matrix(grey, mask, columns=None), columns=COLUMNS)`; its
  ratio-0 copies are the clip resized K -> 150 with each of the 8 kernels.
  `appearance_matrix(grey, mask)` (resized to 150 once, bicubic, the imresize default)
  is the single input for evaluation, which the release does not show (its test-set
  script is not released; `_5folds.m` 39 says "only extend the training data" but
  jitters every clip, test folds included), and
  `jittered_copies` of it jitters at 150 columns (two resizes): a choice, not the release.
- Temporal jittering (`dataAug.m`): ratios `0:0.05:0.55` (9, 12 ratios), 8 kernels (4),
  `rmN = ceil(cols * ratio)` (10, cols = the matrix's columns), `indperm = randperm(cols);
  indrm = indperm(rmN)` (13-14), `setdiff(1:cols, indrm)` (15, kept columns in order),
  ratio 0 keeps the matrix (18), then the 8 resizes of the same reduced matrix (20-21):
  96 copies. `indperm(rmN)` is one index, so the release drops ONE column for every
  ratio > 0; tfmer drops `ceil(ratio * C)` columns (`indperm(1:rmN)`, what the ratio
  means), with the release's ceiling (`drop_count`; computed as ceil(ratio * C - 1e-6)
  so that 0.15 * 20 drops 3 whatever the rounding of 0.15 or a float32 ratio (MATLAB's
  colon holds 3 * 0.05 = 0.15000000000000002, so its rmN is 4 there), and at most C - 1).
  As in the release one random drop per ratio is shared by its 8 kernels.
- `GenerateTrainData.m` 55 gives all copies of a subject the label of that subject's last
  clip (`TrTeSeq.labels(ind)` after the loop), and `_5folds.m` 54 puts a subject's clips
  in the fold of its last clip; both look like slips, not reproduced here (labels and
  folds are the caller's).

MATLAB kernels -> TensorFlow. `tf.image.resize` has no Lanczos-2 kernel, clamps at the
borders where MATLAB mirrors, and renormalises its antialiased kernels at the borders, so
this module implements MATLAB's `imresize` (its `contributions`) for one axis as a weight
matrix (`resize_weights`, TF ops, cached when the sizes are known): output sample x
(1-based) reads input u = x / s + (1 - 1 / s) / 2 with s = out / in, in double precision
as MATLAB (so ties of nearest fall as in MATLAB); weights `h(u - j)` normalised to sum 1;
when shrinking (s < 1) and antialiasing (every kernel but nearest), h(x) = s k(s x) with
width w / s; out-of-range j mirrored (symmetric padding, [1..n, n..1]) as in MathWorks'
code of 2018 (the release used R2018b, README 8; copies of imresize from 2013 clamp
instead, which changes only the outermost samples of kernels wider than 2).
`JITTER_METHODS` are MATLAB's 8 names; the closest `tf.image.resize` method of each is
`TF_RESIZE_METHODS`:

    MATLAB     kernel (width)                       tf.image.resize
    nearest    box (1), never antialiased           "nearest" (same but exact ties)
    bilinear   triangle (2)                         "bilinear" (= upsampling; shrink:
                                                     antialias=True, borders differ)
    bicubic    Keys cubic a = -0.5 (4)              "bicubic" (interior within ~5e-4 of
                                                     a sample's scale; borders differ)
    box        box (1), antialiased                 "area" when shrinking; enlarging it is
                                                     MATLAB's nearest
    triangle   = bilinear                           "bilinear"
    cubic      = bicubic                            "bicubic"
    lanczos2   sinc(x) sinc(x / 2), |x| < 2 (4)     none (TF has lanczos3, lanczos5)
    lanczos3   sinc(x) sinc(x / 3), |x| < 3 (6)     "lanczos3" (interior)

So MATLAB's 8 copies of a ratio are only 5 different ones when enlarging (nearest = box,
bilinear = triangle, bicubic = cubic), 6 when shrinking (box differs from nearest); the
release keeps all 8, and so does `jittered_copies`.

STRCN-A's network is not in the release: `strcnInit.m` builds STRCN-G (input depth 2 at
31, default size [300 245] at 9); `TrainRCNNModel.m` calls `rcnnInit` and `rcnnTrain`
(13, 30), which are not released. The appearance input is one channel, [P, 150, 1].

Cost (2-core CPU, a 32-frame 128 px clip, P = 769): `grey_small` about 10 ms,
`appearance_matrix` 2 ms, `jittered_copies` 40-75 ms eagerly; in `Dataset.map` with clip
lengths unknown, tracing `jittered_copies` takes about 2 s once. Its 96 copies of
[769, 150] float32 are 44 MB per clip: draw one (ratio, method) per clip and epoch with
`temporal_jitter` rather than storing all 96 for a dataset.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import tensorflow as tf

from tfmer.handcrafted.grey import GREY_WEIGHTS

MASK_SIZE = (64, 48)  # (height, width): GenerateMask_firstframe.m 10-11, rows = 64, cols = 48
MASK_SHARE = 0.25  # share of pixels the mask keeps: >= the 75th percentile (52-55)
COLUMNS = 150  # columns of the appearance matrix: GenerateTrainData.m 14, colsT = 150
JITTER_RATIOS = tuple(round(0.05 * i, 2) for i in range(12))  # dataAug.m 9: 0:0.05:0.55
JITTER_METHODS = ("nearest", "bilinear", "bicubic", "box", "triangle", "cubic", "lanczos2",
                  "lanczos3")  # dataAug.m 4, MATLAB imresize's names, in its order
TF_RESIZE_METHODS = {"nearest": "nearest", "bilinear": "bilinear", "bicubic": "bicubic",
                     "box": "area", "triangle": "bilinear", "cubic": "bicubic",
                     "lanczos2": None, "lanczos3": "lanczos3"}  # the closest, for reference
_EPS = float(np.finfo(np.float64).eps)  # MATLAB's eps, in its Lanczos kernels


def _bool(condition):
    return tf.cast(condition, tf.float64)


def _box(x):
    return _bool((x >= -0.5) & (x < 0.5))


def _triangle(x):
    return (x + 1) * _bool((x >= -1) & (x < 0)) + (1 - x) * _bool((x >= 0) & (x <= 1))


def _cubic(x):
    a = tf.abs(x)
    return ((1.5 * a ** 3 - 2.5 * a ** 2 + 1) * _bool(a <= 1)
            + (-0.5 * a ** 3 + 2.5 * a ** 2 - 4 * a + 2) * _bool((a > 1) & (a <= 2)))


def _lanczos(lobes):
    def kernel(x):
        value = ((tf.sin(math.pi * x) * tf.sin(math.pi * x / lobes) + _EPS)
                 / (math.pi ** 2 * x ** 2 / lobes + _EPS))
        return value * _bool(tf.abs(x) < lobes)
    return kernel


# MATLAB imresize's getMethodInfo: name -> (kernel, width).
_KERNELS = {"nearest": (_box, 1.0), "bilinear": (_triangle, 2.0), "bicubic": (_cubic, 4.0),
            "box": (_box, 1.0), "triangle": (_triangle, 2.0), "cubic": (_cubic, 4.0),
            "lanczos2": (_lanczos(2), 4.0), "lanczos3": (_lanczos(3), 6.0)}


def _check_methods(methods):
    for method in methods:
        if method not in _KERNELS:
            raise ValueError(f"unknown resize method {method!r}; known (MATLAB imresize): "
                             f"{', '.join(JITTER_METHODS)}")


def _weights_tf(in_length, out_length, methods):
    """float64 `[len(methods), out, in]` weights of MATLAB's `contributions` (module
    docstring), all kernels on one grid of taps wide enough for the widest: taps outside a
    kernel's support weigh 0, so each kernel gets MATLAB's weights."""
    n_in = tf.cast(in_length, tf.float64)
    n_out = tf.cast(out_length, tf.float64)
    scale = n_out / n_in
    # Antialiasing (every kernel but nearest) widens the kernel when shrinking.
    shrink = tf.minimum(scale, 1.0)
    factors = [tf.constant(1.0, tf.float64) if m == "nearest" else shrink for m in methods]
    support = tf.reduce_max(tf.stack([_KERNELS[m][1] / f for m, f in zip(methods, factors)]))
    x = tf.range(1, tf.cast(out_length, tf.int32) + 1, dtype=tf.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = tf.floor(u - support / 2)
    taps = tf.cast(tf.math.ceil(support), tf.int32) + 2
    j = left[:, None] + tf.range(taps, dtype=tf.float64)[None, :]  # 1-based [out, taps]
    distance = u[:, None] - j
    weights = []
    for method, f in zip(methods, factors):
        w = f * _KERNELS[method][0](f * distance)
        weights.append(w / tf.reduce_sum(w, axis=1, keepdims=True))
    m = tf.math.floormod(j - 1, 2 * n_in)  # mirror: aux = [1..n, n..1]
    source = tf.cast(tf.where(m < n_in, m, 2 * n_in - 1 - m), tf.int32)
    grid = tf.shape(source)
    kernel = tf.broadcast_to(tf.range(len(methods))[:, None, None],
                             tf.concat([[len(methods)], grid], axis=0))
    row = tf.broadcast_to(tf.range(grid[0])[None, :, None], tf.shape(kernel))
    col = tf.broadcast_to(source[None], tf.shape(kernel))
    index = tf.reshape(tf.stack([kernel, row, col], axis=-1), [-1, 3])
    shape = tf.stack([len(methods), tf.cast(out_length, tf.int32), tf.cast(in_length, tf.int32)])
    return tf.scatter_nd(index, tf.reshape(tf.stack(weights), [-1]), shape)


@functools.lru_cache(maxsize=1024)
def _static_weights(in_length: int, out_length: int, methods: tuple) -> np.ndarray:
    with tf.init_scope():  # eager even while a Dataset.map function is being traced
        return _weights_tf(in_length, out_length, methods).numpy().astype(np.float32)


def _static(length):
    """A Python int when the length is known, else the tensor."""
    if isinstance(length, (int, np.integer)):
        return int(length)
    value = tf.get_static_value(length)
    return int(value) if value is not None else length


def _columns_of(matrix):
    return _static(matrix.shape[1] if matrix.shape[1] is not None else tf.shape(matrix)[1])


def _resize_weights(in_length, out_length, methods):
    """float32 `[len(methods), out, in]`, cached when both lengths are known."""
    _check_methods(methods)
    in_length, out_length = _static(in_length), _static(out_length)
    if isinstance(in_length, int) and isinstance(out_length, int):
        if in_length < 1 or out_length < 1:
            raise ValueError(f"resize lengths must be >= 1, got {in_length} -> {out_length}")
        return tf.constant(_static_weights(in_length, out_length, tuple(methods)))
    return tf.cast(_weights_tf(in_length, out_length, tuple(methods)), tf.float32)


def resize_weights(in_length, out_length, method: str = "bicubic"):
    """The `[out_length, in_length]` float32 matrix W of MATLAB's `imresize` along one axis
    with kernel `method` (one of `JITTER_METHODS`): resized = W @ samples.

    Lengths may be Python ints (the matrix is computed once and cached) or scalar tensors
    (computed with TF ops, for clips of unknown length inside `Dataset.map`).
    """
    return _resize_weights(in_length, out_length, (method,))[0]


def _resize_many(matrix, columns, methods):
    """`[P, C]` -> `[len(methods), P, columns]`, one resize per kernel (`resize_columns`)."""
    _check_methods(methods)
    length, columns = _columns_of(matrix), _static(columns)
    shape = [len(methods), matrix.shape[0], columns if isinstance(columns, int) else None]

    def same():
        return tf.tile(matrix[None], [len(methods), 1, 1])

    def resized():
        return tf.einsum("pi,moi->mpo", matrix, _resize_weights(length, columns, methods))

    if isinstance(length, int) and isinstance(columns, int):
        return tf.ensure_shape(same() if length == columns else resized(), shape)
    # No shape assertion inside the branches: TF may run them whatever the predicate.
    out = tf.cond(tf.equal(length, columns), same, resized)
    out.set_shape(shape)
    return out


def resize_columns(matrix, columns, method: str = "bicubic"):
    """Resizes a matrix `[P, C]` along its columns to `[P, columns]` as MATLAB's
    `imresize(matrix, [P columns], method)` (rows are kept: every kernel is the identity at
    scale 1). When C == `columns` the matrix is returned as it is (MATLAB's kernels are the
    identity there, up to 1e-16 for the Lanczos ones).
    """
    _check_methods([method])
    matrix = tf.cast(matrix, tf.float32)
    length, columns = _columns_of(matrix), _static(columns)
    if isinstance(length, int) and isinstance(columns, int) and length == columns:
        return matrix
    return _resize_many(matrix, columns, (method,))[0]


def grey_small(frames, size=MASK_SIZE):
    """RGB frames -> grey frames at the mask size, as the release's
    `imresize(double(rgb2gray(I)), [rows cols])`.

    Args:
        frames: uint8 or float `[T, H, W, 3]`, RGB 0..255 (or `[T, H, W, 1]`, taken as grey
            as it is).
        size: (height, width) of the output, `MASK_SIZE`.

    Returns:
        float32 `[T, height, width]`: grey = `GREY_WEIGHTS` . (R, G, B) rounded to an
        integer (rgb2gray of uint8 frames), then resized with MATLAB's bicubic kernel,
        antialiased when shrinking (`resize_weights`).
    """
    frames = tf.cast(frames, tf.float64)
    if frames.shape.rank != 4 or frames.shape[-1] not in (1, 3):
        raise ValueError(f"frames must be [T, H, W, 3] (or 1 channel), got {frames.shape}")
    if frames.shape[-1] == 3:
        grey = tf.floor(tf.tensordot(frames, tf.constant(GREY_WEIGHTS, tf.float64), 1) + 0.5)
    else:
        grey = frames[..., 0]
    grey = tf.cast(grey, tf.float32)
    height, width = size
    rows = resize_weights(grey.shape[1] or tf.shape(grey)[1], height, "bicubic")
    cols = resize_weights(grey.shape[2] or tf.shape(grey)[2], width, "bicubic")
    return tf.einsum("ih,thw,jw->tij", rows, grey, cols)


def clip_energy(grey):
    """A clip's energy map, `GenerateMask_firstframe.m` 41-45.

    Args:
        grey: float `[T, h, w]` grey frames (`grey_small`).

    Returns:
        float32 `[h, w]`: sum over frames k of |I_k - I_1|, divided by its maximum (0..1);
        zeros for a clip without change.
    """
    grey = tf.cast(grey, tf.float32)
    energy = tf.reduce_sum(tf.abs(grey - grey[:1]), axis=0)
    return tf.math.divide_no_nan(energy, tf.reduce_max(energy))


def disk(radius: int) -> np.ndarray:
    """bool `[2r + 1, 2r + 1]` Euclidean disk x^2 + y^2 <= r^2: MATLAB's `strel('disk', r)`
    for r < 3 (r = 1: the 3 x 3 cross)."""
    offsets = np.arange(-radius, radius + 1)
    return offsets[:, None] ** 2 + offsets[None, :] ** 2 <= radius ** 2


def _erode(image, element):
    r = element.shape[0] // 2
    h, w = image.shape
    padded = np.pad(image, r, constant_values=True)  # imerode pads with the maximum
    out = np.ones_like(image)
    for dy, dx in zip(*np.nonzero(element)):
        out &= padded[dy:dy + h, dx:dx + w]
    return out


def _dilate(image, element):
    r = element.shape[0] // 2
    h, w = image.shape
    padded = np.pad(image, r, constant_values=False)  # imdilate pads with the minimum
    out = np.zeros_like(image)
    for dy, dx in zip(*np.nonzero(element[::-1, ::-1])):  # the reflected element
        out |= padded[dy:dy + h, dx:dx + w]
    return out


def opening(image, radius: int = 1) -> np.ndarray:
    """Morphological opening (erosion then dilation) of a bool `[h, w]` image by `disk`,
    with MATLAB's border rules (`imopen`); radius 0 returns the image."""
    image = np.asarray(image, bool)
    if radius <= 0:
        return image.copy()
    element = disk(radius)
    return _dilate(_erode(image, element), element)


def appearance_mask(energies, share: float = MASK_SHARE, opening_radius: int = 1):
    """The mask of the facial pixels that change most, `GenerateMask_firstframe.m` 51-64.

    Compute it from the training clips of a fold only (the release uses every clip).

    Args:
        energies: the clips' energy maps (`clip_energy`): an iterable of `[h, w]` arrays or
            tensors, or one `[N, h, w]` array (a single `[h, w]` map is one clip).
        share: share of pixels kept: those >= the 100 (1 - share) percentile of the mean
            map (MATLAB's `prctile`, NumPy's "hazen"), 0.25 as the release.
        opening_radius: radius of the disk of the opening (`opening`); 0 for none.

    Returns:
        bool numpy `[h, w]`.
    """
    if not 0 < share <= 1:
        raise ValueError(f"share must be in (0, 1], got {share}")
    if isinstance(energies, (np.ndarray, tf.Tensor)):
        maps = np.asarray(energies, np.float64)
        maps = maps[None] if maps.ndim == 2 else maps
    else:
        maps = [np.asarray(e, np.float64) for e in energies]
        shapes = sorted({m.shape for m in maps})
        if len(shapes) > 1:
            raise ValueError(f"energy maps differ in shape: {shapes}")
        maps = np.stack(maps) if maps else np.zeros([0, 0, 0])
    if maps.ndim != 3 or maps.shape[0] == 0:
        raise ValueError(f"need at least one [h, w] energy map, got shape {maps.shape}")
    mean = maps.mean(axis=0)
    threshold = np.percentile(mean, 100 * (1 - share), method="hazen")
    return opening(mean >= threshold, opening_radius)


def masked_pixel_order(mask) -> np.ndarray:
    """int `[P]` row-major flat indices (row * w + column) of the mask's pixels in the
    order of the matrix rows: MATLAB's `I(mask)`, column-major (down each column)."""
    mask = np.asarray(mask, bool)
    columns, rows = np.nonzero(mask.T)
    return rows * mask.shape[1] + columns


def appearance_matrix(grey, mask, columns: int | None = COLUMNS, method: str = "bicubic"):
    """The appearance matrix of a clip, `GenerateTrainData.m` 45-50.

    Args:
        grey: float `[T, h, w]` grey frames at the mask size (`grey_small`).
        mask: bool `[h, w]` (`appearance_mask`), a constant (NumPy array).
        columns: columns of the result; None keeps the T frames (the release's raw matrix,
            which `jittered_copies(..., columns=COLUMNS)` then resizes).
        method: kernel of the resize to `columns` (`resize_columns`); the release never
            resizes on its own, bicubic is MATLAB imresize's default.

    Returns:
        float32 `[P, columns]` (or `[P, T]`): column t holds frame t's masked pixels in
        column-major order (`masked_pixel_order`), grey levels 0..255, not normalised.
    """
    grey = tf.cast(grey, tf.float32)
    mask = np.asarray(mask, bool)
    if grey.shape.rank != 3:
        raise ValueError(f"grey must be [T, h, w], got {grey.shape}")
    if None not in grey.shape[1:] and tuple(grey.shape[1:]) != mask.shape:
        raise ValueError(f"frames are {tuple(grey.shape[1:])} but the mask is {mask.shape}")
    if not mask.any():
        raise ValueError(f"the {mask.shape} mask keeps no pixel")
    pixels = tf.reshape(grey, [tf.shape(grey)[0], mask.size])
    matrix = tf.transpose(tf.gather(pixels, masked_pixel_order(mask), axis=1))
    if columns is None:
        return matrix
    return resize_columns(matrix, columns, method)


def drop_count(columns, ratio):
    """How many of `columns` columns jittering by `ratio` drops: ceil(ratio * columns)
    (`dataAug.m` 10), at most columns - 1. Python int for Python inputs, else int32."""
    columns = _static(columns)
    if isinstance(ratio, (int, float)) and not 0 <= ratio < 1:
        raise ValueError(f"jitter ratio must be in [0, 1), got {ratio}")
    if isinstance(columns, int) and isinstance(ratio, (int, float)):
        return max(0, min(math.ceil(ratio * columns - 1e-6), columns - 1))
    count = tf.cast(tf.math.ceil(tf.cast(ratio, tf.float64) * tf.cast(columns, tf.float64)
                                 - 1e-6), tf.int32)
    return tf.clip_by_value(count, 0, tf.cast(columns, tf.int32) - 1)


def drop_columns(matrix, ratio, seed=None):
    """Drops `drop_count(C, ratio)` random columns of `[P, C]`, keeping the others in order
    (`dataAug.m` 13-17). Returns `[P, C - dropped]`."""
    matrix = tf.cast(matrix, tf.float32)
    if isinstance(ratio, (int, float)) and ratio == 0:
        return matrix
    length = _columns_of(matrix)
    count = drop_count(length, ratio)
    if isinstance(count, int) and count == 0:
        return matrix
    order = tf.argsort(tf.random.uniform([length], seed=seed))
    return tf.gather(matrix, tf.sort(order[count:]), axis=1)


def temporal_jitter(matrix, ratio, method: str, seed=None, columns: int | None = None):
    """One jittered copy (`dataAug.m`): drop `ceil(ratio * C)` random columns, keeping the
    order (`drop_columns`), and resize back with MATLAB kernel `method`
    (`resize_columns`).

    Args:
        matrix: float `[P, C]`.
        ratio: share of the columns dropped, in [0, 1) (Python float or scalar tensor).
        method: one of `JITTER_METHODS`.
        columns: columns of the result; None: C. The release resizes its raw `[P, K]`
            matrix to 150 here.

    Returns:
        float32 `[P, columns]`; with ratio 0 and columns None the matrix itself.
    """
    _check_methods([method])
    matrix = tf.cast(matrix, tf.float32)
    if columns is None:
        columns = _columns_of(matrix)
    return resize_columns(drop_columns(matrix, ratio, seed), columns, method)


def jittered_copies(matrix, seed=None, columns: int | None = None):
    """The release's 96 jittered copies of a matrix (`dataAug.m`): for each ratio of
    `JITTER_RATIOS` one random drop (`drop_columns`), resized with each of the 8
    `JITTER_METHODS`.

    Args:
        matrix: float `[P, C]`.
        seed: op seed; ratio i uses seed + i.
        columns: columns of the copies; None: C. The release's pipeline is
            `jittered_copies(appearance_matrix(grey, mask, columns=None), columns=150)`.

    Returns:
        float32 `[96, P, columns]`, ratio-major: copy 8 i + m is ratio i, method m. With
        columns None the first 8 (ratio 0) equal the matrix.
    """
    matrix = tf.cast(matrix, tf.float32)
    if columns is None:
        columns = _columns_of(matrix)
    copies = [_resize_many(drop_columns(matrix, ratio, None if seed is None else seed + i),
                           columns, JITTER_METHODS)
              for i, ratio in enumerate(JITTER_RATIOS)]
    return tf.concat(copies, axis=0)
