"""A clip model cut where its frozen backbone layers end: the frozen prefix and the rest.

With the layers before l_s frozen (`model.unfreeze_from`, or Grad-CAM's choice: Bai &
Goecke 2020, Section 3.3), the backbone's first part is a fixed function of the frames: a
frozen layer trains no weight and its batch normalisation runs on its moving statistics.
Its outputs can be computed once per training frame and the rest trained on them, which
spares the frozen layers' forward pass at every step (`tfmer.training.frozen` builds on
this). `split_clip_model` cuts a clip model (`tfmer.models.clip.build_clip_model`) at the
first trainable backbone layer:

    prefix  frames [B, T, S, S, 3] -> features [B, T, h, w, c] (preprocessing + frozen layers)
    suffix  features -> probabilities (the trainable layers and the head)

`suffix(prefix(x))` is the model's output, and the suffix holds the model's own layers,
so training it trains the model. The cut must cross one tensor (a residual block's
input, where `trainable_from` puts the start of training for a block's output); a cut
inside a block, which two frozen tensors cross, is refused.
"""

from __future__ import annotations

import keras
from keras import tree

from tfmer.models.clip import BACKBONE_LAYER, FoldedTimeDistributed


def _first_trainable(backbone: keras.Model) -> int:
    """The index in `backbone.layers` of the first layer with trainable weights."""
    for index, layer in enumerate(backbone.layers):
        if layer.trainable and layer.weights:
            return index
    raise ValueError(f"{backbone.name} trains no layer: nothing to split off")


def _reapply(model: keras.Model, layers, tensors: dict):
    """Calls `layers` (of the functional `model`, in its order) on the tensors of
    `tensors` (`{id(original tensor): new tensor}`), as the model's graph connects them;
    returns the new outputs of the model.

    Raises:
        ValueError: a layer reads a tensor outside `tensors` (naming both).
    """
    for layer in layers:
        node = layer._inbound_nodes[0]
        missing = [t for t in node.arguments.keras_tensors if id(t) not in tensors]
        if missing:
            raise ValueError(f"cannot cut {model.name} there: layer {layer.name} also reads "
                             f"{missing[0].name}, computed before the cut (cut at a block's "
                             f"input)")
        args, kwargs = node.arguments.fill_in(tensors)
        outputs = layer(*args, **kwargs)
        for old, new in zip(tree.flatten(node.outputs), tree.flatten(outputs)):
            tensors[id(old)] = new
    return [tensors[id(t)] for t in model.outputs]


def multiply_adds(layer: keras.layers.Layer) -> int:
    """A convolution's or dense layer's multiply-adds for one input (at the shapes of its
    first call), 0 for other layers."""
    if isinstance(layer, keras.layers.Conv2D):
        _, height, width, out_channels = layer.output.shape
        kernel = layer.kernel.shape
        return height * width * out_channels * kernel[0] * kernel[1] * kernel[2]
    if isinstance(layer, keras.layers.Dense):
        return int(layer.kernel.shape[0] * layer.kernel.shape[1])
    return 0


def frozen_share(backbone: keras.Model) -> float:
    """The frozen layers' share of the backbone's forward multiply-adds (convolutions and
    dense layers), the part of its forward pass a cut spares."""
    frozen = sum(multiply_adds(layer) for layer in backbone.layers if not layer.trainable)
    total = sum(multiply_adds(layer) for layer in backbone.layers)
    return frozen / total


def step_ceiling(share: float) -> float:
    """How much faster a training step on the frozen layers' outputs can be than one on
    frames, with the frozen layers `share` of the forward pass: a step on frames costs
    about F + 3 T (F the frozen layers' forward pass, T the trained layers', whose backward
    pass is about twice it), one on the features 3 T, and (F + 3 T) / 3 T is
    (3 - 2 share) / (3 - 3 share): 1.24x for ResNet-50 frozen before conv4 (42 %), 2.07x
    before conv5 (76 %)."""
    return (3 - 2 * share) / (3 - 3 * share)


def split_backbone(backbone: keras.Model) -> tuple[keras.Model, keras.Model]:
    """`(prefix, suffix)` of a frame backbone whose first layers are frozen: the frozen
    layers (input -> the tensor the first trainable layer reads) and the rest (that tensor
    -> the backbone's output, the same layer objects).

    Raises:
        ValueError: nothing is frozen, nothing trains, or more than one tensor crosses the
            cut.
    """
    start = _first_trainable(backbone)
    if start <= 1:  # only the input layer before it
        raise ValueError(f"{backbone.name} has no frozen layers before "
                         f"{backbone.layers[start].name}: nothing to compute once")
    (crossing,) = backbone.layers[start]._inbound_nodes[0].arguments.keras_tensors
    prefix = keras.Model(backbone.inputs, crossing, name=f"{backbone.name}_frozen")
    features = keras.Input(crossing.shape[1:], name="frozen_features")
    (output,) = _reapply(backbone, backbone.layers[start:], {id(crossing): features})
    return prefix, keras.Model(features, output, name=f"{backbone.name}_trained")


def split_clip_model(model: keras.Model) -> tuple[keras.Model, keras.Model]:
    """`(prefix, suffix)` of a clip model whose backbone's first layers are frozen (see the
    module): prefix `frames -> frozen features [B, T, h, w, c]`, suffix `features ->
    probabilities` made of the model's own trainable layers."""
    wrapper = model.get_layer(BACKBONE_LAYER)
    backbone_prefix, backbone_suffix = split_backbone(wrapper.layer)
    node = wrapper._inbound_nodes[0]
    (frames_in,) = node.arguments.keras_tensors
    before = keras.Model(model.inputs, frames_in)  # the preprocessing
    prefix = keras.Model(model.inputs, FoldedTimeDistributed(backbone_prefix, name="frozen")(
        before.outputs[0]), name=f"{model.name}_frozen")
    features = keras.Input(prefix.outputs[0].shape[1:], name="frozen_features")
    tensors = {id(node.outputs[0]): FoldedTimeDistributed(backbone_suffix,
                                                          name=BACKBONE_LAYER)(features)}
    layers = model.layers[model.layers.index(wrapper) + 1:]
    outputs = _reapply(model, layers, tensors)
    return prefix, keras.Model(features, outputs, name=f"{model.name}_trained")
