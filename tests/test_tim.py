"""Tests of data_prep.tim against a literal port of the Oulu MATLAB TrainPGM.m / synPGM.m."""

import time

import numpy as np
import pytest

from data_prep import tim


def train_pgm(x):
    """Literal port of TrainPGM.m; `x` d x N with linearly independent columns."""
    n = x.shape[1]
    assert np.linalg.matrix_rank(x) == n, "TrainPGM: Invalid input."
    mu = x.mean(axis=1, keepdims=True)
    u, s, vt = np.linalg.svd(x - mu, full_matrices=False)
    u = u[:, :n - 1]
    q = np.diag(s[:n - 1]) @ vt[:n - 1]  # S V', (N-1) x N
    g = np.zeros((n, n))
    g[np.arange(n - 1), np.arange(1, n)] = 1.0
    g[np.arange(1, n), np.arange(n - 1)] = 1.0
    laplacian = np.diag(g.sum(axis=0)) - g
    _, v0 = np.linalg.eigh(laplacian)  # eigenvalues ascending, as MATLAB eig
    v0 = v0[:, 1:]
    w = np.linalg.solve(q @ q.T, q @ v0)
    m = np.array([q[:, 0] @ w[:, j - 1] / np.sin(j * np.pi / n + np.pi * (n - j) / (2 * n))
                  for j in range(1, n)])
    return {"W": w, "U": u, "mu": mu, "n": n, "m": m}


def syn_pgm(model, pos):
    """Literal port of synPGM.m; returns d x len(pos)."""
    n = model["n"]
    pos = np.asarray(pos) * (1 - 1 / n) + 1 / n
    ndim = model["W"].shape[0]
    out = np.zeros((model["U"].shape[0], len(pos)))
    for i, p in enumerate(pos):
        k = np.arange(1, ndim + 1)
        v = np.sin(p * k * np.pi + np.pi * (n - k) / (2 * n))
        out[:, i] = (model["U"] @ np.linalg.solve(model["W"].T, v * model["m"])
                     + model["mu"][:, 0])
    return out


def reference(frames, num_frames):
    """MATLAB's synPGM(TrainPGM(X), linspace(0, 1, T)), reshaped to [T, ...]."""
    x = frames.reshape(frames.shape[0], -1).T.astype(np.float64)
    y = syn_pgm(train_pgm(x), np.linspace(0, 1, num_frames))
    return y.T.reshape((num_frames,) + frames.shape[1:])


@pytest.mark.parametrize("n", [2, 3, 5, 10, 17])
@pytest.mark.parametrize("num_frames", [1, 2, 5, 32, 64])
@pytest.mark.parametrize("shape", [(9, 7), (6, 5, 3)], ids=["grey", "colour"])
def test_matches_literal_matlab_port(n, num_frames, shape):
    rng = np.random.default_rng(n * 100 + num_frames)
    frames = rng.integers(0, 256, size=(n,) + shape).astype(np.uint8)
    got = tim.interpolate(frames, num_frames)
    want = reference(frames, num_frames)
    assert got.shape == (num_frames,) + shape
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6 * 255)


def test_matches_literal_port_on_float_frames():
    rng = np.random.default_rng(0)
    frames = rng.normal(size=(8, 12, 10)) * 3.0 - 1.0
    value_range = frames.max() - frames.min()
    np.testing.assert_allclose(tim.interpolate(frames, 20), reference(frames, 20),
                               rtol=0, atol=1e-6 * value_range)


@pytest.mark.parametrize("n", [2, 4, 11, 30])
def test_same_length_returns_input(n):
    frames = np.random.default_rng(n).integers(0, 256, size=(n, 4, 5, 3))
    np.testing.assert_allclose(tim.interpolate(frames, n), frames, atol=1e-9)


@pytest.mark.parametrize("n,num_frames", [(2, 7), (6, 3), (13, 40), (40, 10)])
def test_first_and_last_frames_reproduced(n, num_frames):
    frames = np.random.default_rng(n).uniform(0, 255, size=(n, 6, 6))
    out = tim.interpolate(frames, num_frames)
    np.testing.assert_allclose(out[0], frames[0], atol=1e-9)
    np.testing.assert_allclose(out[-1], frames[-1], atol=1e-9)


def test_single_output_frame_is_first_frame():
    # synPGM with pos = 0 (MATLAB 0:1/(1-1):1 is 0) gives t = 1/N: the first frame.
    frames = np.random.default_rng(1).uniform(0, 255, size=(7, 3, 3))
    np.testing.assert_allclose(tim.interpolate(frames, 1), frames[:1], atol=1e-9)


def test_constant_clip_stays_constant():
    frames = np.full((9, 5, 4), 17, dtype=np.uint8)
    np.testing.assert_allclose(tim.interpolate(frames, 30), 17.0, atol=1e-9)


def test_weights_sum_to_one():
    for n in (2, 5, 31):
        np.testing.assert_allclose(tim.tim_weights(n, 23).sum(axis=1), 1.0, atol=1e-12)


def test_time_reversal_symmetry():
    frames = np.random.default_rng(2).uniform(0, 255, size=(10, 4, 4, 3))
    np.testing.assert_allclose(tim.interpolate(frames[::-1], 17),
                               tim.interpolate(frames, 17)[::-1], atol=1e-9)


def test_linear_ramp():
    # frames = a + b * j. The weights sum to 1, so every output is a + b * g(t) with one
    # temporal profile g shared by all pixels: g = j at the input positions, and
    # g(t) + g(1 - t) = N - 1 by time-reversal symmetry. Between the input positions the
    # cosine interpolation of a ramp is close to, but not exactly, linear.
    n, num_frames = 6, 11
    a = np.random.default_rng(3).uniform(0, 100, size=(5, 4))
    b = np.random.default_rng(4).uniform(1, 10, size=(5, 4))
    frames = a + b * np.arange(n)[:, None, None]
    out = tim.interpolate(frames, num_frames)
    profile = (out - a) / b
    np.testing.assert_allclose(profile, profile[:, :1, :1] * np.ones_like(profile), atol=1e-9)
    g = profile[:, 0, 0]
    np.testing.assert_allclose(g + g[::-1], n - 1, atol=1e-9)
    np.testing.assert_allclose(g[[0, -1]], [0, n - 1], atol=1e-9)
    linear = np.linspace(0, n - 1, num_frames)
    assert np.max(np.abs(g - linear)) < 0.25
    assert np.max(np.abs(g - linear)) > 1e-3


def test_rank_deficient_input_is_defined():
    # Repeated frames (TrainPGM would reject them): still a weighting of the inputs.
    frames = np.stack([np.zeros((3, 3)), np.zeros((3, 3)), np.ones((3, 3)) * 10])
    out = tim.interpolate(frames, 5)
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out[[0, -1]], frames[[0, -1]], atol=1e-9)
    # More frames than pixels.
    frames = np.random.default_rng(5).uniform(0, 255, size=(40, 2, 2))
    np.testing.assert_allclose(tim.interpolate(frames, 40), frames, atol=1e-8)


def test_large_clip_is_fast():
    frames = np.random.default_rng(6).integers(0, 256, size=(300, 112, 112, 3), dtype=np.uint8)
    start = time.perf_counter()
    out = tim.interpolate(frames, 64)
    elapsed = time.perf_counter() - start
    assert out.shape == (64, 112, 112, 3)
    np.testing.assert_allclose(out[0], frames[0], atol=1e-9)
    assert elapsed < 5.0


@pytest.mark.parametrize("frames,num_frames,match", [
    (np.zeros((1, 4, 4)), 5, r"at least 2 input frames; got shape \(1, 4, 4\)"),
    (np.zeros((0, 4, 4, 3)), 5, r"at least 2 input frames; got shape \(0, 4, 4, 3\)"),
    (np.zeros((4, 4)), 5, r"got shape \(4, 4\)"),
    (np.zeros((2, 3, 4, 4, 3)), 5, r"got shape \(2, 3, 4, 4, 3\)"),
    (np.zeros((3, 4, 4)), 0, "num_frames must be at least 1; got 0"),
    (np.zeros((3, 4, 4)), -2, "num_frames must be at least 1; got -2"),
    (np.zeros((3, 4, 4)), 2.5, "num_frames must be an integer; got 2.5"),
    (np.array([["a"] * 4] * 3 * 4).reshape(3, 4, 4), 5, "dtype"),
])
def test_errors(frames, num_frames, match):
    with pytest.raises(ValueError, match=match):
        tim.interpolate(frames, num_frames)
