"""FDM: known directions per cuboid, the principal direction against a brute-force search of
its objective, cuboid counts and contents, mirror symmetry, analytic flows and bad input."""

import math

import cv2
import numpy as np
import pytest

from tfmer.handcrafted import fdm as F


def _cuboid_field(rng, runs, tau, grid, cell, angles, noise=0.3, against=0.2):
    """Flows `[runs * tau, P * cell, Q * cell, 2]`: in cuboid (r, p, q) unit vectors at
    `angles[r, p, q]` plus Gaussian noise, a fraction `against` of them reversed."""
    rows, cols = grid
    flows = np.zeros((runs * tau, rows * cell, cols * cell, 2))
    for r in range(runs):
        for p in range(rows):
            for q in range(cols):
                n = (tau, cell, cell)
                block = np.stack([np.cos(angles[r, p, q]) * np.ones(n),
                                  np.sin(angles[r, p, q]) * np.ones(n)], axis=-1)
                block[rng.random(n) < against] *= -1
                block += rng.normal(0, noise, block.shape)
                flows[r * tau:(r + 1) * tau, p * cell:(p + 1) * cell,
                      q * cell:(q + 1) * cell] = block
    return flows


def test_known_direction_per_cuboid_comes_back_quantised():
    rng = np.random.default_rng(0)
    runs, tau, grid, cell = 3, 4, (3, 4), 6
    step = 2 * math.pi / 8
    # Directions at least 8 degrees from a quantisation boundary (k + 1/2) 45 degrees.
    index = rng.integers(0, 8, (runs, *grid))
    angles = index * step + rng.uniform(-1, 1, index.shape) * (step / 2 - math.radians(8))
    flows = _cuboid_field(rng, runs, tau, grid, cell, angles)
    flows[:, :cell, :cell] = 0  # cuboids (r, 0, 0) do not move
    flows = np.concatenate([flows, rng.normal(0, 5, (3, *flows.shape[1:]))])  # dropped
    feature = F.fdm(flows, grid, tau)  # 15 flow frames, tau 4: 3 runs, 3 frames dropped
    assert feature.shape == (runs * 3 * 4 * 2,) and feature.dtype == np.float64
    vectors = feature.reshape(runs, *grid, 2)
    direction = np.rint(np.arctan2(vectors[..., 1], vectors[..., 0]) / step).astype(int) % 8
    moving = np.ones((runs, *grid), bool)
    moving[:, 0, 0] = False
    np.testing.assert_array_equal(direction[moving], index[moving])
    np.testing.assert_allclose(vectors[~moving], 0)
    # The vectors point exactly along the quantised direction.
    np.testing.assert_allclose(np.angle(np.exp(1j * (np.arctan2(vectors[..., 1],
                                                                vectors[..., 0])
                                                     - direction * step)))[moving], 0,
                               atol=1e-12)
    # Strength: 80 % of unit vectors along xi (20 % reversed add nothing): about 0.8.
    strength = np.hypot(vectors[..., 0], vectors[..., 1])[moving]
    assert np.all((strength > 0.7) & (strength < 0.95))


def _objective(vectors, angle):
    return np.maximum(vectors @ np.array([math.cos(angle), math.sin(angle)]), 0).sum()


def test_principal_direction_maximises_the_positive_projection():
    rng = np.random.default_rng(1)
    runs, tau, grid, cell = 2, 3, (2, 2), 5
    angles = rng.uniform(-math.pi, math.pi, (runs, *grid))
    flows = _cuboid_field(rng, runs, tau, grid, cell, angles, noise=0.8, against=0.35)
    flows *= rng.uniform(0.5, 2, flows.shape[:3])[..., None]  # vectors of many lengths
    angle, strength = F.principal_directions(flows, grid, tau)
    search = np.linspace(-math.pi, math.pi, 7201)
    for r in range(runs):
        for p in range(grid[0]):
            for q in range(grid[1]):
                vectors = flows[r * tau:(r + 1) * tau, p * cell:(p + 1) * cell,
                                q * cell:(q + 1) * cell].reshape(-1, 2)
                values = [_objective(vectors, a) for a in search]
                best = search[int(np.argmax(values))]
                # the search's step is 0.05 degrees; J is flat near its maximum
                assert abs(np.angle(np.exp(1j * (angle[r, p, q] - best)))) < math.radians(1)
                assert _objective(vectors, angle[r, p, q]) >= max(values) - 1e-6
                assert strength[r, p, q] == pytest.approx(
                    _objective(vectors, angle[r, p, q]) / len(vectors))
                # fixed point: xi is the direction of the sum of the vectors it projects on
                xi = np.array([math.cos(angle[r, p, q]), math.sin(angle[r, p, q])])
                total = vectors[vectors @ xi > 0].sum(axis=0)
                np.testing.assert_allclose(total / np.linalg.norm(total), xi, atol=1e-6)


def test_cuboid_counts_and_contents():
    rng = np.random.default_rng(2)
    for flows_count, taus, runs in ((31, F.FDM_TAUS_TIM32, (10, 5, 3)),
                                    (63, F.FDM_TAUS_TIM64, (9, 6, 5))):
        flows = rng.normal(0, 1, (flows_count, 8, 8, 2))
        for tau, expected in zip(taus, runs):
            assert F.cuboids(flows, (2, 2), tau).shape == (expected, 2, 2, tau * 16, 2)
            assert F.fdm(flows, (4, 2), tau).shape == (expected * 4 * 2 * 2,)
    # Contents: cuboid (r, p, q) holds the vectors of its frames, rows and columns; the
    # remainder at the bottom and right (10 = 3 * 3 + 1, 11 = 2 * 5 + 1) is dropped.
    flows = rng.normal(0, 1, (7, 10, 11, 2))
    blocks = F.cuboids(flows, (3, 2), 3)
    assert blocks.shape == (2, 3, 2, 3 * 3 * 5, 2)
    for r in range(2):
        for p in range(3):
            for q in range(2):
                literal = flows[3 * r:3 * r + 3, 3 * p:3 * p + 3, 5 * q:5 * q + 5].reshape(-1, 2)
                np.testing.assert_allclose(np.sort(blocks[r, p, q], axis=0),
                                           np.sort(literal, axis=0), rtol=1e-6)


def test_mirrored_flows_give_mirrored_directions():
    rng = np.random.default_rng(4)
    angles = rng.uniform(-math.pi, math.pi, (2, 2, 3))
    flows = _cuboid_field(rng, 2, 2, (2, 3), 4, angles)
    mirrored = flows[:, :, ::-1] * [-1, 1]
    angle, _ = F.principal_directions(flows, (2, 3), 2)
    flipped, _ = F.principal_directions(mirrored, (2, 3), 2)
    # The mirror of cuboid column q is column Q - 1 - q, and theta becomes pi - theta.
    np.testing.assert_allclose(np.angle(np.exp(1j * (flipped[:, :, ::-1] - (math.pi - angle)))),
                               0, atol=1e-5)
    assert np.array_equal(F.quantise(flipped[:, :, ::-1]), (4 - F.quantise(angle)) % 8)


def _shifted_frames(count, size=48):
    """Frames of a smooth random RGB texture, each 1 px to the right of the last."""
    rng = np.random.default_rng(5)
    texture = cv2.GaussianBlur(rng.uniform(0, 255, (size, size + count, 3)).astype(np.float32),
                               (0, 0), 2.5)
    texture = ((texture - texture.min()) / np.ptp(texture) * 255).astype(np.uint8)
    return np.stack([texture[:, count - i:count - i + size] for i in range(count)])


@pytest.mark.parametrize("method", ["farneback", "dis"])
def test_consecutive_flows_of_an_analytic_translation(method):
    frames = _shifted_frames(5)
    np.testing.assert_array_equal(frames[1][:, 1:], frames[0][:, :-1])  # 1 px to the right
    flows = F.consecutive_flows(frames, method)
    assert flows.shape == (4, 48, 48, 2) and flows.dtype == np.float32
    np.testing.assert_allclose(np.median(flows[:, 8:-8, 8:-8], axis=(1, 2)),
                               np.tile([1.0, 0.0], (4, 1)), atol=0.1)
    # Every inner cuboid moves right at about 1 px.
    angle, strength = F.principal_directions(flows[:, 8:-8, 8:-8], (2, 2), 2)
    assert np.all(F.quantise(angle) == 0)
    np.testing.assert_allclose(strength, 1, atol=0.15)


def test_candidate_sets_and_all_settings():
    assert F.FDM_GRIDS == ((4, 4), (6, 6), (8, 8), (12, 12), (16, 16))
    assert F.FDM_TAUS_TIM32 == (3, 6, 10) and F.FDM_TAUS_TIM64 == (7, 10, 12)
    assert F.DEFAULT_FLOW == "farneback" and F.DIRECTIONS == 8
    flows = np.random.default_rng(6).normal(0, 1, (11, 32, 32, 2))
    features = F.fdm_candidates(flows, F.FDM_TAUS_TIM32)
    assert set(features) == {(g, t) for g in F.FDM_GRIDS for t in F.FDM_TAUS_TIM32}
    np.testing.assert_array_equal(features[(6, 6), 3], F.fdm(flows, (6, 6), 3))
    assert features[(16, 16), 10].shape == (1 * 16 * 16 * 2,)


def test_bad_input():
    flows = np.zeros((2, 16, 16, 2))
    with pytest.raises(ValueError, match="tau 3 needs at least 3 flow frames"):
        F.fdm(flows, (4, 4), 3)
    with pytest.raises(ValueError, match="grid"):
        F.fdm(flows, (0, 4), 1)
    with pytest.raises(ValueError, match="finer than"):
        F.fdm(flows, (32, 4), 1)
    with pytest.raises(ValueError, match=r"\[T - 1, H, W, 2\]"):
        F.fdm(np.zeros((2, 16, 16)), (4, 4), 1)
    with pytest.raises(ValueError, match="at least 2 frames, got 1"):
        F.consecutive_flows(np.zeros((1, 16, 16, 3), np.uint8))
    with pytest.raises(ValueError, match="RGB uint8"):
        F.consecutive_flows(np.zeros((3, 16, 16)))
    with pytest.raises(ValueError, match="unknown flow method"):
        F.consecutive_flows(np.zeros((3, 16, 16, 3), np.uint8), "rlof")
