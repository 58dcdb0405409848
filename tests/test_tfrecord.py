"""`tfmer.tfrecord` and `tfmer.records.encode` against TensorFlow's own bytes."""

import numpy as np
import pytest
import tensorflow as tf

from tfmer import features, records, tfrecord


def _reference_encode(record):
    """The clip serialisation as it was written with TensorFlow before `tfmer.tfrecord`:
    the independent reference the new encoder must match byte for byte."""

    def text(value):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value.encode("utf-8")]))

    def integer(value):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))

    def floats(values):
        return tf.train.Feature(float_list=tf.train.FloatList(value=[float(v) for v in values]))

    landmarks = [] if record.landmarks is None else np.asarray(record.landmarks).reshape(-1)
    motion = {}
    if record.motion is not None:
        m = record.motion
        motion = {"flow/uvs": floats(np.asarray(m.uvs).reshape(-1)), "flow/method": text(m.method),
                  "flow/from": integer(m.source_from), "flow/to": integer(m.source_to),
                  "flow/apex_source": text(m.apex_source)}
    context = tf.train.Features(feature={
        **motion,
        "clip/id": text(record.clip_id),
        "clip/dataset": text(record.dataset),
        "clip/subject": text(record.subject),
        "clip/label": integer(record.label),
        "clip/label_name": text(record.label_name),
        "clip/source_emotion": text(record.source_emotion),
        "clip/num_frames": integer(len(record.frames)),
        "clip/onset": integer(record.onset),
        "clip/apex": integer(record.apex),
        "clip/offset": integer(record.offset),
        "clip/fps": floats([record.fps]),
        "image/height": integer(record.height),
        "image/width": integer(record.width),
        "image/channels": integer(record.channels),
        "clip/landmarks": floats(landmarks),
    })
    frames = tf.train.FeatureList(feature=[
        tf.train.Feature(bytes_list=tf.train.BytesList(value=[frame])) for frame in record.frames
    ])
    example = tf.train.SequenceExample(
        context=context,
        feature_lists=tf.train.FeatureLists(feature_list={"image/encoded": frames}))
    return example.SerializeToString(deterministic=True)


def _record(**changes):
    rng = np.random.default_rng(0)
    fields = dict(clip_id="s1/c1", dataset="demo", subject="demo/s1", label=2,
                  label_name="surprise", source_emotion="surprise",
                  frames=(b"frame-0", b"frame-1", b"frame-2"), height=4, width=5, channels=3,
                  onset=10, apex=12, offset=15, fps=200.0,
                  landmarks=(rng.normal(size=(68, 2)) * 100).astype(np.float32))
    fields.update(changes)
    return records.ClipRecord(**fields)


RECORDS = {
    "with landmarks": _record(),
    "without landmarks, unknown frames": _record(landmarks=None, onset=-1, apex=-1, offset=-1),
    "int64 extremes": _record(label=2**63 - 1, onset=-2**63, apex=0, offset=-300,
                              height=127, width=128, channels=2**35),
    "unicode and empty strings": _record(clip_id="Sujet 7/clip é", dataset="",
                                         subject="微表情/主体", label_name="",
                                         source_emotion="répression 😐"),
    "no frames": _record(frames=()),
    "empty and large frames": _record(frames=(b"", bytes(range(256)) * 600, b"\x00")),
    "one frame, odd fps": _record(frames=(b"x",), fps=1 / 3),
    "tiny and huge fps": _record(fps=1e-40),
    "float64 landmarks": _record(landmarks=np.linspace(-1e3, 1e3, 136).reshape(68, 2)),
    "with motion": _record(motion=records.Motion(
        uvs=np.random.default_rng(1).normal(size=(4, 5, 3)).astype(np.float32),
        method="tvl1", source_from=10, source_to=12, apex_source="annotated")),
}


@pytest.mark.parametrize("name", RECORDS)
def test_encode_gives_tensorflows_bytes(name):
    record = RECORDS[name]
    assert records.encode(record) == _reference_encode(record)


@pytest.mark.parametrize("name", RECORDS)
def test_decode_of_encode_gives_the_record_back(name):
    record = RECORDS[name]
    back = features.decode(records.encode(record))
    for field in ("clip_id", "dataset", "subject", "label", "label_name", "source_emotion",
                  "frames", "height", "width", "channels", "onset", "apex", "offset"):
        assert getattr(back, field) == getattr(record, field), field
    assert back.fps == np.float32(record.fps)
    if record.landmarks is None:
        assert back.landmarks is None
    else:
        np.testing.assert_array_equal(back.landmarks, np.float32(record.landmarks))
    if record.motion is None:
        assert back.motion is None
    else:
        np.testing.assert_array_equal(back.motion.uvs, record.motion.uvs)
        for field in ("method", "source_from", "source_to", "apex_source"):
            assert getattr(back.motion, field) == getattr(record.motion, field), field


def test_motion_of_another_size_than_the_frames_is_refused():
    motion = records.Motion(uvs=np.zeros((5, 4, 3), np.float32), method="tvl1",
                            source_from=1, source_to=2, apex_source="middle")
    with pytest.raises(ValueError, match=r"clip s1/c1: motion must be \[4, 5, 3\], got "
                                         r"\[5, 4, 3\]"):
        records.encode(_record(motion=motion))


def test_messages_match_tensorflow_for_any_keys_and_values():
    keys = ["b", "a", "a/b", "ab", "A", "", "é", "z" * 200]
    context = {key: tfrecord.int64_feature([i, -i, 2**40]) for i, key in enumerate(keys)}
    context["floats"] = tfrecord.float_feature([0.0, -0.0, 1e300, -1.5, float("nan")])
    context["no floats"] = tfrecord.float_feature([])
    context["no ints"] = tfrecord.int64_feature([])
    context["no bytes"] = tfrecord.bytes_feature([])
    context["bytes"] = tfrecord.bytes_feature([b"", b"abc"])
    lists = {"steps": [tfrecord.int64_feature([1]), tfrecord.bytes_feature([b"x"])], "empty": []}
    F = tf.train
    expected = F.SequenceExample(
        context=F.Features(feature={
            **{key: F.Feature(int64_list=F.Int64List(value=[i, -i, 2**40]))
               for i, key in enumerate(keys)},
            "floats": F.Feature(float_list=F.FloatList(value=[0.0, -0.0, 1e300, -1.5,
                                                              float("nan")])),
            "no floats": F.Feature(float_list=F.FloatList()),
            "no ints": F.Feature(int64_list=F.Int64List()),
            "no bytes": F.Feature(bytes_list=F.BytesList()),
            "bytes": F.Feature(bytes_list=F.BytesList(value=[b"", b"abc"])),
        }),
        feature_lists=F.FeatureLists(feature_list={
            "steps": F.FeatureList(feature=[F.Feature(int64_list=F.Int64List(value=[1])),
                                            F.Feature(bytes_list=F.BytesList(value=[b"x"]))]),
            "empty": F.FeatureList(),
        }))
    assert tfrecord.sequence_example(context, lists) == expected.SerializeToString(
        deterministic=True)
    assert tfrecord.sequence_example({}, {}) == F.SequenceExample(
        context=F.Features(), feature_lists=F.FeatureLists()).SerializeToString(deterministic=True)


def test_int64_outside_the_range_or_not_an_integer_is_refused():
    with pytest.raises(ValueError, match="int64 value out of range: 9223372036854775808"):
        tfrecord.int64_feature([2**63])
    with pytest.raises(ValueError, match="out of range"):
        tfrecord.int64_feature([-2**63 - 1])
    with pytest.raises(TypeError):
        tfrecord.int64_feature([1.5])
    assert tfrecord.int64_feature([np.int64(-1)]) == tfrecord.int64_feature([-1])


def test_masked_crc32c_of_a_known_example():
    # CRC-32C of b"123456789" is 0xE3069283 (the check value of the Castagnoli CRC); masked:
    # rotate right by 15 -> 0x2507C60D, plus 0xA282EAD8 mod 2**32 -> 0xC78AB0E5.
    assert tfrecord.masked_crc32c(b"123456789") == 0xC78AB0E5
    # An empty record: length 0, CRC-32C(8 zero bytes) = 0x8C28B28A, masked 0x07980329;
    # CRC-32C(b"") = 0, masked 0xA282EAD8; all little-endian.
    assert tfrecord.frame(b"") == bytes.fromhex("0000000000000000" "29039807" "d8ea82a2")


def test_shard_is_the_file_tensorflow_writes(tmp_path):
    serialized = [records.encode(record) for record in RECORDS.values()] + [b"", b"\xff" * 300]
    with tfrecord.TFRecordWriter(tmp_path / "ours.tfrecord") as writer:
        for record in serialized:
            writer.write(record)
    with tf.io.TFRecordWriter(str(tmp_path / "tensorflow.tfrecord")) as writer:
        for record in serialized:
            writer.write(record)
    ours = (tmp_path / "ours.tfrecord").read_bytes()
    assert ours == (tmp_path / "tensorflow.tfrecord").read_bytes()
    read = [r.numpy() for r in tf.data.TFRecordDataset(str(tmp_path / "ours.tfrecord"))]
    assert read == serialized
    # TensorFlow checks the CRCs: one changed byte of data is refused.
    corrupt = bytearray(ours)
    corrupt[20] ^= 1
    (tmp_path / "corrupt.tfrecord").write_bytes(bytes(corrupt))
    with pytest.raises(tf.errors.DataLossError):
        list(tf.data.TFRecordDataset(str(tmp_path / "corrupt.tfrecord")))


def test_no_records_make_an_empty_file(tmp_path):
    with tfrecord.TFRecordWriter(tmp_path / "empty.tfrecord"):
        pass
    assert (tmp_path / "empty.tfrecord").read_bytes() == b""
