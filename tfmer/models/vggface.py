"""ResNet-50 of keras-vggface (VGGFace2, Cao et al. 2018) rebuilt as a Keras 3 model.

keras-vggface 0.6 (rcmalli) does not import on TensorFlow 2.16+ and names its layers with
`/`, which Keras 3 forbids. This module rebuilds its `RESNET50` layer for layer and loads
its Keras 2 HDF5 weight files (`rcmalli_vggface_tf_resnet50.h5`,
`rcmalli_vggface_tf_notop_resnet50.h5`) by explicit name, so that the same weights give the
same outputs. Nothing is downloaded: pass the path of a weight file you have.

Layer names. Every keras-vggface layer with weights keeps its name with `/` replaced by `_`
(`keras_layer_name`); `keras_vggface_name` maps back:

    conv1/7x7_s2, conv1/7x7_s2/bn           -> conv1_7x7_s2, conv1_7x7_s2_bn
    conv{S}_{B}_1x1_reduce, .../bn          -> conv{S}_{B}_1x1_reduce, ..._1x1_reduce_bn
    conv{S}_{B}_3x3, .../bn                 -> conv{S}_{B}_3x3, conv{S}_{B}_3x3_bn
    conv{S}_{B}_1x1_increase, .../bn        -> conv{S}_{B}_1x1_increase, ..._1x1_increase_bn
    conv{S}_1_1x1_proj, .../bn (block 1)    -> conv{S}_1_1x1_proj, conv{S}_1_1x1_proj_bn
    classifier                              -> classifier

Layers without weights (unnamed in keras-vggface) are named here:

    image                                       the input, [batch, H, W, 3]
    conv1_7x7_s2_relu, pool1                    stem ReLU and 3x3/2 max pooling
    conv{S}_{B}_1x1_reduce_relu, conv{S}_{B}_3x3_relu   ReLUs inside a bottleneck
    conv{S}_{B}_add                             residual sum (before its ReLU)
    conv{S}_{B}_out                             ReLU after the sum: the block output
    avg_pool, flatten                           original head (include_top=True)
    global_avg_pool / global_max_pool           global pooling (include_top=False)

Stages S = 2..5 have 3, 4, 6, 3 blocks B (numbered from 1); `VGGFACE2_BLOCK_OUTPUTS` lists the
16 block outputs in order, the usual Grad-CAM targets.
"""

import os

import h5py
import keras
import numpy as np

VGGFACE2_MEAN_BGR = (91.4953, 103.8827, 131.0912)
"""Per-channel means (B, G, R) subtracted by keras-vggface `preprocess_input(version=2)`."""

VGGFACE2_NUM_CLASSES = 8631
"""Identities of the VGGFace2 training set: the width of the original classifier."""

VGGFACE2_INPUT_SIZE = 224
"""Input height and width the original head (7x7 `avg_pool`, flatten, Dense) requires."""

BN_EPSILON = 1e-3
"""BatchNormalization epsilon: keras-vggface's ResNet-50 keeps the Keras default."""

_MIN_INPUT_SIZE = 32  # keras-vggface `min_size`; smaller inputs vanish before stage 5.

# (stage, (reduce, 3x3, increase) filters, number of blocks, stride of the first block)
_STAGES = (
    (2, (64, 64, 256), 3, 1),
    (3, (128, 128, 512), 4, 2),
    (4, (256, 256, 1024), 6, 2),
    (5, (512, 512, 2048), 3, 2),
)
_STEM = "conv1/7x7_s2"
_CLASSIFIER = "classifier"


def keras_layer_name(vggface_name):
    """Keras 3 layer name of a keras-vggface layer: `/` replaced by `_`.

    Args:
        vggface_name: original keras-vggface layer name, e.g. `conv1/7x7_s2/bn`.

    Returns:
        The name used in this model, e.g. `conv1_7x7_s2_bn`.
    """
    return vggface_name.replace("/", "_")


def _block_convs(stage, block):
    """Original conv names of one bottleneck: reduce, 3x3, increase[, proj]."""
    prefix = f"conv{stage}_{block}"
    names = [f"{prefix}_1x1_reduce", f"{prefix}_3x3", f"{prefix}_1x1_increase"]
    if block == 1:
        names.append(f"{prefix}_1x1_proj")
    return names


def _vggface_weighted_layers():
    """Original names of all keras-vggface ResNet-50 layers with weights, top included."""
    names = [_STEM, _STEM + "/bn"]
    for stage, _, blocks, _ in _STAGES:
        for block in range(1, blocks + 1):
            for conv in _block_convs(stage, block):
                names += [conv, conv + "/bn"]
    names.append(_CLASSIFIER)
    return names


_KERAS_TO_VGGFACE = {keras_layer_name(name): name for name in _vggface_weighted_layers()}

VGGFACE2_BLOCK_OUTPUTS = tuple(
    f"conv{stage}_{block}_out"
    for stage, _, blocks, _ in _STAGES
    for block in range(1, blocks + 1)
)
"""Names of the 16 residual block outputs (ReLU after each add), input to output."""


def keras_vggface_name(layer_name):
    """Original keras-vggface name of a layer with weights of this model.

    Args:
        layer_name: a layer name of `vggface2_resnet50`, e.g. `conv2_1_1x1_reduce_bn`.

    Returns:
        The keras-vggface name, e.g. `conv2_1_1x1_reduce/bn`.

    Raises:
        ValueError: the name is not a weighted layer of the VGGFace2 ResNet-50.
    """
    if layer_name not in _KERAS_TO_VGGFACE:
        raise ValueError(
            f"layer {layer_name!r} is not a layer with weights of the keras-vggface "
            f"ResNet-50 (expected names like 'conv1_7x7_s2', 'conv2_1_1x1_reduce_bn', "
            f"'classifier')"
        )
    return _KERAS_TO_VGGFACE[layer_name]


def vggface2_preprocess(x):
    """RGB images in 0..255 to the VGGFace2 ResNet-50 input.

    keras-vggface `utils.preprocess_input(x, version=2)`: channels reversed to BGR, then
    the means 91.4953 (B), 103.8827 (G), 131.0912 (R) subtracted; no scaling.

    Args:
        x: `[..., H, W, 3]` RGB values in 0..255, a numpy array or a tensor; integer
            inputs are cast to float32.

    Returns:
        `[..., H, W, 3]` BGR minus the means: a numpy array for numpy (or list) input,
        else a tensor of the input's float dtype.

    Raises:
        ValueError: the last axis does not have 3 channels.
    """
    if isinstance(x, (np.ndarray, list, tuple)):
        x = np.asarray(x)
        if not np.issubdtype(x.dtype, np.floating):
            x = x.astype(np.float32)
        _check_rgb(x.shape)
        return x[..., ::-1] - np.asarray(VGGFACE2_MEAN_BGR, dtype=x.dtype)
    _check_rgb(tuple(x.shape))
    if "float" not in keras.backend.standardize_dtype(x.dtype):
        x = keras.ops.cast(x, "float32")
    mean = keras.ops.convert_to_tensor(VGGFACE2_MEAN_BGR, dtype=x.dtype)
    return keras.ops.subtract(keras.ops.flip(x, axis=-1), mean)


def _check_rgb(shape):
    if not shape or shape[-1] not in (3, None):
        raise ValueError(
            f"vggface2_preprocess expects RGB images with 3 channels on the last axis, "
            f"got shape {shape}"
        )


@keras.saving.register_keras_serializable(package="tfmer")
class VGGFace2Preprocess(keras.layers.Layer):
    """`vggface2_preprocess` as a layer, so a model takes RGB frames in 0..255.

    Input `[..., H, W, 3]` RGB in 0..255; output the same shape, BGR minus the VGGFace2
    means. The layer has no arguments of its own, so the base `get_config` (name, dtype,
    trainable) is its whole config.
    """

    def call(self, inputs):
        return vggface2_preprocess(inputs)

    def compute_output_shape(self, input_shape):
        return input_shape


def _conv_bn(x, filters, kernel_size, strides, vggface_name, padding="valid"):
    """Conv2D without bias and its BatchNormalization, named after keras-vggface."""
    x = keras.layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding=padding,
        use_bias=False,
        name=keras_layer_name(vggface_name),
    )(x)
    return keras.layers.BatchNormalization(
        axis=-1, epsilon=BN_EPSILON, name=keras_layer_name(vggface_name + "/bn")
    )(x)


def _bottleneck(x, filters, stage, block, strides):
    """One residual bottleneck; a projection shortcut on the first block of a stage.

    Args:
        x: `[batch, H, W, C]` block input.
        filters: (reduce, 3x3, increase) widths.
        stage: stage number 2..5.
        block: block number within the stage, from 1.
        strides: stride of the 1x1 reduce conv and of the projection.

    Returns:
        `[batch, H / strides, W / strides, filters[2]]`, the output of layer
        `conv{stage}_{block}_out`.
    """
    reduce_name, conv3_name, increase_name = _block_convs(stage, block)[:3]
    y = _conv_bn(x, filters[0], 1, strides, reduce_name)
    y = keras.layers.ReLU(name=keras_layer_name(reduce_name) + "_relu")(y)
    y = _conv_bn(y, filters[1], 3, 1, conv3_name, padding="same")
    y = keras.layers.ReLU(name=keras_layer_name(conv3_name) + "_relu")(y)
    y = _conv_bn(y, filters[2], 1, 1, increase_name)
    if block == 1:
        shortcut = _conv_bn(x, filters[2], 1, strides, _block_convs(stage, block)[3])
    else:
        shortcut = x
    y = keras.layers.Add(name=f"conv{stage}_{block}_add")([y, shortcut])
    return keras.layers.ReLU(name=f"conv{stage}_{block}_out")(y)


def vggface2_resnet50(
    weights=None, input_shape=(224, 224, 3), include_top=False, pooling="avg"
):
    """The keras-vggface ResNet-50 (VGGFace2) as a Keras 3 functional model.

    The model expects `vggface2_preprocess`ed input (BGR minus the means), as
    keras-vggface does; put a `VGGFace2Preprocess` layer in front to feed 0..255 RGB.

    With `include_top=False` the original 7x7 `avg_pool` is replaced by global pooling, so
    any input of at least 32 px works. At 224 px `pooling="avg"` equals keras-vggface's
    `avg_pool` followed by its global average; `pooling="max"` is a true global max (keras-
    vggface applies its 7x7 average first, so its "max" is an average at 224 px).

    Args:
        weights: None (random initialisation) or the path of a keras-vggface weight file,
            `rcmalli_vggface_tf_resnet50.h5` (with top) or
            `rcmalli_vggface_tf_notop_resnet50.h5` (only with `include_top=False`).
        input_shape: `(H, W, 3)`; H and W at least 32, or None for any size; exactly
            `(224, 224, 3)` with `include_top=True`.
        include_top: keep the original head: `avg_pool` (7x7 average pooling), `flatten`
            and `classifier` (Dense 8631, softmax).
        pooling: with `include_top=False`, "avg" or "max" global pooling, or None to
            output the last feature map; ignored with `include_top=True`.

    Returns:
        A `keras.Model` named `vggface2_resnet50` mapping `[batch, H, W, 3]` to
        `[batch, 8631]` class probabilities (top), `[batch, 2048]` (pooling "avg"/"max") or
        the last block output `[batch, h, w, 2048]`, h and w about H/32 and W/32 (1 at
        32 px, 7 at 224 px; pooling None).

    Raises:
        ValueError: on an unusable `input_shape`, `pooling`, or weight file (see
            `load_vggface2_weights`).
    """
    input_shape = tuple(input_shape)
    if len(input_shape) != 3 or input_shape[-1] != 3:
        raise ValueError(f"input_shape must be (height, width, 3), got {input_shape}")
    if include_top and input_shape != (VGGFACE2_INPUT_SIZE, VGGFACE2_INPUT_SIZE, 3):
        raise ValueError(
            f"include_top=True needs input_shape (224, 224, 3) for the original 7x7 "
            f"avg_pool and classifier, got {input_shape}; use include_top=False with "
            f"pooling='avg' for other sizes"
        )
    if any(size is not None and size < _MIN_INPUT_SIZE for size in input_shape[:2]):
        raise ValueError(
            f"input height and width must be at least {_MIN_INPUT_SIZE}, got {input_shape}"
        )
    if pooling not in ("avg", "max", None):
        raise ValueError(f"pooling must be 'avg', 'max' or None, got {pooling!r}")

    inputs = keras.Input(shape=input_shape, name="image")
    x = _conv_bn(inputs, 64, 7, 2, _STEM, padding="same")
    x = keras.layers.ReLU(name=keras_layer_name(_STEM) + "_relu")(x)
    x = keras.layers.MaxPooling2D(3, strides=2, name="pool1")(x)
    for stage, filters, blocks, first_stride in _STAGES:
        for block in range(1, blocks + 1):
            strides = first_stride if block == 1 else 1
            x = _bottleneck(x, filters, stage, block, strides)
    if include_top:
        x = keras.layers.AveragePooling2D(7, name="avg_pool")(x)
        x = keras.layers.Flatten(name="flatten")(x)
        x = keras.layers.Dense(
            VGGFACE2_NUM_CLASSES, activation="softmax", name=_CLASSIFIER
        )(x)
    elif pooling == "avg":
        x = keras.layers.GlobalAveragePooling2D(name="global_avg_pool")(x)
    elif pooling == "max":
        x = keras.layers.GlobalMaxPooling2D(name="global_max_pool")(x)
    model = keras.Model(inputs, x, name="vggface2_resnet50")
    if weights is not None:
        load_vggface2_weights(model, weights)
    return model


def _read_name_list(group, attribute, path):
    """A Keras 2 name-list attribute (`layer_names`, `weight_names`) as strings.

    Keras 2 splits lists too long for one HDF5 object header into `<attribute>0`,
    `<attribute>1`, ...; both forms are read.
    """
    if attribute in group.attrs:
        values = list(group.attrs[attribute])
    elif f"{attribute}0" in group.attrs:
        values = []
        chunk = 0
        while f"{attribute}{chunk}" in group.attrs:
            values += list(group.attrs[f"{attribute}{chunk}"])
            chunk += 1
    else:
        raise ValueError(
            f"{path}: HDF5 group {group.name!r} has no attribute {attribute!r}; "
            f"not a Keras 2 HDF5 weight file"
        )
    return [v.decode("utf8") if isinstance(v, bytes) else str(v) for v in values]


def read_keras2_weights(path):
    """The tensors of a Keras 2 HDF5 weight file, by layer and weight name.

    Keras 2 (`save_weights_to_hdf5_group`) writes the root attribute `layer_names`; one
    group per layer named by the layer name (a `/` in it nests groups); in it the attribute
    `weight_names` (e.g. `conv1/7x7_s2/kernel:0`) and one dataset per weight at that name,
    relative to the layer group. Full-model saves hold the same under `model_weights`.

    Args:
        path: the `.h5` file.

    Returns:
        `{layer name: {weight name: array}}` for the layers with weights, where the weight
        name is the last part of the stored name without `:0` (`kernel`, `bias`, `gamma`,
        `beta`, `moving_mean`, `moving_variance`).

    Raises:
        ValueError: the file does not have the Keras 2 layout, or a layer stores two
            weights with the same short name.
    """
    tensors = {}
    with h5py.File(path, "r") as f:
        root = f["model_weights"] if "model_weights" in f else f
        for layer_name in _read_name_list(root, "layer_names", path):
            if layer_name not in root:
                raise ValueError(
                    f"{path}: layer {layer_name!r} is listed in layer_names but has no group"
                )
            group = root[layer_name]
            layer_tensors = {}
            for weight_name in _read_name_list(group, "weight_names", path):
                short_name = weight_name.rsplit("/", 1)[-1].split(":")[0]
                if short_name in layer_tensors:
                    raise ValueError(
                        f"{path}: layer {layer_name!r} stores weight {short_name!r} twice"
                    )
                layer_tensors[short_name] = np.asarray(group[weight_name])
            if layer_tensors:
                tensors[layer_name] = layer_tensors
    return tensors


def load_vggface2_weights(model, path):
    """Loads a keras-vggface ResNet-50 weight file into `vggface2_resnet50`'s model.

    Every layer of `model` with weights is matched to its keras-vggface layer by
    `keras_vggface_name` and every weight by name; nothing is assigned unless all match.
    The file's `classifier` is skipped when the model has no top.

    Args:
        model: a model built by `vggface2_resnet50` (any input size and head).
        path: `rcmalli_vggface_tf_resnet50.h5` or `rcmalli_vggface_tf_notop_resnet50.h5`.

    Raises:
        FileNotFoundError: `path` does not exist.
        ValueError: naming the layer and weight, when a model layer has no keras-vggface
            counterpart, a layer or weight is missing from the file (e.g. a notop file
            into a model with top), the file has a layer or weight the model lacks, or a
            shape differs (expected and found shapes given).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"VGGFace2 weight file not found: {path}")
    file_tensors = read_keras2_weights(path)
    assignments = []
    loaded = set()
    for layer in model.layers:
        if not layer.weights:
            continue
        if layer.name not in _KERAS_TO_VGGFACE:
            raise ValueError(
                f"model layer {layer.name!r} has weights but no counterpart in the "
                f"keras-vggface ResNet-50; cannot load {path}"
            )
        vggface_name = _KERAS_TO_VGGFACE[layer.name]
        if vggface_name not in file_tensors:
            hint = ""
            if vggface_name == _CLASSIFIER:
                hint = " (a notop file: build the model with include_top=False)"
            raise ValueError(
                f"{path}: no weights for layer {vggface_name!r} "
                f"(model layer {layer.name!r}){hint}"
            )
        stored = file_tensors[vggface_name]
        expected = {variable.name: variable for variable in layer.weights}
        if set(stored) != set(expected):
            raise ValueError(
                f"{path}: layer {vggface_name!r} has weights {sorted(stored)}, "
                f"model layer {layer.name!r} expects {sorted(expected)}"
            )
        for weight_name, variable in expected.items():
            value = stored[weight_name]
            if value.shape != tuple(variable.shape):
                raise ValueError(
                    f"{path}: layer {vggface_name!r} weight {weight_name!r} has shape "
                    f"{value.shape}, model layer {layer.name!r} expects "
                    f"{tuple(variable.shape)}"
                )
            assignments.append((variable, value.astype(variable.dtype)))
        loaded.add(vggface_name)
    unused = sorted(set(file_tensors) - loaded - {_CLASSIFIER})
    if unused:
        raise ValueError(
            f"{path}: layers {unused} are not in model {model.name!r}; "
            f"not a keras-vggface ResNet-50 weight file"
        )
    for variable, value in assignments:
        variable.assign(value)
