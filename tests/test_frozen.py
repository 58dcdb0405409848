"""The frozen prefix computed once (`tfmer.training.frozen`): the cached features are the
prefix's output on the pipeline's frames (and on their mirror images), the batches drawn
from them are windows of them, and a fit on them trains the model's own trainable layers
and leaves the frozen ones; `auto` and the settings it cannot serve recompute."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from tfmer import data, experiments
from tfmer.models.clip import BACKBONE_LAYER
from tfmer.models.split import frozen_share, step_ceiling
from tfmer.training import frozen

FROZEN = ["model.unfreeze_from=conv4_1_1x1_reduce", "train.frozen_cache=on", "data.flip=true"]


@pytest.fixture(scope="module")
def trainer():
    """exp3 --quick (32 px, windows of 4), the backbone frozen before conv4."""
    config = experiments.get("exp3", "quick", FROZEN)
    return experiments.trainer(config, 4)


def test_the_cache_holds_the_prefix_of_every_frame_flipped_too(trainer, builtin_dataset,
                                                               tmp_path):
    info = data.load_info(builtin_dataset)
    subjects = info.subjects[:2]
    cut = trainer.frozen_prefix(log=lambda line: None)
    lines = []
    cache = cut.write(info, subjects, tmp_path / "cache.f32", image_size=32, flip=True,
                      log=lines.append)
    assert "frozen prefix computed once: 8 clips x 2 variant(s), frames of 4x4x512" in lines[0]
    share = frozen_share(trainer.model.get_layer(BACKBONE_LAYER).layer)
    assert (f"the frozen layers are {share:.0%} of the backbone's forward pass, a step on "
            f"their features at most {step_ceiling(share):.2f}x faster") in lines[0]
    rows = np.fromfile(cache.path, np.float32).reshape(-1, 4, 4, 512)
    clips = list(data.eval_dataset(info, subjects, image_size=32))
    assert len(clips) == 8 and len(rows) == 8 * 2 * 8
    assert list(cache.starts) == list(range(0, 8 * 16, 16)) and set(cache.lengths) == {8}
    stored = [rows[start:start + 16].reshape(2, 8, 4, 4, 512) for start in cache.starts]
    for variants, label, (frames, labels, _) in zip(stored, cache.labels, clips):
        assert label == labels[0]
        np.testing.assert_allclose(variants[0], cut.prefix(frames).numpy()[0], rtol=1e-5,
                                   atol=1e-5)
        mirrored = cut.prefix(tf.reverse(frames, axis=[3])).numpy()[0]
        np.testing.assert_allclose(variants[1], mirrored, rtol=1e-5, atol=1e-5)
    # Batches: windows of 4 consecutive frames of one variant of a clip, with its label.
    batches = [next(iter(cut.training_batches(cache, window=4, batch_size=3, repeat=False,
                                              seed=0))) for _ in range(2)]
    (features, labels), (again, _) = batches
    assert features.shape == (3, 4, 4, 4, 512) and labels.shape == (3,)
    np.testing.assert_array_equal(again, features)  # a seed draws the same batches
    for window, label in zip(features.numpy(), labels.numpy()):
        found = [c for c, clip in enumerate(stored) for v in range(2)
                 for s in range(5) if np.array_equal(clip[v, s:s + 4], window)]
        assert len(found) == 1 and cache.labels[found[0]] == label


def test_a_fit_on_the_cache_trains_the_models_own_layers(trainer, builtin_dataset):
    info = data.load_info(builtin_dataset)
    backbone = trainer.model.get_layer(BACKBONE_LAYER).layer
    lines = []
    trainer.reset(0)
    before = {v.path: v.numpy() for v in trainer.model.weights}
    history = trainer.fit(info, info.subjects[:2], seed=0, log=lines.append)
    assert any("frozen prefix computed once" in line for line in lines)
    assert len(history["loss"]) == 1 and np.isfinite(history["loss"][0])
    trainable = {v.path for v in trainer.model.trainable_variables}
    after = {v.path: v.numpy() for v in trainer.model.weights}
    changed = {path for path in before if not np.array_equal(before[path], after[path])}
    frozen_weights = {w.path for layer in backbone.layers if not layer.trainable
                      for w in layer.weights}
    assert changed and changed <= trainable | {p for p in after if "seed" in p
                                               or "moving" in p}
    assert not changed & frozen_weights
    assert not frozen.cache_path(None, 0).exists()  # removed when the fit ended


@pytest.mark.parametrize("overrides, reason", [
    (["data.rotation=5"], "random rotation"),
    (["train.frozen_cache=auto", "train.epochs=2"], "fewer than 3 epochs"),
    (["train.frozen_cache=off"], "train.frozen_cache off"),
    (["data.window=1"], "windows of frames only"),
])
def test_settings_it_cannot_serve_recompute(overrides, reason):
    config = experiments.get("exp3", "quick", FROZEN + overrides)
    assert reason in frozen.unsuitable(config)
    assert frozen.unsuitable(dataclasses.replace(
        config, train=dataclasses.replace(config.train, frozen_cache="on", epochs=3),
        data=dataclasses.replace(config.data, rotation=0.0, window=4))) is None
