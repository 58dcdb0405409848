"""The Python side of a clip record, free of TensorFlow (converter workers import it).

`tfmer.features` holds the keys, the SequenceExample spec, `encode` and `parse`.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from tfmer.landmarks import NUM_LANDMARKS  # noqa: F401  (part of the record's shape)

UNKNOWN = -1


@dataclasses.dataclass(frozen=True)
class ClipRecord:
    """One converted clip, as written to and read back from a shard.

    Attributes:
        clip_id: unique id of the clip within its dataset.
        dataset: dataset name, e.g. `casme2` or `synthetic`.
        subject: subject id namespaced as `dataset/subject`.
        label: index of the class in the dataset's class list.
        label_name: the class name.
        source_emotion: the emotion as the source database codes it.
        frames: encoded frames (PNG or JPEG bytes), one per time step.
        height, width, channels: size of every decoded frame.
        onset, apex, offset: source frame numbers, `UNKNOWN` (-1) when not labelled.
        fps: frame rate of the source recording (0 when unknown).
        landmarks: `[68, 2]` float32 (x, y) of the first stored frame, or None.
    """

    clip_id: str
    dataset: str
    subject: str
    label: int
    label_name: str
    source_emotion: str
    frames: tuple
    height: int
    width: int
    channels: int
    onset: int = UNKNOWN
    apex: int = UNKNOWN
    offset: int = UNKNOWN
    fps: float = 0.0
    landmarks: np.ndarray | None = None
