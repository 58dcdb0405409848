"""Reading clip records with TensorFlow: the `tf.io` spec, `parse` and `decode`.

The keys, their kinds and defaults are defined once, in `tfmer.records` (`CONTEXT`,
`FRAMES`), which also writes records (`tfmer.records.encode`, free of TensorFlow for the
converter). The spec here is derived from those definitions, so writer and reader cannot
drift apart; `tfmer.records` describes what each key holds.
"""

from __future__ import annotations

import tensorflow as tf

from tfmer import records
# The record's Python side lives in tfmer.records, free of TensorFlow, for the converter.
from tfmer.records import NUM_LANDMARKS, UNKNOWN, ClipRecord, Motion  # noqa: F401

_DTYPES = {records.TEXT: tf.string, records.INT: tf.int64, records.FLOAT: tf.float32}


def _context_feature(key: records.ContextKey):
    """The `tf.io` feature of one context key: one value (with its default) or a list."""
    if key.kind == records.FLOATS:
        return tf.io.VarLenFeature(tf.float32)
    return tf.io.FixedLenFeature([], _DTYPES[key.kind], default_value=key.default)


CONTEXT_SPEC = {key.key: _context_feature(key) for key in records.CONTEXT + records.MOTION}
SEQUENCE_SPEC = {records.FRAMES: tf.io.FixedLenSequenceFeature([], tf.string)}


def parse(serialized, frames: bool = True):
    """Parses one serialised clip inside or outside `tf.data`.

    Args:
        serialized: scalar string tensor, one `SequenceExample`.
        frames: also parse the encoded frames; False reads the context alone (a motion
            model needs only `flow/uvs`), leaving the frames unparsed.

    Returns:
        A dict of tensors: the context keys of `CONTEXT_SPEC` (the float lists dense:
        `clip/landmarks` `[0]` or `[136]`, `flow/uvs` `[0]` without motion or `[H*W*3]`)
        and, with `frames`, `image/encoded`, a `[T]` string tensor of encoded frames.
    """
    context, sequence = tf.io.parse_single_sequence_example(
        serialized, context_features=CONTEXT_SPEC,
        sequence_features=SEQUENCE_SPEC if frames else None)
    parsed = dict(context)
    for key in records.CONTEXT + records.MOTION:
        if key.kind == records.FLOATS:
            parsed[key.key] = tf.sparse.to_dense(context[key.key])
    if frames:
        parsed[records.FRAMES] = sequence[records.FRAMES]
    return parsed


def decode(serialized: bytes) -> ClipRecord:
    """Eagerly parses serialised bytes back into a `ClipRecord` (tests, tools)."""
    parsed = parse(tf.constant(serialized))

    def text(key):
        return parsed[key].numpy().decode("utf-8")

    def integer(key):
        return int(parsed[key].numpy())

    landmarks = parsed["clip/landmarks"].numpy()
    height, width = integer("image/height"), integer("image/width")
    motion = None
    if text("flow/method"):
        motion = Motion(uvs=parsed["flow/uvs"].numpy().reshape(height, width, 3),
                        method=text("flow/method"), source_from=integer("flow/from"),
                        source_to=integer("flow/to"), apex_source=text("flow/apex_source"))
    return ClipRecord(
        clip_id=text("clip/id"), dataset=text("clip/dataset"), subject=text("clip/subject"),
        label=integer("clip/label"), label_name=text("clip/label_name"),
        source_emotion=text("clip/source_emotion"),
        frames=tuple(parsed[records.FRAMES].numpy().tolist()),
        height=height, width=width,
        channels=integer("image/channels"), onset=integer("clip/onset"),
        apex=integer("clip/apex"), offset=integer("clip/offset"),
        fps=float(parsed["clip/fps"].numpy()),
        landmarks=landmarks.reshape(NUM_LANDMARKS, 2) if landmarks.size else None,
        motion=motion)
