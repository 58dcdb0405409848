import json

import numpy as np
import pytest

from tfmer import experiments
from tfmer.config import ExperimentConfig
from tfmer.models.clip import build_clip_model


def test_registry_lists_and_rejects():
    assert "exp3" in experiments.names()
    with pytest.raises(ValueError, match="unknown experiment 'nope'; registered: .*exp3"):
        experiments.get("nope")
    with pytest.raises(ValueError, match="already registered"):
        experiments.register("exp3", build=None)(lambda: None)
    with pytest.raises(ValueError, match="no \"name\" entry"):
        ExperimentConfig.from_dict({"data": {}})


@pytest.mark.parametrize("name", experiments.names())
def test_every_scale_validates_and_round_trips_through_a_saved_config(name):
    for scale in ("paper", "builtin", "quick"):
        config = experiments.get(name, scale)
        saved = json.loads(json.dumps({**config.to_dict(), "dataset": {"path": "/d"}}))
        assert ExperimentConfig.from_dict(saved) == config


def test_overrides_are_typed_and_checked():
    config = experiments.get("exp3", overrides=["train.epochs=3", "model.weights=/w.h5",
                                                 "data.classes=a,b", "train.early_stopping=false",
                                                 "data.window=none"])
    assert (config.train.epochs, config.model.weights) == (3, "/w.h5")
    assert config.data.classes == ("a", "b")
    assert config.train.early_stopping is False and config.data.window is None
    with pytest.raises(ValueError, match="train has no field 'epoch'; fields: .*epochs"):
        experiments.get("exp3", overrides=["train.epoch=3"])
    with pytest.raises(ValueError, match="'three' is not a valid int"):
        experiments.get("exp3", overrides=["train.epochs=three"])
    with pytest.raises(ValueError, match="protocol 'kfold' is not kfoldK"):
        experiments.get("exp3", overrides=["protocol.protocol=kfold"])
    with pytest.raises(ValueError, match="data.window 0 must be >= 1"):
        experiments.get("exp3", overrides=["data.window=0"])


NETWORKS = [n for n in experiments.names() if experiments.get(n).handcrafted.method is None]
"""The experiments with a Keras model (the SVM baselines: `tests/test_svm_training.py`)."""


@pytest.mark.parametrize("name", NETWORKS)
def test_every_experiment_builds_and_trains_one_step(name):
    config = experiments.get(name, "quick")
    model = experiments.build_model(name, quick=True)
    size, window = config.data.image_size, config.data.window or 4
    if config.data.input == "flow":  # u, v in pixels, strain
        frames = np.random.default_rng(0).normal(0, 1, size=(2, size, size, 3))
    elif config.data.input == "appearance":  # masked grey pixels x resampled frames
        frames = np.random.default_rng(0).uniform(0, 255, size=(2, 70, config.data.columns, 1))
    else:
        frames = np.random.default_rng(0).uniform(0, 255, size=(2, window, size, size, 3))
    # One step: eagerly, as tracing a ResNet-50 training step takes longer than running it.
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", run_eagerly=True)
    before = [w.copy() for w in model.get_weights()]
    loss = model.train_on_batch(frames.astype("float32"), np.array([0, 3]))
    assert np.isfinite(loss)
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    probabilities = model.predict(frames.astype("float32"), verbose=0)
    assert probabilities.shape == (2, 4)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-5)


def test_unfreeze_from_freezes_earlier_backbone_layers():
    model = build_clip_model(num_classes=3, image_size=32, unfreeze_from="conv5_1_1x1_reduce",
                             head_units=4)
    backbone = model.get_layer("backbone").layer
    names = [layer.name for layer in backbone.layers]
    cut = names.index("conv5_1_1x1_reduce")
    assert all(not layer.trainable for layer in backbone.layers[:cut])
    assert all(layer.trainable for layer in backbone.layers[cut:])
    with pytest.raises(ValueError, match="unknown layer 'conv9'.*valid layers: .*conv1_7x7_s2"):
        build_clip_model(num_classes=3, image_size=32, unfreeze_from="conv9")


@pytest.mark.parametrize("block", ["conv2_1", "conv3_2", "conv5_3"])
def test_unfreezing_from_a_block_output_retrains_the_whole_block(block):
    """l_s = a residual block's output: the convolutions producing it train too (the
    block's first layer on), the previous block stays frozen."""
    backbone = build_clip_model(num_classes=3, image_size=32, unfreeze_from=f"{block}_out",
                                head_units=4).get_layer("backbone").layer
    names = [layer.name for layer in backbone.layers]
    first = min(i for i, n in enumerate(names) if n.startswith(f"{block}_"))
    assert names[first] == f"{block}_1x1_reduce"  # the block's layers, by their names
    assert [layer.trainable for layer in backbone.layers] == [i >= first
                                                              for i in range(len(names))]
