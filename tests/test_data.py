import cv2
import keras
import numpy as np
import pytest
import tensorflow as tf

from tfmer import data
from tfmer.models.clip import clip_probabilities, window_starts

NUMBERED = tf.constant([str(i).encode() for i in range(10)])


def _ints(strings):
    return [int(s) for s in strings.numpy()]


def test_load_info_without_dataset_json_says_how_to_make_one(tmp_path):
    with pytest.raises(FileNotFoundError, match="no dataset.json.*python -m data_prep"):
        data.load_info(tmp_path)


@pytest.mark.parametrize("in_map", [False, True])
def test_random_window_is_consecutive(in_map):
    tf.random.set_seed(1)
    if in_map:
        windows = [w for w in tf.data.Dataset.from_tensors(NUMBERED).repeat(20)
                   .map(lambda e: data.random_window(e, 4))]
    else:
        windows = [data.random_window(NUMBERED, 4) for _ in range(20)]
    starts = set()
    for window in windows:
        values = _ints(window)
        assert values == list(range(values[0], values[0] + 4))
        starts.add(values[0])
    assert len(starts) > 3 and max(starts) <= 6


def test_short_clips_repeat_their_last_frame():
    assert _ints(data.random_window(NUMBERED[:3], 5)) == [0, 1, 2, 2, 2]
    assert _ints(data.center_window(NUMBERED[:3], 5)) == [0, 1, 2, 2, 2]
    assert _ints(data.center_window(NUMBERED, 4)) == [3, 4, 5, 6]


def test_decode_and_resize_match_numpy():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(3, 8, 8, 3), dtype=np.uint8)
    encoded = tf.constant([cv2.imencode(".png", cv2.cvtColor(f, cv2.COLOR_RGB2BGR))[1].tobytes()
                           for f in frames])
    decoded = data.decode_frames(encoded).numpy()
    np.testing.assert_array_equal(decoded, frames)
    mapped = next(iter(tf.data.Dataset.from_tensors(encoded).map(data.decode_frames)))
    np.testing.assert_array_equal(mapped.numpy(), frames)
    small = data.resize_frames(decoded, 4).numpy()
    block_means = frames.astype(np.float32).reshape(3, 4, 2, 4, 2, 3).mean(axis=(2, 4))
    np.testing.assert_allclose(small, block_means, atol=1e-4)


def test_random_flip_flips_whole_clips():
    frames = tf.reshape(tf.range(2 * 2 * 3 * 1, dtype=tf.float32), [2, 2, 3, 1])
    seen = set()
    for _ in range(30):
        out = data.random_flip(frames).numpy()
        flipped = frames.numpy()[:, :, ::-1]
        assert np.array_equal(out, frames.numpy()) or np.array_equal(out, flipped)
        seen.add(np.array_equal(out, frames.numpy()))
    assert seen == {True, False}


def test_train_dataset_visits_each_clip_once_per_epoch(tiny_dataset):
    info = data.load_info(tiny_dataset)
    subjects = info.subjects[:4]
    batches = list(data.train_dataset(info, subjects, window=3, image_size=32, batch_size=5,
                                      seed=0))
    labels = np.concatenate([b[1].numpy() for b in batches])
    assert batches[0][0].shape == (5, 3, 32, 32, 3) and batches[0][0].dtype == tf.float32
    assert sorted(labels.tolist()) == sorted(
        info.classes.index(c["label"]) for c in info.clips_of(subjects))
    # Brightness encodes the label in the tiny clips: samples keep their own label.
    means = np.concatenate([b[0].numpy().mean(axis=(1, 2, 3, 4)) for b in batches])
    np.testing.assert_allclose(means, 44.5 + 50 * labels, atol=2)


def test_eval_dataset_is_deterministic(tiny_dataset):
    info = data.load_info(tiny_dataset)
    runs = [[(f.numpy(), l.numpy(), i.numpy()) for f, l, i in
             data.eval_dataset(info, info.subjects[4:], image_size=32, batch_size=3)]
            for _ in range(2)]
    ids = [i for batch in runs[0] for i in batch[2]]
    assert len(ids) == 8 and runs[0][0][0].shape == (3, 8, 32, 32, 3)
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[2], b[2])


def test_window_starts_cover_every_frame():
    assert window_starts(32, 13, 4).numpy().tolist() == [0, 4, 8, 12, 16, 19]
    assert window_starts(32, 13, 1).numpy().tolist() == list(range(20))
    assert window_starts(10, 13, 4).numpy().tolist() == [0]


def test_clip_probabilities_average_the_windows():
    inputs = keras.Input([None, 2, 2, 1])
    pooled = keras.layers.GlobalAveragePooling3D()(inputs)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(pooled))
    rng = np.random.default_rng(0)
    clips = rng.normal(size=(2, 9, 2, 2, 1)).astype(np.float32)
    got = clip_probabilities(model, tf.constant(clips), window=4, stride=3).numpy()
    for b in range(2):
        windows = [clips[b, s:s + 4] for s in (0, 3, 5)]
        expected = np.mean([model(w[None]).numpy()[0] for w in windows], axis=0)
        np.testing.assert_allclose(got[b], expected, rtol=1e-5)
    np.testing.assert_allclose(clip_probabilities(model, clips, window=None),
                               model(clips).numpy(), rtol=1e-6)


def test_membership_is_set_membership():
    member = data.membership(["b", "a", "b"])
    found = member(tf.constant(["a", "b", "c", ""]))
    assert found.numpy().tolist() == [True, True, False, False]
    assert data.membership([])(tf.constant("a")).numpy().item() is False
