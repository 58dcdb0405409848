"""The motion input: stored onset -> apex flow read, resized with its displacements rescaled,
flipped with u negated, batched, cached; and the checks that stop a motion run on data
without flow."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from data_prep import clip, manifest
from tfmer import data, experiments, features
from tfmer.training import cross_validation


def _in_map(function, *tensors):
    """`function(*tensors)` run inside `Dataset.map` (graph mode)."""
    dataset = tf.data.Dataset.from_tensors(tensors).map(function)
    return next(iter(dataset))


@pytest.mark.parametrize("in_map", [False, True])
def test_flow_input_rescales_displacements_and_keeps_strain(in_map):
    # A uniform motion of (2, -1) px at 4 x 8 (H x W) is (2 * 16/8, -1 * 16/4) px at 16 x 16.
    stored = np.zeros([4, 8, 3], np.float32)
    stored[..., 0], stored[..., 1], stored[..., 2] = 2.0, -1.0, 0.3
    args = (tf.constant(stored.reshape(-1)), tf.constant(4, tf.int64), tf.constant(8, tf.int64))
    flow = (_in_map(lambda *a: data.flow_input(*a, 16), *args) if in_map
            else data.flow_input(*args, 16)).numpy()
    assert flow.shape == (16, 16, 3)
    np.testing.assert_allclose(flow[..., 0], 4.0, rtol=1e-6)
    np.testing.assert_allclose(flow[..., 1], -4.0, rtol=1e-6)
    np.testing.assert_allclose(flow[..., 2], 0.3, rtol=1e-6)


def test_flow_input_of_a_zoom_stays_the_same_zoom():
    # A 2 % zoom about the centre (u = 0.02 (x - cx), v = 0.02 (y - cy)) stays a 2 % zoom
    # about the new centre at any size: displacements scale with the image, away from the
    # borders (where antialiasing averages across the edge).
    size, out = 64, 32
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    stored = np.stack([0.02 * (x - (size - 1) / 2), 0.02 * (y - (size - 1) / 2),
                       np.full_like(x, 0.02 * np.sqrt(2))], axis=-1)
    flow = data.flow_input(tf.constant(stored.reshape(-1)), size, size, out).numpy()
    y2, x2 = np.mgrid[0:out, 0:out].astype(np.float32)
    inner = np.s_[2:-2, 2:-2]
    np.testing.assert_allclose(flow[..., 0][inner], 0.02 * (x2 - (out - 1) / 2)[inner],
                               atol=1e-5)
    np.testing.assert_allclose(flow[..., 1][inner], 0.02 * (y2 - (out - 1) / 2)[inner],
                               atol=1e-5)
    np.testing.assert_allclose(flow[..., 2], 0.02 * np.sqrt(2), rtol=1e-5)


def test_flow_input_at_the_stored_size_is_the_stored_flow():
    stored = np.random.default_rng(0).normal(size=[12, 12, 3]).astype(np.float32)
    flow = data.flow_input(tf.constant(stored.reshape(-1)), 12, 12, 12).numpy()
    np.testing.assert_allclose(flow, stored, atol=1e-5)


@pytest.mark.parametrize("in_map", [False, True])
def test_random_flow_flip_mirrors_and_negates_u(in_map):
    flow = tf.constant(np.random.default_rng(1).normal(size=[3, 4, 3]).astype(np.float32))
    mirrored = flow.numpy()[:, ::-1] * np.array([-1, 1, 1], np.float32)
    if in_map:  # one stream, so that its draws differ
        outs = list(tf.data.Dataset.from_tensors(flow).repeat(30).map(data.random_flow_flip))
    else:
        outs = [data.random_flow_flip(flow) for _ in range(30)]
    seen = set()
    for out in outs:
        out = out.numpy()
        same = np.array_equal(out, flow.numpy())
        assert same or np.array_equal(out, mirrored)
        seen.add(same)
    assert seen == {True, False}


def _stored_motion(info):
    """clip id -> (label, the converter's `Motion.uvs` read back by `features.decode`)."""
    stored = {}
    for shard in info.shards:
        for serialized in tf.data.TFRecordDataset(str(shard)):
            record = features.decode(serialized.numpy())
            stored[record.clip_id] = (record.label, record.motion.uvs)
    return stored


def test_flow_eval_dataset_gives_each_clips_stored_motion(tiny_dataset):
    info = data.load_info(tiny_dataset)
    stored = _stored_motion(info)
    seen = []
    for flow, labels, ids in data.flow_eval_dataset(info, info.subjects[:3], image_size=32,
                                                    batch_size=4):
        assert flow.shape[1:] == (32, 32, 3) and flow.dtype == tf.float32
        for f, label, clip_id in zip(flow.numpy(), labels.numpy(), ids.numpy()):
            expected_label, uvs = stored[clip_id.decode()]
            assert label == expected_label
            np.testing.assert_allclose(f, uvs, atol=1e-5)  # stored at 32 px: as stored
            seen.append(clip_id.decode())
    assert sorted(seen) == sorted(c["id"] for c in info.clips_of(info.subjects[:3]))


def test_flow_train_dataset_visits_each_clip_once_per_pass(tiny_dataset):
    info = data.load_info(tiny_dataset)
    subjects = info.subjects[:4]
    stored = _stored_motion(info)
    by_label = {}
    for label, uvs in stored.values():
        by_label.setdefault(label, []).append(uvs)
    dataset = data.flow_train_dataset(info, subjects, image_size=32, batch_size=5, seed=0)
    expected = sorted(info.classes.index(c["label"]) for c in info.clips_of(subjects))
    for _ in range(2):  # the second pass reads the cache
        batches = list(dataset)
        assert batches[0][0].shape == (5, 32, 32, 3)
        labels = np.concatenate([b[1].numpy() for b in batches])
        assert sorted(labels.tolist()) == expected
        for flow, label in zip(np.concatenate([b[0].numpy() for b in batches]), labels):
            mirrored = flow[:, ::-1] * np.array([-1, 1, 1], np.float32)
            assert any(np.allclose(flow, uvs, atol=1e-5) or np.allclose(mirrored, uvs, atol=1e-5)
                       for uvs in by_label[label])


def test_a_motion_experiment_stops_on_data_without_flow(tiny_manifest, tmp_path):
    out = tmp_path / "no_flow"
    manifest.convert_manifest(tiny_manifest, out, classes="tlcnn4", name="tiny",
                              options=clip.ConvertOptions(num_frames=8, size=32, workers=1,
                                                          progress=False, flow="none"))
    config = experiments.get("ststnet", "quick")
    with pytest.raises(ValueError, match=r"24 clips .* have none .*--flow none; convert it "
                                         r"again with `python -m data_prep \.\.\. --flow tvl1`"):
        cross_validation.check_inputs(config, data.load_info(out))


def test_a_motion_experiment_stops_on_flow_of_another_method(tiny_dataset):
    config = experiments.get("ststnet", "quick")
    config = dataclasses.replace(config, data=dataclasses.replace(config.data, flow="dis"))
    with pytest.raises(ValueError, match="expects dis flow .* holds tvl1 flow; convert with "
                                         "`python -m data_prep ... --flow dis`"):
        cross_validation.check_inputs(config, data.load_info(tiny_dataset))
    accepting = dataclasses.replace(config, data=dataclasses.replace(config.data, flow=None))
    cross_validation.check_inputs(accepting, data.load_info(tiny_dataset))


def test_motion_configs_refuse_frame_sampling():
    with pytest.raises(ValueError, match="data.window 13: a flow model reads one input per clip"):
        experiments.get("ststnet", overrides=["data.window=13"])
    with pytest.raises(ValueError, match="data.rotation and data.balance_classes sample"):
        experiments.get("ststnet", overrides=["data.rotation=10"])
    with pytest.raises(ValueError, match="data.flow 'tvl2' is not one of"):
        experiments.get("ststnet", overrides=["data.flow=tvl2"])
    with pytest.raises(ValueError, match="data.flow 'tvl1' is set but data.input is 'frames'"):
        experiments.get("exp3", overrides=["data.flow=tvl1"])
