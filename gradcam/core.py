"""Grad-CAM (Selvaraju et al. 2017) of frame and clip models, and heatmap overlays.

For a class c with pre-softmax score y^c and a layer with activations A `[h, w, K]`, the
channel weights are the spatial means of the gradients, w_k = mean_ij dy^c / dA_k(i, j),
and the heatmap is ReLU(sum_k w_k A_k) divided by its maximum (an all-zero map stays zero).
For conv -> global average pooling -> Dense it equals the class activation map
ReLU(sum_k W[k, c] A_k) / max (Zhou et al. 2016).

Models. `model` is a single-input, single-output functional Keras model: a frame model
`[batch, H, W, C] -> [batch, classes]`, or a clip model `[batch, T, H, W, C] -> [batch,
classes]` as built by `tfmer.models.clip.build_clip_model`, whose `backbone` layer runs a
frame model under `TimeDistributed`. A target layer may belong to `model` itself or to a
model nested in it, directly or under `TimeDistributed` (also nested more deeply); the
model's layers before and after the nested model must form a chain through it. For a clip
model the gradient for frame t is that of the clip's class score with respect to frame t's
activations, so every frame gets its own heatmap. Feature maps are channels-last.

The class score is pre-softmax: when the model's last layer is a `Dense` with softmax
activation, its linear part `x @ kernel + bias`; when it is a separate softmax layer
(`Softmax`, `Activation("softmax")`), that layer's input; otherwise the model output.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import keras
import numpy as np
import tensorflow as tf

_CONV_LAYERS = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D,
                keras.layers.SeparableConv2D, keras.layers.Conv2DTranspose)
_ACTIVATION_LAYERS = (keras.layers.ReLU, keras.layers.Activation)


def grad_cam(model: keras.Model, inputs, layer_name: str,
             class_index: int | None = None) -> np.ndarray:
    """Grad-CAM heatmap of one frame or one clip.

    Args:
        model: a frame or clip classifier (see the module docstring).
        inputs: one input without batch axis: a frame `[H, W, C]` for a frame model, a
            clip `[T, H, W, C]` for a clip model, as the model takes it (e.g. RGB 0..255
            for `build_clip_model`).
        layer_name: a layer with a 4-D `[batch, h, w, channels]` output, in `model` or a
            model nested in it (`conv_layer_names` lists the convolutional ones).
        class_index: the class to explain; None explains the predicted class.

    Returns:
        float32 `[h, w]` in 0..1 at the layer's resolution for a frame model, `[T, h, w]`
        (one heatmap per frame) for a clip model.

    Raises:
        ValueError: on an unknown layer or a layer without a 4-D output (the message lists
            the convolutional layers), a model without convolutional layers, inputs of the
            wrong rank, or a class index out of range.
    """
    inputs = np.asarray(inputs, np.float32)
    _check_rank(model, inputs, batched=False)
    return grad_cams(model, inputs[None], [layer_name], class_index, batch_size=1)[layer_name][0]


def grad_cams(model: keras.Model, inputs, layer_names: Sequence[str],
              class_index: int | Sequence[int] | None = None,
              batch_size: int = 8) -> dict[str, np.ndarray]:
    """Grad-CAM heatmaps of several layers for a batch of frames or clips.

    Each batch of `batch_size` inputs takes one forward pass and one gradient call for all
    layers together.

    Args:
        model: a frame or clip classifier (see the module docstring).
        inputs: `[N, H, W, C]` frames for a frame model, `[N, T, H, W, C]` clips for a
            clip model.
        layer_names: layers with 4-D `[batch, h, w, channels]` outputs, all in `model` or
            all in the same model nested in it; repeated names are taken once.
        class_index: the class to explain: an int for every input, a sequence of N ints
            (one per input, e.g. each frame's labelled class), or None for each input's
            predicted class.
        batch_size: inputs per forward pass.

    Returns:
        `{layer name: float32 [N, h, w]}` for a frame model, `[N, T, h, w]` for a clip
        model, at each layer's resolution; every heatmap (one per frame) is divided by its
        own maximum, so values are in 0..1.

    Raises:
        ValueError: as `grad_cam`; also for no inputs, no layer names, layers in different
            nested models, a `batch_size` below 1, or a `class_index` sequence that does
            not hold one integer per input.
    """
    layer_names = list(dict.fromkeys(layer_names))
    if not layer_names:
        raise ValueError("grad_cams needs at least one layer name")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    inputs = np.asarray(inputs, np.float32)
    _check_rank(model, inputs, batched=True)
    if not len(inputs):
        raise ValueError(f"grad_cams got no inputs (shape {inputs.shape})")
    classes = _class_indices(class_index, len(inputs))
    forward, timed = _class_score_forward(model, layer_names)
    batches = [_batch_heatmaps(forward, timed, inputs[start:start + batch_size],
                               None if classes is None else classes[start:start + batch_size])
               for start in range(0, len(inputs), batch_size)]
    return {name: np.concatenate([maps[i] for maps in batches])
            for i, name in enumerate(layer_names)}


def conv_layer_names(model: keras.Model) -> list[str]:
    """The candidate Grad-CAM layers of a model, in network order.

    These are the convolutional layers (`Conv2D`, `DepthwiseConv2D`, `SeparableConv2D`,
    `Conv2DTranspose`) and the residual block outputs (a `ReLU` or `Activation` applied to
    an `Add`, e.g. `conv{S}_{B}_out` of the VGGFace2 ResNet-50), with 4-D outputs. Other
    activations, batch normalisations, poolings and the sums themselves are left out; they
    are still valid `grad_cam` targets by name. Layers of nested models (directly or under
    `TimeDistributed`) are listed at the nested model's position; for the VGGFace2
    ResNet-50 that is its 53 convolutions and 16 block outputs, from `conv1_7x7_s2` to
    `conv5_3_out`.

    Args:
        model: any Keras functional model.

    Returns:
        Layer names in the order of `model.layers`.
    """
    sums = {id(layer.output) for layer in model.layers if isinstance(layer, keras.layers.Add)}
    names = []
    for layer in model.layers:
        nested = _nested_model(layer)
        if nested is not None:
            names += conv_layer_names(nested)
        elif _is_feature_map(layer) and (
                isinstance(layer, _CONV_LAYERS)
                or isinstance(layer, _ACTIVATION_LAYERS) and id(layer.input) in sums):
            names.append(layer.name)
    return names


def overlay(frame, heatmap, alpha: float = 0.4) -> np.ndarray:
    """A heatmap in jet colours blended over a frame.

    Args:
        frame: RGB `[H, W, 3]` or grey `[H, W]`, uint8 (or numbers in 0..255).
        heatmap: `[h, w]` in 0..1 (values outside are clipped), e.g. from `grad_cam`;
            resized bilinearly to `[H, W]`.
        alpha: weight of the colours: `(1 - alpha) * frame + alpha * colours`.

    Returns:
        uint8 RGB `[H, W, 3]`.

    Raises:
        ValueError: on a frame or heatmap of the wrong shape, or `alpha` outside 0..1.
    """
    frame = np.asarray(frame)
    if frame.ndim == 2:
        frame = np.repeat(frame[..., None], 3, axis=-1)
    if frame.ndim != 3 or frame.shape[-1] != 3:
        raise ValueError(f"overlay expects an RGB [H, W, 3] or grey [H, W] frame, "
                         f"got shape {frame.shape}")
    heatmap = np.asarray(heatmap, np.float32)
    if heatmap.ndim != 2:
        raise ValueError(f"overlay expects a [h, w] heatmap, got shape {heatmap.shape}")
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be in 0..1, got {alpha}")
    height, width = frame.shape[:2]
    resized = cv2.resize(heatmap, (width, height), interpolation=cv2.INTER_LINEAR)
    levels = np.round(np.clip(resized, 0, 1) * 255).astype(np.uint8)
    colours = cv2.cvtColor(cv2.applyColorMap(levels, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)
    blend = (1 - alpha) * frame.astype(np.float32) + alpha * colours.astype(np.float32)
    return np.round(np.clip(blend, 0, 255)).astype(np.uint8)


def call_tensors(layer):
    """The input and output tensors of a layer's (first) call in its model's graph, e.g. to
    build a model on part of another one's graph.

    `layer.input` and `layer.output` give these for plain layers, but a nested functional
    model answers with its own graph's input and output, unconnected to the outer model;
    the layer's first inbound node holds the call's tensors in both cases.
    """
    node = layer._inbound_nodes[0]
    return node.input_tensors[0], node.output_tensors[0]


def _check_rank(model, inputs, batched):
    """Raises unless `inputs` has the model's input rank (without the batch axis if not
    `batched`)."""
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ValueError(f"Grad-CAM needs a model with one input and one output; model "
                         f"{model.name!r} has {len(model.inputs)} and {len(model.outputs)}")
    shape = tuple(model.inputs[0].shape)
    expected = shape if batched else shape[1:]
    if inputs.ndim != len(expected):
        raise ValueError(f"model {model.name!r} takes inputs of shape {shape}; expected "
                         f"{'a batch' if batched else 'one input without batch axis'} of "
                         f"shape {expected}, got {inputs.shape}")


def _nested_model(layer):
    """The model a layer runs: itself if it is a model, the wrapped model of a
    `TimeDistributed`; None for other layers."""
    if isinstance(layer, keras.Model):
        return layer
    if isinstance(layer, keras.layers.TimeDistributed) and isinstance(layer.layer, keras.Model):
        return layer.layer
    return None


def _is_feature_map(layer):
    """Whether a layer outputs a `[batch, h, w, channels]` map (inputs excluded)."""
    return not isinstance(layer, keras.layers.InputLayer) and len(layer.output.shape) == 4


def _layer_path(model, name):
    """The layers from `model`'s top level down to the layer `name`: `[layer]` for a layer of
    `model`, `[nested model layer, ..., layer]` for one inside; None if there is none. Layers
    of `model` come before nested ones, nested models in order."""
    for layer in model.layers:
        if layer.name == name:
            return [layer]
    for layer in model.layers:
        nested = _nested_model(layer)
        path = None if nested is None else _layer_path(nested, name)
        if path:
            return [layer, *path]
    return None


def _target_paths(model, layer_names):
    """`_layer_path` of each name, checked to be a Grad-CAM target."""
    candidates = conv_layer_names(model)
    if not candidates:
        raise ValueError(f"model {model.name!r} has no convolutional layer (no Conv2D or "
                         f"residual block output with a 4-D output) to take Grad-CAM of")
    paths = []
    for name in layer_names:
        path = _layer_path(model, name)
        if path is None:
            raise ValueError(f"unknown layer {name!r} in model {model.name!r}; "
                             f"convolutional layers: {', '.join(candidates)}")
        if not _is_feature_map(path[-1]):
            raise ValueError(f"layer {name!r} of model {model.name!r} outputs shape "
                             f"{tuple(path[-1].output.shape)}, not a 4-D [batch, h, w, "
                             f"channels] map; convolutional layers: {', '.join(candidates)}")
        paths.append(path)
    return paths


def _class_score_forward(model, layer_names):
    """The target activations and pre-softmax class scores of `model` in one call.

    Returns:
        `(forward, timed)`: `forward(inputs)` maps `[B, ...]` to (the activations of
        `layer_names` in order, each `[B, h, w, channels]`, or `[B * T, h, w, channels]`
        with the frames of a clip consecutive if `timed`; pre-softmax scores
        `[B, classes]`).
    """
    paths = _target_paths(model, layer_names)
    score_input, linear = _class_score_input(model)
    forward, timed = _forward(model, paths, score_input)

    def class_scores(inputs):
        activations, features = forward(inputs)
        return activations, linear(features)

    return class_scores, timed


def _class_score_input(model):
    """The tensor of `model`'s graph the class scores are computed from, and how.

    Returns:
        `(tensor, linear)`: the input of a final softmax `Dense` and that layer's linear
        part; the input of a final `Softmax` or `Activation("softmax")` and the identity;
        otherwise the model output and the identity.
    """
    last = model.layers[-1]
    if last.output is model.outputs[0]:
        softmax = getattr(last, "activation", None) is keras.activations.softmax
        if isinstance(last, keras.layers.Dense) and softmax:
            return last.input, lambda x: _dense_linear(last, x)
        if isinstance(last, keras.layers.Softmax) or (
                isinstance(last, keras.layers.Activation) and softmax):
            return last.input, _identity
    return model.outputs[0], _identity


def _dense_linear(dense, x):
    """`x @ kernel + bias` of a `Dense` layer, without its activation."""
    scores = keras.ops.matmul(x, dense.kernel)
    return scores + dense.bias if dense.use_bias else scores


def _identity(x):
    return x


def _forward(model, paths, output):
    """Runs `model` from its input to `output`, returning the target activations on the way.

    Args:
        model: a functional model.
        paths: per target layer, its `_layer_path` in `model`.
        output: a tensor of `model`'s graph.

    Returns:
        `(forward, timed)`: `forward(inputs)` maps `model`'s input `[B, ...]` to (the target
        activations in the order of `paths`, the value of `output`); `timed` tells whether
        the activations come from under a `TimeDistributed` (batch `B * T`).

    Raises:
        ValueError: the targets lie in different nested models, or some in `model` and
            some in a nested one.
    """
    if all(len(path) == 1 for path in paths):
        probe = keras.Model(model.inputs,
                            [call_tensors(path[0])[1] for path in paths] + [output])

        def probe_forward(inputs):
            *activations, value = probe(inputs, training=False)
            return activations, value

        return probe_forward, False
    holders = {path[0].name for path in paths}
    if len(holders) > 1 or any(len(path) == 1 for path in paths):
        raise ValueError(f"Grad-CAM layers {[path[-1].name for path in paths]} of model "
                         f"{model.name!r} lie in different parts of it ({sorted(holders)}); "
                         f"take them in separate calls")
    holder = paths[0][0]
    nested = _nested_model(holder)
    timed = nested is not holder
    nested_forward, nested_timed = _forward(nested, [path[1:] for path in paths],
                                            nested.outputs[0])
    holder_input, holder_output = call_tensors(holder)
    before = _subgraph(model.inputs[0], holder_input)
    after = _subgraph(holder_output, output)

    def nested_model_forward(inputs):
        x = before(inputs)
        if timed:
            shape = keras.ops.shape(x)
            x = keras.ops.reshape(x, (-1, *x.shape[2:]))
        activations, y = nested_forward(x)
        if timed:
            y = keras.ops.reshape(y, (shape[0], shape[1], *y.shape[1:]))
        return activations, after(y)

    return nested_model_forward, timed or nested_timed


def _subgraph(inputs, outputs):
    """The part of a model's graph from tensor `inputs` to tensor `outputs`, as a function
    (in inference mode)."""
    if outputs is inputs:
        return _identity
    part = keras.Model(inputs, outputs)
    return lambda x: part(x, training=False)


def _batch_heatmaps(forward, timed, inputs, class_index):
    """Grad-CAM of one batch: one forward pass, one gradient call.

    Args:
        forward: from `_class_score_forward`.
        timed: whether the activations fold time into the batch.
        inputs: float32 `[B, ...]`.
        class_index: int `[B]`, the class of each input, or None for each one's predicted
            class.

    Returns:
        Per target layer, float32 `[B, h, w]`, or `[B, T, h, w]` if `timed`.
    """
    inputs = tf.convert_to_tensor(inputs)
    with tf.GradientTape() as tape:
        tape.watch(inputs)  # also records layers no trainable variable leads to
        activations, scores = forward(inputs)
        classes = _classes(scores, class_index)
        score = tf.reduce_sum(tf.gather(scores, classes, axis=1, batch_dims=1))
    gradients = tape.gradient(score, activations,
                              unconnected_gradients=tf.UnconnectedGradients.ZERO)
    heatmaps = []
    for activation, gradient in zip(activations, gradients):
        heatmap = _heatmap(activation, gradient)
        if timed:
            heatmap = tf.reshape(heatmap, (len(inputs), -1, *heatmap.shape[1:]))
        heatmaps.append(heatmap.numpy())
    return heatmaps


def _class_indices(class_index, count: int) -> np.ndarray | None:
    """`class_index` of `grad_cams` as int64 `[count]` (an int repeated, a sequence as
    given), or None for the predicted classes.

    Raises:
        ValueError: a sequence that is not `count` integers (naming what it found).
    """
    if class_index is None:
        return None
    if isinstance(class_index, (int, np.integer)):
        return np.full(count, int(class_index), np.int64)
    indices = np.asarray(class_index)
    if indices.shape != (count,) or not np.issubdtype(indices.dtype, np.integer):
        raise ValueError(f"class_index must be an int or {count} ints (one per input), got "
                         f"{indices.dtype} values of shape {list(indices.shape)}")
    return indices.astype(np.int64)


def _classes(scores, class_index):
    """int32 `[B]`: `class_index` (int `[B]`) checked against the classes of `scores`
    `[B, classes]`, or each row's argmax if it is None."""
    if class_index is None:
        return tf.argmax(scores, axis=-1, output_type=tf.int32)
    num_classes = scores.shape[-1]
    outside = [int(i) for i in class_index if not 0 <= i < num_classes]
    if outside:
        raise ValueError(f"class_index {outside[0]} out of range for a model with "
                         f"{num_classes} classes")
    return tf.constant(class_index, tf.int32)


def _heatmap(activation, gradient):
    """ReLU(sum_k w_k A_k) / max with w_k the spatial mean of the gradient.

    Args:
        activation: `[B, h, w, channels]` A.
        gradient: `[B, h, w, channels]` dy / dA.

    Returns:
        float32 `[B, h, w]` in 0..1; an all-zero map stays zero.
    """
    activation = tf.cast(activation, tf.float32)
    weights = tf.reduce_mean(tf.cast(gradient, tf.float32), axis=(1, 2), keepdims=True)
    heatmap = tf.nn.relu(tf.reduce_sum(weights * activation, axis=-1))
    return tf.math.divide_no_nan(heatmap, tf.reduce_max(heatmap, axis=(1, 2), keepdims=True))
