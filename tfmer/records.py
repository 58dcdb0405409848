"""The clip record, free of TensorFlow: its fields, its keys and its serialisation.

One clip is one `tf.train.SequenceExample`:

* context (`CONTEXT`): `clip/id`, `clip/dataset`, `clip/subject` (namespaced
  `dataset/subject`), `clip/label` (index into the dataset's `classes`), `clip/label_name`,
  `clip/source_emotion`, `clip/num_frames`, `clip/onset`, `clip/apex`, `clip/offset`
  (source frame numbers, -1 when unknown), `clip/fps`, `image/height`, `image/width`,
  `image/channels`, and `clip/landmarks` (68 x 2 floats of the first stored frame in
  stored-image pixel coordinates, row-major `x0, y0, x1, y1, ...`; empty when unknown);
* feature list `image/encoded` (`FRAMES`): one encoded frame (PNG or JPEG) per time step;
* with motion (`python -m data_prep ... --flow`, `MOTION`, only in records that have it):
  `flow/uvs` (float list of `H*W*3` values, row-major `[H, W, 3]` at the stored frame size:
  u, v and the optical strain magnitude, `data_prep.flow`), `flow/method` (`tvl1`,
  `farneback`, `dis`), `flow/from`, `flow/to` (the source frame numbers of the onset and of
  the apex used) and `flow/apex_source` (how the apex was found: `annotated`, `middle`,
  `detect`).

The keys are defined here once: `encode` (the converter, whose processes never load
TensorFlow) writes them and `tfmer.features` derives its `tf.io` parsing spec from them, so
writer and reader cannot drift apart.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import numpy as np

from tfmer import tfrecord
from tfmer.landmarks import NUM_LANDMARKS

UNKNOWN = -1

TEXT, INT, FLOAT, FLOATS = "text", "int", "float", "floats"
"""Kinds of context feature: one UTF-8 string, one int64, one float32, any number of float32."""


class ContextKey(NamedTuple):
    """One context feature of a clip record.

    Attributes:
        key: the feature's name in the `SequenceExample`'s context.
        kind: `TEXT`, `INT`, `FLOAT` or `FLOATS`.
        default: the value a reader gives a record without the key; None: the key is
            required (a `FLOATS` key is read as empty when missing).
    """

    key: str
    kind: str
    default: object = None


CONTEXT = (
    ContextKey("clip/id", TEXT),
    ContextKey("clip/dataset", TEXT),
    ContextKey("clip/subject", TEXT),
    ContextKey("clip/label", INT),
    ContextKey("clip/label_name", TEXT),
    ContextKey("clip/source_emotion", TEXT),
    ContextKey("clip/num_frames", INT),
    ContextKey("clip/onset", INT, UNKNOWN),
    ContextKey("clip/apex", INT, UNKNOWN),
    ContextKey("clip/offset", INT, UNKNOWN),
    ContextKey("clip/fps", FLOAT, 0.0),
    ContextKey("image/height", INT),
    ContextKey("image/width", INT),
    ContextKey("image/channels", INT),
    ContextKey("clip/landmarks", FLOATS),
)
"""The context keys of a clip record, in the order of the reader's spec."""

MOTION = (
    ContextKey("flow/uvs", FLOATS),
    ContextKey("flow/method", TEXT, ""),
    ContextKey("flow/from", INT, UNKNOWN),
    ContextKey("flow/to", INT, UNKNOWN),
    ContextKey("flow/apex_source", TEXT, ""),
)
"""The context keys of a record's onset -> apex motion, written only when it has some."""
MOTION_CHANNELS = ("u", "v", "strain")
"""The channels of `flow/uvs`, in order (`Motion.uvs`)."""

FRAMES = "image/encoded"
"""The feature list of encoded frames, one bytes value per time step."""


@dataclasses.dataclass(frozen=True, eq=False)
class Motion:
    """The onset -> apex motion of a clip (`data_prep.flow`).

    Attributes:
        uvs: float32 `[H, W, 3]` at the stored frame size: u (horizontal displacement in
            pixels, positive right), v (vertical, positive down), optical strain magnitude.
        method: the flow method, `tvl1`, `farneback` or `dis`.
        source_from, source_to: the source frame numbers of the onset and the apex used.
        apex_source: how the apex was found: `annotated`, `middle` or `detect`.
    """

    uvs: np.ndarray
    method: str
    source_from: int
    source_to: int
    apex_source: str


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
        motion: the onset -> apex `Motion`, or None (converted with `--flow none`, or a
            still image).
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
    motion: Motion | None = None


def encode(record: ClipRecord) -> bytes:
    """Serialises a clip to `tf.train.SequenceExample` bytes.

    Deterministic: the same record always gives the same bytes, those of TensorFlow's
    `SerializeToString(deterministic=True)`.

    Args:
        record: the clip.

    Returns:
        The serialised `SequenceExample`.

    Raises:
        ValueError: landmarks that are not 68 x 2 values, or motion that is not
            `[height, width, 3]` (the message names the clip).
    """
    landmarks = [] if record.landmarks is None else np.asarray(record.landmarks).reshape(-1)
    if len(landmarks) not in (0, 2 * NUM_LANDMARKS):
        raise ValueError(
            f"clip {record.clip_id}: landmarks must be {NUM_LANDMARKS} x 2 values, "
            f"got {len(landmarks)}")
    values = {
        "clip/id": record.clip_id,
        "clip/dataset": record.dataset,
        "clip/subject": record.subject,
        "clip/label": record.label,
        "clip/label_name": record.label_name,
        "clip/source_emotion": record.source_emotion,
        "clip/num_frames": len(record.frames),
        "clip/onset": record.onset,
        "clip/apex": record.apex,
        "clip/offset": record.offset,
        "clip/fps": record.fps,
        "image/height": record.height,
        "image/width": record.width,
        "image/channels": record.channels,
        "clip/landmarks": landmarks,
    }
    keys = CONTEXT
    motion = record.motion
    if motion is not None:
        if np.shape(motion.uvs) != (record.height, record.width, 3):
            raise ValueError(f"clip {record.clip_id}: motion must be [{record.height}, "
                             f"{record.width}, 3], got {list(np.shape(motion.uvs))}")
        keys = CONTEXT + MOTION
        values.update({"flow/uvs": np.asarray(motion.uvs).reshape(-1),
                       "flow/method": motion.method, "flow/from": motion.source_from,
                       "flow/to": motion.source_to, "flow/apex_source": motion.apex_source})
    context = {key: _feature(kind, values[key]) for key, kind, _ in keys}
    frames = [tfrecord.bytes_feature([frame]) for frame in record.frames]
    return tfrecord.sequence_example(context, {FRAMES: frames})


def _feature(kind: str, value) -> bytes:
    """The serialised `Feature` of one context value of the given kind."""
    if kind == TEXT:
        return tfrecord.bytes_feature([value.encode("utf-8")])
    if kind == INT:
        return tfrecord.int64_feature([int(value)])
    if kind == FLOAT:
        return tfrecord.float_feature([float(value)])
    return tfrecord.float_feature(value)
