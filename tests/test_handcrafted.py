"""LBP-TOP against a pixel-by-pixel transcription of the Oulu `LBPTOP.m` loops and hand
examples."""

import math

import numpy as np
import pytest

from tfmer.handcrafted import lbp_top, lbp_top_tlcnn, uniform_mapping


def _oulu_loops(volume, rx, ry, rt, points, bilinear, mapping, bins):
    """`LBPTOP.m` as written: 1-based loops over the centres, one neighbour at a time
    (MATLAB's `VolData(y, x, t)` is `volume[t - 1, y - 1, x - 1]` here)."""
    frames, height, width = volume.shape
    border = max(rx, ry)
    histogram = np.zeros((3, bins))

    def at(t, y, x):
        return volume[int(t) - 1, int(y) - 1, int(x) - 1]

    def bilinear_sample(a, b, corner):
        """MATLAB's single-precision sum; `corner(i, j)` the value at (a index i, b j)."""
        a, b = np.float32(a), np.float32(b)
        u, v = a - np.floor(a), b - np.floor(b)
        one = np.float32(1)
        fa, ca, fb, cb = np.floor(a), np.ceil(a), np.floor(b), np.ceil(b)
        return np.floor(np.float32(corner(fa, fb)) * (one - u) * (one - v)
                        + np.float32(corner(fa, cb)) * (one - u) * v
                        + np.float32(corner(ca, fb)) * u * (one - v)
                        + np.float32(corner(ca, cb)) * u * v)

    for i in range(rt + 1, frames - rt + 1):
        for yc in range(border + 1, height - border + 1):
            for xc in range(border + 1, width - border + 1):
                centre = at(i, yc, xc)
                codes = [0, 0, 0]
                for p in range(points):
                    angle = 2 * math.pi * p / points
                    if bilinear:
                        values = (
                            bilinear_sample(xc + rx * math.cos(angle), yc - ry * math.sin(angle),
                                            lambda x, y: at(i, y, x)),
                            bilinear_sample(xc + rx * math.cos(angle), i + rt * math.sin(angle),
                                            lambda x, z: at(z, yc, x)),
                            bilinear_sample(yc - ry * math.sin(angle), i + rt * math.cos(angle),
                                            lambda y, z: at(z, y, xc)))
                    else:
                        values = (
                            at(i, math.floor(yc - ry * math.sin(angle) + 0.5),
                               math.floor(xc + rx * math.cos(angle) + 0.5)),
                            at(math.floor(i + rt * math.sin(angle) + 0.5), yc,
                               math.floor(xc + rx * math.cos(angle) + 0.5)),
                            at(math.floor(i + rt * math.cos(angle) + 0.5),
                               math.floor(yc - ry * math.sin(angle) + 0.5), xc))
                    for plane, value in enumerate(values):
                        if value >= centre:
                            codes[plane] += 2 ** p
                for plane in range(3):
                    histogram[plane, mapping[codes[plane]]] += 1
    return histogram / histogram.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("bilinear", [False, True])
@pytest.mark.parametrize("uniform", [True, False])
def test_lbp_top_equals_the_oulu_loops(bilinear, uniform):
    rng = np.random.default_rng(3)
    volume = rng.integers(0, 256, size=(7, 11, 13)).astype(np.float64)
    volume[2:4, 3:6, 4:8] = 100  # ties: a neighbour equal to its centre sets the bit
    mapping = uniform_mapping(8) if uniform else np.arange(256)
    bins = 59 if uniform else 256
    for radii in ((1, 1, 1), (2, 1, 3)):
        expected = _oulu_loops(volume, *radii, 8, bilinear, mapping, bins)
        features = lbp_top(volume, radii=radii, bilinear=bilinear, uniform=uniform)
        assert features.shape == (3, bins, 1)
        np.testing.assert_allclose(features[:, :, 0], expected, rtol=0, atol=1e-12)


def test_blocks_are_row_major_with_the_remainder_dropped():
    rng = np.random.default_rng(4)
    volume = rng.integers(0, 256, size=(5, 13, 17)).astype(np.float64)
    features = lbp_top(volume, radii=(1, 1, 1), grid=(2, 3))
    assert features.shape == (3, 59, 6)
    np.testing.assert_allclose(features.sum(axis=1), 1)
    mapping = uniform_mapping(8)
    # Block (row 1, col 2): rows 6..11 and columns 10..14 (6 x 5 px); row 12, column 15 and
    # 16 are the dropped remainder.
    block = volume[:, 6:12, 10:15]
    np.testing.assert_allclose(features[:, :, 1 * 3 + 2],
                               _oulu_loops(block, 1, 1, 1, 8, False, mapping, 59), atol=1e-12)


def test_hand_examples():
    # A constant volume: every neighbour equals its centre, all 8 bits set (code 255), the
    # last uniform pattern (bin 58) in each plane.
    features = lbp_top(np.full((3, 5, 5), 7.0))
    assert np.array_equal(np.argmax(features[:, :, 0], axis=1), [58, 58, 58])
    assert np.allclose(features[:, 58, 0], 1)
    # Brightness growing to the right: in XY the neighbours at p = 0, 1, 2, 6, 7 (x offset
    # round(cos) >= 0) are >= the centre: code 1 + 2 + 4 + 64 + 128 = 199.
    volume = np.broadcast_to(np.arange(6.0), (3, 6, 6))
    uniform_codes = [c for c in range(256)
                     if sum(((c >> k) & 1) != ((c >> ((k + 1) % 8)) & 1) for k in range(8)) <= 2]
    assert len(uniform_codes) == 58
    features = lbp_top(volume)
    assert features[0, 1 + uniform_codes.index(199), 0] == 1
    # The XT plane sees the same x ramp at every t: bits where round(cos) >= 0 as in XY.
    assert features[1, 1 + uniform_codes.index(199), 0] == 1
    # The YT plane does not see x: every neighbour equals its centre (code 255).
    assert features[2, 58, 0] == 1
    # A non-uniform code lands in bin 0: 0b01010101 has 8 transitions.
    assert uniform_mapping(8)[0b01010101] == 0 and uniform_mapping(8)[0] == 1


def test_bad_input_names_the_problem():
    with pytest.raises(ValueError, match=r"grey \[T, H, W\] volume, got shape \(4, 4\)"):
        lbp_top(np.zeros((4, 4)))
    with pytest.raises(ValueError, match=r"a block of 3 x 2 x 2 .*\(radii \(1, 1, 1\)\)"):
        lbp_top(np.zeros((3, 4, 4)), grid=(2, 2))


def test_the_tlcnn_setting_concatenates_the_colour_channels():
    rng = np.random.default_rng(5)
    clip = rng.integers(0, 256, size=(8, 14, 14, 3)).astype(np.uint8)
    features = lbp_top_tlcnn(clip, grid=(2, 2))
    per_channel = [lbp_top(clip[..., c], radii=(3, 3, 3), grid=(2, 2)).ravel()
                   for c in range(3)]
    np.testing.assert_array_equal(features, np.concatenate(per_channel))
    assert features.shape == (3 * 3 * 59 * 4,)
    with pytest.raises(ValueError, match=r"\[T, H, W, 3\] RGB clip, got shape \(8, 14, 14\)"):
        lbp_top_tlcnn(clip[..., 0])
