"""Tests of the TLCNN networks (Wang et al. 2018): the frame CNN of Section 3.4 against the
paper's layer sizes, Caffe local response normalisation, the CNN-LSTM of Section 3.5 and the
C3D baseline of Section 4.2."""

import keras
import numpy as np
import pytest

from tfmer.models import (
    LocalResponseNormalization,
    build_c3d,
    build_tlcnn_clip_model,
    build_tlcnn_cnn,
)

# Section 3.4, channels first in the paper: (channels, height, width) after each layer.
PAPER_SHAPES = {
    "M1": (96, 55, 55),
    "N1": (96, 55, 55),
    "M2": (384, 13, 13),
    "N2": (384, 13, 13),
    "C3": (512, 13, 13),
    "C4": (512, 13, 13),
    "C5": (384, 13, 13),
}
SMALL_INPUT = (67, 67, 3)  # smallest-ish size that survives C1..M5 (M5 -> 1 x 1)


def caffe_lrn(a, local_size=5, alpha=1e-4, beta=0.75, k=1.0):
    """Caffe ACROSS_CHANNELS LRN of channels-last `a`, channel by channel."""
    out = np.empty_like(a, dtype=np.float64)
    channels = a.shape[-1]
    half = local_size // 2
    for c in range(channels):
        window = a[..., max(0, c - half):min(channels, c + half + 1)].astype(np.float64)
        scale = k + alpha / local_size * np.sum(window ** 2, axis=-1)
        out[..., c] = a[..., c] / scale ** beta
    return out


@pytest.fixture(scope="module")
def cnn():
    """The paper's CNN at 227 x 227, 4 classes."""
    keras.utils.set_random_seed(0)
    return build_tlcnn_cnn(4)


@pytest.fixture(scope="module")
def small_cnn():
    """The paper's CNN on small crops, for fast clip-model forward passes."""
    keras.utils.set_random_seed(1)
    return build_tlcnn_cnn(3, input_shape=SMALL_INPUT)


def test_cnn_layer_shapes_match_the_paper(cnn):
    names = [layer.name for layer in cnn.layers]
    for name in ("C1", "M1", "N1", "C2", "M2", "N2", "C3", "C4", "C5", "M5",
                 "FC6", "D6", "FC7", "D7", "FC8", "probabilities"):
        assert name in names
    for name, (channels, height, width) in PAPER_SHAPES.items():
        assert tuple(cnn.get_layer(name).output.shape) == (None, height, width, channels), name
    assert tuple(cnn.get_layer("C1").output.shape) == (None, 111, 111, 96)
    assert tuple(cnn.get_layer("C2").output.shape) == (None, 28, 28, 384)
    assert tuple(cnn.get_layer("M5").output.shape) == (None, 6, 6, 384)
    for name in ("FC6", "FC7"):
        assert tuple(cnn.get_layer(name).output.shape) == (None, 4096)
    assert tuple(cnn.get_layer("FC8").output.shape) == (None, 4)
    assert tuple(cnn.output.shape) == (None, 4)
    # ReLU -> pooling -> LRN, in that order, for both normalised blocks
    assert names.index("C1") < names.index("M1") < names.index("N1") < names.index("C2")
    assert names.index("C2") < names.index("M2") < names.index("N2") < names.index("C3")
    for name in ("C1", "C2", "C3", "C4", "C5", "FC6", "FC7"):
        assert cnn.get_layer(name).activation is keras.activations.relu, name
    assert cnn.get_layer("D6").rate == cnn.get_layer("D7").rate == 0.5
    assert cnn.get_layer("N1").get_config()["local_size"] == 5


def test_cnn_forward_is_a_distribution(cnn):
    frames = np.random.default_rng(0).uniform(0, 255, (1, 227, 227, 3)).astype(np.float32)
    probabilities = keras.ops.convert_to_numpy(cnn(frames))
    assert probabilities.shape == (1, 4)
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("params", [{}, {"local_size": 3, "alpha": 0.05, "beta": 0.6, "k": 2.0}])
def test_lrn_matches_the_caffe_formula(params):
    a = np.random.default_rng(2).normal(0.0, 20.0, (2, 4, 5, 11)).astype(np.float32)
    expected = caffe_lrn(a, **params)
    got = keras.ops.convert_to_numpy(LocalResponseNormalization(**params)(a))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert not np.allclose(expected, a, rtol=1e-3)  # the normalisation is not a no-op here


def test_lrn_rejects_even_windows():
    with pytest.raises(ValueError, match="odd"):
        LocalResponseNormalization(local_size=4)


def _frames(num_frames, seed=0, batch=2):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 255, (batch, num_frames, *SMALL_INPUT)).astype(np.float32)


@pytest.mark.parametrize("feature_layer", ["FC6", "FC7"])
def test_clip_model_shapes_and_any_length(small_cnn, feature_layer):
    model = build_tlcnn_clip_model(small_cnn, 3, feature_layer=feature_layer, lstm_units=16)
    assert tuple(model.input.shape) == (None, None, *SMALL_INPUT)
    assert tuple(model.get_layer("backbone").output.shape) == (None, None, 4096)
    for num_frames in (2, 5):
        probabilities = keras.ops.convert_to_numpy(model(_frames(num_frames)))
        assert probabilities.shape == (2, 3)
        np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, rtol=1e-5)
    last = build_tlcnn_clip_model(small_cnn, 3, feature_layer=feature_layer, lstm_units=16,
                                  temporal_pooling="last", num_frames=3)
    assert keras.ops.convert_to_numpy(last(_frames(3))).shape == (2, 3)


def test_clip_model_shares_the_cnn_weights(small_cnn):
    model = build_tlcnn_clip_model(small_cnn, 3, lstm_units=16)
    features = model.get_layer("backbone").layer
    for name in ("C1", "N2", "C5", "FC6"):
        assert features.get_layer(name) is small_cnn.get_layer(name)
    cnn_variables = {id(v) for v in small_cnn.trainable_variables}
    shared = [v for v in model.trainable_variables if id(v) in cnn_variables]
    assert len(shared) == 2 * 6  # kernels and biases of C1..C5 and FC6
    frames = _frames(3, seed=5)
    before = keras.ops.convert_to_numpy(model(frames))
    fc6 = small_cnn.get_layer("FC6")
    saved = fc6.get_weights()
    try:
        fc6.kernel.assign(np.zeros(fc6.kernel.shape, np.float32))
        fc6.bias.assign(np.zeros(fc6.bias.shape, np.float32))
        after = keras.ops.convert_to_numpy(model(frames))
    finally:
        fc6.set_weights(saved)
    assert not np.allclose(before, after)
    # FC6 now 0 for every frame: both clips see the same (zero) features
    np.testing.assert_allclose(after[0], after[1], rtol=1e-6)


def test_clip_model_cnn_dropout_active_in_training(small_cnn):
    model = build_tlcnn_clip_model(small_cnn, 3, lstm_units=16)
    backbone = model.get_layer("backbone")
    frames = _frames(2, seed=6, batch=1)
    inference = keras.ops.convert_to_numpy(backbone(frames, training=False))
    training = keras.ops.convert_to_numpy(backbone(frames, training=True))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(backbone(frames)), inference)
    active = inference > 0
    assert active.any()
    dropped = np.mean(training[active] == 0)
    assert 0.3 < dropped < 0.7  # D6 rate 0.5
    kept = training[active] != 0
    np.testing.assert_allclose(training[active][kept], 2.0 * inference[active][kept],
                               rtol=1e-5)


def test_clip_model_rejects_unknown_feature_layer(small_cnn):
    with pytest.raises(ValueError, match="'C5'.*FC6, FC7"):
        build_tlcnn_clip_model(small_cnn, 3, feature_layer="C5")
    with pytest.raises(ValueError, match="temporal_pooling"):
        build_tlcnn_clip_model(small_cnn, 3, temporal_pooling="max")


@pytest.mark.parametrize("num_frames, params", [(32, 34_023_428), (64, 59_189_252)])
def test_c3d_shapes_at_the_paper_sizes(num_frames, params):
    model = build_c3d(4, num_frames=num_frames)
    t = num_frames
    expected = {
        "conv1": (t, 128, 171, 64), "pool1": (t, 64, 86, 64),
        "conv2": (t, 64, 86, 128), "pool2": (t // 2, 32, 43, 128),
        "conv3": (t // 2, 32, 43, 256), "pool3": (t // 4, 16, 22, 256),
        "conv4": (t // 4, 16, 22, 256), "pool4": (t // 8, 8, 11, 256),
        "conv5": (t // 8, 8, 11, 256), "pool5": (t // 16, 4, 6, 256),
        "fc6": (2048,), "fc7": (2048,), "fc8": (4,), "probabilities": (4,),
    }
    for name, shape in expected.items():
        assert tuple(model.get_layer(name).output.shape) == (None, *shape), name
    assert tuple(model.input.shape) == (None, t, 128, 171, 3)
    assert model.count_params() == params


def test_c3d_forward_is_a_distribution():
    model = build_c3d(5, num_frames=3, input_size=(16, 20))
    frames = np.random.default_rng(7).uniform(0, 255, (2, 3, 16, 20, 3)).astype(np.float32)
    probabilities = keras.ops.convert_to_numpy(model(frames))
    assert probabilities.shape == (2, 5)
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, rtol=1e-5)
    assert tuple(model.get_layer("pool5").output.shape) == (None, 1, 1, 1, 256)


def test_fc_widths_are_configurable_and_checked():
    cnn = build_tlcnn_cnn(3, input_shape=(67, 67, 3), fc_units=(16, 8))
    assert cnn.get_layer("FC6").output.shape[-1] == 16
    assert cnn.get_layer("FC7").output.shape[-1] == 8
    # 384 M5 channels at 1 x 1 -> FC6 -> FC7 -> FC8: weights plus biases.
    assert cnn.get_layer("FC6").count_params() == 384 * 16 + 16
    assert cnn.get_layer("FC7").count_params() == 16 * 8 + 8
    assert cnn.get_layer("FC8").count_params() == 8 * 3 + 3
    with pytest.raises(ValueError, match=r"fc_units \(16,\) must be the two widths"):
        build_tlcnn_cnn(3, input_shape=(67, 67, 3), fc_units=(16,))
    c3d = build_c3d(4, num_frames=3, input_size=(16, 20), fc_units=(8, 4))
    assert c3d.get_layer("fc6").count_params() == 256 * 8 + 8  # pool5 is 1 x 1 x 1 x 256
    assert c3d.get_layer("fc7").count_params() == 8 * 4 + 4
    with pytest.raises(ValueError, match=r"fc_units \(8,\) must be the two widths of fc6"):
        build_c3d(4, num_frames=3, input_size=(16, 20), fc_units=(8,))
