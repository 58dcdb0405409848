"""The clip model cut where its frozen backbone layers end (`tfmer.models.split`): the
prefix's features through the suffix give the model's output and, on one training step,
its loss and gradients, with the model's own trainable weights; the frozen layers'
share of the compute, counted by hand."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfmer.models.clip import BACKBONE_LAYER, build_clip_model
from tfmer.models.split import (frozen_share, split_backbone, split_clip_model,
                                step_ceiling)


@pytest.fixture(scope="module")
def model():
    """exp3's network (ResNet-50 + Bi-LSTM) at 32 px, trained from conv4 on."""
    keras.utils.set_random_seed(0)
    return build_clip_model(num_classes=4, image_size=32, head="bilstm", head_units=8,
                            unfreeze_from="conv4_1_1x1_reduce")


def _loss_and_gradients(forward, model, frames, labels):
    with tf.GradientTape() as tape:
        probabilities = forward(frames)
        loss = keras.losses.sparse_categorical_crossentropy(labels, probabilities)
    return loss.numpy(), tape.gradient(loss, model.trainable_variables)


def test_prefix_then_suffix_is_the_model_and_trains_its_weights(model):
    prefix, suffix = split_clip_model(model)
    frames = np.random.default_rng(0).uniform(0, 255, (2, 3, 32, 32, 3)).astype("float32")
    features = prefix(frames)
    assert features.shape == (2, 3, 4, 4, 512)  # conv3's output at 32 px: stride 8
    assert not prefix.trainable_variables
    assert {id(v) for v in suffix.trainable_variables} == {
        id(v) for v in model.trainable_variables}
    np.testing.assert_allclose(suffix(features).numpy(), model(frames).numpy(), rtol=1e-6,
                               atol=1e-7)
    # One training step (batch statistics in the trainable part, dropout): the same loss
    # and gradients, from the same random states.
    labels = np.array([1, 3])
    state = [v.numpy() for v in model.non_trainable_variables]
    loss, gradients = _loss_and_gradients(lambda x: model(x, training=True), model, frames,
                                          labels)
    for variable, value in zip(model.non_trainable_variables, state):
        variable.assign(value)
    split_loss, split_gradients = _loss_and_gradients(
        lambda x: suffix(prefix(x, training=True), training=True), model, frames, labels)
    np.testing.assert_allclose(split_loss, loss, rtol=1e-5)
    for split, whole in zip(split_gradients, gradients):
        np.testing.assert_allclose(np.asarray(split), np.asarray(whole), rtol=1e-4, atol=1e-6)


def test_a_cut_inside_a_block_is_refused(model):
    backbone = model.get_layer(BACKBONE_LAYER).layer
    names = [layer.name for layer in backbone.layers]
    trainable = [layer.trainable for layer in backbone.layers]
    try:
        for layer in backbone.layers[:names.index("conv4_1_1x1_reduce_bn")]:
            layer.trainable = False
        with pytest.raises(ValueError, match="conv4_1_1x1_proj also reads"):
            split_backbone(backbone)
    finally:
        for layer, value in zip(backbone.layers, trainable):
            layer.trainable = value


def test_the_frozen_share_counts_multiply_adds_as_by_hand():
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", name="a")(inputs)
    x = keras.layers.BatchNormalization(name="norm")(x)
    x = keras.layers.Conv2D(2, 1, strides=2, name="b")(x)
    outputs = keras.layers.Dense(5, name="c")(keras.layers.Flatten()(x))
    net = keras.Model(inputs, outputs)
    a, b, c = 8 * 8 * 4 * (3 * 3 * 3), 4 * 4 * 2 * (1 * 1 * 4), (4 * 4 * 2) * 5
    net.get_layer("a").trainable = net.get_layer("norm").trainable = False
    assert frozen_share(net) == pytest.approx(a / (a + b + c))
    net.get_layer("b").trainable = False
    assert frozen_share(net) == pytest.approx((a + b) / (a + b + c))


@pytest.mark.parametrize("share, ceiling", [(0.0, 1.0), (0.5, 4 / 3), (0.75, 2.0)])
def test_the_step_ceiling_is_f_plus_3t_over_3t(share, ceiling):
    # F = share, T = 1 - share: (F + 3T) / 3T by hand, 0.5 + 1.5 over 1.5, 0.75 + 0.75 over 0.75
    assert step_ceiling(share) == pytest.approx(ceiling)
