"""Flow-based micro-expression networks: STSTNet, OFF-ApexNet, the RCN family and STRCN-G.

Every model reads one clip's onset -> apex motion, `flow` float32 `[batch, S, S, 3]` with
the channels of `FLOW_CHANNELS`: u (horizontal displacement in pixels, positive right), v
(vertical, positive down) and the optical strain magnitude, at S = `image_size` pixels (the
input pipeline resizes the stored flow and rescales the displacements). Its first layer,
`channels` (`FlowChannels`), picks the channels the network reads; its last layer,
`probabilities`, is a softmax `[batch, num_classes]`.

Sources (read in the authors' repositories; every builder's docstring has the details):

    STSTNet      Liong, Gan, See, Khor, Huang, "Shallow triple stream three-dimensional
                 CNN (STSTNet) for micro-expression recognition", FG 2019. GitHub
                 christy1206/STSTNet: `STSTNet.mat` (the MATLAB layer graph: layer types,
                 names, connections, padding modes), `main.m` (MATLAB training),
                 `main.py` (the authors' PyTorch re-implementation), `STSTNet_arXiv
                 Paper.pdf` (Table I: layer sizes). The PyTorch port in tvaranka/meb
                 `meb/models/me_networks.py` is `main.py`'s network.
    OFF-ApexNet  Gan, Liong, Yau, Huang, Tan, "OFF-ApexNet on micro-expression recognition
                 system", Signal Processing: Image Communication 74, 2019. No code was
                 released; the architecture is the paper's as summarised in the project's
                 research notes (`shared/RESEARCH.md`), checked against the parameter count
                 STSTNet's paper quotes for it (Table V) and a third-party re-implementation
                 (ECNU-Cross-Innovation-Lab/PRICAI2021-Off-TANet, which reports 2.66M
                 parameters). meb's `OffApexNet` is a simplified single-stream variant and
                 was not used.
    RCN family   Xia, Peng, Khor, Feng, Zhao, "Revealing the invisible with model and data
                 shrinking for composite-database micro-expression recognition", IEEE TIP
                 2020. GitHub xiazhaoqiang/ParameterFreeRCNs-MicroExpressionRec: `RCNs.py`
                 (`RecConv`, `RecNet`), `MeNets.py` (`RclBlock`, `DenseBlock`,
                 `SpatialAttentionBlock_P`, `RCN_A`, `RCN_S`, `RCN_W`), `ModelTrain_Final.py`
                 (defaults: 64 maps, pool 7, one block, SGD lr 5e-4 momentum 0.9 without
                 weight decay, step decay 0.5 every 10 epochs, 100 epochs, batch 64),
                 `Datasets.py` (3-channel PNG flow images read with PIL, scaled to [0, 1]);
                 tvaranka/meb `meb/models/RCNs.py` (the same networks with the NameErrors of
                 RCN-P/C/F fixed; its benchmark notebook feeds RCN-A 60 x 60 flows).
    STRCN-G      Xia, Hong, Gao, Feng, Zhao, "Spatiotemporal recurrent convolutional
                 networks for recognizing spontaneous micro-expressions", IEEE TMM 2020
                 (conference version IPTA 2018). GitHub xiazhaoqiang/STRCN-MicroExpressionRec
                 (MatConvNet): `strcnInit.m` (the whole network and its initialisation),
                 `GeometricConnect/ExtractFlow.m` (raw u, v of onset -> apex at 300 x 245).

Flow images. STSTNet's and RCN's releases train on flow *images* written by a step they did
not release (STSTNet's folder is `norm_u_v_os`, 8-bit images; RCN reads 8-bit PNGs as
[0, 1]). `MinMaxScaling` does that step inside the model, so every model still takes raw
flow: each channel of each sample is min-max scaled to [0, image_scale] (as MATLAB's
`mat2gray` or OpenCV's `NORM_MINMAX`; a third-party script that writes `norm_u_v_os` images
for CAS(ME)^3 uses the latter); the 8-bit rounding is left out. `image_scale=None` feeds
raw flow.

Custom layers (all registered as `tfmer>...` and serializable): `FlowChannels`,
`MinMaxScaling`, `AdaptiveAveragePooling2D` (PyTorch's `AdaptiveAvgPool2d`),
`CAMAttentionDense` (RCN-A's classifier with its class-activation attention) and
`ScaledConv2D` (STRCN's conv1 with its /100 initialisation and /100^2 learning rate).

Weight decay: `weight_decay` is coupled L2 decay as PyTorch's and MatConvNet's SGD apply it
(gradient + wd * w), i.e. `keras.regularizers.L2(weight_decay / 2)` on convolution and dense
kernels (not on biases or batch-norm parameters, which both frameworks would also decay);
0 adds no regularizer.

Cost of one training step (forward and backward) on a batch of 64, 4 classes, at the
papers' settings, measured on this project's 2-core CPU machine: STSTNet (28 px) 15 ms,
OFF-ApexNet (28 px) 50 ms, RCN / RCN-A (60 px, 64 maps) 0.36 s, RCN-S 0.51 s, RCN-W 0.15 s,
STRCN-G (300 px, 512 maps) about 95 s (1.5 s a sample, measured on batches of 2 to 10; a
batch of 64 needs about 85 GB of memory).

Batch normalisation follows each source's framework: PyTorch's and MATLAB's epsilon 1e-5
with PyTorch's running-average rate 0.1 (Keras momentum 0.9); MatConvNet's moments learning
rate 0.3 of `strcnInit.m` (Keras momentum 0.7).
"""

from __future__ import annotations

import math

import keras
import numpy as np

from tfmer.records import MOTION_CHANNELS

FLOW_CHANNELS = MOTION_CHANNELS
"""The stored channel order of a clip's onset -> apex motion (`flow/uvs` of the records)."""
FLOW_INPUT = "flow"
"""The name of every motion model's input, `[batch, S, S, 3]` in `FLOW_CHANNELS` order."""
APPEARANCE_INPUT = "appearance"
"""The name of STRCN-A's input, an appearance matrix `[batch, P, C, 1]` (`tfmer.appearance`)."""
RCN_VARIANTS = ("rcn", "rcn_a", "rcn_s", "rcn_w")
"""`build_rcn` variants: the plain RCN, with attention unit, with shortcut connections, wide."""

_TORCH_BN = {"momentum": 0.9, "epsilon": 1e-5}
_MATCONVNET_BN = {"momentum": 0.7, "epsilon": 1e-5}


def _l2(weight_decay: float, factor: float = 1.0):
    """Coupled decay `wd * w` on the gradient as an L2 penalty (`None` for 0)."""
    if weight_decay < 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay!r}")
    return keras.regularizers.L2(weight_decay * factor / 2) if weight_decay else None


def _torch_default_init(fan_in: int) -> dict:
    """PyTorch's default `Conv2d` / `Linear` initialisation (`reset_parameters`): weights
    kaiming-uniform with a = sqrt(5), i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and biases
    U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    bound = 1.0 / math.sqrt(fan_in)
    return {"kernel_initializer": keras.initializers.VarianceScaling(
                1.0 / 3.0, mode="fan_in", distribution="uniform"),
            "bias_initializer": keras.initializers.RandomUniform(-bound, bound)}


def _check_channels(channels) -> tuple[str, ...]:
    channels = (channels,) if isinstance(channels, str) else tuple(channels)
    if not channels:
        raise ValueError("channels must name at least one of " + ", ".join(FLOW_CHANNELS))
    return channels


@keras.saving.register_keras_serializable(package="tfmer")
class FlowChannels(keras.layers.Layer):
    """Picks named channels of a flow tensor, in the given order.

    Input `[batch, H, W, len(available)]` with channels named by `available` (the stored
    flow, `FLOW_CHANNELS`, by default); output `[batch, H, W, len(channels)]`.

    Args:
        channels: names of the channels to keep, in the order the network reads them, e.g.
            `("strain", "u", "v")`; a name may repeat.
        available: names of the input's channels, in order (default `FLOW_CHANNELS`; a
            sub-network can pick from an already picked tensor, e.g. one OFF-ApexNet stream
            from `("u", "v")`).
        **kwargs: base layer arguments (name, dtype, ...).

    Raises:
        ValueError: `channels` is empty or names a channel not in `available` (the message
            lists the known names).
    """

    def __init__(self, channels=FLOW_CHANNELS, available=FLOW_CHANNELS, **kwargs):
        super().__init__(**kwargs)
        self.available = _check_channels(available)
        self.channels = _check_channels(channels)
        unknown = [name for name in self.channels if name not in self.available]
        if unknown:
            raise ValueError(f"unknown flow channel(s) {', '.join(map(repr, unknown))}; "
                             f"known: {', '.join(self.available)}")
        self.indices = tuple(self.available.index(name) for name in self.channels)

    def build(self, input_shape):
        if input_shape[-1] is not None and input_shape[-1] != len(self.available):
            raise ValueError(f"FlowChannels {self.name!r} expects {len(self.available)} "
                             f"input channels ({', '.join(self.available)}), got "
                             f"{input_shape[-1]}")
        super().build(input_shape)

    def call(self, inputs):
        return keras.ops.take(inputs, self.indices, axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], len(self.channels))

    def get_config(self):
        config = super().get_config()
        config.update(channels=list(self.channels), available=list(self.available))
        return config


@keras.saving.register_keras_serializable(package="tfmer")
class MinMaxScaling(keras.layers.Layer):
    """Min-max scales each channel of each sample to [0, scale], as when a flow field is
    written as an image (MATLAB `mat2gray`, OpenCV `NORM_MINMAX`).

    Input `[batch, H, W, C]`; output `[batch, H, W, C]` with
    `(x - min_hw x) / (max_hw x - min_hw x) * scale`, min and max over H and W of that
    sample and channel; a constant channel (e.g. no motion) becomes 0.

    Args:
        scale: top of the range: 255 for 8-bit flow images read as they are, 1 for images
            read as floats in [0, 1].
        **kwargs: base layer arguments (name, dtype, ...).
    """

    def __init__(self, scale: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        if not scale > 0:
            raise ValueError(f"MinMaxScaling scale must be > 0, got {scale!r}")
        self.scale = float(scale)

    def call(self, inputs):
        low = keras.ops.min(inputs, axis=(1, 2), keepdims=True)
        high = keras.ops.max(inputs, axis=(1, 2), keepdims=True)
        return keras.ops.divide_no_nan((inputs - low) * self.scale, high - low)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(scale=self.scale)
        return config


def adaptive_pooling_bins(size: int, output_size: int) -> list[tuple[int, int]]:
    """PyTorch's adaptive pooling bins along one axis: bin i covers
    `[floor(i * size / out), ceil((i + 1) * size / out))`; bins overlap when `size` is not a
    multiple of `out` and repeat when `out > size`."""
    return [((i * size) // output_size, -((-(i + 1) * size) // output_size))
            for i in range(output_size)]


def _pooling_matrix(size: int, output_size: int) -> np.ndarray:
    """`[output_size, size]` averaging weights of `adaptive_pooling_bins`."""
    matrix = np.zeros((output_size, size), np.float32)
    for i, (start, end) in enumerate(adaptive_pooling_bins(size, output_size)):
        matrix[i, start:end] = 1.0 / (end - start)
    return matrix


@keras.saving.register_keras_serializable(package="tfmer")
class AdaptiveAveragePooling2D(keras.layers.Layer):
    """PyTorch's `nn.AdaptiveAvgPool2d`: average pooling to a fixed output size.

    Input `[batch, H, W, C]` (H, W static); output `[batch, out_h, out_w, C]`, output
    (i, j) the mean of the input rows of bin i and columns of bin j of
    `adaptive_pooling_bins` (`start = floor(i * H / out)`, `end = ceil((i + 1) * H / out)`),
    computed as two small averaging matrices applied along H and W.

    Args:
        output_size: `out` or `(out_h, out_w)`.
        **kwargs: base layer arguments (name, dtype, ...).
    """

    def __init__(self, output_size=7, **kwargs):
        super().__init__(**kwargs)
        size = (output_size, output_size) if isinstance(output_size, int) else output_size
        self.output_size = tuple(int(s) for s in size)
        if len(self.output_size) != 2 or min(self.output_size) < 1:
            raise ValueError(f"output_size must be a positive int or pair, got {output_size!r}")

    def build(self, input_shape):
        height, width = input_shape[1], input_shape[2]
        if height is None or width is None:
            raise ValueError(f"AdaptiveAveragePooling2D {self.name!r} needs a static height "
                             f"and width, got input shape {tuple(input_shape)}")
        self._rows = _pooling_matrix(int(height), self.output_size[0])
        self._cols = _pooling_matrix(int(width), self.output_size[1])
        super().build(input_shape)

    def call(self, inputs):
        rows = keras.ops.convert_to_tensor(self._rows, dtype=inputs.dtype)
        cols = keras.ops.convert_to_tensor(self._cols, dtype=inputs.dtype)
        x = keras.ops.einsum("ih,bhwc->biwc", rows, inputs)
        return keras.ops.einsum("jw,biwc->bijc", cols, x)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *self.output_size, input_shape[3])

    def get_config(self):
        config = super().get_config()
        config.update(output_size=list(self.output_size))
        return config


@keras.saving.register_keras_serializable(package="tfmer")
class CAMAttentionDense(keras.layers.Layer):
    """RCN-A's classifier: a dense layer whose own weights, read as class activation maps of
    a guide tensor, gate its input (`SpatialAttentionBlock_P` and `RCN_A` version 3 of
    `MeNets.py`).

    Inputs `[guide, features]`, both `[batch, P, P, C]` (or one tensor, guide and features
    at once); output logits `[batch, units]`.
    With the kernel `W` `[P * P * C, units]` seen as `[P, P, C, units]` (the order in which
    `features` is flattened):

        cam_k     = mean_c(guide * W[..., k])                  [batch, P, P] per class k
        cam_k     = (cam_k - min cam_k) / max(cam_k - min cam_k)  (over P x P, per sample)
        attention = mean_k(cam_k)                              [batch, P, P, 1]
        logits    = flatten(features * attention) @ W + b

    Gradients reach `W` through both the attention and the logits, as in the release (which
    passes `classifier.weight` to the attention block). Where a map is constant the release
    divides 0 by 0 (NaN); here that map is 0.

    Args:
        units: classes.
        kernel_initializer: the kernel's initializer (the release: normal, std 0.01).
        bias_initializer: the bias' initializer (the release: zeros).
        kernel_regularizer: optional kernel regularizer.
        **kwargs: base layer arguments (name, dtype, ...).
    """

    def __init__(self, units: int, kernel_initializer=None, bias_initializer="zeros",
                 kernel_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.kernel_initializer = keras.initializers.get(
            kernel_initializer or keras.initializers.RandomNormal(stddev=0.01))
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)

    @staticmethod
    def _pair(inputs):
        """`[guide, features]` or one tensor used as both."""
        if isinstance(inputs, (list, tuple)) and len(inputs) == 2 and not isinstance(
                inputs[0], (int, type(None))):
            return inputs[0], inputs[1]
        return inputs, inputs

    def build(self, input_shape):
        guide_shape, features_shape = self._pair(input_shape)
        if tuple(guide_shape[1:]) != tuple(features_shape[1:]) or None in features_shape[1:]:
            raise ValueError(f"CAMAttentionDense {self.name!r} needs a guide and features of "
                             f"one static shape, got {tuple(guide_shape)} and "
                             f"{tuple(features_shape)}")
        self.grid = tuple(int(s) for s in features_shape[1:])
        self.kernel = self.add_weight(shape=(int(np.prod(self.grid)), self.units),
                                      initializer=self.kernel_initializer,
                                      regularizer=self.kernel_regularizer, name="kernel")
        self.bias = self.add_weight(shape=(self.units,), initializer=self.bias_initializer,
                                    name="bias")
        super().build(input_shape)

    def attention(self, guide):
        """The attention map `[batch, P, P, 1]` of a guide `[batch, P, P, C]`."""
        weights = keras.ops.reshape(self.kernel, (*self.grid, self.units))
        cam = keras.ops.einsum("bijc,ijck->bijk", guide, weights) / self.grid[-1]
        cam = cam - keras.ops.min(cam, axis=(1, 2), keepdims=True)
        cam = keras.ops.divide_no_nan(cam, keras.ops.max(cam, axis=(1, 2), keepdims=True))
        return keras.ops.mean(cam, axis=-1, keepdims=True)

    def call(self, inputs):
        guide, features = self._pair(inputs)
        x = features * self.attention(guide)
        x = keras.ops.reshape(x, (-1, self.kernel.shape[0]))
        return keras.ops.matmul(x, self.kernel) + self.bias

    def compute_output_shape(self, input_shape):
        return (self._pair(input_shape)[1][0], self.units)

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units,
                      kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
                      bias_initializer=keras.initializers.serialize(self.bias_initializer),
                      kernel_regularizer=keras.regularizers.serialize(self.kernel_regularizer))
        return config


@keras.saving.register_keras_serializable(package="tfmer")
class ScaledConv2D(keras.layers.Conv2D):
    """`Conv2D` whose kernel variable is multiplied by a constant: the effective kernel is
    `kernel_scale * kernel`.

    With plain or momentum SGD this is the same as a kernel initialised `kernel_scale` times
    smaller and trained with a learning rate `kernel_scale ** 2` times smaller (a gradient
    step on the variable moves the effective kernel by `kernel_scale ** 2` times the step
    on an unscaled kernel). STRCN's `strcnInit.m` does exactly that to conv1
    (`value / 100`, `learningRate / 100^2`), so `kernel_scale=0.01` reproduces it. Adaptive
    optimizers (Adam) undo the learning-rate part. Input and output as `Conv2D`.

    Args:
        *args: `Conv2D` arguments.
        kernel_scale: the constant factor.
        **kwargs: `Conv2D` keyword arguments.
    """

    def __init__(self, *args, kernel_scale: float = 1.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.kernel_scale = float(kernel_scale)

    def convolution_op(self, inputs, kernel):
        return super().convolution_op(inputs, kernel * self.kernel_scale)

    def get_config(self):
        config = super().get_config()
        config.update(kernel_scale=self.kernel_scale)
        return config


def _flow_input(image_size: int, channels, image_scale: float | None):
    """The `flow` input, `FlowChannels` and the optional `MinMaxScaling`."""
    inputs = keras.Input([image_size, image_size, 3], name=FLOW_INPUT, dtype="float32")
    x = FlowChannels(channels, name="channels")(inputs)
    if image_scale is not None:
        x = MinMaxScaling(image_scale, name="flow_image")(x)
    return inputs, x


def build_ststnet(num_classes: int, image_size: int = 28, channels=("strain", "u", "v"),
                  filters=(3, 5, 8), dropout: float = 0.5, name: str = "ststnet", *,
                  image_scale: float | None = 255.0,
                  weight_decay: float = 0.0) -> keras.Model:
    """STSTNet (Liong et al., FG 2019): three shallow streams of 3 x 3 convolutions.

    Input `flow` `[batch, S, S, 3]` (raw flow, `FLOW_CHANNELS`); output `probabilities`
    `[batch, num_classes]`. Layers and output shapes at S = 28 (Table I of the paper):

        channels, flow_image   picked channels, min-max to [0, 255]    28 x 28 x 3
        stream_i_conv          3 x 3, filters[i] maps, "same", bias     28 x 28 x f_i
        stream_i_relu, stream_i_bn
        stream_i_pool          max 3 x 3, stride 3, "same"              10 x 10 x f_i
        stream_i_dropout       dropout
        concat                 streams 1, 2, 3                          10 x 10 x 16
        avgpool                average 2 x 2, stride 2, no padding       5 x  5 x 16
        flatten, fc            400 -> num_classes, softmax `probabilities`

    From the sources:
        - Layer sizes, "same" padding of the convolutions and max pools, the unpadded
          average pool: Table I of the paper (`STSTNet_arXiv Paper.pdf`); the MATLAB layer
          graph `STSTNet.mat` stores the same: input [28 28 3], 3 x 3 filters (3, 5, 8
          maps, stride 1, "same"), max pools [3 3] stride [3 3] "same", average pool
          [2 2] stride [2 2] padding [0 0 0 0], dropout probability 0.5, batch norm
          epsilon 1e-5, and no initial weights.
        - Order conv -> ReLU -> batch norm -> max pool -> dropout in every stream, and the
          concatenation of the three dropouts: the connections of `STSTNet.mat`
          (conv_1 -> relu_1 -> batchnorm_1 -> maxpool_6 -> dropout_1 -> depthcat_1, ...)
          and `main.py` (`conv -> relu -> bn -> maxpool -> dropout`, `torch.cat`).
        - Dropout 0.5: `STSTNet.mat` and `main.py` (`nn.Dropout(p=0.5)`).
        - Initialisation: PyTorch's default (`main.py` resets every layer with
          `reset_parameters`; MATLAB initialises when training starts); batch norm
          epsilon 1e-5 and PyTorch's running-average rate 0.1.
        - Training (not part of the model): Adam lr 5e-5, batch 256, 500 epochs in
          MATLAB (`main.m`, the paper), 800 in PyTorch (`main.py`), no weight decay.

    Paper vs release: `main.py` pads the convolutions by 2 (30 x 30 maps) and the max pools
    by 1, which also gives 10 x 10 and the same parameters; the paper's (and MATLAB's)
    "same" padding is used here. MATLAB's `imageInputLayer` subtracts the training set's
    mean image ("zerocenter"), which depends on the data and is not part of this model;
    `main.py` feeds the images' 0..255 values unchanged, as `flow_image` does here.

    Left open and chosen here:
        - The flow images (`norm_u_v_os`, 8-bit) come from a step not in the release:
          `MinMaxScaling(255)` per sample and channel (see the module docstring).
        - Channel order: the paper lists optical strain, horizontal and vertical flow; the
          image folder is named u, v, os, and `main.py` reads it with OpenCV (BGR). For a
          network trained from scratch the order only permutes conv weights.
        - Stream order in the concatenation: 3, 5, 8 maps (`main.py`; `STSTNet.mat`
          concatenates conv_1 (3), conv_2_1 (5), then conv_2_2 (8)).

    Parameters at 28 px: 448 convolution + 64 batch norm (32 trainable) + 401 per class in
    `fc`: 2116 in all for 4 classes (2084 trainable); the paper's Table V quotes 0.00167M
    for its 3-class network (ours: 1715).

    Args:
        num_classes: classes (3 in the paper).
        image_size: input size S (28 in the paper).
        channels: flow channels read, in order (`FLOW_CHANNELS` names).
        filters: maps of the three streams.
        dropout: dropout rate after each stream's pooling.
        name: model name.
        image_scale: top of `MinMaxScaling`'s range (255: the 8-bit flow images), or None
            for raw flow.
        weight_decay: coupled L2 decay on the kernels (0 in the releases).

    Raises:
        ValueError: an unknown channel, or `filters` not three positive widths.
    """
    if len(filters) != 3 or min(filters) < 1:
        raise ValueError(f"filters {tuple(filters)} must be the three stream widths")
    channels = _check_channels(channels)
    reg = _l2(weight_decay)
    inputs, x = _flow_input(image_size, channels, image_scale)
    streams = []
    for i, width in enumerate(filters, start=1):
        y = keras.layers.Conv2D(int(width), 3, padding="same", kernel_regularizer=reg,
                                name=f"stream_{i}_conv",
                                **_torch_default_init(9 * len(channels)))(x)
        y = keras.layers.ReLU(name=f"stream_{i}_relu")(y)
        y = keras.layers.BatchNormalization(name=f"stream_{i}_bn", **_TORCH_BN)(y)
        y = keras.layers.MaxPooling2D(3, strides=3, padding="same", name=f"stream_{i}_pool")(y)
        streams.append(keras.layers.Dropout(dropout, name=f"stream_{i}_dropout")(y))
    x = keras.layers.Concatenate(name="concat")(streams)
    x = keras.layers.AveragePooling2D(2, strides=2, padding="valid", name="avgpool")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(num_classes, kernel_regularizer=reg, name="fc",
                           **_torch_default_init(int(np.prod(x.shape[1:]))))(x)
    outputs = keras.layers.Softmax(name="probabilities", dtype="float32")(x)
    return keras.Model(inputs, outputs, name=name)


def build_off_apexnet(num_classes: int, image_size: int = 28, channels=("u", "v"),
                      filters=(6, 16), fc_units=(1024, 1024), dropout: float = 0.5,
                      name: str = "off_apexnet", *, image_scale: float | None = 1.0,
                      weight_decay: float = 0.0) -> keras.Model:
    """OFF-ApexNet (Gan, Liong et al., Signal Processing: Image Communication 2019): one
    LeNet-like stream per flow component, concatenated, two fully connected layers.

    Input `flow` `[batch, S, S, 3]` (raw flow, `FLOW_CHANNELS`); output `probabilities`
    `[batch, num_classes]`. Layers and output shapes at S = 28:

        channels, flow_image   u, v; min-max to [0, 1]                 28 x 28 x 2
        stream_i_input         channel i of `channels`                 28 x 28 x 1
        stream_i_conv1         5 x 5, 6 maps, "same", ReLU             28 x 28 x 6
        stream_i_pool1         max 2 x 2, stride 2                     14 x 14 x 6
        stream_i_conv2         5 x 5, 16 maps, "same", ReLU            14 x 14 x 16
        stream_i_pool2         max 2 x 2, stride 2                      7 x  7 x 16
        stream_i_flatten                                               784
        concat                 the streams                             1568
        fc1, fc1_dropout       1024, ReLU, dropout
        fc2, fc2_dropout       1024, ReLU, dropout
        logits, probabilities  num_classes, softmax

    From the sources: the two streams of u and v, 5 x 5 convolutions of 6 and 16 maps each
    followed by 2 x 2 max pooling, the concatenation and the two 1024-unit layers (the
    paper's architecture as the project's research notes give it; the paper's text was not
    available here); the 28 x 28 x 2 input and depth 5 (STSTNet's Table V). These give
    2.66M parameters for 3 classes, the figure the Off-TANet re-implementation reports
    (`README.md` there; STSTNet's Table V quotes 2.77M).

    Left open (no code was released) and chosen here:
        - "same" padding of the convolutions (needed for the 7 x 7 x 16 = 784 features per
          stream) and of the pools (TensorFlow's `SAME`; no difference at 28 px).
        - ReLU after both convolutions and both fully connected layers.
        - Dropout `dropout` after each fully connected layer (the Off-TANet
          re-implementation; meb drops before them).
        - Keras' default initialisation (Glorot uniform, zero biases).
        - The flow images: `MinMaxScaling(1)` per sample and channel, as images read as
          floats (the STSTNet authors' pipeline, see the module docstring).
        - Training (not part of the model), as meb's benchmark: Adam lr 1e-4, 3000 epochs.

    Parameters at 28 px: 2 x (156 + 2416) convolution, 1,606,656 + 1,049,600 fully
    connected, 1025 per class: 2,665,500 for 4 classes.

    Args:
        num_classes: classes (3 in the paper).
        image_size: input size S (28 in the paper).
        channels: the flow channel of each stream (u and v in the paper).
        filters: maps of the two convolutions of a stream.
        fc_units: widths of the two fully connected layers.
        dropout: dropout rate after each fully connected layer.
        name: model name.
        image_scale: top of `MinMaxScaling`'s range, or None for raw flow.
        weight_decay: coupled L2 decay on the kernels.

    Raises:
        ValueError: an unknown channel, or `filters` / `fc_units` not two positive widths.
    """
    if len(filters) != 2 or min(filters) < 1:
        raise ValueError(f"filters {tuple(filters)} must be the two convolution widths")
    if len(fc_units) != 2 or min(fc_units) < 1:
        raise ValueError(f"fc_units {tuple(fc_units)} must be the two fully connected widths")
    channels = _check_channels(channels)
    reg = _l2(weight_decay)
    inputs, x = _flow_input(image_size, channels, image_scale)
    streams = []
    for i, channel in enumerate(channels, start=1):
        y = FlowChannels((channel,), available=channels, name=f"stream_{i}_input")(x)
        for j, width in enumerate(filters, start=1):
            y = keras.layers.Conv2D(int(width), 5, padding="same", activation="relu",
                                    kernel_regularizer=reg, name=f"stream_{i}_conv{j}")(y)
            y = keras.layers.MaxPooling2D(2, strides=2, padding="same",
                                          name=f"stream_{i}_pool{j}")(y)
        streams.append(keras.layers.Flatten(name=f"stream_{i}_flatten")(y))
    x = keras.layers.Concatenate(name="concat")(streams) if len(streams) > 1 else streams[0]
    for j, units in enumerate(fc_units, start=1):
        x = keras.layers.Dense(int(units), activation="relu", kernel_regularizer=reg,
                               name=f"fc{j}")(x)
        x = keras.layers.Dropout(dropout, name=f"fc{j}_dropout")(x)
    x = keras.layers.Dense(num_classes, kernel_regularizer=reg, name="logits")(x)
    outputs = keras.layers.Softmax(name="probabilities", dtype="float32")(x)
    return keras.Model(inputs, outputs, name=name)


class _ConvBNReLU:
    """Conv2D + BatchNormalization + ReLU, created once and callable many times (tied
    weights: every call shares the kernel, the bias and the batch norm, statistics too)."""

    def __init__(self, filters, kernel_size, name, reg, in_channels, padding="same",
                 dilation_rate=1, strides=1, relu_first=False):
        fan_in = kernel_size * kernel_size * in_channels
        bound = 1.0 / math.sqrt(fan_in)
        self.relu_first = relu_first
        self.conv = keras.layers.Conv2D(
            filters, kernel_size, strides=strides, padding=padding,
            dilation_rate=dilation_rate, kernel_regularizer=reg, name=f"{name}_conv",
            # MeNets.py: kaiming_normal_(mode="fan_out", nonlinearity="relu"); the bias keeps
            # PyTorch's default U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
            kernel_initializer=keras.initializers.VarianceScaling(
                2.0, mode="fan_out", distribution="untruncated_normal"),
            bias_initializer=keras.initializers.RandomUniform(-bound, bound))
        self.bn = keras.layers.BatchNormalization(name=f"{name}_bn", **_TORCH_BN)
        self.relu = keras.layers.ReLU(name=f"{name}_relu")

    def __call__(self, x):
        x = self.conv(x)
        return self.bn(self.relu(x)) if self.relu_first else self.relu(self.bn(x))


def _downsample(x, name, dropout):
    x = keras.layers.MaxPooling2D(2, strides=2, padding="valid", name=f"{name}_pool")(x)
    return keras.layers.Dropout(dropout, name=f"{name}_dropout")(x)


def _rcl_block(x, filters, name, reg, dropout):
    """`RclBlock` / `RecConv`: y = ff(x); y = rr(x + y); y = rr(x + y) with one rr."""
    feedforward = _ConvBNReLU(filters, 1, f"{name}_1x1", reg, x.shape[-1])
    recurrent = _ConvBNReLU(filters, 3, f"{name}_3x3", reg, x.shape[-1])
    y = feedforward(x)
    for step in (1, 2):
        y = recurrent(keras.layers.Add(name=f"{name}_add_{step}")([x, y]))
    return _downsample(y, name, dropout)


def _dense_block(x, filters, name, reg, dropout):
    """`DenseBlock`: y = c1(x); z = c2(x + y); e = c2(x + y + z); out = c2(x + y + z + e)."""
    first = _ConvBNReLU(filters, 1, f"{name}_1x1", reg, x.shape[-1])
    shared = _ConvBNReLU(filters, 3, f"{name}_3x3", reg, x.shape[-1])
    terms = [x, first(x)]
    for step in (1, 2, 3):
        y = shared(keras.layers.Add(name=f"{name}_add_{step}")(terms))
        terms.append(y)
    return _downsample(y, name, dropout)


def _rcn_wide_streams(x, filters, reg, dropout):
    """`RCN_W`'s three stride-3 streams, concatenated: `[b, S, S, c]` -> `[b, S', S', F]`."""
    outputs = []
    widths = (filters // 2, filters // 4, filters // 4)
    for i, (width, dilation) in enumerate(zip(widths, (1, 2, 3)), start=1):
        name = f"stream_{i}"
        y = keras.layers.ZeroPadding2D(dilation, name=f"{name}_pad")(x)
        # Keras convolutions take no stride with a dilation: a stride-1 dilated
        # convolution sampled every 3 pixels (a 1 x 1 max pool of stride 3) is the same.
        unit = _ConvBNReLU(width, 3, name, reg, x.shape[-1], padding="valid",
                           dilation_rate=dilation, strides=3 if dilation == 1 else 1,
                           relu_first=True)
        y = unit.conv(y)
        if dilation > 1:
            y = keras.layers.MaxPooling2D(1, strides=3, name=f"{name}_stride")(y)
        y = unit.bn(unit.relu(y))
        outputs.append(keras.layers.Dropout(dropout, name=f"{name}_dropout")(y))
    return keras.layers.Concatenate(name="concat")(outputs)


def build_rcn(num_classes: int, image_size: int = 60, variant: str = "rcn", filters: int = 64,
              pool_size: int = 7, dropout: float = 0.5, channels=("u", "v", "strain"),
              weight_decay: float = 0.0, name: str | None = None, *, num_blocks: int = 1,
              image_scale: float | None = 1.0) -> keras.Model:
    """The recurrent convolutional networks of Xia et al. (IEEE TIP 2020).

    Input `flow` `[batch, S, S, 3]` (raw flow, `FLOW_CHANNELS`); output `probabilities`
    `[batch, num_classes]`. Layers and output shapes at S = 60, F = `filters` = 64, one block,
    P = `pool_size` = 7:

        channels, flow_image   u, v, strain; min-max to [0, 1]          60 x 60 x 3
        stem_conv/bn/relu      5 x 5, F maps, no padding, BN, ReLU       56 x 56 x F
        stem_pool, stem_dropout  max 2 x 2, dropout                      28 x 28 x F
        rcl_1 (rcn, rcn_a)     y = ff(x); twice y = rr(x + y):
                               ff = rcl_1_1x1_conv/bn/relu (1 x 1),
                               rr = rcl_1_3x3_conv/bn/relu (3 x 3, "same"), ONE layer
                               set applied twice (tied kernel, bias and batch norm);
                               rcl_1_pool, rcl_1_dropout                 14 x 14 x F
        dense_1 (rcn_s)        y = c1(x); z = c2(x + y); e = c2(x + y + z);
                               c2(x + y + z + e), c2 = dense_1_3x3_* tied three times;
                               dense_1_pool, dense_1_dropout              14 x 14 x F
        adaptive_pool          PyTorch adaptive average pooling           P x P x F
        classifier             flatten, linear (rcn_a: `CAMAttentionDense`) num_classes
        probabilities          softmax

    `rcn_w` replaces the stem by three streams on the flow (`stream_1..3`: 3 x 3 convolutions
    of stride 3 with padding 1, 2, 3 and dilation 1, 2, 3; F/2, F/4, F/4 maps; ReLU, then BN,
    then dropout; 20 x 20 each at 60 px), concatenated (F maps) into `rcl_1`; at 60 px the
    adaptive pool maps 10 x 10 to 7 x 7 with overlapping bins. `rcn_a` pools the stem's
    output to P x P as well (`attention_pool`) and gates the pooled block output with the
    class activation maps of the classifier's weights on it (`CAMAttentionDense`).

    From the sources:
        - Stem, `RecConv` / `RclBlock` with the shared `rrconv` (conv, BN and ReLU in one
          `nn.Sequential` called twice), max pool 2 + `nn.Dropout()` (0.5) after the stem
          and each block, adaptive average pooling, linear classifier: `RCNs.py` (`RecNet`,
          the plain RCN, whose pool is fixed at 5) and `MeNets.py` (`RCN_A`, `RCN_S`,
          `RCN_W`, pool `pool_size`).
        - RCN-A = `RCN_A` with `model_version=3` (`ModelTrain_Final.py`'s default); RCN-S's
          `DenseBlock` calls `conv2` three times (its `conv3` is defined but never used,
          so it is left out here); RCN-W's stream order conv -> ReLU -> BN -> dropout.
        - One block (`num_layers=1`), 64 maps, pool 7: `ModelTrain_Final.py` (its README's
          example uses 32 maps and pool 5).
        - Initialisation (`MeNets.py`): convolutions kaiming-normal (fan_out, ReLU), biases
          PyTorch's default, linear normal(0, 0.01) with zero bias, BN weight 1, bias 0.
        - Input: 3-channel flow PNGs read as [0, 1] (`Datasets.py`); 60 x 60 in meb's
          benchmark of RCN-A. Training: SGD lr 5e-4, momentum 0.9, no weight decay
          (`weight_decay=0`), step decay 0.5 every 10 epochs, 100 epochs, batch 64.

    Left open and chosen here:
        - S = 60 (the release does not fix it; meb's RCN-A setting; at 60 px the plain and
          RCN-A/S pools divide evenly, 14 -> 7).
        - What the three image channels are: u, v and optical strain (the MEGC 2019 flow
          images of the STSTNet authors, one of whom, Khor, is a co-author), min-max scaled
          per sample and channel (`MinMaxScaling(1)`, see the module docstring).
        - RCN-A's 0/0 for a constant activation map gives 0 instead of NaN.
        - `filters` must be a multiple of 4 for `rcn_w` (the release needs F/2 + 2 F/4 = F).

    Checked once against the release (not in the test suite, which has no PyTorch): with
    the same weights and batch-norm statistics, `RecNet`, `RCN_A`, `RCN_S` and `RCN_W` of
    the release give the logits of these models to within 1e-6 in inference.

    A tied layer is called more than once, so its `output` is that of its first call; take
    a block's `*_pool` layer (after the last call) as a Grad-CAM target.

    Parameters (S does not matter): stem 76 F + 4 F, block 10 F^2 + 2 F + 8 F (the 3 x 3
    counted once), classifier P^2 F K + K: 59,268 at F = 64, P = 7, K = 4 for rcn, rcn_a
    and rcn_s; rcn_w's streams (2048) replace the stem (5120): 56,196.

    Args:
        num_classes: classes (3 in the paper's MEGC 2019 setting).
        image_size: input size S.
        variant: one of `RCN_VARIANTS`.
        filters: feature maps F.
        pool_size: side P of the adaptive average pooling.
        dropout: dropout rate after the stem (streams) and each block.
        channels: flow channels read, in order.
        weight_decay: coupled L2 decay on the kernels (0 in `ModelTrain_Final.py`; meb uses
            5e-4).
        name: model name (default: the variant).
        num_blocks: recurrent (or dense) blocks, each halving the size.
        image_scale: top of `MinMaxScaling`'s range, or None for raw flow.

    Raises:
        ValueError: an unknown variant (the message lists `RCN_VARIANTS`) or channel, or
            `filters` not a multiple of 4 for `rcn_w`.
    """
    if variant not in RCN_VARIANTS:
        raise ValueError(f"unknown RCN variant {variant!r}; known: {', '.join(RCN_VARIANTS)}")
    if variant == "rcn_w" and filters % 4:
        raise ValueError(f"rcn_w needs filters divisible by 4 (F/2 + F/4 + F/4), got {filters}")
    if filters < 1 or pool_size < 1 or num_blocks < 1:
        raise ValueError(f"filters {filters}, pool_size {pool_size} and num_blocks "
                         f"{num_blocks} must be positive")
    channels = _check_channels(channels)
    reg = _l2(weight_decay)
    inputs, x = _flow_input(image_size, channels, image_scale)
    if variant == "rcn_w":
        x = _rcn_wide_streams(x, filters, reg, dropout)
    else:
        x = _ConvBNReLU(filters, 5, "stem", reg, len(channels), padding="valid")(x)
        x = _downsample(x, "stem", dropout)
    guide = (AdaptiveAveragePooling2D(pool_size, name="attention_pool")(x)
             if variant == "rcn_a" else None)
    block, prefix = (_dense_block, "dense") if variant == "rcn_s" else (_rcl_block, "rcl")
    for index in range(1, num_blocks + 1):
        x = block(x, filters, f"{prefix}_{index}", reg, dropout)
    x = AdaptiveAveragePooling2D(pool_size, name="adaptive_pool")(x)
    if variant == "rcn_a":
        x = CAMAttentionDense(num_classes, kernel_regularizer=reg, name="classifier")([guide, x])
    else:
        x = keras.layers.Flatten(name="flatten")(x)
        x = keras.layers.Dense(num_classes, kernel_regularizer=reg, name="classifier",
                               kernel_initializer=keras.initializers.RandomNormal(stddev=0.01),
                               bias_initializer="zeros")(x)
    outputs = keras.layers.Softmax(name="probabilities", dtype="float32")(x)
    return keras.Model(inputs, outputs, name=name or variant)


STRCN_POOLS = (4, 4, 2, 2)
"""Max-pool sizes (= strides) after conv1 and after sections 2, 3 and 4 (`strcnInit.m`)."""


def build_strcn(num_classes: int, image_size: int = 300, channels=("u", "v"),
                filters: int = 512, weight_decay: float = 5e-4, name: str = "strcn_g", *,
                depth: int = 3, conv1_scale: float = 0.01,
                image_scale: float | None = None,
                appearance_columns: int | None = None) -> keras.Model:
    """STRCN-G (Xia et al., IEEE TMM 2020): the geometric spatiotemporal recurrent
    convolutional network of `strcnInit.m`, on the raw onset -> apex flow.

    Input `flow` `[batch, S, S, 3]` (raw flow, `FLOW_CHANNELS`); output `probabilities`
    `[batch, num_classes]`. Layers (MatConvNet names) and output shapes at S = 300,
    F = `filters` = 512; every convolution is "same", stride 1, without bias, followed by
    batch norm and ReLU:

        channels               u, v                                    300 x 300 x 2
        conv1_conv/bn/relu     3 x 3 (`ScaledConv2D`, see below)       300 x 300 x F
        conv1_pool             max 4 x 4, stride 4                      75 x  75 x F
        rconv2_1..3, rconv2_pool    section 2, max 4 x 4               18 x  18 x F
        rconv3_1..3, rconv3_pool    section 3, max 2 x 2                9 x   9 x F
        rconv4_1..3, rconv4_pool    section 4, max 2 x 2                4 x   4 x F
        prediction_avg         global average pooling                  F
        prediction             1 x 1 convolution (dense) with bias     num_classes
        probabilities          softmax

    A section of depth 3 on its input x: `y1 = c1(x)` (1 x 1, `rconvS_1`),
    `y2 = c2(y1 + x)` (3 x 3, `rconvS_2`), `y3 = c3(y2 + x)` (3 x 3, `rconvS_3`), the sums
    `rconvS_1_sum`, `rconvS_2_sum`; every step has its own weights (untied).

    From `strcnInit.m`: 512 maps (`opts.maps`), depth 3 (`opts.layerDepth`), the 2-channel
    input, pad (k - 1) / 2 and no bias in every conv, BN epsilon 1e-5 with moments learning
    rate 0.3 (Keras momentum 0.7), unpadded max pools 4, 4, 2, 2 (MatConvNet rounds down,
    as "valid"), average pooling over the whole final map, the 1 x 1 `prediction` conv
    with bias, softmax log-loss, no dropout. Initialisation: MatConvNet's `initParams`
    (normal, std sqrt(2 / fan_in), zero biases), then conv1's filters divided by 100 and
    their learning rate by 100^2; `ScaledConv2D(kernel_scale=conv1_scale)` reproduces both
    under SGD (with its kernel penalty scaled by `conv1_scale ** 2` to match the decay of
    the divided learning rate). From `ExtractFlow.m`: raw u, v (Classic+NL) between onset
    and apex frames resized to 300 x 245 (rows x columns), no normalisation.
    Training (not part of the model, `strcnInit.m`): SGD lr 1e-3, momentum 0.9, batch 10.

    Paper vs release and choices:
        - A square input: S = 300, the paper's height (245 wide in the paper; the
          cross-database code uses 220 x 200); the network takes any S >= 64 and the
          parameters do not depend on it.
        - Weight decay: the default 5e-4 is that of `rcnnTrain.m` (line 42), released in
          the group's CrossDBRec-MicroExpressionRec repository; `strcnInit.m` writes
          `trainOpts.weightDecay = 1e-4` into options `rcnnTrain.m` does not read.
          MatConvNet also decays the BN parameters; here only the kernels are penalised.

    Parameters: 18 F conv1 + 4 F BN, per section 19 F^2 + 12 F, prediction (F + 1) K:
    14,973,956 at F = 512, K = 4.

    Args:
        num_classes: classes (3 in `strcnInit.m`, 4 in `strcnInit_balanced.m`).
        image_size: input size S (>= 64).
        channels: flow channels read (u, v for STRCN-G).
        filters: feature maps F of every layer.
        weight_decay: coupled L2 decay on the kernels.
        name: model name.
        depth: layers per section (1 x 1, then 3 x 3 with the section input added).
        conv1_scale: conv1's initialisation and square-root learning-rate factor (1/100).
        image_scale: None (raw flow, as the release), or a `MinMaxScaling` range.
        appearance_columns: STRCN-A instead: the input is `appearance` `[batch, P, C, 1]`,
            an appearance matrix of C = `appearance_columns` columns (one per resampled
            frame) and any number P >= 64 of rows (the masked facial pixels,
            `tfmer.appearance`); `image_size`, `channels` and `image_scale` are unused.
            The network is otherwise the same (`strcnInit.m` serves both).

    Raises:
        ValueError: an unknown channel, `image_size` (or `appearance_columns`) below 64, or
            `depth` / `filters` < 1.
    """
    if depth < 1 or filters < 1:
        raise ValueError(f"depth {depth} and filters {filters} must be positive")
    minimum = int(np.prod(STRCN_POOLS))
    size = image_size if appearance_columns is None else appearance_columns
    if size < minimum:
        raise ValueError(f"STRCN needs image_size (or appearance_columns) >= {minimum} "
                         f"(pools {STRCN_POOLS}), got {size}")
    he_normal = keras.initializers.VarianceScaling(2.0, mode="fan_in",
                                                   distribution="untruncated_normal")

    def conv_bn_relu(x, kernel_size, name):
        x = keras.layers.Conv2D(filters, kernel_size, padding="same", use_bias=False,
                                kernel_initializer=he_normal,
                                kernel_regularizer=_l2(weight_decay), name=f"{name}_conv")(x)
        x = keras.layers.BatchNormalization(name=f"{name}_bn", **_MATCONVNET_BN)(x)
        return keras.layers.ReLU(name=f"{name}_relu")(x)

    if appearance_columns is None:
        inputs, x = _flow_input(image_size, _check_channels(channels), image_scale)
    else:
        inputs = x = keras.Input([None, appearance_columns, 1], name=APPEARANCE_INPUT)
    x = ScaledConv2D(filters, 3, padding="same", use_bias=False, kernel_scale=conv1_scale,
                     kernel_initializer=he_normal, name="conv1_conv",
                     kernel_regularizer=_l2(weight_decay, conv1_scale ** 2))(x)
    x = keras.layers.BatchNormalization(name="conv1_bn", **_MATCONVNET_BN)(x)
    x = keras.layers.ReLU(name="conv1_relu")(x)
    x = keras.layers.MaxPooling2D(STRCN_POOLS[0], padding="valid", name="conv1_pool")(x)
    for section, pool in zip((2, 3, 4), STRCN_POOLS[1:]):
        section_input = x
        for step in range(1, depth + 1):
            layer_name = f"rconv{section}_{step}"
            y = conv_bn_relu(x, 1 if step == 1 else 3, layer_name)
            if step == depth:
                x = y
            else:
                x = keras.layers.Add(name=f"{layer_name}_sum")([y, section_input])
        x = keras.layers.MaxPooling2D(pool, padding="valid", name=f"rconv{section}_pool")(x)
    x = keras.layers.GlobalAveragePooling2D(name="prediction_avg")(x)
    x = keras.layers.Dense(num_classes, kernel_initializer=he_normal,
                           kernel_regularizer=_l2(weight_decay), name="prediction")(x)
    outputs = keras.layers.Softmax(name="probabilities", dtype="float32")(x)
    return keras.Model(inputs, outputs, name=name)
