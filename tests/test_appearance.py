import math

import numpy as np
import pytest
import tensorflow as tf

from tfmer import appearance

RNG = np.random.default_rng(0)


def _ramp(rows, columns):
    """`[rows, columns]` float32 whose column c holds the value c."""
    return np.tile(np.arange(columns, dtype=np.float32), (rows, 1))


def _mapped(fn, *tensors, dynamic=False):
    """`fn` applied inside `Dataset.map`; `dynamic` hides the shapes (clips of any length),
    all of them, or all but the last when `dynamic == "but channels"`."""
    if dynamic:
        def spec(t):
            shape = [None] * np.ndim(t)
            if dynamic == "but channels":
                shape[-1] = np.shape(t)[-1]
            return tf.TensorSpec(shape, tf.as_dtype(np.asarray(t).dtype))
        specs = tuple(spec(t) for t in tensors)
        dataset = tf.data.Dataset.from_generator(lambda: iter([tensors]), output_signature=specs)
    else:
        dataset = tf.data.Dataset.from_tensors(tensors)
    return next(iter(dataset.map(fn)))


def _matlab_imresize_1d(samples, out_length, method):
    """NumPy port of MATLAB imresize's `contributions` + resize along the last axis, written
    as the MATLAB code (1-based indices, the `aux` mirror array), as a reference."""
    def cubic(x):
        a = np.abs(x)
        return ((1.5 * a**3 - 2.5 * a**2 + 1) * (a <= 1)
                + (-0.5 * a**3 + 2.5 * a**2 - 4 * a + 2) * ((1 < a) & (a <= 2)))

    def lanczos(n):
        return lambda x: ((np.sin(np.pi * x) * np.sin(np.pi * x / n) + np.finfo(float).eps)
                          / (np.pi**2 * x**2 / n + np.finfo(float).eps)) * (np.abs(x) < n)

    box = lambda x: ((-0.5 <= x) & (x < 0.5)).astype(float)  # noqa: E731
    triangle = lambda x: (x + 1) * ((-1 <= x) & (x < 0)) + (1 - x) * ((0 <= x) & (x <= 1))  # noqa
    kernel, width = {"nearest": (box, 1), "bilinear": (triangle, 2), "bicubic": (cubic, 4),
                     "box": (box, 1), "triangle": (triangle, 2), "cubic": (cubic, 4),
                     "lanczos2": (lanczos(2), 4), "lanczos3": (lanczos(3), 6)}[method]
    in_length = samples.shape[-1]
    scale = out_length / in_length
    h = kernel
    if scale < 1 and method != "nearest":
        h = lambda x: scale * kernel(scale * x)  # noqa: E731
        width = width / scale
    x = np.arange(1, out_length + 1)[:, None]
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - width / 2)
    indices = left + np.arange(math.ceil(width) + 2)[None, :]
    weights = h(u - indices)
    weights = weights / weights.sum(axis=1, keepdims=True)
    aux = np.concatenate([np.arange(1, in_length + 1), np.arange(in_length, 0, -1)])
    indices = aux[np.mod(indices.astype(int) - 1, len(aux))]
    return np.einsum("...oj,oj->...o", samples[..., indices - 1], weights)


# --- resize kernels ----------------------------------------------------------------------


def test_bilinear_matches_a_known_matlab_result():
    # MATLAB: imresize(1:4, [1 8], 'bilinear') = 1 1.25 1.75 2.25 2.75 3.25 3.75 4
    out = appearance.resize_columns(np.arange(1, 5, dtype=np.float32)[None], 8, "bilinear")
    np.testing.assert_allclose(out.numpy()[0], [1, 1.25, 1.75, 2.25, 2.75, 3.25, 3.75, 4])


def test_resize_weights_hand_values():
    # Box shrink by 2 (antialiased) is the mean of pairs.
    np.testing.assert_allclose(appearance.resize_weights(4, 2, "box").numpy(),
                               [[0.5, 0.5, 0, 0], [0, 0, 0.5, 0.5]])
    # Triangle shrink by 2: kernel 0.5 tri(x / 2) at distances 1.5 .. -1.5, index 0 -> 1.
    np.testing.assert_allclose(appearance.resize_weights(4, 2, "triangle").numpy()[0],
                               [0.5, 0.375, 0.125, 0])
    # Cubic 4 -> 8, first output u = 0.75: taps -1, 0 mirror to 2, 1 (symmetric padding).
    np.testing.assert_allclose(appearance.resize_weights(4, 8, "cubic").numpy()[0],
                               [1.09375, -0.09375, 0, 0])


@pytest.mark.parametrize("method", appearance.JITTER_METHODS)
@pytest.mark.parametrize("lengths", [(7, 19), (20, 150), (19, 7), (150, 67), (5, 5)])
def test_resize_matches_the_matlab_reference(method, lengths):
    in_length, out_length = lengths
    samples = RNG.random((3, in_length))
    ours = appearance.resize_columns(samples.astype(np.float32), out_length, method).numpy()
    np.testing.assert_allclose(ours, _matlab_imresize_1d(samples, out_length, method),
                               atol=1e-5)
    weights = appearance.resize_weights(in_length, out_length, method).numpy()
    np.testing.assert_allclose(weights.sum(axis=1), 1, atol=1e-6)


def test_resize_agrees_with_tf_image_resize_where_the_kernels_coincide():
    samples = RNG.random((4, 20)).astype(np.float32)
    for ours, theirs in [("bilinear", "bilinear"), ("triangle", "bilinear")]:
        got = appearance.resize_columns(samples, 47, ours).numpy()
        want = tf.image.resize(samples[..., None], [4, 47], method=theirs).numpy()[..., 0]
        np.testing.assert_allclose(got, want, atol=1e-5)
    # Lanczos-3 away from the borders (TF renormalises at the borders, MATLAB mirrors).
    got = appearance.resize_columns(samples, 47, "lanczos3").numpy()
    want = tf.image.resize(samples[..., None], [4, 47], method="lanczos3").numpy()[..., 0]
    np.testing.assert_allclose(got[:, 8:-8], want[:, 8:-8], atol=1e-5)


def test_dynamic_lengths_give_the_static_weights():
    weights = tf.function(lambda n: appearance.resize_weights(n, 150, "lanczos2"))
    np.testing.assert_allclose(weights(tf.constant(37)).numpy(),
                               appearance.resize_weights(37, 150, "lanczos2").numpy(),
                               atol=1e-7)


def test_unknown_method_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown resize method 'area'.*lanczos2"):
        appearance.resize_columns(np.zeros([2, 3]), 4, "area")


# --- grey frames and energy ------------------------------------------------------------


def test_grey_small_is_rounded_rgb2gray_at_the_mask_size():
    frames = np.zeros([2, 10, 8, 3], np.uint8)
    frames[..., :] = (200, 100, 50)
    grey = appearance.grey_small(frames).numpy()
    expected = np.floor(np.dot([200, 100, 50], appearance.GREY_WEIGHTS) + 0.5)  # 124
    assert grey.shape == (2, *appearance.MASK_SIZE) and grey.dtype == np.float32
    np.testing.assert_allclose(grey, expected, atol=1e-4)


@pytest.mark.parametrize("dynamic", [False, "but channels"])
def test_grey_small_resizes_as_matlab_bicubic(dynamic):
    frames = RNG.integers(0, 256, size=(2, 12, 10, 1)).astype(np.uint8)
    grey = frames[..., 0].astype(np.float64)
    want = _matlab_imresize_1d(grey, 4, "bicubic")  # width 10 -> 4
    want = np.swapaxes(_matlab_imresize_1d(np.swapaxes(want, 1, 2), 6, "bicubic"), 1, 2)
    eager = appearance.grey_small(frames, size=(6, 4)).numpy()
    mapped = _mapped(lambda f: appearance.grey_small(f, size=(6, 4)), frames,
                     dynamic=dynamic).numpy()
    np.testing.assert_allclose(eager, want, atol=1e-3)
    np.testing.assert_allclose(mapped, eager, atol=1e-4)


@pytest.mark.parametrize("in_map", [False, True])
def test_clip_energy_matches_numpy(in_map):
    grey = RNG.integers(0, 256, size=(4, 3, 5)).astype(np.float32)
    energy = np.abs(grey - grey[0]).sum(axis=0)
    energy = energy / energy.max()
    got = _mapped(appearance.clip_energy, grey) if in_map else appearance.clip_energy(grey)
    np.testing.assert_allclose(got.numpy(), energy, rtol=1e-6)
    still = appearance.clip_energy(np.full([3, 2, 2], 7.0, np.float32)).numpy()
    np.testing.assert_array_equal(still, np.zeros([2, 2]))


# --- mask --------------------------------------------------------------------------------


def test_mask_keeps_the_top_share_of_the_mean_energy():
    energy = np.arange(16, dtype=float).reshape(4, 4)
    mask = appearance.appearance_mask([energy], opening_radius=0)
    np.testing.assert_array_equal(mask, energy >= 12)  # the top 4 of 16
    # The mean of the maps decides: 0..15 and its reverse average to a constant 7.5.
    assert appearance.appearance_mask([energy, 15 - energy], opening_radius=0).all()
    # MATLAB's prctile (NumPy "hazen"): the 75th percentile of 0..4 is 3.25, not 3.
    np.testing.assert_array_equal(
        appearance.appearance_mask(np.arange(5.0)[None], opening_radius=0),
        [[False, False, False, False, True]])


def test_opening_removes_an_isolated_pixel_and_keeps_a_disk_blob():
    image = np.zeros([9, 9], bool)
    image[1, 1] = True  # isolated
    image[5, 4:7] = image[4:7, 5] = True  # a 3 x 3 cross = strel('disk', 1)
    opened = appearance.opening(image, 1)
    expected = image.copy()
    expected[1, 1] = False
    np.testing.assert_array_equal(opened, expected)
    np.testing.assert_array_equal(appearance.disk(1), [[0, 1, 0], [1, 1, 1], [0, 1, 0]])
    # A 3 x 3 square loses its corners (the cross does not fit there).
    square = np.zeros([7, 7], bool)
    square[2:5, 2:5] = True
    cross = np.zeros([7, 7], bool)
    cross[3, 2:5] = cross[2:5, 3] = True
    np.testing.assert_array_equal(appearance.opening(square, 1), cross)


def test_opening_border_rules_follow_matlab():
    # imerode pads with the maximum: a band along the top edge survives the opening.
    band = np.zeros([6, 6], bool)
    band[:2] = True
    np.testing.assert_array_equal(appearance.opening(band, 1), band)
    ndimage = pytest.importorskip("scipy.ndimage")
    image = RNG.random((12, 10)) < 0.6
    element = appearance.disk(1)
    eroded = ndimage.binary_erosion(np.pad(image, 1, constant_values=True), element)[1:-1, 1:-1]
    want = ndimage.binary_dilation(eroded, element)
    np.testing.assert_array_equal(appearance.opening(image, 1), want)


def test_mask_pipeline_on_a_blob_of_energy():
    yy, xx = np.mgrid[:64, :48]
    energy = np.exp(-((yy - 40) ** 2 / 200 + (xx - 24) ** 2 / 150))
    mask = appearance.appearance_mask([energy, energy])
    assert mask.shape == appearance.MASK_SIZE and mask.dtype == bool
    # A round blob of the top quarter survives the opening whole.
    np.testing.assert_array_equal(mask, energy >= np.percentile(energy, 75, method="hazen"))
    assert abs(mask.sum() - 0.25 * 64 * 48) <= 2  # 768, give or take tied values
    assert mask[40, 24] and not mask[0, 0]


def test_mask_errors_name_the_problem():
    with pytest.raises(ValueError, match="differ in shape"):
        appearance.appearance_mask([np.zeros([2, 2]), np.zeros([3, 2])])
    with pytest.raises(ValueError, match="at least one"):
        appearance.appearance_mask([])
    with pytest.raises(ValueError, match="share"):
        appearance.appearance_mask([np.zeros([2, 2])], share=0)


# --- appearance matrix -------------------------------------------------------------------


@pytest.mark.parametrize("dynamic", [False, True])
def test_matrix_columns_are_the_masked_pixels_in_column_major_order(dynamic):
    grey = RNG.random((5, 4, 3)).astype(np.float32)
    mask = np.array([[1, 0, 1], [1, 1, 0], [0, 0, 1], [1, 0, 0]], bool)
    want = np.stack([frame.flatten(order="F")[mask.flatten(order="F")] for frame in grey],
                    axis=1)
    for columns in (None, 5):
        got = appearance.appearance_matrix(grey, mask, columns=columns).numpy()
        np.testing.assert_array_equal(got, want)
        mapped = _mapped(lambda g: appearance.appearance_matrix(g, mask, columns=columns),
                         grey, dynamic=dynamic).numpy()
        np.testing.assert_array_equal(mapped, want)
    np.testing.assert_array_equal(appearance.masked_pixel_order(mask), [0, 3, 9, 4, 2, 8])


@pytest.mark.parametrize("dynamic", [False, True])
def test_a_ramp_in_time_stays_a_ramp(dynamic):
    frames = 10 * np.arange(12, dtype=np.float32)[:, None, None] * np.ones([1, 3, 2], np.float32)
    mask = np.array([[1, 0], [1, 1], [0, 1]], bool)
    # Half-pixel mapping (as MATLAB), clamped at the ends: np.interp does both.
    centres = (np.arange(30) + 0.5) * 12 / 30 - 0.5
    want = np.interp(centres, np.arange(12), 10 * np.arange(12))
    got = appearance.appearance_matrix(frames, mask, columns=30, method="bilinear")
    mapped = _mapped(lambda f: appearance.appearance_matrix(f, mask, 30, "bilinear"), frames,
                     dynamic=dynamic)
    assert got.shape == (4, 30) and mapped.shape == (4, 30)
    np.testing.assert_allclose(got.numpy(), np.tile(want, (4, 1)), atol=1e-4)
    np.testing.assert_allclose(mapped.numpy(), got.numpy(), atol=1e-5)


def test_matrix_rejects_a_mask_of_another_size():
    with pytest.raises(ValueError, match=r"frames are \(4, 3\) but the mask is \(3, 4\)"):
        appearance.appearance_matrix(np.zeros([2, 4, 3]), np.ones([3, 4], bool))
    with pytest.raises(ValueError, match="keeps no pixel"):
        appearance.appearance_matrix(np.zeros([2, 4, 3]), np.zeros([4, 3], bool))


# --- temporal jittering ------------------------------------------------------------------


def test_drop_count_is_the_ceiling_of_the_ratio():
    # 20 columns: ratio * 20 is an integer for every ratio (no floating-point off-by-one).
    assert [appearance.drop_count(20, r) for r in appearance.JITTER_RATIOS] == list(range(12))
    # 150 columns: ceil(7.5) = 8, ceil(22.5) = 23, ..., ceil(82.5) = 83.
    assert [appearance.drop_count(150, r) for r in appearance.JITTER_RATIOS] == [
        0, 8, 15, 23, 30, 38, 45, 53, 60, 68, 75, 83]
    assert appearance.drop_count(2, 0.55) == 1 and appearance.drop_count(1, 0.3) == 0
    assert int(appearance.drop_count(tf.constant(150), tf.constant(0.15))) == 23
    with pytest.raises(ValueError, match="ratio"):
        appearance.drop_count(10, 1.0)


@pytest.mark.parametrize("method", appearance.JITTER_METHODS)
def test_ratio_zero_is_the_identity(method):
    matrix = RNG.random((6, 9)).astype(np.float32)
    np.testing.assert_array_equal(appearance.temporal_jitter(matrix, 0.0, method).numpy(),
                                  matrix)
    mapped = _mapped(lambda m: appearance.temporal_jitter(m, 0.0, method), matrix,
                     dynamic=True)
    np.testing.assert_array_equal(mapped.numpy(), matrix)


@pytest.mark.parametrize("ratio", appearance.JITTER_RATIOS[1:])
def test_jitter_drops_ceil_ratio_columns_and_keeps_the_order(ratio):
    tf.random.set_seed(int(ratio * 100))
    columns = 20
    matrix = _ramp(3, columns)
    dropped = round(ratio * columns)  # ratio * 20 is an integer here: ceil = round
    kept = appearance.drop_columns(matrix, ratio).numpy()
    assert kept.shape == (3, columns - dropped)
    assert (np.diff(kept[0]) > 0).all() and set(kept[0]) <= set(range(columns))
    # Nearest back to 20 columns: every output value is a kept column, each kept one shows.
    near = appearance.temporal_jitter(matrix, ratio, "nearest").numpy()
    assert near.shape == (3, columns)
    assert len(set(near[0])) == columns - dropped and set(near[0]) <= set(range(columns))
    assert (np.diff(near[0]) >= 0).all() and (near == near[0]).all()
    # Non-negative kernels keep a ramp monotone, within the range.
    for method in ("bilinear", "box", "triangle"):
        out = appearance.temporal_jitter(matrix, ratio, method, columns=150).numpy()
        assert out.shape == (3, 150) and (np.diff(out[0]) >= -1e-4).all()
        assert out.min() >= -1e-4 and out.max() <= columns - 1 + 1e-4


@pytest.mark.parametrize("dynamic", [False, True])
def test_jitter_in_dataset_map_agrees_with_eager(dynamic):
    matrix = _ramp(4, 30)
    eager = appearance.temporal_jitter(matrix, 0.25, "nearest", seed=3)
    mapped = _mapped(lambda m: appearance.temporal_jitter(m, 0.25, "nearest", seed=3), matrix,
                     dynamic=dynamic)
    assert mapped.shape == eager.shape == (4, 30)
    assert len(set(mapped.numpy()[0])) == len(set(eager.numpy()[0])) == 30 - 8
    mapped = _mapped(lambda m: appearance.temporal_jitter(m, 0.25, "lanczos3", columns=150),
                     matrix, dynamic=dynamic)
    assert tuple(mapped.shape) == (4, 150)
    # The ratio may be a tensor too (drawn per clip).
    mapped = _mapped(lambda m, r: appearance.temporal_jitter(m, r, "nearest"), matrix,
                     np.float32(0.1), dynamic=dynamic)
    assert len(set(mapped.numpy()[0])) == 30 - 3


def test_jittered_copies_are_the_releases_96():
    matrix = _ramp(5, 20) + RNG.random((5, 1)).astype(np.float32)
    copies = appearance.jittered_copies(matrix, seed=1).numpy()
    assert copies.shape == (96, 5, 20)
    for m in range(8):  # ratio 0, every method: the matrix itself
        np.testing.assert_array_equal(copies[m], matrix)
    for i, ratio in enumerate(appearance.JITTER_RATIOS):  # copy 8 i + 0 is nearest
        assert len(set(copies[8 * i, 0])) == 20 - appearance.drop_count(20, ratio)


def test_jittered_copies_of_the_raw_matrix_resize_it_to_150():
    raw = RNG.random((3, 17)).astype(np.float32) * 255
    copies = appearance.jittered_copies(raw, seed=2, columns=appearance.COLUMNS).numpy()
    mapped = _mapped(lambda m: appearance.jittered_copies(m, columns=150), raw, dynamic=True)
    assert copies.shape == tuple(mapped.shape) == (96, 3, 150)
    for m, method in enumerate(appearance.JITTER_METHODS):
        want = appearance.resize_columns(raw, 150, method).numpy()
        np.testing.assert_allclose(copies[m], want, rtol=1e-6)
    # One drop per ratio, shared by its 8 kernels: enlarging, MATLAB's nearest = box,
    # bilinear = triangle, bicubic = cubic.
    for i in range(12):
        block = copies[8 * i:8 * i + 8]
        np.testing.assert_allclose(block[0], block[3], atol=1e-4)
        np.testing.assert_allclose(block[1], block[4], atol=1e-4)
        np.testing.assert_allclose(block[2], block[5], atol=1e-4)
