"""STLBP-IP against a loop-by-loop transcription of the method (the reference `LBP_1D.m`, the
Oulu `lbp.m` and `getmapping.m` as written), hand examples and the bad-input errors."""

import math
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pytest

from tfmer.handcrafted.stlbp_ip import (PARTS, integral_projections, lbp_1d, lbp_2d, stlbp_ip,
                                        u2_mapping)


def _matlab_round(value):
    """MATLAB's `round` (halves away from zero) of a double, exactly."""
    return float(Decimal(value).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _roundn(value, n):
    """`lbp.m`'s `roundn(x, n)` for n < 0."""
    p = 10 ** -n
    return _matlab_round(p * value) / p


def _getmapping_u2(points):
    """`getmapping(points, 'u2')` as written: rotate left, count the changed bits."""
    table = [0] * 2 ** points
    index = 0
    new_max = points * (points - 1) + 3
    for i in range(2 ** points):
        j = ((i << 1) & (2 ** points - 1)) | (i >> (points - 1))
        if bin(i ^ j).count("1") <= 2:
            table[i] = index
            index += 1
        else:
            table[i] = new_max - 1
    return table, new_max


def _lbp_1d_loops(vector, w):
    """`LBP_1D.m` as written: the codes of a row vector with linear mask W."""
    r = (w - 1) // 2
    codes = []
    for i in range(r, len(vector) - r):
        s = []
        for j in range(i - r, i):
            s.append(1 if vector[j] >= vector[i] else 0)
        for j in range(i + 1, i + r + 1):
            s.append(1 if vector[j] >= vector[i] else 0)
        total = 0
        for k in range(len(s)):
            total = s[k] * 2 ** (len(s) - 1 - k) + total
        codes.append(total)
    return codes


def _lbp_2d_loops(image, radius, neighbors):
    """`lbp.m` as written, one centre pixel at a time (1-based coordinates as MATLAB's)."""
    ysize, xsize = len(image), len(image[0])
    a = 2 * math.pi / neighbors
    spoints = [(-radius * math.sin(i * a), radius * math.cos(i * a)) for i in range(neighbors)]
    miny, maxy = min(p[0] for p in spoints), max(p[0] for p in spoints)
    minx, maxx = min(p[1] for p in spoints), max(p[1] for p in spoints)
    bsizey = math.ceil(max(maxy, 0)) - math.floor(min(miny, 0)) + 1
    bsizex = math.ceil(max(maxx, 0)) - math.floor(min(minx, 0)) + 1
    origy, origx = 1 - math.floor(min(miny, 0)), 1 - math.floor(min(minx, 0))
    dy, dx = ysize - bsizey, xsize - bsizex

    def at(y, x):
        return image[y - 1][x - 1]

    codes = []
    for cy_ in range(origy, origy + dy + 1):
        for cx_ in range(origx, origx + dx + 1):
            sy, sx = cy_ - origy, cx_ - origx  # this centre's shift from the box origin
            centre = at(cy_, cx_)
            code = 0
            for i in range(neighbors):
                y = spoints[i][0] + origy
                x = spoints[i][1] + origx
                fy, cy, ry = math.floor(y), math.ceil(y), int(_matlab_round(y))
                fx, cx, rx = math.floor(x), math.ceil(x), int(_matlab_round(x))
                if abs(x - rx) < 1e-6 and abs(y - ry) < 1e-6:
                    value = at(ry + sy, rx + sx)
                else:
                    ty, tx = y - fy, x - fx
                    w1 = _roundn((1 - tx) * (1 - ty), -6)
                    w2 = _roundn(tx * (1 - ty), -6)
                    w3 = _roundn((1 - tx) * ty, -6)
                    w4 = _roundn(1 - w1 - w2 - w3, -6)
                    value = _roundn(w1 * at(fy + sy, fx + sx) + w2 * at(fy + sy, cx + sx)
                                    + w3 * at(cy + sy, fx + sx) + w4 * at(cy + sy, cx + sx), -4)
                if value >= centre:
                    code += 2 ** i
            codes.append(code)
    return codes


def _stlbp_ip_loops(clip, rows, cols, points, radius, uniform):
    """The method of the module docstring, one block, frame, pixel and code at a time."""
    frames, height, width = clip.shape
    bh, bw = height // rows, width // cols
    if uniform:
        table, bins = _getmapping_u2(points)
    else:
        table, bins = list(range(2 ** points)), 2 ** points
    features = np.zeros((4, bins, rows * cols))
    for r in range(rows):
        for c in range(cols):
            horizontal, vertical = [], []
            for t in range(1, frames):
                diff = [[float(clip[t, r * bh + y, c * bw + x]) - float(clip[0, r * bh + y,
                                                                            c * bw + x])
                         for x in range(bw)] for y in range(bh)]
                horizontal.append([sum(diff[y][x] for x in range(bw)) for y in range(bh)])
                vertical.append([sum(diff[y][x] for y in range(bh)) for x in range(bw)])
            yt = [[horizontal[t][y] for t in range(frames - 1)] for y in range(bh)]
            xt = [[vertical[t][x] for x in range(bw)] for t in range(frames - 1)]
            histogram = np.zeros((4, bins))
            for projection in horizontal:
                for code in _lbp_1d_loops(projection, points + 1):
                    histogram[0, table[code]] += 1
            for projection in vertical:
                for code in _lbp_1d_loops(projection, points + 1):
                    histogram[1, table[code]] += 1
            for code in _lbp_2d_loops(yt, radius, points):
                histogram[2, table[code]] += 1
            for code in _lbp_2d_loops(xt, radius, points):
                histogram[3, table[code]] += 1
            features[:, :, r * cols + c] = histogram / histogram.sum(axis=1, keepdims=True)
    return features.ravel()


def _tiny_clip(seed=5, frames=12, height=20, width=22):
    """Few grey levels, so that projections and interpolated neighbours tie often."""
    rng = np.random.default_rng(seed)
    clip = rng.integers(0, 4, size=(frames, height, width)).astype(np.uint8)
    clip[:, 2:6, 3:9] = 2  # a still patch: zero differences, equal projections
    return clip


@pytest.mark.parametrize("points,radius,uniform", [(8, 3, True), (8, 3, False), (8, 1, True),
                                                   (4, 2, True)])
def test_stlbp_ip_equals_the_loops(points, radius, uniform):
    clip = _tiny_clip()
    expected = _stlbp_ip_loops(clip, 2, 2, points, radius, uniform)
    features = stlbp_ip(clip, grid=(2, 2), points=points, radius=radius, uniform=uniform)
    assert features.dtype == np.float64 and features.shape == expected.shape
    np.testing.assert_allclose(features, expected, rtol=0, atol=1e-12)


def test_float_clip_and_remainder_dropped_equal_the_loops():
    rng = np.random.default_rng(8)
    clip = rng.uniform(0, 255, size=(9, 23, 21))  # 23 // 2 = 11 rows, 21 // 2 = 10 columns
    np.testing.assert_allclose(stlbp_ip(clip, grid=(2, 2)),
                               _stlbp_ip_loops(clip, 2, 2, 8, 3, True), rtol=0, atol=1e-12)


def test_default_setting_on_a_clip_of_the_built_in_size():
    rng = np.random.default_rng(1)
    clip = rng.integers(0, 256, size=(32, 128, 128)).astype(np.uint8)
    features = stlbp_ip(clip)
    assert features.shape == (len(PARTS) * 59 * 8 * 9,)
    np.testing.assert_allclose(features.reshape(4, 59, 72).sum(axis=1), 1, rtol=0, atol=1e-12)


def test_integral_projection_by_hand():
    first = [[1, 1, 1], [2, 2, 2]]
    second = [[2, 3, 4], [2, 0, 7]]
    # difference [[1, 2, 3], [0, -2, 5]]: row sums 6 and 3, column sums 1, 0 and 8
    horizontal, vertical = integral_projections(np.array([first, second], np.uint8))
    assert horizontal.shape == (1, 1, 1, 2) and vertical.shape == (1, 1, 1, 3)
    np.testing.assert_array_equal(horizontal[0, 0, 0], [6, 3])
    np.testing.assert_array_equal(vertical[0, 0, 0], [1, 0, 8])
    # two blocks side by side of 2 x 1 pixels; the third column is dropped
    horizontal, vertical = integral_projections(np.array([first, second]), grid=(1, 2))
    np.testing.assert_array_equal(horizontal[0, 0], [[1, 0], [2, -2]])
    np.testing.assert_array_equal(vertical[0, 0], [[1], [0]])


def test_one_1d_lbp_code_by_hand():
    # centre 4; neighbours left to right 5 1 7 3 | 4 9 0 6, >= 4 -> bits 1010 1101
    # (the leftmost the most significant, the tie 4 >= 4 sets its bit): 173
    signal = [5, 1, 7, 3, 4, 4, 9, 0, 6]
    assert lbp_1d(signal, 8).tolist() == [173]
    assert u2_mapping(8)[173] == 58  # six 0/1 transitions: the non-uniform bin, the last


def test_one_2d_lbp_code_by_hand():
    # P = 4, R = 1: neighbour 0 right (1 < 4), 1 up (5), 2 left (9), 3 down (4, a tie):
    # bits 1, 2 and 3 -> 2 + 4 + 8 = 14
    image = [[0, 5, 0], [9, 4, 1], [0, 4, 0]]
    assert lbp_2d(image, radius=1, points=4).tolist() == [[14]]


def test_interpolated_neighbour_rounds_as_lbp_m():
    # R = 3, P = 8, neighbour 1 (45 deg) of the centre (4, 4) (1-based) lies at
    # (4 - 2.1213, 4 + 2.1213) = (1.8787, 6.1213): tx = 0.1213, ty = 0.8787. lbp.m rounds
    # w1 = 0.106602, w2 = 0.014719, w3 = 0.772078 to 6 decimals and takes
    # w4 = 1 - w1 - w2 - w3 = 0.106601 (not round(tx * ty) = 0.106602). Only its corner
    # (2, 7) is 100: the neighbour is round(10.6601, 4) = 10.6601 < 10.66015, no bit;
    # the unrounded or tx * ty weights would give 10.6602 and set bit 1.
    image = np.zeros((7, 7))
    image[1, 6] = 100
    image[3, 3] = 10.66015
    assert lbp_2d(image, radius=3, points=8).tolist() == [[0]]
    image[3, 3] = 10.66005  # below 10.6601: bit 1 (value 2) is set
    assert lbp_2d(image, radius=3, points=8).tolist() == [[2]]


def test_u2_mapping_is_getmapping():
    table, bins = _getmapping_u2(8)
    assert bins == 59
    np.testing.assert_array_equal(u2_mapping(8), table)


def test_a_still_clip_has_only_the_all_ones_code():
    # every difference image is 0: every neighbour ties with its centre, every code is
    # 11111111 = 255, the last uniform pattern, bin 57 of 59
    clip = np.full((9, 20, 20), 77, np.uint8)
    features = stlbp_ip(clip, grid=(2, 2)).reshape(4, 59, 4)
    expected = np.zeros((4, 59, 4))
    expected[:, 57, :] = 1
    np.testing.assert_array_equal(features, expected)


def test_bad_inputs():
    clip = np.zeros((8, 20, 20))
    with pytest.raises(ValueError, match=r"7 frames is too short .* radius 3 .* at least 8"):
        stlbp_ip(clip[:7], grid=(2, 2))
    with pytest.raises(ValueError, match=r"8 x 7 pixels .* at least 9 x 9"):
        stlbp_ip(np.zeros((8, 64, 64)))
    with pytest.raises(ValueError, match=r"\[T, H, W\] clip, got shape \(8, 20, 20, 3\)"):
        stlbp_ip(np.zeros((8, 20, 20, 3)))
    with pytest.raises(ValueError, match="even integer in 2..16, got 7"):
        stlbp_ip(clip, grid=(2, 2), points=7)
    with pytest.raises(ValueError, match=r"grid must be .* got \(0, 2\)"):
        stlbp_ip(clip, grid=(0, 2))
    with pytest.raises(ValueError, match="radius must be an integer >= 1, got 0"):
        stlbp_ip(clip, grid=(2, 2), radius=0)
    with pytest.raises(ValueError, match="1 frame"):
        integral_projections(clip[:1])
    with pytest.raises(ValueError, match="at least 9 values, got 8"):
        lbp_1d(np.zeros(8), 8)
    with pytest.raises(ValueError, match="6 x 9 pixels is smaller than the 7 x 7"):
        lbp_2d(np.zeros((6, 9)), radius=3)
