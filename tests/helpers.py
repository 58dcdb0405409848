"""Helpers the tests share: tiny clips written as numbered frame images."""

from __future__ import annotations

import pathlib

import cv2
import numpy as np

CLASSES = ("positive", "negative", "surprise", "others")


def write_clip(folder: pathlib.Path, frames: np.ndarray, first_number: int = 0,
               pattern: str = "img{}.png") -> None:
    """Writes RGB uint8 `[T, H, W, 3]` frames as numbered images."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(frames):
        cv2.imwrite(str(folder / pattern.format(first_number + i)),
                    cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))


def labelled_frames(label: int, num_frames: int = 12, size: int = 24, seed: int = 0):
    """Frames whose brightness encodes the label (so a model or a check can find it)."""
    rng = np.random.default_rng(seed)
    base = 40 + 50 * label
    frames = rng.integers(0, 10, size=(num_frames, size, size, 3)) + base
    return frames.astype(np.uint8)
