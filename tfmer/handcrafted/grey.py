"""Grey frames as MATLAB's `rgb2gray` makes them from uint8 RGB: the reference code of the
handcrafted methods (Oulu's LBP-TOP, STLBP-IP, ...) reads `rgb2gray(imread(f))`."""

from __future__ import annotations

import numpy as np

GREY_WEIGHTS = (0.298936021293775, 0.587043074451121, 0.114020904255103)
"""MATLAB's `rgb2gray` weights of R, G and B."""


def rgb2gray(frames) -> np.ndarray:
    """uint8 grey of RGB frames, MATLAB's `rgb2gray` of a uint8 image: the weighted sum of
    R, G and B (`GREY_WEIGHTS`) rounded half up.

    Args:
        frames: `[..., 3]` RGB, 0..255 (a single image `[H, W, 3]` or a clip
            `[T, H, W, 3]`).

    Returns:
        uint8 `[...]`.
    """
    frames = np.asarray(frames)
    if frames.shape[-1:] != (3,):
        raise ValueError(f"rgb2gray needs RGB [..., 3] frames, got shape {frames.shape}")
    grey = np.floor(frames.astype(np.float64) @ np.array(GREY_WEIGHTS) + 0.5)
    return np.clip(grey, 0, 255).astype(np.uint8)
