"""Clip classifiers: a frame backbone under `TimeDistributed`, a temporal head, softmax.

Heads: `bilstm` / `lstm` read the window's frame features in order; `fc` classifies each
frame alone (fully connected layers and a class layer per frame) and averages the frame
logits over time before the softmax, so a one-frame window gives that frame's softmax.

`clip_probabilities` scores whole clips by averaging a window model's softmax over sliding
windows; evaluation and the exported SavedModel both use it, so they agree.
"""

from __future__ import annotations

import contextlib

import keras
import tensorflow as tf

from tfmer.config import HEADS
from tfmer.models.vggface import VGGFace2Preprocess, vggface2_resnet50

# name -> (builder(weights, input_shape) -> keras.Model [b, H, W, 3] -> [b, D],
#          preprocessing layer class taking RGB 0..255)
BACKBONES = {
    "vggface2_resnet50": (
        lambda weights, input_shape: vggface2_resnet50(
            weights=weights, input_shape=input_shape, include_top=False, pooling="avg"),
        VGGFace2Preprocess),
}
BACKBONE_LAYER = "backbone"
"""The name of the layer that runs the frame backbone over time in every clip model."""


@keras.saving.register_keras_serializable(package="tfmer")
class FoldedTimeDistributed(keras.layers.TimeDistributed):
    """`keras.layers.TimeDistributed` that folds time into the batch.

    Keras 3's `TimeDistributed` calls the wrapped layer once per time step (a Python loop
    for a fixed T, `vectorized_map` otherwise): for a ResNet-50 that means T copies of the
    network in the graph and minutes of tracing. This layer reshapes
    `[batch, T, ...]` to `[batch * T, ...]`, calls the wrapped layer once and reshapes back,
    as Keras 2 did; batch normalisation then sees all frames of the batch together.
    """

    def call(self, inputs, training=None, mask=None):
        shape = keras.ops.shape(inputs)
        frames = keras.ops.reshape(inputs, (-1, *inputs.shape[2:]))
        outputs = self.layer(frames, training=training)
        return keras.ops.reshape(outputs, (shape[0], shape[1], *outputs.shape[1:]))


def _ancestors(layer) -> set[str]:
    """The names of the layers whose outputs `layer`'s output is computed from."""
    found, todo = set(), [layer]
    while todo:
        for node in todo.pop()._inbound_nodes:
            for parent in node.parent_nodes:
                if parent.operation.name not in found:
                    found.add(parent.operation.name)
                    todo.append(parent.operation)
    return found


def trainable_from(backbone: keras.Model, layer_name: str) -> str:
    """The first backbone layer that trains when training from `layer_name` on (Bai &
    Goecke's l_s "and the layers after it"): the layer itself when it has weights; for a
    layer without weights that computes a block's output (a residual block's ReLU after its
    sum, `conv{S}_{B}_out`), the first layer of that block, so that the convolutions
    producing l_s retrain with it: the layer after the block's input, the nearest earlier
    layer that every path into l_s passes through and where its branches part.

    Raises:
        ValueError: unknown layer name (the message lists the valid ones).
    """
    names = [layer.name for layer in backbone.layers]
    if layer_name not in names:
        raise ValueError(f"unknown layer {layer_name!r} in {backbone.name}; valid layers: "
                         + ", ".join(names))
    layer = backbone.get_layer(layer_name)
    if layer.weights:
        return layer_name
    ancestors = _ancestors(layer)
    position = names.index(layer_name)
    for index in range(position - 1, -1, -1):
        candidate = names[index]
        if candidate not in ancestors:
            continue
        later = [backbone.get_layer(n) for n in names[index + 1:position] if n in ancestors]
        consumers = [other for other in later + [layer] if candidate in _parents(other)]
        # The block's input: every later layer of the block depends on it, and the block's
        # branches start there (two consumers).
        if len(consumers) > 1 and all(candidate in _ancestors(other) for other in later):
            return names[index + 1]
    return names[0]


def _parents(layer) -> set[str]:
    """The names of the layers whose outputs `layer` takes directly."""
    return {parent.operation.name for node in layer._inbound_nodes
            for parent in node.parent_nodes}


def freeze_before(backbone: keras.Model, layer_name: str) -> list[str]:
    """Freezes every backbone layer before the one training starts from (`trainable_from`:
    `layer_name`, or the first layer of the block whose output it is); that layer and
    every later one stay trainable.

    Returns:
        The names of the frozen layers, in order.

    Raises:
        ValueError: unknown layer name (the message lists the valid ones).
    """
    names = [layer.name for layer in backbone.layers]
    frozen = names[:names.index(trainable_from(backbone, layer_name))]
    for layer in backbone.layers[:len(frozen)]:
        layer.trainable = False
    return frozen


def build_clip_model(*, num_classes: int, image_size: int, num_frames: int | None = None,
                     backbone: str = "vggface2_resnet50", weights: str | None = None,
                     head: str = "bilstm", head_units: int = 128, head_layers: int = 1,
                     fc_units=(1024, 256), dropout: float = 0.5,
                     unfreeze_from: str | None = None, frame_head: bool = False,
                     name: str = "clip_model") -> keras.Model:
    """Backbone per frame, a head over time, softmax over classes.

    Input `frames` float32 `[batch, T, image_size, image_size, 3]`, RGB in 0..255 (T may be
    None: any length); output `probabilities` `[batch, num_classes]`.

    The `fc` head: per frame, Dense `fc_units[i]` + ReLU + dropout for each width (`fc_1`,
    `fc_2`, ...), then the class layer `logits` (no activation) -> `[batch, T, classes]`;
    `frame_mean` averages the logits over time and the `Softmax` layer `probabilities`
    ends the model (Grad-CAM takes its input as the class score). For T = 1 the output is
    the frame's softmax; `clip_probabilities` with `window=1` averages those over frames.

    With `frame_head`, a recurrent head reads each frame's class probabilities from the
    `fc` head's layers (`fc_1`, ..., `logits`, then the Softmax `frame_probabilities`)
    instead of the backbone's features: the Exp-I network of Bai & Goecke 2020 "repackaged"
    as the encoder of Exp-II/III (Section 4.4), its layers named as in the `fc` model so its
    weights carry over (`tfmer.experiments.bai_goecke.RepackagedTrainer`).

    Args:
        num_classes: classes of the softmax.
        image_size: frame size S.
        num_frames: fixed T, or None for any length.
        backbone: a key of `BACKBONES`.
        weights: pretrained backbone weight file (see the backbone), or None.
        head: `bilstm` (one bidirectional LSTM per layer) or `lstm` (stacked LSTMs).
        head_units: LSTM units (per direction for `bilstm`).
        head_layers: stacked recurrent layers.
        fc_units: widths of the `fc` head's ReLU layers.
        dropout: dropout before the softmax layer (and after each `fc` layer).
        unfreeze_from: backbone layer from which on weights train; earlier ones are frozen.
            None trains the whole backbone.
        frame_head: feed a recurrent head the `fc` head's per-frame class probabilities.
    """
    if backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}; known: {', '.join(BACKBONES)}")
    if head not in HEADS:
        raise ValueError(f"unknown head {head!r}; known: {', '.join(HEADS)}")
    build_backbone, preprocess = BACKBONES[backbone]
    frame_model = build_backbone(weights, (image_size, image_size, 3))
    if unfreeze_from:
        freeze_before(frame_model, unfreeze_from)
    inputs = keras.Input([num_frames, image_size, image_size, 3], name="frames")
    x = preprocess(name="preprocess")(inputs)
    x = FoldedTimeDistributed(frame_model, name=BACKBONE_LAYER)(x)
    if head == "fc" or frame_head:
        for i, units in enumerate(fc_units):
            x = keras.layers.Dense(int(units), activation="relu", name=f"fc_{i + 1}")(x)
            x = keras.layers.Dropout(dropout, name=f"dropout_{i + 1}")(x)
        x = keras.layers.Dense(num_classes, name="logits")(x)  # [batch, T, classes]
    if head == "fc":
        x = keras.layers.GlobalAveragePooling1D(name="frame_mean")(x)
        outputs = keras.layers.Softmax(name="probabilities", dtype="float32")(x)
        return keras.Model(inputs, outputs, name=name)
    if frame_head:
        x = keras.layers.Softmax(name="frame_probabilities", dtype="float32")(x)
    for i in range(head_layers):
        last = i == head_layers - 1
        lstm = keras.layers.LSTM(head_units, return_sequences=not last, name=f"lstm_{i + 1}")
        x = (keras.layers.Bidirectional(lstm, name=f"bilstm_{i + 1}") if head == "bilstm"
             else lstm)(x)
    x = keras.layers.Dropout(dropout, name="dropout")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="probabilities",
                                 dtype="float32")(x)
    return keras.Model(inputs, outputs, name=name)


def window_starts(num_frames, window: int, stride: int):
    """Start indices of sliding windows: every `stride` frames, plus the last full window,
    so every frame is covered. Returns int32 `[W]` (a single 0 for clips <= `window`)."""
    last = tf.maximum(tf.cast(num_frames, tf.int32) - window, 0)
    starts = tf.range(0, last + 1, stride, dtype=tf.int32)
    return tf.cond(starts[-1] < last, lambda: tf.concat([starts, [last]], 0), lambda: starts)


def clip_probabilities(model: keras.Model, frames, window: int | None, stride: int = 1,
                       return_windows: bool = False):
    """Clip-level class probabilities of a window model.

    Args:
        model: maps `[b, window, H, W, C]` to probabilities `[b, K]`.
        frames: float32 `[B, T, H, W, C]`, whole clips.
        window: window length N, or None to feed the whole clip at once.
        stride: step between window starts.
        return_windows: also return the probabilities of each window.

    Returns:
        float32 `[B, K]`: the mean of the window probabilities of each clip (clips shorter
        than `window` repeat their last frame); with `return_windows`, also those window
        probabilities `[B, W, K]` (W windows per clip; for `window=1, stride=1` the
        probabilities of each frame).
    """
    if not window:
        probabilities = model(frames, training=False)
        return (probabilities, probabilities[:, None]) if return_windows else probabilities
    static = frames.shape[0] is not None and frames.shape[1] is not None
    num_frames = frames.shape[1] if static else tf.shape(frames)[1]
    with tf.init_scope() if static else contextlib.nullcontext():  # constants when static
        starts = window_starts(num_frames, window, stride)
        offsets = tf.range(window, dtype=tf.int32)
        indices = tf.minimum(starts[:, None] + offsets[None, :], num_frames - 1)  # [W, N]
    windows = tf.gather(frames, indices, axis=1)  # [B, W, N, H, W, C]
    # Static shapes where the input has them (the TFLite endpoint: `tfmer.export`).
    shape = windows.shape if static else tf.shape(windows)
    flat = tf.reshape(windows, [-1, window, *shape[3:]] if static
                      else tf.concat([[-1, window], shape[3:]], 0))
    probabilities = model(flat, training=False)
    probabilities = tf.reshape(probabilities, [shape[0], shape[1], -1])
    mean = tf.reduce_mean(probabilities, axis=1)
    return (mean, probabilities) if return_windows else mean
