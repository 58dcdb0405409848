"""FDM, the Facial Dynamics Map (Xu, Zhang, Wang 2017, "Microexpression identification and
categorization using a facial dynamics map", IEEE Trans. Affective Computing 8(2)), in the
setting of TLCNN's baseline (Wang et al. 2018, Section 4.3), vectorised numpy, no
TensorFlow.

Sources: the paper's abstract and TLCNN's Section 4.3 summary of it; the paper's full text
was not at hand, and no public implementation was found, so the steps below that the two
sources leave open are this module's choices, each named.

Steps (`consecutive_flows` once per clip, then `fdm` for each candidate setting):

1. Dense optical flow between consecutive frames (TLCNN 4.3: a clip of T frames gives T - 1
   flow frames). Default method `farneback`: the budget (flow and every candidate setting
   within 0.8 s per 32 x 128 x 128 clip on one core) rules out `tvl1` (4.3 s for 31 flows)
   and `farneback` (0.10 s; with the 15 TIM32 candidate settings 0.33 s) is as accurate as
   `dis` (0.04 s) on analytic sub-pixel motion (`tfmer.handcrafted.mdmo`, step 1). The
   paper's own pixel-level alignment by optical flow (abstract) is not reproduced: its
   method is not in the sources at hand; the clips are cropped on the first frame's
   landmarks by the converter.
2. Cuboids (TLCNN 4.3): the `T - 1` flow frames cut into `floor((T - 1) / tau)` runs of
   `tau` frames (the last `(T - 1) mod tau` frames dropped, as TLCNN's example says: 31
   frames, tau 3, 10 runs) and each frame into a `P x Q` grid of `floor(H / P)` x
   `floor(W / Q)` pixels (the remainder at the bottom and right dropped, as
   `tfmer.handcrafted.lbp` cuts blocks): `P x Q x floor((T - 1) / tau)` cuboids.
3. One principal direction per cuboid by an iterative optimisation (abstract: "an iterative
   optimal strategy to calculate the principal optical flow direction of each cuboid").
   Chosen objective: the unit direction `xi` that maximises the total positive projection
   `J(xi) = sum_i max(<v_i, xi>, 0)` of the cuboid's flow vectors `v_i` (vectors against
   `xi` are ignored rather than cancelling it, so a cuboid where part of the face moves and
   part stays or moves back keeps its motion's direction). Iteration: with `S` the vectors
   of positive projection on the current `xi`, the next `xi` is the direction of their sum;
   `J` never decreases (`J(xi') >= |sum_S v_i| >= J(xi)`) and `S` takes finitely many
   values, so it stops at a fixed point (`MAX_ITERATIONS` caps it). A fixed point can be a
   local maximum only; since `J(xi) <= |sum_S(xi) v_i|` and `J(unit(sum_S v_i)) >=
   |sum_S v_i|` for any set `S`, the maximum is the largest vector sum over the sets cut
   off by a half plane through 0, so the iteration starts from the largest such sum over
   `SECTORS` = 180 angular sectors of 2 degrees (the vectors of 90 consecutive sectors),
   which starts it within a sector of the global maximum (a mean-direction start was seen
   to stop at a lesser maximum when a third of a cuboid moved the other way). The cuboid's
   strength is `J(xi) / n`, the mean positive projection (0 for a still cuboid).
4. Quantisation (TLCNN 4.3: "the optical directions are further quantized"): the angle
   of `xi` rounded to the nearest of `DIRECTIONS` = 8 directions `k 2 pi / 8` (0 right,
   2 down in image coordinates, y down), the count of `tfmer.handcrafted.mdmo`'s bins.
5. The map (TLCNN 4.3: "linked as the Facial Dynamics Map"): each cuboid as the vector of
   its quantised direction scaled by its strength, `s (cos q, sin q)`, concatenated in
   cuboid order (time run, grid row, grid column), for an RBF-kernel SVM (TLCNN 4.3). The
   Cartesian form keeps neighbouring directions near each other and a still cuboid at 0
   for the RBF kernel, which a bare direction index would not.

Candidate settings (TLCNN 4.3; the paper picks the best on test accuracy, tfmer by inner
cross-validation): `FDM_GRIDS`, `FDM_TAUS_TIM32`, `FDM_TAUS_TIM64`.
"""

from __future__ import annotations

import numpy as np

from tfmer.optical_flow import METHODS, optical_flow

FDM_GRIDS = ((4, 4), (6, 6), (8, 8), (12, 12), (16, 16))
"""The P x Q grids TLCNN selects among (Section 4.3)."""

FDM_TAUS_TIM32 = (3, 6, 10)
"""The cuboid lengths tau (flow frames) TLCNN selects among for TIM32 clips (Section 4.3)."""

FDM_TAUS_TIM64 = (7, 10, 12)
"""The cuboid lengths tau TLCNN selects among for TIM64 clips (Section 4.3)."""

DEFAULT_FLOW = "farneback"
"""The flow method FDM uses unless told (module docstring, step 1)."""

DIRECTIONS = 8
"""Quantised directions (module docstring, step 4)."""

MAX_ITERATIONS = 100
"""A cap on the principal-direction iterations (they stop at a fixed point well before)."""

SECTORS = 180
"""Angular sectors of the starting search (2 degrees each; module docstring, step 3)."""


def consecutive_flows(frames, method: str = DEFAULT_FLOW) -> np.ndarray:
    """Optical flow between consecutive frames (`tfmer.optical_flow`).

    Args:
        frames: RGB uint8 `[T, H, W, 3]`, T >= 2.
        method: a flow method of `tfmer.optical_flow.METHODS` (default `farneback`).

    Returns:
        float32 `[T - 1, H, W, 2]`: flow i is (u, v) from frame i to frame i + 1.

    Raises:
        ValueError: not RGB uint8 `[T, H, W, 3]`, fewer than 2 frames, an unknown method.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"consecutive_flows needs RGB uint8 frames [T, H, W, 3], got shape "
                         f"{list(frames.shape)} of {frames.dtype}")
    if len(frames) < 2:
        raise ValueError(f"consecutive_flows needs a clip of at least 2 frames, got "
                         f"{len(frames)}")
    if method not in METHODS:
        raise ValueError(f"unknown flow method {method!r}; known: {', '.join(METHODS)}")
    return np.stack([optical_flow(first, second, method)
                     for first, second in zip(frames[:-1], frames[1:])])


def _check(flows, grid, tau):
    flows = np.asarray(flows)
    if flows.ndim != 4 or flows.shape[-1] != 2:
        raise ValueError(f"FDM needs flows [T - 1, H, W, 2], got shape {list(flows.shape)}")
    rows, cols = (int(g) for g in grid)
    tau = int(tau)
    if rows < 1 or cols < 1:
        raise ValueError(f"FDM grid must be (P, Q) >= (1, 1), got {tuple(grid)}")
    if tau < 1:
        raise ValueError(f"FDM tau must be >= 1 flow frame, got {tau}")
    if len(flows) < tau:
        raise ValueError(f"FDM with tau {tau} needs at least {tau} flow frames (a clip of "
                         f"{tau + 1} frames), got {len(flows)}")
    if flows.shape[1] < rows or flows.shape[2] < cols:
        raise ValueError(f"FDM grid {rows} x {cols} is finer than the {flows.shape[1]} x "
                         f"{flows.shape[2]} flow frames")
    return flows, rows, cols, tau


def cuboids(flows, grid, tau) -> np.ndarray:
    """The flow vectors of each cuboid (module docstring, step 2).

    Args:
        flows: `[F, H, W, 2]` consecutive flows.
        grid: (P, Q) rows and columns of the spatial grid.
        tau: flow frames per cuboid.

    Returns:
        float32 `[floor(F / tau), P, Q, n, 2]`: the `n = tau * floor(H / P) * floor(W / Q)`
        vectors of each cuboid.

    Raises:
        ValueError: flows not `[F, H, W, 2]`, a bad grid or tau, fewer than tau flow frames.
    """
    flows, rows, cols, tau = _check(flows, grid, tau)
    return _cut(np.asarray(flows, np.float32), (rows, cols), tau)


def _cut(array, grid, tau) -> np.ndarray:
    """`[F, H, W, ...]` -> `[floor(F / tau), P, Q, n, ...]`, the remainders dropped."""
    rows, cols = grid
    runs = len(array) // tau
    height, width = array.shape[1] // rows, array.shape[2] // cols
    rest = array.shape[3:]
    cut = array[:runs * tau, :rows * height, :cols * width]
    cut = cut.reshape(runs, tau, rows, height, cols, width, *rest)
    order = (0, 2, 4, 1, 3, 5) + tuple(range(6, 6 + len(rest)))
    return cut.transpose(order).reshape(runs, rows, cols, -1, *rest)


def principal_directions(flows, grid, tau) -> tuple[np.ndarray, np.ndarray]:
    """Each cuboid's principal direction and strength (module docstring, step 3).

    Args:
        flows: `[F, H, W, 2]` consecutive flows.
        grid: (P, Q).
        tau: flow frames per cuboid.

    Returns:
        `(angle, strength)`, float64 `[floor(F / tau), P, Q]` each: the angle of the unit
        `xi` maximising `sum_i max(<v_i, xi>, 0)`, in (-pi, pi] (image coordinates), and
        that maximum divided by the cuboid's number of vectors.
    """
    flows, rows, cols, tau = _check(flows, grid, tau)
    flows = np.asarray(flows, np.float32)
    return _principal(flows, _sectors(flows), (rows, cols), tau)


def _sectors(flows) -> np.ndarray:
    """int32 `[F, H, W]`: the angular sector (of `SECTORS`) of each flow vector."""
    angle = np.arctan2(flows[..., 1], flows[..., 0])
    return (np.floor((angle + np.pi) * (SECTORS / (2 * np.pi))).astype(np.int32)) % SECTORS


def _half_plane_sums(sectors, vx, vy) -> np.ndarray:
    """`[C, 2]`: per cuboid, the largest sum of the vectors whose sectors form a half turn."""
    count = len(vx)
    index = (np.arange(count, dtype=np.int64)[:, None] * SECTORS + sectors).ravel()
    sums = np.stack([np.bincount(index, vx.ravel(), count * SECTORS),
                     np.bincount(index, vy.ravel(), count * SECTORS)], axis=-1)
    sums = sums.reshape(count, SECTORS, 2)
    running = np.zeros((count, 2 * SECTORS + 1, 2))
    np.cumsum(np.concatenate([sums, sums], axis=1), axis=1, out=running[:, 1:])
    half = SECTORS // 2
    windows = running[:, half:half + SECTORS] - running[:, :SECTORS]  # sectors s..s+half-1
    best = np.argmax(windows[..., 0] ** 2 + windows[..., 1] ** 2, axis=1)
    return windows[np.arange(count), best]


def _principal(flows, sectors, grid, tau):
    vectors = cuboids(flows, grid, tau)
    shape = vectors.shape[:3]
    vectors = vectors.reshape(-1, vectors.shape[3], 2)
    vx, vy = np.ascontiguousarray(vectors[..., 0]), np.ascontiguousarray(vectors[..., 1])
    xi = _unit(_half_plane_sums(_cut(sectors, grid, tau).reshape(vx.shape), vx, vy))
    positive = np.zeros(vx.shape, bool)
    active = np.arange(len(vx))  # the cuboids whose set of positive projections changes
    for _ in range(MAX_ITERATIONS):
        ax, ay = vx[active], vy[active]
        now = ax * xi[active, :1].astype(np.float32) + ay * xi[active, 1:].astype(np.float32) > 0
        changed = np.any(now != positive[active], axis=1)
        active, now, ax, ay = active[changed], now[changed], ax[changed], ay[changed]
        if not len(active):
            break
        positive[active] = now
        total = np.stack([np.sum(ax * now, axis=1, dtype=np.float64),
                          np.sum(ay * now, axis=1, dtype=np.float64)], 1)
        moving = np.hypot(total[:, 0], total[:, 1]) > 0
        xi[active[moving]] = _unit(total[moving])
    projection = vx * xi[:, :1] + vy * xi[:, 1:]
    strength = np.maximum(projection, 0).mean(axis=1)
    angle = np.arctan2(xi[:, 1], xi[:, 0])
    return angle.reshape(shape), strength.reshape(shape)


def _unit(vectors):
    norm = np.hypot(vectors[:, 0], vectors[:, 1])[:, None]
    return np.divide(vectors, norm, out=np.tile([1.0, 0.0], (len(vectors), 1)),
                     where=norm > 0)


def quantise(angle) -> np.ndarray:
    """int: the nearest of the `DIRECTIONS` directions `k 2 pi / DIRECTIONS`, k in 0..7."""
    step = 2 * np.pi / DIRECTIONS
    return np.rint(np.asarray(angle) / step).astype(int) % DIRECTIONS


def fdm(flows, grid, tau) -> np.ndarray:
    """The Facial Dynamics Map of a clip (module docstring).

    Args:
        flows: `[T - 1, H, W, 2]` consecutive flows (`consecutive_flows`).
        grid: (P, Q) grid rows and columns, one of `FDM_GRIDS` in the TLCNN setting.
        tau: flow frames per cuboid, one of `FDM_TAUS_TIM32` / `FDM_TAUS_TIM64`.

    Returns:
        float64 `[floor((T - 1) / tau) * P * Q * 2]`: per cuboid (time run, row, column
        order) `strength * (cos q, sin q)`, q its quantised principal direction.

    Raises:
        ValueError: flows not `[F, H, W, 2]`, a bad grid or tau, a clip shorter than tau
            flow frames.
    """
    return _fdm(flows, None, grid, tau)


def _fdm(flows, sectors, grid, tau):
    flows, rows, cols, tau = _check(flows, grid, tau)
    flows = np.asarray(flows, np.float32)
    sectors = _sectors(flows) if sectors is None else sectors
    angle, strength = _principal(flows, sectors, (rows, cols), tau)
    direction = quantise(angle) * (2 * np.pi / DIRECTIONS)
    return np.stack([strength * np.cos(direction), strength * np.sin(direction)],
                    axis=-1).ravel()


def fdm_candidates(flows, taus, grids=FDM_GRIDS) -> dict:
    """`fdm` for every candidate setting, from flows computed once (equal to calling `fdm`
    for each, sharing the vectors' angles).

    Args:
        flows: `[T - 1, H, W, 2]` consecutive flows.
        taus: the candidate taus (`FDM_TAUS_TIM32` or `FDM_TAUS_TIM64`).
        grids: the candidate grids.

    Returns:
        dict `{(grid, tau): float64 [feature]}`, grid a (P, Q) tuple.
    """
    flows = np.asarray(flows, np.float32)
    if flows.ndim != 4 or flows.shape[-1] != 2:
        raise ValueError(f"FDM needs flows [T - 1, H, W, 2], got shape {list(flows.shape)}")
    sectors = _sectors(flows)
    return {(tuple(grid), int(tau)): _fdm(flows, sectors, grid, tau)
            for grid in grids for tau in taus}
