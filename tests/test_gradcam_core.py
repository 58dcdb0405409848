"""Tests of Grad-CAM (`gradcam.core`): against the class activation map, hand examples, a
clip model differentiated by hand, the batched form, errors, overlays, and the VGGFace2
ResNet-50 in a clip model."""

import cv2
import keras
import numpy as np
import pytest
import tensorflow as tf

from gradcam import conv_layer_names, grad_cam, grad_cams, overlay
from tfmer.models import VGGFACE2_BLOCK_OUTPUTS
from tfmer.models.clip import FoldedTimeDistributed, build_clip_model

SIZE = 16
FRAMES = 3
CLASSES = 4
TOLERANCE = 1e-5


def numpy_cam(activations, weights):
    """ReLU(sum_k weights[k] A_k) / max of `activations` [h, w, K], in numpy."""
    cam = np.maximum(np.tensordot(activations, weights, axes=([-1], [0])), 0.0)
    return cam / cam.max() if cam.max() > 0 else cam


def cam_model(head):
    """conv (6 maps) -> global average pooling -> Dense(CLASSES) with one of three heads."""
    keras.utils.set_random_seed(1)
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Conv2D(6, 3, activation="relu", name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    if head == "dense_softmax":
        outputs = keras.layers.Dense(CLASSES, activation="softmax", name="dense")(x)
    elif head == "softmax_layer":
        x = keras.layers.Dense(CLASSES, name="dense")(x)
        outputs = keras.layers.Activation("softmax")(x)
    else:
        outputs = keras.layers.Dense(CLASSES, name="dense")(x)
    return keras.Model(inputs, outputs)


def frame_convs(name="frame_model"):
    """Three named convs and global average pooling: [b, 16, 16, 3] -> [b, 5]."""
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Conv2D(4, 3, strides=2, padding="same", activation="relu",
                            name="conv_a")(inputs)
    x = keras.layers.Conv2D(6, 3, activation="relu", name="conv_b")(x)
    x = keras.layers.Conv2D(5, 3, padding="same", activation="relu", name="conv_c")(x)
    outputs = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(inputs, outputs, name=name)


def tiny_clip_model():
    """`build_clip_model`'s structure: FoldedTimeDistributed backbone, LSTM, softmax."""
    keras.utils.set_random_seed(2)
    inputs = keras.Input((FRAMES, SIZE, SIZE, 3), name="frames")
    x = FoldedTimeDistributed(frame_convs(), name="backbone")(inputs)
    x = keras.layers.LSTM(3, name="lstm_1")(x)
    x = keras.layers.Dropout(0.5, name="dropout")(x)
    outputs = keras.layers.Dense(CLASSES, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="clip_model")


def flat_frame_model():
    """The three convs in the model itself, softmax head."""
    keras.utils.set_random_seed(3)
    frame = frame_convs()
    outputs = keras.layers.Dense(CLASSES, activation="softmax")(frame.output)
    return keras.Model(frame.input, outputs)


def nested_frame_model():
    """The three convs in a nested backbone model, softmax head."""
    keras.utils.set_random_seed(4)
    inputs = keras.Input((SIZE, SIZE, 3))
    outputs = keras.layers.Dense(CLASSES, activation="softmax")(frame_convs("backbone")(inputs))
    return keras.Model(inputs, outputs)


def random_inputs(shape, seed=0):
    return np.random.default_rng(seed).uniform(0.0, 1.0, shape).astype(np.float32)


@pytest.mark.parametrize("head", ["dense_softmax", "softmax_layer", "linear"])
def test_grad_cam_is_the_class_activation_map(head):
    model = cam_model(head)
    frame = random_inputs((SIZE, SIZE, 3))
    activations = keras.Model(model.input, model.get_layer("conv").output)(frame[None])[0]
    activations = np.asarray(activations)
    dense = model.get_layer("dense")
    kernel, bias = (np.asarray(w) for w in dense.weights)
    scores = activations.mean(axis=(0, 1)) @ kernel + bias
    predicted = grad_cam(model, frame, "conv")
    np.testing.assert_allclose(predicted, numpy_cam(activations, kernel[:, scores.argmax()]),
                               atol=TOLERANCE)
    for c in range(CLASSES):
        np.testing.assert_allclose(grad_cam(model, frame, "conv", class_index=c),
                                   numpy_cam(activations, kernel[:, c]), atol=TOLERANCE)
    assert predicted.shape == (SIZE - 2, SIZE - 2) and predicted.dtype == np.float32


def test_one_hot_pixel_heats_only_its_place():
    inputs = keras.Input((8, 8, 1))
    pooled = keras.layers.AveragePooling2D(2, name="pool")(inputs)
    conv = keras.layers.Conv2D(1, 1, kernel_initializer="ones", use_bias=False, name="conv")
    x = keras.layers.GlobalAveragePooling2D()(conv(pooled))
    dense = keras.layers.Dense(2, activation="softmax", use_bias=False)
    model = keras.Model(inputs, dense(x))
    dense.set_weights([np.array([[1.0, -1.0]], np.float32)])
    frame = np.zeros((8, 8, 1), np.float32)
    frame[2, 5] = 3.0
    expected = np.zeros((4, 4), np.float32)
    expected[1, 2] = 1.0
    np.testing.assert_array_equal(grad_cam(model, frame, "conv", class_index=0), expected)
    # No weight leads to the pooling layer; its heat is found all the same.
    np.testing.assert_array_equal(grad_cam(model, frame, "pool", class_index=0), expected)
    # Class 1 decreases with the pixel: nothing left after the ReLU, and no NaN.
    np.testing.assert_array_equal(grad_cam(model, frame, "conv", class_index=1),
                                  np.zeros((4, 4), np.float32))


def hand_clip_cam(model, clip, layer_name, class_index):
    """Grad-CAM of a `tiny_clip_model` for one clip, differentiating the layers after
    `layer_name` called one by one with respect to the per-frame activations."""
    frame_model = model.get_layer("backbone").layer
    names = [layer.name for layer in frame_model.layers]
    activations = keras.Model(frame_model.input, frame_model.get_layer(layer_name).output)(clip)
    with tf.GradientTape() as tape:
        tape.watch(activations)
        x = activations
        for name in names[names.index(layer_name) + 1:]:
            x = frame_model.get_layer(name)(x)
        x = model.get_layer("lstm_1")(x[None])
        dense = model.get_layer("probabilities")
        score = (tf.matmul(x, dense.kernel) + dense.bias)[0, class_index]
    gradients = tape.gradient(score, activations).numpy()
    activations = activations.numpy()
    return np.stack([numpy_cam(a, g.mean(axis=(0, 1))) for a, g in zip(activations, gradients)])


@pytest.mark.parametrize("layer_name", ["conv_a", "conv_b", "conv_c"])
def test_clip_grad_cam_matches_a_hand_split_model(layer_name):
    model = tiny_clip_model()
    clip = random_inputs((FRAMES, SIZE, SIZE, 3), seed=5)
    predicted = int(np.argmax(model(clip[None], training=False)[0]))
    for class_index in (None, (predicted + 1) % CLASSES):
        heatmaps = grad_cam(model, clip, layer_name, class_index=class_index)
        expected = hand_clip_cam(model, clip, layer_name,
                                 predicted if class_index is None else class_index)
        h, w = model.get_layer("backbone").layer.get_layer(layer_name).output.shape[1:3]
        assert heatmaps.shape == (FRAMES, h, w) and heatmaps.dtype == np.float32
        np.testing.assert_allclose(heatmaps, expected, atol=TOLERANCE)


@pytest.mark.parametrize("build, input_shape", [
    (flat_frame_model, (SIZE, SIZE, 3)),
    (nested_frame_model, (SIZE, SIZE, 3)),
    (tiny_clip_model, (FRAMES, SIZE, SIZE, 3)),
], ids=["frame", "nested_frame", "clip"])
def test_grad_cams_in_batches_equals_grad_cam_one_by_one(build, input_shape):
    model = build()
    names = ["conv_a", "conv_b", "conv_c"]
    inputs = random_inputs((5, *input_shape), seed=6)
    for class_index in (None, 2):
        maps = grad_cams(model, inputs, names, class_index=class_index, batch_size=2)
        assert list(maps) == names
        for name in names:
            single = np.stack([grad_cam(model, x, name, class_index=class_index)
                               for x in inputs])
            assert maps[name].shape == single.shape and maps[name].dtype == np.float32
            np.testing.assert_allclose(maps[name], single, atol=TOLERANCE)
            assert 0.0 <= maps[name].min() and maps[name].max() <= 1.0


@pytest.mark.parametrize("build, input_shape", [
    (nested_frame_model, (SIZE, SIZE, 3)),
    (tiny_clip_model, (FRAMES, SIZE, SIZE, 3)),
], ids=["nested_frame", "clip"])
def test_grad_cams_with_a_class_per_input_equals_one_call_per_input(build, input_shape):
    model = build()
    names = ["conv_a", "conv_c"]
    inputs = random_inputs((5, *input_shape), seed=8)
    classes = np.array([3, 0, 3, 1, 2])  # batches of 2 split the classes unevenly
    maps = grad_cams(model, inputs, names, class_index=classes, batch_size=2)
    for name in names:
        single = np.stack([grad_cams(model, x[None], [name], class_index=int(c))[name][0]
                           for x, c in zip(inputs, classes)])
        np.testing.assert_allclose(maps[name], single, atol=TOLERANCE)
    as_list = grad_cams(model, inputs, names, class_index=classes.tolist(), batch_size=5)
    np.testing.assert_allclose(as_list["conv_a"], maps["conv_a"], atol=TOLERANCE)
    with pytest.raises(ValueError, match=r"an int or 5 ints .* shape \[4\]"):
        grad_cams(model, inputs, names, class_index=classes[:4])
    with pytest.raises(ValueError, match=r"an int or 5 ints .*float64"):
        grad_cams(model, inputs, names, class_index=classes * 1.0)
    with pytest.raises(ValueError, match=r"class_index 4 out of range.*4 classes"):
        grad_cams(model, inputs, names, class_index=[0, 1, 4, 0, 1])


def test_grad_cam_of_a_frozen_model():
    model = nested_frame_model()
    frame = random_inputs((SIZE, SIZE, 3), seed=7)
    trained = grad_cam(model, frame, "conv_b")
    model.trainable = False
    frozen = grad_cam(model, frame, "conv_b")
    assert trained.max() == 1.0
    np.testing.assert_allclose(frozen, trained, atol=TOLERANCE)


def test_unknown_or_unusable_layers_raise():
    model = tiny_clip_model()
    clip = random_inputs((FRAMES, SIZE, SIZE, 3))
    with pytest.raises(ValueError, match=r"unknown layer 'conv_z'.*conv_a, conv_b, conv_c"):
        grad_cam(model, clip, "conv_z")
    with pytest.raises(ValueError, match=r"'pool'.*not a 4-D.*conv_a, conv_b, conv_c"):
        grad_cam(model, clip, "pool")
    with pytest.raises(ValueError, match=r"class_index 4 out of range.*4 classes"):
        grad_cam(model, clip, "conv_a", class_index=4)
    with pytest.raises(ValueError, match=r"one input without batch axis"):
        grad_cam(model, clip[None], "conv_a")


def test_model_without_conv_layers_raises():
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Flatten()(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x), name="mlp")
    assert conv_layer_names(model) == []
    with pytest.raises(ValueError, match=r"model 'mlp' has no convolutional layer"):
        grad_cam(model, random_inputs((SIZE, SIZE, 3)), "flatten")


def test_layers_of_different_parts_raise():
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Conv2D(3, 1, name="stem")(inputs)
    x = frame_convs("backbone")(x)
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))
    assert conv_layer_names(model) == ["stem", "conv_a", "conv_b", "conv_c"]
    frames = random_inputs((2, SIZE, SIZE, 3))
    assert grad_cams(model, frames, ["stem"])["stem"].shape == (2, SIZE, SIZE)
    assert grad_cams(model, frames, ["conv_a", "conv_c"])["conv_c"].shape == (2, 6, 6)
    with pytest.raises(ValueError, match=r"different parts.*separate calls"):
        grad_cams(model, frames, ["stem", "conv_a"])


def test_conv_layer_names_takes_convs_and_block_outputs_in_order():
    inputs = keras.Input((SIZE, SIZE, 4))
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv")(inputs)
    x = keras.layers.ReLU(name="relu")(x)
    x = keras.layers.Add(name="add")([x, inputs])
    x = keras.layers.ReLU(name="block_out")(x)
    x = keras.layers.DepthwiseConv2D(3, name="depthwise")(x)
    x = keras.layers.Activation("relu", name="activation")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(2)(x))
    assert conv_layer_names(model) == ["conv", "block_out", "depthwise"]


def test_overlay_blends_jet_colours():
    frame = np.random.default_rng(8).integers(0, 256, (12, 16, 3), dtype=np.uint8)
    heatmap = np.zeros((12, 16), np.float32)
    heatmap[:, 8:] = 1.0
    blended = overlay(frame, heatmap)
    assert blended.shape == (12, 16, 3) and blended.dtype == np.uint8
    np.testing.assert_array_equal(overlay(frame, heatmap, alpha=0.0), frame)
    # OpenCV's jet: 0 is dark blue, 1 dark red (RGB).
    colours = overlay(frame, heatmap, alpha=1.0)
    np.testing.assert_array_equal(colours[:, :8], np.broadcast_to([0, 0, 128], (12, 8, 3)))
    np.testing.assert_array_equal(colours[:, 8:], np.broadcast_to([128, 0, 0], (12, 8, 3)))
    expected = np.round(0.6 * frame + 0.4 * colours.astype(np.float32))
    np.testing.assert_allclose(blended, expected, atol=1)


def test_overlay_resizes_the_heatmap_and_takes_grey_frames():
    grey = np.full((20, 24), 77, np.uint8)
    heatmap = np.array([[0.0, 1.0], [1.0, 0.0]], np.float32)
    np.testing.assert_array_equal(overlay(grey, heatmap, alpha=0.0),
                                  np.full((20, 24, 3), 77, np.uint8))
    levels = cv2.resize(heatmap, (24, 20), interpolation=cv2.INTER_LINEAR)
    jet = cv2.applyColorMap(np.round(levels * 255).astype(np.uint8), cv2.COLORMAP_JET)
    np.testing.assert_array_equal(overlay(grey, heatmap, alpha=1.0), jet[..., ::-1])
    with pytest.raises(ValueError, match=r"\[h, w\] heatmap"):
        overlay(grey, heatmap[None])
    with pytest.raises(ValueError, match=r"alpha must be in 0..1"):
        overlay(grey, heatmap, alpha=1.5)


@pytest.fixture(scope="module")
def resnet_clip_model():
    keras.utils.set_random_seed(9)
    return build_clip_model(num_classes=3, image_size=32, num_frames=2, head_units=4)


def test_vggface2_resnet50_clip_model(resnet_clip_model):
    frame_model = resnet_clip_model.get_layer("backbone").layer
    clip = np.random.default_rng(10).uniform(0, 255, (2, 32, 32, 3)).astype(np.float32)
    for name in ("conv5_3_out", "conv3_1_out"):
        h, w = frame_model.get_layer(name).output.shape[1:3]
        heatmaps = grad_cam(resnet_clip_model, clip, name)
        assert heatmaps.shape == (2, h, w) and heatmaps.dtype == np.float32
        assert heatmaps.min() >= 0.0 and heatmaps.max() <= 1.0
    names = conv_layer_names(resnet_clip_model)
    assert names == conv_layer_names(frame_model)
    assert names[0] == "conv1_7x7_s2" and names[-1] == "conv5_3_out"
    assert set(VGGFACE2_BLOCK_OUTPUTS) <= set(names) and len(names) == 53 + 16
    order = [layer.name for layer in frame_model.layers]
    assert [order.index(name) for name in names] == sorted(order.index(n) for n in names)
