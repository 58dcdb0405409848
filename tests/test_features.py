import numpy as np
import pytest
import tensorflow as tf

from tfmer import features, records


def _record(**changes):
    fields = dict(clip_id="s1/c1", dataset="demo", subject="demo/s1", label=2,
                  label_name="surprise", source_emotion="surprise",
                  frames=(b"frame-0", b"frame-1", b"frame-2"), height=4, width=5, channels=3,
                  onset=10, apex=12, offset=15, fps=200.0,
                  landmarks=np.arange(136, dtype=np.float32).reshape(68, 2))
    fields.update(changes)
    return records.ClipRecord(**fields)


def test_round_trip_keeps_every_field():
    record = _record()
    back = features.decode(records.encode(record))
    for name in ("clip_id", "dataset", "subject", "label", "label_name", "source_emotion",
                 "frames", "height", "width", "channels", "onset", "apex", "offset", "fps"):
        assert getattr(back, name) == getattr(record, name), name
    np.testing.assert_array_equal(back.landmarks, record.landmarks)


def test_unknown_frames_and_landmarks_round_trip():
    back = features.decode(records.encode(_record(onset=-1, apex=-1, offset=-1, landmarks=None)))
    assert (back.onset, back.apex, back.offset) == (-1, -1, -1)
    assert back.landmarks is None


def test_parse_inside_dataset_map():
    serialized = [records.encode(_record(clip_id=f"c{i}", label=i)) for i in range(3)]
    dataset = tf.data.Dataset.from_tensor_slices(serialized).map(features.parse)
    parsed = list(dataset)
    assert [int(p["clip/label"]) for p in parsed] == [0, 1, 2]
    assert parsed[0]["image/encoded"].shape == (3,)
    assert parsed[0]["clip/num_frames"] == 3
    assert parsed[0]["clip/landmarks"].shape == (136,)


def test_bad_landmark_count_names_the_clip():
    with pytest.raises(ValueError, match="s1/c1.*68"):
        records.encode(_record(landmarks=np.zeros((5, 2))))


def test_spec_has_every_key_the_writer_writes():
    motion = records.Motion(uvs=np.zeros((4, 5, 3), np.float32), method="dis", source_from=1,
                            source_to=3, apex_source="detect")
    for record, keys in ((_record(), records.CONTEXT),
                         (_record(motion=motion), records.CONTEXT + records.MOTION)):
        example = tf.train.SequenceExample.FromString(records.encode(record))
        assert set(example.context.feature) == {key.key for key in keys}
        assert set(example.feature_lists.feature_list) == set(features.SEQUENCE_SPEC)
    assert set(features.CONTEXT_SPEC) == {key.key for key in records.CONTEXT + records.MOTION}


def test_missing_optional_keys_read_as_their_defaults():
    example = tf.train.SequenceExample.FromString(records.encode(_record()))
    for key in records.CONTEXT:
        if key.default is not None:
            del example.context.feature[key.key]
    back = features.decode(example.SerializeToString())
    assert (back.onset, back.apex, back.offset, back.fps) == (-1, -1, -1, 0.0)
