"""The networks of TLCNN (Wang et al. 2018, "Micro-expression recognition with small sample
size by transferring long-term convolutional neural network", Neurocomputing).

`build_tlcnn_cnn` is the frame CNN of Section 3.4 (Fig. 4), an AlexNet-like Caffe net:

    layer  op                                          output [batch, H, W, C] (227 input)
    preprocess  RGB 0..255 -> (x - 127.5) / 127.5      227 x 227 x 3
    C1     96 @ 7x7, stride 2, no pad, ReLU            111 x 111 x 96
    M1     max 3x3, stride 2                            55 x  55 x 96
    N1     local response normalisation (n=5)           55 x  55 x 96
    C2     384 @ 5x5, stride 2, pad 2 (C2_pad), ReLU    28 x  28 x 384
    M2     max 3x3, stride 2                            13 x  13 x 384
    N2     local response normalisation (n=5)           13 x  13 x 384
    C3     512 @ 3x3, stride 1, pad 1, ReLU             13 x  13 x 512
    C4     512 @ 3x3, stride 1, pad 1, ReLU             13 x  13 x 512
    C5     384 @ 3x3, stride 1, pad 1, ReLU             13 x  13 x 384
    M5     max 3x3, stride 2                             6 x   6 x 384
    flatten                                            13824
    FC6    4096, ReLU; D6 dropout 0.5                  4096
    FC7    4096, ReLU; D7 dropout 0.5                  4096
    FC8    num_classes (logits)                        num_classes
    probabilities  softmax                             num_classes

The paper gives these sizes (channels first: "96 x 55 x 55" after M1, "384 x 13 x 13" after
the second block); they need floor-mode ("valid") pooling, which the layers use. The order
C -> ReLU -> M -> LRN follows the text ("After activated by the ReLU layer, pooled (M2) and
response-normalized"). It is trained on expression images (Section 4.1, 9 classes), then on
micro-expression frames (Section 4.2, 4 classes).

`build_tlcnn_clip_model` is the long-term model of Section 3.5 (Fig. 6): the CNN up to FC6
applied to every frame, an LSTM over the frame features, a class layer (FC8) and a softmax,
trained jointly with the CNN on 16-frame windows (Section 4.2).

`build_c3d` is the 3D-CNN baseline of Section 4.2: the five-convolution C3D of Tran et al.
2015 (Section 3.2, "common network settings"), on 32 or 64 TIM frames of 128 x 171.

Pixel preprocessing (not given in the paper; Caffe nets subtract a mean image or mean
values): every model takes RGB in 0..255 and its first layer `preprocess`
(`keras.layers.Rescaling`) maps it to (x - 127.5) / 127.5 in [-1, 1], centred like a mean
subtraction and scaled to suit Keras' Glorot initialisers.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from tfmer.models.clip import BACKBONE_LAYER, FoldedTimeDistributed

TLCNN_INPUT_SHAPE = (227, 227, 3)
"""Input of the frame CNN: 227 x 227 RGB crops of 240 x 320 frames (Section 3.4)."""

TLCNN_FEATURE_LAYERS = {"FC6": "D6", "FC7": "D7"}
"""Feature layer accepted by `build_tlcnn_clip_model` -> the CNN layer its features are
taken from: the dropout after that fully connected layer (Caffe applies ReLU and dropout in
place on the `fc6` blob, so LRCN-style nets feed the LSTM the dropped-out `fc6`)."""

TLCNN_TRANSFERRED_LAYER = "D7"
"""The end of `tlcnn_trunk`: the dropout after FC7."""
SVM_FEATURES = "svm_features"
"""The layer of `build_svm_clip_model` giving the SVM's input, `[batch, D]`."""
SVM_LAYER = "svm"
"""The dense layer of `build_svm_clip_model` holding the standardisation and the SVM."""
C3D_INPUT_SIZE = (128, 171)
"""Frame height and width of the 3D-CNN baseline (Section 4.2)."""

_PIXEL_SCALE = 1.0 / 127.5
_PIXEL_OFFSET = -1.0


def _preprocess(name="preprocess"):
    """RGB 0..255 -> (x - 127.5) / 127.5: a built-in, serializable `Rescaling` layer."""
    return keras.layers.Rescaling(_PIXEL_SCALE, offset=_PIXEL_OFFSET, name=name)


@keras.saving.register_keras_serializable(package="tfmer")
class LocalResponseNormalization(keras.layers.Layer):
    """Caffe / AlexNet local response normalisation across channels.

    For input `a` `[batch, H, W, C]` (channels last) the output at channel c is

        b_c = a_c / (k + alpha / n * sum_{c' = c - n//2}^{c + n//2} a_{c'}^2) ** beta

    with channels outside 0..C-1 left out of the sum (Caffe pads them with zeros). This is
    `tf.nn.local_response_normalization` with `depth_radius = n // 2`, `alpha = alpha / n`
    (Caffe divides alpha by the window size, TensorFlow does not) and `bias = k`.

    Args:
        local_size: window size n over channels; odd (an even window is not centred and
            Caffe and TensorFlow would disagree).
        alpha: scale alpha (Caffe `alpha`, before the division by n).
        beta: exponent beta.
        k: additive constant k (Caffe `k`).
        **kwargs: base layer arguments (name, dtype, ...).

    Defaults are Caffe's (`local_size=5, alpha=1e-4, beta=0.75, k=1`), as in AlexNet and
    CaffeNet.
    """

    def __init__(self, local_size: int = 5, alpha: float = 1e-4, beta: float = 0.75,
                 k: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        if int(local_size) != local_size or local_size < 1 or local_size % 2 == 0:
            raise ValueError(f"LocalResponseNormalization local_size must be a positive odd "
                             f"integer, got {local_size!r}")
        self.local_size = int(local_size)
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.k = float(k)

    def call(self, inputs):
        return tf.nn.local_response_normalization(
            inputs, depth_radius=self.local_size // 2, bias=self.k,
            alpha=self.alpha / self.local_size, beta=self.beta)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(local_size=self.local_size, alpha=self.alpha, beta=self.beta, k=self.k)
        return config


def build_tlcnn_cnn(num_classes: int, input_shape=TLCNN_INPUT_SHAPE, dropout: float = 0.5,
                    fc_units=(4096, 4096), name: str = "tlcnn_cnn") -> keras.Model:
    """The frame CNN of Section 3.4: five convolutions, three fully connected layers.

    Input `image` float32 `[batch, 227, 227, 3]` RGB in 0..255; output `probabilities`
    `[batch, num_classes]`. Layer outputs for a 227 x 227 input (see the module docstring):
    C1 `[b, 111, 111, 96]`, M1/N1 `[b, 55, 55, 96]`, C2 `[b, 28, 28, 384]`,
    M2/N2 `[b, 13, 13, 384]`, C3/C4 `[b, 13, 13, 512]`, C5 `[b, 13, 13, 384]`,
    M5 `[b, 6, 6, 384]`, FC6/FC7 `[b, 4096]`, FC8 (logits) `[b, num_classes]`.

    C2's pad of 2 pixels is an explicit symmetric `ZeroPadding2D` (`C2_pad`), as in Caffe;
    Keras "same" padding with stride 2 pads asymmetrically for even inputs. C3-C5 use
    "same", which is a pad of 1 for 3 x 3 kernels at stride 1.

    Args:
        num_classes: width of FC8 and the softmax (9 expressions in Section 4.1, 4
            micro-expression classes in Section 4.2).
        input_shape: `(H, W, 3)` of the input crops.
        dropout: dropout rate after FC6 and FC7 (0.5 in the paper).
        fc_units: widths of FC6 and FC7 (4096 each in the paper; smaller for smoke runs).
        name: model name.

    Raises:
        ValueError: `fc_units` is not two positive widths.
    """
    if len(fc_units) != 2 or min(fc_units) < 1:
        raise ValueError(f"fc_units {tuple(fc_units)} must be the two widths of FC6 and FC7")
    inputs = keras.Input(tuple(input_shape), name="image")
    x = _preprocess()(inputs)
    x = keras.layers.Conv2D(96, 7, strides=2, padding="valid", activation="relu",
                            name="C1")(x)
    x = keras.layers.MaxPooling2D(3, strides=2, padding="valid", name="M1")(x)
    x = LocalResponseNormalization(name="N1")(x)
    x = keras.layers.ZeroPadding2D(2, name="C2_pad")(x)
    x = keras.layers.Conv2D(384, 5, strides=2, padding="valid", activation="relu",
                            name="C2")(x)
    x = keras.layers.MaxPooling2D(3, strides=2, padding="valid", name="M2")(x)
    x = LocalResponseNormalization(name="N2")(x)
    for layer_name, filters in (("C3", 512), ("C4", 512), ("C5", 384)):
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu",
                                name=layer_name)(x)
    x = keras.layers.MaxPooling2D(3, strides=2, padding="valid", name="M5")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    for index, units in zip((6, 7), fc_units):
        x = keras.layers.Dense(int(units), activation="relu", name=f"FC{index}")(x)
        x = keras.layers.Dropout(dropout, name=f"D{index}")(x)
    x = keras.layers.Dense(num_classes, name="FC8")(x)
    outputs = keras.layers.Softmax(name="probabilities", dtype="float32")(x)
    return keras.Model(inputs, outputs, name=name)


def tlcnn_feature_model(cnn: keras.Model, feature_layer: str = "FC6") -> keras.Model:
    """The frame CNN truncated after `feature_layer`, sharing its layers and weights.

    Input `[batch, H, W, 3]` RGB 0..255 (the CNN's input, preprocessing included); output
    `[batch, 4096]`: the ReLU output of `feature_layer` after its dropout (active in
    training only).

    Args:
        cnn: a model built by `build_tlcnn_cnn` (or with the same layer names).
        feature_layer: `FC6` (Section 3.5) or `FC7`.

    Raises:
        ValueError: `feature_layer` is not one of `TLCNN_FEATURE_LAYERS` (the message lists
            them), or `cnn` lacks the layer.
    """
    if feature_layer not in TLCNN_FEATURE_LAYERS:
        raise ValueError(f"unknown TLCNN feature_layer {feature_layer!r}; valid: "
                         + ", ".join(TLCNN_FEATURE_LAYERS))
    output_layer = TLCNN_FEATURE_LAYERS[feature_layer]
    names = [layer.name for layer in cnn.layers]
    if output_layer not in names:
        raise ValueError(f"model {cnn.name!r} has no layer {output_layer!r} (the dropout "
                         f"after {feature_layer}); build it with build_tlcnn_cnn. Its layers: "
                         + ", ".join(names))
    return keras.Model(cnn.inputs, cnn.get_layer(output_layer).output,
                       name=f"{cnn.name}_{feature_layer}")


def build_tlcnn_clip_model(cnn: keras.Model, num_classes: int, *, feature_layer: str = "FC6",
                           lstm_units: int = 256, dropout: float = 0.5,
                           temporal_pooling: str = "mean", num_frames: int | None = None,
                           name: str = "tlcnn") -> keras.Model:
    """The long-term model of Section 3.5: CNN features per frame, an LSTM, FC8, softmax.

    Input `frames` float32 `[batch, T, H, W, 3]` RGB in 0..255 (T = `num_frames`, None for
    any length; H, W those of `cnn`); output `probabilities` `[batch, num_classes]`.

        backbone       `FoldedTimeDistributed(tlcnn_feature_model(cnn, feature_layer))`
                       -> `[batch, T, 4096]`; the CNN's layers and weights are shared, so
                       the frame-trained weights (stage 2) are the starting point and
                       joint training updates `cnn` too
        lstm           LSTM `lstm_units` -> `[batch, T, units]` ("mean") or `[batch, units]`
                       ("last")
        lstm_dropout   dropout `dropout`
        FC8_lstm       Dense `num_classes`, logits (per step for "mean")
        frame_mean     ("mean" only) logits averaged over time -> `[batch, num_classes]`
        probabilities  softmax

    Choices the paper leaves open, following LRCN (Donahue et al. 2015), whose Caffe
    activity-recognition net TLCNN's setup (227 crops of 240 x 320, fc6 features, 16-frame
    windows) matches: 256 LSTM units; dropout 0.5 on the LSTM output; the class layer on
    every step ("all z_t are mapped to labels ... by FC8"). LRCN averages the per-step
    softmax at test time; here the per-step logits are averaged before one softmax so that
    training and evaluation use one output. `temporal_pooling="last"` classifies h_T only.

    The CNN's dropouts D6 (and D7) stay in the graph and are active in training.

    Args:
        cnn: frame CNN from `build_tlcnn_cnn`, usually trained on frames first.
        num_classes: classes of the softmax.
        feature_layer: `FC6` (the paper) or `FC7`.
        lstm_units: LSTM hidden units (not given in the paper; LRCN used 256).
        dropout: dropout rate on the LSTM output.
        temporal_pooling: `mean` (FC8 on every step, logits averaged) or `last`.
        num_frames: fixed T, or None for any length.
        name: model name.

    Raises:
        ValueError: unknown `feature_layer` (the message lists the valid ones) or
            `temporal_pooling`.
    """
    if temporal_pooling not in ("mean", "last"):
        raise ValueError(f"unknown temporal_pooling {temporal_pooling!r}; valid: mean, last")
    features = tlcnn_feature_model(cnn, feature_layer)
    inputs = keras.Input((num_frames, *cnn.input_shape[1:]), name="frames")
    x = FoldedTimeDistributed(features, name=BACKBONE_LAYER)(inputs)
    mean = temporal_pooling == "mean"
    x = keras.layers.LSTM(lstm_units, return_sequences=mean, name="lstm")(x)
    x = keras.layers.Dropout(dropout, name="lstm_dropout")(x)
    x = keras.layers.Dense(num_classes, name="FC8_lstm")(x)
    if mean:
        x = keras.layers.GlobalAveragePooling1D(name="frame_mean")(x)
    outputs = keras.layers.Softmax(name="probabilities", dtype="float32")(x)
    return keras.Model(inputs, outputs, name=name)


def tlcnn_trunk(cnn: keras.Model) -> keras.Model:
    """The CNN up to `TLCNN_TRANSFERRED_LAYER` (C1..FC7 and their dropouts), sharing its
    layers: the part TLCNN's expression stage hands on to the frames stage (Section 3.3),
    whatever the class counts of the two CNNs (FC8 is not part of it)."""
    return keras.Model(cnn.inputs, cnn.get_layer(TLCNN_TRANSFERRED_LAYER).output,
                       name=f"{cnn.name}_trunk")


def build_svm_clip_model(cnn: keras.Model, num_classes: int, layer: str = "C5",
                         name: str = "c5_svm") -> keras.Model:
    """A linear classifier of the clip mean of a CNN layer (C5+SVM's network form, Section
    4.2): the SVM's weights go into the `SVM_LAYER` dense layer once it is fit.

    Input `frames` float32 `[batch, T, H, W, 3]` RGB in 0..255 (any T); output
    `probabilities` `[batch, num_classes]`:

        backbone        the CNN up to `layer` per frame (shared layers) -> `[B, T, h, w, c]`
        frame_features  flattened -> `[B, T, D]`
        svm_features    mean over the frames -> `[B, D]` (the SVM's input, `SVM_FEATURES`)
        svm             dense `num_classes`: standardisation and SVM folded together
        probabilities   softmax

    Args:
        cnn: the frame CNN (`build_tlcnn_cnn`).
        num_classes: classes.
        layer: the CNN layer whose output is averaged (C5 for C5+SVM).
        name: model name.
    """
    features = keras.Model(cnn.inputs, cnn.get_layer(layer).output, name=f"{cnn.name}_{layer}")
    inputs = keras.Input((None, *cnn.input_shape[1:]), name="frames")
    x = FoldedTimeDistributed(features, name=BACKBONE_LAYER)(inputs)
    x = keras.layers.Reshape((-1, int(np.prod(x.shape[2:]))), name="frame_features")(x)
    x = keras.layers.GlobalAveragePooling1D(name=SVM_FEATURES)(x)
    x = keras.layers.Dense(num_classes, name=SVM_LAYER)(x)
    outputs = keras.layers.Softmax(name="probabilities", dtype="float32")(x)
    return keras.Model(inputs, outputs, name=name)


def build_c3d(num_classes: int, *, num_frames: int, input_size=C3D_INPUT_SIZE,
              dropout: float = 0.5, fc_units=(2048, 2048), name: str = "c3d") -> keras.Model:
    """The 3D-CNN baseline of Section 4.2: a five-convolution C3D (Tran et al. 2015).

    Input `frames` float32 `[batch, num_frames, 128, 171, 3]` RGB in 0..255; output
    `probabilities` `[batch, num_classes]`.

        preprocess     (x - 127.5) / 127.5
        conv1..conv5   64, 128, 256, 256, 256 filters, 3x3x3, stride 1, "same", ReLU
        pool1          max 1x2x2 (time kept)
        pool2..pool5   max 2x2x2
        flatten, fc6 2048 + ReLU + drop6, fc7 2048 + ReLU + drop7, fc8 logits, softmax
        (fc6 and fc7 `fc_units` wide)

    Every pooling uses "same" padding: for 2-wide windows at stride 2 that is ceil(n / 2),
    Caffe's (and C3D's) ceil-mode pooling, and no axis reaches 0 for any T >= 1. Sizes
    `[T, H, W, C]` for 128 x 171 frames: pool1 `[T, 64, 86, 64]`, pool2
    `[T/2, 32, 43, 128]`, pool3 `[T/4, 16, 22, 256]`, pool4 `[T/8, 8, 11, 256]`, pool5
    `[T/16, 4, 6, 256]`: 12288 features for T = 32 (34.0M parameters), 24576 for
    T = 64 (59.2M), most of them in fc6.

    Args:
        num_classes: classes (4 in the paper).
        num_frames: clip length T (32 or 64 with TIM in the paper); fixed, as fc6 needs it.
        input_size: frame `(height, width)`.
        dropout: dropout rate after fc6 and fc7.
        fc_units: widths of fc6 and fc7 (2048 each in the paper).
        name: model name.

    Raises:
        ValueError: `fc_units` is not two positive widths.
    """
    if len(fc_units) != 2 or min(fc_units) < 1:
        raise ValueError(f"fc_units {tuple(fc_units)} must be the two widths of fc6 and fc7")
    height, width = input_size
    inputs = keras.Input((num_frames, height, width, 3), name="frames")
    x = _preprocess()(inputs)
    for index, filters in enumerate((64, 128, 256, 256, 256), start=1):
        x = keras.layers.Conv3D(filters, 3, padding="same", activation="relu",
                                name=f"conv{index}")(x)
        pool = (1, 2, 2) if index == 1 else (2, 2, 2)
        x = keras.layers.MaxPooling3D(pool, strides=pool, padding="same",
                                      name=f"pool{index}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    for index, units in zip((6, 7), fc_units):
        x = keras.layers.Dense(int(units), activation="relu", name=f"fc{index}")(x)
        x = keras.layers.Dropout(dropout, name=f"drop{index}")(x)
    x = keras.layers.Dense(num_classes, name="fc8")(x)
    outputs = keras.layers.Softmax(name="probabilities", dtype="float32")(x)
    return keras.Model(inputs, outputs, name=name)
