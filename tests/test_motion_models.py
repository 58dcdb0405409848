"""Tests of the flow networks (`tfmer.models.motion`): channel picking, the custom layers
against hand computations of the sources' formulas, layer sizes and parameter counts
against the papers' tables and hand counts, tied (RCN) vs untied (STRCN) weights, and one
training step of every builder at tiny sizes."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfmer.models import (
    FLOW_CHANNELS,
    FLOW_INPUT,
    RCN_VARIANTS,
    AdaptiveAveragePooling2D,
    CAMAttentionDense,
    FlowChannels,
    MinMaxScaling,
    ScaledConv2D,
    build_off_apexnet,
    build_rcn,
    build_strcn,
    build_ststnet,
)

# name -> (builder of a tiny model with 3 classes, input size)
TINY = {
    "ststnet": (lambda: build_ststnet(3), 28),
    "off_apexnet": (lambda: build_off_apexnet(3, fc_units=(16, 8)), 28),
    **{variant: ((lambda v=variant: build_rcn(3, image_size=20, variant=v, filters=8,
                                              pool_size=2)), 20)
       for variant in RCN_VARIANTS},
    "strcn_g": (lambda: build_strcn(3, image_size=64, filters=8), 64),
}


def _flow(batch, size, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(0, 1, (batch, size, size, 3)).astype(np.float32)


def _inbound_calls(model, layer_name):
    """How many times the functional model calls a layer (its inbound nodes in the config)."""
    (entry,) = [layer for layer in model.get_config()["layers"] if layer["name"] == layer_name]
    return len(entry["inbound_nodes"])


def test_flow_channels_picks_and_orders_channels():
    flow = np.zeros((1, 2, 2, 3), np.float32)
    flow[..., 0], flow[..., 1], flow[..., 2] = 1.0, 2.0, 3.0  # u, v, strain
    picked = keras.ops.convert_to_numpy(FlowChannels(("strain", "u"))(flow))
    assert picked.shape == (1, 2, 2, 2)
    assert (picked[..., 0] == 3.0).all() and (picked[..., 1] == 1.0).all()
    uv = np.stack([flow[..., 0], flow[..., 1]], axis=-1)
    second = FlowChannels(("v",), available=("u", "v"))(uv)
    assert (keras.ops.convert_to_numpy(second) == 2.0).all()


def test_flow_channels_rejects_an_unknown_name():
    with pytest.raises(ValueError, match="'w'") as error:
        FlowChannels(("u", "w"))
    for name in FLOW_CHANNELS:
        assert name in str(error.value)


def test_min_max_scaling_by_hand():
    flow = np.zeros((1, 2, 2, 2), np.float32)
    flow[0, :, :, 0] = [[1.0, 3.0], [5.0, 9.0]]
    flow[0, :, :, 1] = 4.0  # constant: no motion
    scaled = keras.ops.convert_to_numpy(MinMaxScaling(255.0)(flow))
    np.testing.assert_allclose(scaled[0, :, :, 0], [[0.0, 63.75], [127.5, 255.0]], rtol=1e-6)
    assert (scaled[0, :, :, 1] == 0.0).all()


def test_adaptive_average_pooling_follows_pytorch_bins():
    """10 -> 7 rows and 6 -> 4 columns: overlapping bins, start = floor(i * n / out),
    end = ceil((i + 1) * n / out); rows 10 -> 7 written out by hand."""
    rows_by_hand = [(0, 2), (1, 3), (2, 5), (4, 6), (5, 8), (7, 9), (8, 10)]
    rows = [(math.floor(i * 10 / 7), math.ceil((i + 1) * 10 / 7)) for i in range(7)]
    cols = [(math.floor(j * 6 / 4), math.ceil((j + 1) * 6 / 4)) for j in range(4)]
    assert rows == rows_by_hand
    x = np.random.default_rng(0).normal(size=(2, 10, 6, 3)).astype(np.float32)
    expected = np.empty((2, 7, 4, 3), np.float32)
    for i, (r0, r1) in enumerate(rows):
        for j, (c0, c1) in enumerate(cols):
            expected[:, i, j] = x[:, r0:r1, c0:c1].mean(axis=(1, 2))
    pooled = AdaptiveAveragePooling2D((7, 4))(x)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(pooled), expected, rtol=1e-5,
                               atol=1e-6)


def test_cam_attention_dense_matches_the_release_formula():
    """NumPy transcription of `SpatialAttentionBlock_P` and `RCN_A.forward` (version 3)."""
    rng = np.random.default_rng(1)
    grid, channels, classes = 3, 4, 3
    guide = rng.normal(size=(2, grid, grid, channels)).astype(np.float32)
    features = rng.normal(size=(2, grid, grid, channels)).astype(np.float32)
    layer = CAMAttentionDense(classes)
    layer([guide, features])
    kernel = rng.normal(size=(grid * grid * channels, classes)).astype(np.float32)
    bias = rng.normal(size=classes).astype(np.float32)
    layer.set_weights([kernel, bias])
    cams = []
    for k in range(classes):
        cam = (kernel[:, k].reshape(grid, grid, channels) * guide).mean(axis=-1)
        cam = cam - cam.min(axis=(1, 2), keepdims=True)
        cams.append(cam / cam.max(axis=(1, 2), keepdims=True))
    attention = np.mean(cams, axis=0)[..., None]
    expected = (features * attention).reshape(2, -1) @ kernel + bias
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer([guide, features])), expected,
                               rtol=1e-5, atol=1e-5)


def test_scaled_conv_is_a_smaller_kernel_with_a_smaller_learning_rate():
    """Two momentum-SGD steps on `ScaledConv2D(c)` move its effective kernel c * v exactly
    as a plain conv initialised to c * v and trained with learning rate c^2 * lr."""
    scale, lr = 0.1, 0.05
    rng = np.random.default_rng(2)
    x = rng.normal(size=(4, 5, 5, 2)).astype(np.float32)
    target = rng.normal(size=(4, 5, 5, 3)).astype(np.float32)
    scaled = ScaledConv2D(3, 3, padding="same", kernel_scale=scale)
    plain = keras.layers.Conv2D(3, 3, padding="same")
    scaled(x), plain(x)
    plain.set_weights([scale * scaled.kernel.numpy(), scaled.bias.numpy()])
    np.testing.assert_allclose(scaled(x), plain(x), rtol=1e-5, atol=1e-6)

    def train(layer, variables, optimizer):
        for _ in range(2):
            with tf.GradientTape() as tape:
                loss = keras.ops.mean((layer(x) - target) ** 2)
            grads = tape.gradient(loss, variables)
            optimizer.apply(grads, variables)

    train(scaled, [scaled.kernel], keras.optimizers.SGD(lr, momentum=0.9))
    train(plain, [plain.kernel], keras.optimizers.SGD(lr * scale ** 2, momentum=0.9))
    np.testing.assert_allclose(scale * scaled.kernel.numpy(), plain.kernel.numpy(),
                               rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("name", sorted(TINY))
def test_builder_runs_one_training_step(name):
    make, size = TINY[name]
    keras.utils.set_random_seed(0)
    model = make()
    assert model.input.name == FLOW_INPUT
    assert tuple(model.input.shape) == (None, size, size, 3)
    assert model.layers[1].name == "channels" and isinstance(model.layers[1], FlowChannels)
    assert model.layers[-1].name == "probabilities"
    probabilities = keras.ops.convert_to_numpy(model(_flow(2, size), training=False))
    assert probabilities.shape == (2, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss="sparse_categorical_crossentropy")
    before = [w.numpy().copy() for w in model.trainable_weights]
    loss = model.train_on_batch(_flow(4, size, seed=1), np.array([0, 1, 2, 0]))
    assert np.isfinite(loss)
    unchanged = [w.path for w, old in zip(model.trainable_weights, before)
                 if np.array_equal(w.numpy(), old)]
    assert not unchanged


def test_ststnet_layer_sizes_match_table_1():
    model = build_ststnet(3)
    for i, filters in enumerate((3, 5, 8), start=1):
        assert tuple(model.get_layer(f"stream_{i}_conv").output.shape) == (None, 28, 28, filters)
        assert tuple(model.get_layer(f"stream_{i}_pool").output.shape) == (None, 10, 10, filters)
    assert tuple(model.get_layer("avgpool").output.shape) == (None, 5, 5, 16)
    assert tuple(model.get_layer("flatten").output.shape) == (None, 400)


def test_ststnet_parameter_count_by_hand():
    conv = sum(f * (3 * 3 * 3 + 1) for f in (3, 5, 8))  # 448
    batch_norm = 4 * 16  # gamma, beta, moving mean, moving variance
    for classes in (3, 4):
        model = build_ststnet(classes)
        dense = 5 * 5 * 16 * classes + classes
        assert model.count_params() == conv + batch_norm + dense
        trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
        assert trainable == conv + 2 * 16 + dense
    assert build_ststnet(4).count_params() == 2116


def test_off_apexnet_parameter_count_by_hand():
    stream = (5 * 5 * 1 * 6 + 6) + (5 * 5 * 6 * 16 + 16)
    flat = 2 * 7 * 7 * 16
    for classes in (3, 4):
        expected = (2 * stream + flat * 1024 + 1024 + 1024 * 1024 + 1024
                    + 1024 * classes + classes)
        assert build_off_apexnet(classes).count_params() == expected
    assert build_off_apexnet(4).count_params() == 2_665_500
    model = build_off_apexnet(3)
    assert tuple(model.get_layer("stream_2_pool2").output.shape) == (None, 7, 7, 16)


@pytest.mark.parametrize("variant", RCN_VARIANTS)
def test_rcn_parameter_count_counts_tied_weights_once(variant):
    filters, pool, classes = 8, 2, 3
    model = build_rcn(classes, image_size=20, variant=variant, filters=filters,
                      pool_size=pool)
    bn = 4 * filters
    if variant == "rcn_w":  # three 3 x 3 streams of F/2, F/4, F/4 maps on 3 channels
        front = sum(w * (3 * 3 * 3 + 1) + 4 * w for w in (4, 2, 2))
    else:
        front = filters * (5 * 5 * 3 + 1) + bn
    block = (filters * filters + filters) + bn + (9 * filters * filters + filters) + bn
    classifier = pool * pool * filters * classes + classes
    assert model.count_params() == front + block + classifier


def test_rcn_paper_setting_parameter_counts():
    assert build_rcn(4).count_params() == 59_268
    assert build_rcn(4, variant="rcn_a").count_params() == 59_268
    assert build_rcn(4, variant="rcn_w").count_params() == 56_196


@pytest.mark.parametrize("variant,prefix,calls", [("rcn", "rcl_1", 2), ("rcn_a", "rcl_1", 2),
                                                  ("rcn_w", "rcl_1", 2),
                                                  ("rcn_s", "dense_1", 3)])
def test_rcn_block_ties_one_3x3_convolution(variant, prefix, calls):
    model = build_rcn(3, image_size=20, variant=variant, filters=8, pool_size=2)
    kernels = [w for w in model.weights
               if w.path.startswith(prefix) and w.name == "kernel" and w.shape[:2] == (3, 3)]
    assert len(kernels) == 1
    for part in ("conv", "bn", "relu"):  # batch norm shared too, as in the release
        assert _inbound_calls(model, f"{prefix}_3x3_{part}") == calls
    assert _inbound_calls(model, f"{prefix}_1x1_conv") == 1


def test_rcn_w_streams_follow_pytorch_strided_dilated_sizes():
    model = build_rcn(3, variant="rcn_w", filters=64)
    for i, dilation in enumerate((1, 2, 3), start=1):
        size = (60 + 2 * dilation - dilation * 2 - 1) // 3 + 1  # PyTorch Conv2d, stride 3
        assert tuple(model.get_layer(f"stream_{i}_dropout").output.shape)[1:3] == (size, size)
    assert tuple(model.get_layer("rcl_1_pool").output.shape) == (None, 10, 10, 64)
    assert tuple(model.get_layer("adaptive_pool").output.shape) == (None, 7, 7, 64)


def test_unknown_rcn_variant_lists_the_known_ones():
    with pytest.raises(ValueError) as error:
        build_rcn(3, variant="rcn_x")
    for variant in RCN_VARIANTS:
        assert variant in str(error.value)


def test_strcn_sizes_and_untied_parameter_count():
    filters, classes, depth = 8, 3, 3
    model = build_strcn(classes, image_size=300, filters=filters)
    for layer, size in (("conv1_pool", 75), ("rconv2_pool", 18), ("rconv3_pool", 9),
                        ("rconv4_pool", 4)):
        assert tuple(model.get_layer(layer).output.shape) == (None, size, size, filters)
    conv1 = 3 * 3 * 2 * filters + 4 * filters  # no bias; batch norm
    section = (filters * filters + (depth - 1) * 9 * filters * filters  # every step its own
               + depth * 4 * filters)
    prediction = filters * classes + classes
    assert model.count_params() == conv1 + 3 * section + prediction
    for section_index in (2, 3, 4):
        kernels = [w for w in model.weights if w.path.startswith(f"rconv{section_index}_")
                   and w.name == "kernel" and w.shape[:2] == (3, 3)]
        assert len(kernels) == depth - 1
        for step in range(1, depth + 1):
            assert _inbound_calls(model, f"rconv{section_index}_{step}_conv") == 1
    assert build_strcn(4).count_params() == 14_973_956


def test_strcn_conv1_starts_a_hundred_times_smaller():
    keras.utils.set_random_seed(3)
    model = build_strcn(3, image_size=64, filters=64)
    layer = model.get_layer("conv1_conv")
    assert layer.kernel_scale == 0.01
    effective = layer.kernel_scale * layer.kernel.numpy()
    # MatConvNet: randn * sqrt(2 / (3 * 3 * 2)), then divided by 100
    assert 0.8 < effective.std() / (math.sqrt(2 / 18) / 100) < 1.2
    plain = model.get_layer("rconv2_2_conv").kernel.numpy()
    assert 0.8 < plain.std() / math.sqrt(2 / (9 * 64)) < 1.2


def test_weight_decay_is_coupled_l2():
    model = build_rcn(3, image_size=20, filters=8, pool_size=2, weight_decay=5e-4)
    regularizer = model.get_layer("rcl_1_3x3_conv").kernel_regularizer
    assert regularizer.get_config()["l2"] == pytest.approx(2.5e-4)
    assert build_rcn(3, image_size=20, filters=8, pool_size=2).losses == []
    strcn = build_strcn(3, image_size=64, filters=8)
    assert strcn.get_layer("prediction").kernel_regularizer.get_config()["l2"] == (
        pytest.approx(2.5e-4))
    assert strcn.get_layer("conv1_conv").kernel_regularizer.get_config()["l2"] == (
        pytest.approx(2.5e-4 * 1e-4))


@pytest.mark.parametrize("name", ["rcn_a", "strcn_g"])
def test_model_saves_and_reloads(name, tmp_path):
    make, size = TINY[name]
    model = make()
    flow = _flow(2, size)
    expected = keras.ops.convert_to_numpy(model(flow, training=False))
    path = tmp_path / f"{name}.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(reloaded(flow, training=False)),
                               expected, rtol=1e-5, atol=1e-6)
    assert reloaded.count_params() == model.count_params()
