"""The handcrafted methods by name (`handcrafted.method`): what each reads of a clip, how
short a clip may be, and its fold-independent features.

`extract(clip, settings)` gives a clip's features under every candidate setting the inner
search may choose (`{variant: array}`, one variant `""` for a method without candidates):
they depend on the clip alone, so a run computes them once (`tfmer.clip_features`, in
worker processes free of TensorFlow) and every fold reuses them.

A method whose features depend on what it learns from training clips (STCLQP's k-means
codebooks) has no `extract` but three steps instead: `sample(clip)` (what learning reads
of one clip, fold-independent), `learn(samples of the training clips, seed)` (per fit, in
the main process) and `apply(clip, [learned, ...])` (the clip's features under each fit's
learned part at once, so that its codes are computed once for all folds). The worker tasks
(`extract`, `sample_task`, `apply_task`) live here, free of TensorFlow.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from tfmer.config import HandcraftedConfig
from tfmer.handcrafted.biwoof import bi_woof
from tfmer.handcrafted.fdm import consecutive_flows, fdm_candidates
from tfmer.handcrafted.grey import rgb2gray
from tfmer.handcrafted.lbp import lbp_top_tlcnn
from tfmer.handcrafted.mdmo import flows_from_first, mdmo
from tfmer.handcrafted.stclqp import (
    codebook_sample,
    fit_codebooks,
    stclqp_codes,
    stclqp_histograms,
)
from tfmer.handcrafted.stlbp_ip import stlbp_ip


@dataclasses.dataclass(frozen=True)
class ClipInputs:
    """What a feature extractor may read of one converted clip.

    Attributes:
        clip_id: the clip's id (named in errors).
        frames: uint8 `[T, H, W, 3]` RGB, as converted (cropped, TIM-normalised).
        landmarks: float32 `[68, 2]` (x, y) of the first stored frame, or None.
        motion: float32 `[H, W, 3]` onset -> apex u, v, strain as the converter stored
            it, or None.
    """

    clip_id: str
    frames: np.ndarray
    landmarks: np.ndarray | None = None
    motion: np.ndarray | None = None


@dataclasses.dataclass(frozen=True)
class Method:
    """One handcrafted method.

    Attributes:
        name: the `handcrafted.method` value.
        extract: `extract(clip: ClipInputs, settings: HandcraftedConfig) -> {variant:
            float array}`, the clip's features for each candidate setting.
        min_frames: `min_frames(settings) -> int`, the fewest frames a clip may have.
        landmarks: the method reads the stored landmarks.
        motion: the method reads the converter's onset -> apex motion.
        sample, learn, apply: the three steps of a method that learns from training
            clips (module docstring); None for the others.
    """

    name: str
    extract: Callable[[ClipInputs, HandcraftedConfig], dict] | None
    min_frames: Callable[[HandcraftedConfig], int]
    landmarks: bool = False
    motion: bool = False
    sample: Callable[[ClipInputs, HandcraftedConfig], dict] | None = None
    learn: Callable[[list, HandcraftedConfig, int], dict] | None = None
    apply: Callable[[ClipInputs, HandcraftedConfig, list], list] | None = None


def _lbptop(clip: ClipInputs, settings: HandcraftedConfig) -> dict:
    return {"": lbp_top_tlcnn(clip.frames, grid=settings.grid, radii=settings.radii,
                              points=settings.points)}


def _stlbpip(clip: ClipInputs, settings: HandcraftedConfig) -> dict:
    return {"": stlbp_ip(rgb2gray(clip.frames), grid=settings.grid, points=settings.points,
                         radius=settings.radii[0])}


def _biwoof(clip: ClipInputs, settings: HandcraftedConfig) -> dict:
    return {"": bi_woof(clip.motion, grid=settings.grid)}


def _mdmo(clip: ClipInputs, settings: HandcraftedConfig) -> dict:
    return {"": mdmo(flows_from_first(clip.frames, settings.flow), clip.landmarks,
                     lam=settings.weight)}


def fdm_variant(size: int, tau: int) -> str:
    """The feature variant of FDM's `size x size` grid and `tau`."""
    return f"{size}x{size} tau {tau}"


def _fdm(clip: ClipInputs, settings: HandcraftedConfig) -> dict:
    found = fdm_candidates(consecutive_flows(clip.frames, settings.flow), settings.taus,
                           grids=[(size, size) for size in settings.grids])
    return {fdm_variant(grid[0], tau): values for (grid, tau), values in found.items()}


def _stclqp_codes(clip: ClipInputs, settings: HandcraftedConfig) -> dict:
    return stclqp_codes(rgb2gray(clip.frames), grid=settings.grid, radius=settings.radii[0],
                        points=settings.points)


def _stclqp_learn(samples: list, settings: HandcraftedConfig, seed: int) -> dict:
    return fit_codebooks(samples, words=settings.words, seed=seed)


def _stclqp_apply(clip: ClipInputs, settings: HandcraftedConfig, codebooks: list) -> list:
    codes = _stclqp_codes(clip, settings)
    return [stclqp_histograms(codes, books) for books in codebooks]


METHODS = {method.name: method for method in (
    Method("lbptop", _lbptop, lambda s: 2 * s.radii[2] + 1),
    # Difference images 2..T form temporal texture images T - 1 wide for the 2D-LBP.
    Method("stlbpip", _stlbpip, lambda s: 2 * s.radii[0] + 2),
    Method("biwoof", _biwoof, lambda s: 2, motion=True),
    Method("mdmo", _mdmo, lambda s: 2, landmarks=True),
    # T frames give T - 1 flows, cut into floor((T - 1) / tau) cuboids in time.
    Method("fdm", _fdm, lambda s: max(s.taus) + 1),
    Method("stclqp", None, lambda s: 2 * s.radii[0] + 1,
           sample=lambda clip, s: codebook_sample(_stclqp_codes(clip, s)),
           learn=_stclqp_learn, apply=_stclqp_apply),
)}
"""The methods by name."""


def extract(clip: ClipInputs, settings: HandcraftedConfig) -> dict:
    """One clip's features, `{variant: float32 array}` (a worker's task).

    Raises:
        ValueError: the extractor's, prefixed with the clip's id.
    """
    try:
        found = method(settings.method).extract(clip, settings)
    except ValueError as error:
        raise ValueError(f"clip {clip.clip_id}: {error}") from None
    return {variant: np.asarray(values, np.float32) for variant, values in found.items()}


def sample_task(clip: ClipInputs, settings: HandcraftedConfig) -> dict:
    """What a learning method's `learn` reads of one clip (a worker's task)."""
    try:
        return method(settings.method).sample(clip, settings)
    except ValueError as error:
        raise ValueError(f"clip {clip.clip_id}: {error}") from None


_LEARNED: list = []
"""The learned parts `apply_task` applies, set in each worker by `set_learned`."""


def set_learned(learned: list) -> None:
    """Sets the learned parts (one per fit) of this process's `apply_task`s (a worker
    pool's initializer: they travel once per worker, not once per clip)."""
    _LEARNED[:] = learned


def apply_task(clip: ClipInputs, settings: HandcraftedConfig) -> list:
    """A learning method's features of one clip under every learned part set by
    `set_learned`: float32 arrays, one per fit (a worker's task)."""
    try:
        found = method(settings.method).apply(clip, settings, _LEARNED)
    except ValueError as error:
        raise ValueError(f"clip {clip.clip_id}: {error}") from None
    return [np.asarray(values, np.float32) for values in found]


def method(name: str) -> Method:
    """The method `name` (`ValueError` listing the known ones otherwise)."""
    if name not in METHODS:
        raise ValueError(f"unknown handcrafted method {name!r}; known: {', '.join(METHODS)}")
    return METHODS[name]
