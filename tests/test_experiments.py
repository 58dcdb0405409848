import numpy as np
import pytest

from tfmer import experiments
from tfmer.models.clip import build_clip_model


def test_registry_lists_and_rejects():
    assert "exp3" in experiments.names()
    with pytest.raises(ValueError, match="unknown experiment 'nope'; registered: .*exp3"):
        experiments.get("nope")
    with pytest.raises(ValueError, match="already registered"):
        experiments.register("exp3", build=None)(lambda: None)


def test_scales_shrink_the_paper_config():
    paper, quick = experiments.get("exp3"), experiments.get("exp3", "quick")
    assert (paper.data.window, paper.data.image_size, paper.model.head) == (13, 224, "bilstm")
    assert paper.model.head_layers == 1 and paper.protocol.protocol == "kfold5"
    assert quick.scale == "quick" and quick.data.image_size < paper.data.image_size
    assert quick.train.epochs < paper.train.epochs
    assert experiments.get("exp3", "builtin").data.image_size == 64


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


@pytest.mark.parametrize("name", experiments.names())
def test_every_experiment_builds_and_trains_one_step(name):
    config = experiments.get(name, "quick")
    model = experiments.build_model(name, quick=True)
    window = config.data.window or 4
    frames = np.random.default_rng(0).uniform(0, 255, size=(2, window, config.data.image_size,
                                                            config.data.image_size, 3))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
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


def test_exp1_is_the_frame_level_experiment():
    paper, quick = experiments.get("exp1"), experiments.get("exp1", "quick")
    assert (paper.data.window, paper.data.eval_stride, paper.model.head) == (1, 1, "fc")
    assert paper.model.fc_units == (1024, 256) and paper.model.unfreeze_from == "gradcam"
    assert paper.data.balance_classes and paper.data.frames_per_class == 15000
    assert paper.data.rotation == 10.0 and paper.data.classes is not None
    assert quick.data.classes is None and quick.model.unfreeze_from is None
    assert (quick.data.window, quick.data.eval_stride) == (1, 1)
    assert quick.data.frames_per_class * 4 <= 2 * quick.train.batch_size  # two steps
