"""The one definition of the clip record: keys, the SequenceExample spec, encode and parse.

Both the offline writer (`data_prep`) and the `tf.data` reader (`tfmer.data`) import this
module, so the two cannot drift apart. One clip is one `tf.train.SequenceExample`:

* context: `clip/id`, `clip/dataset`, `clip/subject` (namespaced `dataset/subject`),
  `clip/label` (index into the dataset's `classes`), `clip/label_name`,
  `clip/source_emotion`, `clip/num_frames`, `clip/onset`, `clip/apex`, `clip/offset`
  (source frame numbers, -1 when unknown), `clip/fps`, `image/height`, `image/width`,
  `image/channels`, and `clip/landmarks` (68 x 2 floats of the first stored frame in
  stored-image pixel coordinates, row-major `x0, y0, x1, y1, ...`; empty when unknown);
* feature list `image/encoded`: one encoded frame (PNG or JPEG) per time step.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

# The record's Python side lives in tfmer.records, free of TensorFlow, for converter workers.
from tfmer.records import NUM_LANDMARKS, UNKNOWN, ClipRecord  # noqa: F401

CONTEXT_SPEC = {
    "clip/id": tf.io.FixedLenFeature([], tf.string),
    "clip/dataset": tf.io.FixedLenFeature([], tf.string),
    "clip/subject": tf.io.FixedLenFeature([], tf.string),
    "clip/label": tf.io.FixedLenFeature([], tf.int64),
    "clip/label_name": tf.io.FixedLenFeature([], tf.string),
    "clip/source_emotion": tf.io.FixedLenFeature([], tf.string),
    "clip/num_frames": tf.io.FixedLenFeature([], tf.int64),
    "clip/onset": tf.io.FixedLenFeature([], tf.int64, default_value=UNKNOWN),
    "clip/apex": tf.io.FixedLenFeature([], tf.int64, default_value=UNKNOWN),
    "clip/offset": tf.io.FixedLenFeature([], tf.int64, default_value=UNKNOWN),
    "clip/fps": tf.io.FixedLenFeature([], tf.float32, default_value=0.0),
    "image/height": tf.io.FixedLenFeature([], tf.int64),
    "image/width": tf.io.FixedLenFeature([], tf.int64),
    "image/channels": tf.io.FixedLenFeature([], tf.int64),
    "clip/landmarks": tf.io.VarLenFeature(tf.float32),
}
SEQUENCE_SPEC = {"image/encoded": tf.io.FixedLenSequenceFeature([], tf.string)}


def _bytes(value):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value.encode("utf-8")]))


def _int(value):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))


def _floats(values):
    return tf.train.Feature(float_list=tf.train.FloatList(value=[float(v) for v in values]))


def encode(record: ClipRecord) -> bytes:
    """Serialises a `ClipRecord` to `tf.train.SequenceExample` bytes."""
    landmarks = [] if record.landmarks is None else np.asarray(record.landmarks).reshape(-1)
    if len(landmarks) not in (0, 2 * NUM_LANDMARKS):
        raise ValueError(
            f"clip {record.clip_id}: landmarks must be {NUM_LANDMARKS} x 2 values, "
            f"got {len(landmarks)}")
    context = tf.train.Features(feature={
        "clip/id": _bytes(record.clip_id),
        "clip/dataset": _bytes(record.dataset),
        "clip/subject": _bytes(record.subject),
        "clip/label": _int(record.label),
        "clip/label_name": _bytes(record.label_name),
        "clip/source_emotion": _bytes(record.source_emotion),
        "clip/num_frames": _int(len(record.frames)),
        "clip/onset": _int(record.onset),
        "clip/apex": _int(record.apex),
        "clip/offset": _int(record.offset),
        "clip/fps": _floats([record.fps]),
        "image/height": _int(record.height),
        "image/width": _int(record.width),
        "image/channels": _int(record.channels),
        "clip/landmarks": _floats(landmarks),
    })
    frames = tf.train.FeatureList(feature=[
        tf.train.Feature(bytes_list=tf.train.BytesList(value=[frame])) for frame in record.frames
    ])
    example = tf.train.SequenceExample(
        context=context,
        feature_lists=tf.train.FeatureLists(feature_list={"image/encoded": frames}))
    return example.SerializeToString(deterministic=True)  # map keys sorted: same bytes everywhere


def parse(serialized):
    """Parses one serialised clip inside or outside `tf.data`.

    Args:
        serialized: scalar string tensor, one `SequenceExample`.

    Returns:
        A dict of tensors: the context keys of `CONTEXT_SPEC` (with `clip/landmarks` dense,
        `[0]` or `[136]`) and `image/encoded`, a `[T]` string tensor of encoded frames.
    """
    context, sequence = tf.io.parse_single_sequence_example(
        serialized, context_features=CONTEXT_SPEC, sequence_features=SEQUENCE_SPEC)
    parsed = dict(context)
    parsed["clip/landmarks"] = tf.sparse.to_dense(context["clip/landmarks"])
    parsed["image/encoded"] = sequence["image/encoded"]
    return parsed


def decode(serialized: bytes) -> ClipRecord:
    """Eagerly parses serialised bytes back into a `ClipRecord` (tests, tools)."""
    parsed = parse(tf.constant(serialized))

    def text(key):
        return parsed[key].numpy().decode("utf-8")

    def integer(key):
        return int(parsed[key].numpy())

    landmarks = parsed["clip/landmarks"].numpy()
    return ClipRecord(
        clip_id=text("clip/id"), dataset=text("clip/dataset"), subject=text("clip/subject"),
        label=integer("clip/label"), label_name=text("clip/label_name"),
        source_emotion=text("clip/source_emotion"),
        frames=tuple(parsed["image/encoded"].numpy().tolist()),
        height=integer("image/height"), width=integer("image/width"),
        channels=integer("image/channels"), onset=integer("clip/onset"),
        apex=integer("clip/apex"), offset=integer("clip/offset"),
        fps=float(parsed["clip/fps"].numpy()),
        landmarks=landmarks.reshape(NUM_LANDMARKS, 2) if landmarks.size else None)
