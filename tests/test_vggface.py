"""Tests of the keras-vggface ResNet-50 (VGGFace2) rebuild and its weight loader.

The weight files are written here in the Keras 2 HDF5 layout keras-vggface published
(root attribute `layer_names`, one group per layer named by the original `/` name, attribute
`weight_names` like `conv1/7x7_s2/kernel:0`, one dataset per weight), with names generated
from the published naming rules rather than from the library's mapping.
"""

import math

import h5py
import keras
import numpy as np
import pytest

from tfmer.models import (
    VGGFACE2_BLOCK_OUTPUTS,
    keras_vggface_name,
    load_vggface2_weights,
    vggface2_preprocess,
    vggface2_resnet50,
)
from tfmer.models.vggface import read_keras2_weights

# keras-vggface RESNET50: (stage, bottleneck width, output width, blocks)
STAGES = ((2, 64, 256, 3), (3, 128, 512, 4), (4, 256, 1024, 6), (5, 512, 2048, 3))
EPSILON = 1e-3  # Keras 2 BatchNormalization default, kept by keras-vggface
MEAN_BGR = np.array([91.4953, 103.8827, 131.0912], np.float32)


def vggface_tensors(seed):
    """Random tensors of every keras-vggface notop ResNet-50 layer, by original name."""
    rng = np.random.default_rng(seed)
    tensors = {}

    def conv_bn(name, size, channels_in, channels_out):
        kernel = rng.normal(0.0, (size * size * channels_in) ** -0.5,
                            (size, size, channels_in, channels_out))
        tensors[name] = {"kernel": kernel.astype(np.float32)}
        tensors[name + "/bn"] = {
            "gamma": rng.uniform(0.5, 1.5, channels_out).astype(np.float32),
            "beta": rng.normal(0.0, 0.1, channels_out).astype(np.float32),
            "moving_mean": rng.normal(0.0, 0.1, channels_out).astype(np.float32),
            "moving_variance": rng.uniform(0.5, 1.5, channels_out).astype(np.float32),
        }

    conv_bn("conv1/7x7_s2", 7, 3, 64)
    channels = 64
    for stage, width, out, blocks in STAGES:
        for block in range(1, blocks + 1):
            prefix = f"conv{stage}_{block}"
            conv_bn(f"{prefix}_1x1_reduce", 1, channels, width)
            conv_bn(f"{prefix}_3x3", 3, width, width)
            conv_bn(f"{prefix}_1x1_increase", 1, width, out)
            if block == 1:
                conv_bn(f"{prefix}_1x1_proj", 1, channels, out)
            channels = out
    return tensors


def with_classifier(tensors, seed):
    rng = np.random.default_rng(seed)
    top = dict(tensors)
    top["classifier"] = {
        "kernel": rng.normal(0.0, 0.02, (2048, 8631)).astype(np.float32),
        "bias": rng.normal(0.0, 0.1, 8631).astype(np.float32),
    }
    return top


def write_keras2_file(path, tensors, full_model=False, chunks=1):
    """Writes `tensors` as Keras 2 `save_weights` (or `save`, under `model_weights`) does.

    Layers without weights (input, activations, pooling) get groups with empty
    `weight_names`, as in a real file; `chunks` > 1 splits `layer_names` into
    `layer_names0`, `layer_names1`, ... as Keras 2 does for long lists.
    """
    layer_names = ["input_1", *tensors, "activation_1", "avg_pool"]
    with h5py.File(path, "w") as f:
        root = f.create_group("model_weights") if full_model else f
        encoded = [name.encode("utf8") for name in layer_names]
        if chunks == 1:
            root.attrs["layer_names"] = encoded
        else:
            for index, chunk in enumerate(np.array_split(np.array(encoded), chunks)):
                root.attrs[f"layer_names{index}"] = chunk
        root.attrs["backend"] = b"tensorflow"
        root.attrs["keras_version"] = b"2.2.4"
        for name in layer_names:
            group = root.create_group(name)  # a `/` in the name nests groups
            weights = tensors.get(name, {})
            weight_names = [f"{name}/{weight}:0" for weight in weights]
            group.attrs["weight_names"] = [n.encode("utf8") for n in weight_names]
            for weight_name, value in zip(weight_names, weights.values()):
                group.create_dataset(weight_name, data=value)
    return path


@pytest.fixture(scope="module")
def notop_tensors():
    return vggface_tensors(seed=0)


@pytest.fixture(scope="module")
def notop_file(tmp_path_factory, notop_tensors):
    path = tmp_path_factory.mktemp("vggface") / "rcmalli_vggface_tf_notop_resnet50.h5"
    return write_keras2_file(path, notop_tensors)


@pytest.fixture(scope="module")
def model32(notop_file):
    return vggface2_resnet50(weights=notop_file, input_shape=(32, 32, 3))


@pytest.fixture(scope="module")
def images32():
    return np.random.default_rng(1).uniform(-120.0, 120.0, (2, 32, 32, 3)).astype(np.float32)


def assert_weights_equal(model, tensors):
    """Every weighted layer of `model` holds exactly the file's tensors of its layer."""
    by_keras_name = {name.replace("/", "_"): name for name in tensors}
    weighted = {layer.name for layer in model.layers if layer.weights}
    assert weighted == set(by_keras_name)
    for layer in model.layers:
        if not layer.weights:
            continue
        stored = tensors[by_keras_name[layer.name]]
        assert {v.name for v in layer.weights} == set(stored), layer.name
        for variable in layer.weights:
            np.testing.assert_array_equal(
                keras.ops.convert_to_numpy(variable), stored[variable.name],
                err_msg=f"{layer.name}/{variable.name}")


def test_notop_round_trip(model32, notop_tensors):
    assert model32.name == "vggface2_resnet50"
    assert_weights_equal(model32, notop_tensors)


def test_top_round_trip_and_notop_into_top_raises(tmp_path, notop_tensors, notop_file):
    tensors = with_classifier(notop_tensors, seed=2)
    path = write_keras2_file(tmp_path / "rcmalli_vggface_tf_resnet50.h5", tensors)
    model = vggface2_resnet50(weights=path, include_top=True)
    assert model.output_shape == (None, 8631)
    assert [model.get_layer(n).__class__.__name__ for n in ("avg_pool", "flatten")] == [
        "AveragePooling2D", "Flatten"]
    assert_weights_equal(model, tensors)
    with pytest.raises(ValueError, match="classifier.*include_top=False"):
        load_vggface2_weights(model, notop_file)


def test_top_file_into_notop_model(tmp_path, model32, notop_tensors):
    tensors = with_classifier(notop_tensors, seed=2)
    path = write_keras2_file(tmp_path / "top.h5", tensors, full_model=True)
    load_vggface2_weights(model32, path)  # the classifier is skipped
    assert_weights_equal(model32, notop_tensors)


def test_reader_full_model_layout_and_chunked_names(tmp_path, notop_tensors):
    tensors = {name: notop_tensors[name] for name in ("conv1/7x7_s2", "conv1/7x7_s2/bn")}
    path = write_keras2_file(tmp_path / "small.h5", tensors, full_model=True, chunks=3)
    read = read_keras2_weights(path)
    assert sorted(read) == sorted(tensors)
    for name, weights in tensors.items():
        assert sorted(read[name]) == sorted(weights)
        for weight, value in weights.items():
            np.testing.assert_array_equal(read[name][weight], value)


def same_padding(size, kernel, stride):
    """TensorFlow 'same' padding: output ceil(size / stride), extra pixel at the end."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def conv2d(x, kernel, stride, padding):
    """Plain numpy NHWC convolution (cross-correlation) as tf.nn.conv2d defines it."""
    k = kernel.shape[0]
    if padding == "same":
        pads = [same_padding(x.shape[axis], k, stride) for axis in (1, 2)]
        x = np.pad(x, [(0, 0), pads[0], pads[1], (0, 0)])
    windows = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(1, 2))
    windows = windows[:, ::stride, ::stride]  # [n, h, w, c_in, k, k]
    return np.einsum("nhwcij,ijco->nhwo", windows, kernel.astype(np.float64))


def batch_norm(x, bn):
    scale = bn["gamma"] / np.sqrt(bn["moving_variance"].astype(np.float64) + EPSILON)
    return (x - bn["moving_mean"]) * scale + bn["beta"]


def relu(x):
    return np.maximum(x, 0.0)


def layer_outputs(model, names, inputs):
    probe = keras.Model(model.input, [model.get_layer(n).output for n in names])
    return [keras.ops.convert_to_numpy(o) for o in probe(inputs)]


def test_stem_matches_numpy(model32, notop_tensors, images32):
    stem, pool = layer_outputs(model32, ["conv1_7x7_s2_relu", "pool1"], images32)
    t = notop_tensors
    expected = conv2d(images32.astype(np.float64), t["conv1/7x7_s2"]["kernel"], 2, "same")
    expected = relu(batch_norm(expected, t["conv1/7x7_s2/bn"]))
    assert stem.shape == (2, 16, 16, 64)
    np.testing.assert_allclose(stem, expected, rtol=1e-4, atol=1e-4)
    # MaxPooling2D 3x3 stride 2, 'valid' padding (keras-vggface default): 16 -> 7.
    windows = np.lib.stride_tricks.sliding_window_view(stem, (3, 3), axis=(1, 2))
    np.testing.assert_array_equal(pool, windows[:, ::2, ::2].max(axis=(-2, -1)))


def test_strided_block_matches_numpy(model32, notop_tensors, images32):
    """conv3_1: stride 2 on the 1x1 reduce and on the projection, 'same' 3x3."""
    block_in, block_out = layer_outputs(model32, ["conv2_3_out", "conv3_1_out"], images32)
    t = notop_tensors

    def conv_bn(x, name, stride, padding="valid"):
        return batch_norm(conv2d(x, t[name]["kernel"], stride, padding), t[name + "/bn"])

    x = block_in.astype(np.float64)
    y = relu(conv_bn(x, "conv3_1_1x1_reduce", 2))
    y = relu(conv_bn(y, "conv3_1_3x3", 1, "same"))
    y = conv_bn(y, "conv3_1_1x1_increase", 1)
    expected = relu(y + conv_bn(x, "conv3_1_1x1_proj", 2))
    assert block_in.shape == (2, 7, 7, 256) and block_out.shape == (2, 4, 4, 512)
    np.testing.assert_allclose(block_out, expected, rtol=1e-4, atol=1e-4)


def test_parameter_and_layer_counts(model32):
    # conv_bn(k, c_in, c_out) = k*k*c_in*c_out (no bias) + 4*c_out (BN gamma, beta, mean, var)
    # stem: 7*7*3*64 + 4*64                                              =      9,664
    # stage 2 (c_in 64, 64/256): block 1 = 4,352 + 37,120 + 17,408 + proj 17,408
    #   = 76,288; blocks 2-3 = 16,640 + 37,120 + 17,408 = 71,168 each     =    218,624
    # stage 3 (c_in 256, 128/512): block 1 = 33,280 + 147,968 + 67,584 + 133,120
    #   = 381,952; blocks 2-4 = 66,048 + 147,968 + 67,584 = 281,600 each  =  1,226,752
    # stage 4 (c_in 512, 256/1024): block 1 = 132,096 + 590,848 + 266,240 + 528,384
    #   = 1,517,568; blocks 2-6 = 263,168 + 590,848 + 266,240 = 1,120,256 =  7,118,848
    # stage 5 (c_in 1024, 512/2048): block 1 = 526,336 + 2,361,344 + 1,056,768
    #   + 2,105,344 = 6,049,792; blocks 2-3 = 1,050,624 + 2,361,344 + 1,056,768
    #   = 4,468,736 each                                                  = 14,987,264
    # total                                                               = 23,561,152
    # BN channels: 64 + 1,408 + 3,584 + 10,240 + 11,264 = 26,560; moving mean and
    # variance are not trainable: 2 * 26,560 = 53,120.
    assert model32.count_params() == 23_561_152
    non_trainable = sum(int(np.prod(v.shape)) for v in model32.non_trainable_weights)
    assert non_trainable == 53_120
    convs = [l for l in model32.layers if isinstance(l, keras.layers.Conv2D)]
    bns = [l for l in model32.layers if isinstance(l, keras.layers.BatchNormalization)]
    assert len(convs) == 53 and len(bns) == 53
    assert all(not l.use_bias for l in convs)
    assert all(l.epsilon == EPSILON for l in bns)
    # A classifier Dense 2048 -> 8631 adds 2048 * 8631 + 8631 = 17,684,919 with the top.


def test_names_and_block_outputs(model32):
    assert keras_vggface_name("conv1_7x7_s2_bn") == "conv1/7x7_s2/bn"
    assert keras_vggface_name("conv4_1_1x1_proj") == "conv4_1_1x1_proj"
    assert keras_vggface_name("classifier") == "classifier"
    with pytest.raises(ValueError, match="conv9_1_3x3"):
        keras_vggface_name("conv9_1_3x3")
    assert len(VGGFACE2_BLOCK_OUTPUTS) == 16
    assert VGGFACE2_BLOCK_OUTPUTS[0] == "conv2_1_out"
    assert VGGFACE2_BLOCK_OUTPUTS[-1] == "conv5_3_out"
    adds = [l.name for l in model32.layers if isinstance(l, keras.layers.Add)]
    assert [model32.get_layer(n).input.name for n in VGGFACE2_BLOCK_OUTPUTS] == [
        model32.get_layer(n).output.name for n in adds]
    assert model32.get_layer("conv5_3_out").output.shape == (None, 1, 1, 2048)


def test_missing_tensor_raises(tmp_path, model32, notop_tensors):
    tensors = dict(notop_tensors)
    tensors["conv3_2_3x3/bn"] = {
        k: v for k, v in tensors["conv3_2_3x3/bn"].items() if k != "moving_variance"}
    path = write_keras2_file(tmp_path / "missing_weight.h5", tensors)
    with pytest.raises(ValueError, match=r"conv3_2_3x3/bn.*conv3_2_3x3_bn"):
        load_vggface2_weights(model32, path)
    tensors = {k: v for k, v in notop_tensors.items() if k != "conv4_3_1x1_increase"}
    path = write_keras2_file(tmp_path / "missing_layer.h5", tensors)
    with pytest.raises(ValueError, match="no weights for layer 'conv4_3_1x1_increase'"):
        load_vggface2_weights(model32, path)


def test_misshaped_tensor_raises_and_assigns_nothing(tmp_path, model32, notop_tensors):
    tensors = dict(notop_tensors)
    tensors["conv2_1_3x3"] = {"kernel": np.ones((3, 3, 64, 32), np.float32)}
    tensors["conv5_3_1x1_increase"] = {"kernel": np.ones((1, 1, 512, 2048), np.float32)}
    path = write_keras2_file(tmp_path / "misshaped.h5", tensors)
    with pytest.raises(ValueError, match=r"conv2_1_3x3.*\(3, 3, 64, 32\).*\(3, 3, 64, 64\)"):
        load_vggface2_weights(model32, path)
    assert_weights_equal(model32, notop_tensors)  # conv5_3 was not overwritten


def test_extra_layers_raise(tmp_path, model32, notop_file, notop_tensors):
    extended = keras.Model(
        model32.input, keras.layers.Dense(4, name="extra_head")(model32.output))
    with pytest.raises(ValueError, match="extra_head"):
        load_vggface2_weights(extended, notop_file)
    tensors = dict(notop_tensors)
    tensors["conv6_1_1x1_reduce"] = {"kernel": np.ones((1, 1, 2048, 8), np.float32)}
    path = write_keras2_file(tmp_path / "extra_layer.h5", tensors)
    with pytest.raises(ValueError, match="conv6_1_1x1_reduce"):
        load_vggface2_weights(model32, path)
    with pytest.raises(FileNotFoundError, match="nowhere.h5"):
        load_vggface2_weights(model32, tmp_path / "nowhere.h5")


@pytest.mark.parametrize("size", [32, 64])
def test_small_inputs(size, model32):
    model = model32 if size == 32 else vggface2_resnet50(input_shape=(size, size, 3))
    out = model(np.zeros((2, size, size, 3), np.float32))
    assert tuple(out.shape) == (2, 2048)


def test_pooling_none_any_size(notop_file, model32, images32):
    model = vggface2_resnet50(weights=notop_file, input_shape=(None, None, 3), pooling=None)
    features = keras.ops.convert_to_numpy(model(images32))
    assert features.shape == (2, 1, 1, 2048)
    np.testing.assert_allclose(
        features.mean(axis=(1, 2)), keras.ops.convert_to_numpy(model32(images32)),
        rtol=1e-5, atol=1e-5)
    assert tuple(model(np.zeros((1, 64, 64, 3), np.float32)).shape) == (1, 2, 2, 2048)


@pytest.mark.parametrize("kwargs, message", [
    ({"include_top": True, "input_shape": (112, 112, 3)}, "include_top=True needs"),
    ({"input_shape": (16, 16, 3)}, "at least 32"),
    ({"input_shape": (64, 64, 1)}, "must be"),
    ({"pooling": "sum"}, "pooling"),
])
def test_bad_arguments_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        vggface2_resnet50(**kwargs)


def test_preprocess_hand_example():
    rgb = np.array([[[[255.0, 128.0, 0.0]]]], np.float32)  # [1, 1, 1, 3]
    # BGR = (0, 128, 255) minus (91.4953, 103.8827, 131.0912)
    expected = np.array([[[[-91.4953, 24.1173, 123.9088]]]], np.float32)
    np.testing.assert_allclose(vggface2_preprocess(rgb), expected, atol=1e-4)
    np.testing.assert_allclose(
        vggface2_preprocess(rgb.astype(np.uint8)), expected, atol=1e-4)
    tensor_out = vggface2_preprocess(keras.ops.convert_to_tensor(rgb))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(tensor_out), expected, atol=1e-4)


def test_preprocess_any_leading_dims_and_in_dataset():
    import tensorflow as tf

    clips = np.random.default_rng(3).uniform(0, 255, (2, 4, 8, 8, 3)).astype(np.float32)
    expected = clips[..., ::-1] - MEAN_BGR
    np.testing.assert_allclose(vggface2_preprocess(clips), expected, atol=1e-4)
    mapped = next(iter(tf.data.Dataset.from_tensors(clips).map(vggface2_preprocess)))
    np.testing.assert_allclose(mapped.numpy(), expected, atol=1e-4)
    with pytest.raises(ValueError, match="3 channels"):
        vggface2_preprocess(np.zeros((2, 8, 8, 1)))
