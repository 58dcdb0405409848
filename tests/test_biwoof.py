"""Bi-WOOF against a hand computation, a rotated field and analytic motion, and the
bad-input errors."""

import math

import numpy as np
import pytest

from tfmer.handcrafted.biwoof import BIWOOF_GRID, bi_woof, orientation_bins


def test_hand_computed_field_of_two_blocks():
    # 4 x 4 field, grid 1 x 2: the left block is columns 0-1, the right block columns 2-3.
    motion = np.zeros((4, 4, 3), np.float32)
    motion[0, 0, :2] = (2, 1)    # atan2(1, 2) = 26.6 deg: bin 4 [0, 45), magnitude sqrt 5
    motion[1, 1, :2] = (2, 1)    # the same
    motion[2, 0, :2] = (-1, 2)   # 116.6 deg: bin 6 [90, 135), magnitude sqrt 5
    motion[3, 1, :2] = (1, -3)   # -71.6 deg: bin 2 [-90, -45), magnitude sqrt 10
    motion[:, :2, 2] = 0.5       # left strain: mean 0.5
    motion[:, 2:, :2] = (-3, -1)  # -161.6 deg: bin 0 [-180, -135), magnitude sqrt 10
    motion[:2, 2:, 2] = 1        # right strain: four 1s and four 3s, mean 2
    motion[2:, 2:, 2] = 3
    left = np.zeros(8)
    left[[2, 4, 6]] = math.sqrt(10), 2 * math.sqrt(5), math.sqrt(5)
    left /= math.sqrt(10) + 3 * math.sqrt(5)       # magnitude-weighted, summing to 1
    right = np.eye(8)[0]                           # all the right block's votes in bin 0
    expected = np.concatenate([0.5 * left, 2 * right])
    expected /= math.sqrt(np.sum(expected ** 2))   # unit Euclidean norm
    features = bi_woof(motion, grid=(1, 2), bins=8)
    assert features.dtype == np.float64 and features.shape == (16,)
    np.testing.assert_allclose(features, expected, rtol=1e-12, atol=0)


def test_bins_are_half_open_from_minus_pi():
    # 0 deg opens bin 4, -90 deg opens bin 2, 90 deg opens bin 6, -135 deg opens bin 1,
    # and 180 deg (atan2 of (v = 0, u < 0)) is the direction of -180 deg: bin 0
    u = np.array([1.0, 0.0, 0.0, -1.0, -1.0, 1.0])
    v = np.array([0.0, -1.0, 1.0, -1.0, 0.0, 1e-9])
    assert orientation_bins(u, v, 8).tolist() == [4, 2, 6, 1, 0, 4]


def test_a_field_rotated_by_90_degrees_shifts_the_bins_by_a_quarter():
    rng = np.random.default_rng(0)
    n, bins = 3, 8
    motion = rng.normal(size=(12, 12, 3))
    motion[..., 2] = np.abs(motion[..., 2])
    # np.rot90 turns the picture a quarter counter-clockwise on the screen: (x, y) ->
    # (y, W - 1 - x), so a displacement (u, v) becomes (v, -u) (v points down) and its
    # angle atan2(v, u) drops by 90 degrees = 2 bins; block (i, j) moves to (n - 1 - j, i)
    rotated = np.stack([np.rot90(motion[..., 1]), -np.rot90(motion[..., 0]),
                        np.rot90(motion[..., 2])], axis=-1)
    before = bi_woof(motion, grid=(n, n), bins=bins).reshape(n, n, bins)
    after = bi_woof(rotated, grid=(n, n), bins=bins).reshape(n, n, bins)
    for i in range(n):
        for j in range(n):
            np.testing.assert_allclose(after[n - 1 - j, i], np.roll(before[i, j], -bins // 4),
                                       rtol=1e-12, atol=1e-15)
    assert not np.allclose(before, after)  # the field is not symmetric itself


def test_strain_weights_blocks_and_a_still_or_strainless_field_is_zero():
    # a uniform translation has no strain: every block's global weight is 0
    motion = np.zeros((10, 10, 3))
    motion[..., 0] = 1.5
    np.testing.assert_array_equal(bi_woof(motion, grid=(2, 2)), np.zeros(2 * 2 * 8))
    # strain in one block only: only that block's histogram survives, all in bin 4 (0 deg)
    motion[5:, :5, 2] = 0.2
    features = bi_woof(motion, grid=(2, 2)).reshape(4, 8)
    expected = np.zeros((4, 8))
    expected[2, 4] = 1
    np.testing.assert_allclose(features, expected, rtol=1e-12, atol=0)
    # no motion at all
    np.testing.assert_array_equal(bi_woof(np.zeros((10, 10, 3))), np.zeros(25 * 8))


def test_default_grid_and_size():
    rng = np.random.default_rng(2)
    motion = rng.normal(size=(128, 128, 3)).astype(np.float32)
    motion[..., 2] = np.abs(motion[..., 2])
    features = bi_woof(motion)
    assert BIWOOF_GRID == (5, 5) and features.shape == (5 * 5 * 8,)
    assert math.isclose(np.linalg.norm(features), 1, rel_tol=1e-12)


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"\[H, W, 3\] motion .* got shape \(8, 8, 2\)"):
        bi_woof(np.zeros((8, 8, 2)))
    nan = np.zeros((8, 8, 3))
    nan[1, 1, 0] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        bi_woof(nan)
    negative = np.zeros((8, 8, 3))
    negative[0, 0, 2] = -1
    with pytest.raises(ValueError, match="strain .* minimum is -1"):
        bi_woof(negative)
    with pytest.raises(ValueError, match=r"4 x 4 motion cannot be cut into a 5 x 5 grid"):
        bi_woof(np.zeros((4, 4, 3)))
    with pytest.raises(ValueError, match="bins must be an integer >= 1, got 0"):
        bi_woof(np.zeros((8, 8, 3)), bins=0)
    with pytest.raises(ValueError, match=r"grid must be .* got \(1, 0\)"):
        bi_woof(np.zeros((8, 8, 3)), grid=(1, 0))
