"""Temporal Interpolation Model (TIM) for clips of face frames.

TIM (Zhou, Zhao and Pietikainen, "Towards a practical lipreading system", CVPR 2011;
used for micro-expressions by Pfister et al., ICCV 2011) resamples a clip of N frames to
any number of frames. The original Oulu MATLAB code trains a "path graph model" with
`TrainPGM.m` and synthesises frames with `synPGM.m`:

    TrainPGM(X), X the frames as columns (d x N):
        mu = mean(X, 2); X = X - mu; [U, S, V] = svd(X, 'econ')
        keep N-1 components: U (d x N-1), Q = S V' ((N-1) x N)
        L = Laplacian of the path graph on N nodes; [V0, ~] = eig(L);
        drop V0's first (constant) column -> V0 (N x N-1), eigenvalues ascending
        W = (Q Q') \\ (Q V0)
        m_k = Q(:, 1)' W(:, k) / F_k(1/N),  k = 1..N-1
    synPGM(model, pos):
        t = pos * (1 - 1/N) + 1/N
        x(t) = U (W' \\ (m .* F(t))) + mu,  F_k(t) = sin(pi k t + pi (N - k) / (2 N))

Closed form used here. The centred frames are X_c = U Q, and X_c 1 = 0, so the rows of
Q span the complement of the constant vector, like the columns of V0. Hence
Q' W = Q' (Q Q')^-1 Q V0 = V0 (the projection of V0 onto Q's row space), which gives
W'^-1 = Q V0 (as V0' V0 = I) and U W'^-1 = X_c V0 = X V0 (as 1' V0 = 0), and
m_k = (Q' W)[1, k] / F_k(1/N) = V0[1, k] / F_k(1/N). The Laplacian's eigenvectors are the
DCT-II basis, V0[j, k] = s_k c_k cos(pi k (j - 1/2) / N) = s_k c_k F_k(j / N) with
c_k = sqrt(2 / N) and a sign s_k (j = 1..N), so m_k = s_k c_k and a synthesised frame is

    x(t) = X w(t),
    w_j(t) = 1/N + (2/N) sum_{k=1}^{N-1} cos(pi k (j - 1/2) / N) cos(pi k (N t - 1/2) / N),

a fixed weighting of the input frames (DCT-II interpolation at the frame position
N t - 1 in 0..N-1), independent of the SVD and of the eigenvector signs. It equals the
MATLAB output whenever `TrainPGM` accepts the input (the N frames linearly independent)
and stays defined when they are not (repeated frames, N larger than the number of
pixels), where `TrainPGM` raises "Invalid input". The weights sum to 1 (a constant clip
stays constant), the first and last positions reproduce the first and last frames, and
`num_frames == N` returns the input.
"""

import numpy as np

# Frames are converted to float64 this many values at a time, to bound the temporary copy.
_CHUNK_VALUES = 1 << 22


def tim_weights(num_input, num_frames):
    """TIM weights of the input frames for each output frame.

    Args:
        num_input: N, the number of input frames (>= 2).
        num_frames: T, the number of output frames (>= 1); output frame i sits at
            position i / (T - 1) in [0, 1] (0 for T = 1), as `linspace(0, 1, T)` passed
            to `synPGM.m`.

    Returns:
        float64 array `[T, N]`; output frame i is `sum_j weights[i, j] * frames[j]`.

    Raises:
        ValueError: if `num_input < 2` or `num_frames < 1`.
    """
    num_input = _check_count("number of input frames", num_input, minimum=2)
    num_frames = _check_count("num_frames", num_frames, minimum=1)
    n = num_input
    # synPGM positions t in [1/N, 1]; N t - 1/2 is the DCT-II sample position in [1/2, N - 1/2].
    t = np.linspace(0.0, 1.0, num_frames) * (1.0 - 1.0 / n) + 1.0 / n
    k = np.arange(1, n)
    j = np.arange(1, n + 1)
    basis_in = np.cos(np.pi * np.outer(j - 0.5, k) / n)  # [N, N-1]
    basis_out = np.cos(np.pi * np.outer(n * t - 0.5, k) / n)  # [T, N-1]
    return 1.0 / n + (2.0 / n) * basis_out @ basis_in.T


def interpolate(frames, num_frames):
    """Resamples a clip to `num_frames` frames with the Temporal Interpolation Model.

    Equal to the Oulu MATLAB `Y = synPGM(TrainPGM(X), linspace(0, 1, num_frames))` with the
    frames as the columns of X (see the module docstring for the derivation), computed as a
    `[T, N] @ [N, pixels]` product without any pixels x pixels matrix.

    Args:
        frames: `[N, H, W]` or `[N, H, W, C]` array of any real numeric dtype, N >= 2.
        num_frames: T >= 1, the number of output frames.

    Returns:
        float64 array `[T, H, W]` or `[T, H, W, C]`. Values are not clipped or rounded
        (the interpolation can overshoot the input range slightly).

    Raises:
        ValueError: if `frames` is not 3-D or 4-D, has fewer than 2 frames or a
            non-numeric dtype, or `num_frames < 1`.
    """
    frames = np.asarray(frames)
    if frames.ndim not in (3, 4):
        raise ValueError(
            f"frames must be [N, H, W] or [N, H, W, C]; got shape {frames.shape}")
    if frames.dtype == bool or not np.issubdtype(frames.dtype, np.number) or np.issubdtype(
            frames.dtype, np.complexfloating):
        raise ValueError(f"frames must have a real numeric dtype; got {frames.dtype}")
    if frames.shape[0] < 2:
        raise ValueError(
            f"TIM needs at least 2 input frames; got shape {frames.shape}")
    weights = tim_weights(frames.shape[0], num_frames)
    flat = frames.reshape(frames.shape[0], -1)
    out = np.empty((weights.shape[0], flat.shape[1]), dtype=np.float64)
    step = max(1, _CHUNK_VALUES // flat.shape[0])
    for start in range(0, flat.shape[1], step):
        chunk = flat[:, start:start + step].astype(np.float64, copy=False)
        out[:, start:start + step] = weights @ chunk
    return out.reshape((weights.shape[0],) + frames.shape[1:])


def _check_count(name, value, minimum):
    """Returns `value` as an int; raises ValueError naming it unless an integer >= minimum."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer; got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}; got {value}")
    return int(value)
