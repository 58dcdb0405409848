"""Every custom Keras layer of tfmer round-trips through its config and a saved model."""

import keras
import numpy as np
import pytest

from tfmer.models.clip import FoldedTimeDistributed
from tfmer.models.motion import (
    AdaptiveAveragePooling2D,
    CAMAttentionDense,
    FlowChannels,
    MinMaxScaling,
    ScaledConv2D,
)
from tfmer.models.tlcnn import LocalResponseNormalization
from tfmer.models.vggface import VGGFace2Preprocess
from tests.helpers import assert_layer_round_trips


def _frame_model():
    image = keras.Input((8, 8, 3), name="image")
    features = keras.layers.Conv2D(4, 3, name="conv")(image)
    features = keras.layers.GlobalAveragePooling2D(name="pool")(features)
    return keras.Model(image, features, name="frame_model")


LAYERS = {
    "AdaptiveAveragePooling2D": (lambda: AdaptiveAveragePooling2D((3, 2), name="adaptive"),
                                 (2, 7, 5, 3)),
    "CAMAttentionDense": (lambda: CAMAttentionDense(3, name="cam_attention"), (2, 3, 3, 4)),
    "FlowChannels": (lambda: FlowChannels(("strain", "u"), name="channels"), (2, 4, 4, 3)),
    "MinMaxScaling": (lambda: MinMaxScaling(255.0, name="minmax"), (2, 4, 4, 3)),
    "ScaledConv2D": (lambda: ScaledConv2D(4, 3, kernel_scale=0.01, name="scaled_conv"),
                     (2, 6, 6, 3)),
    "FoldedTimeDistributed": (lambda: FoldedTimeDistributed(_frame_model(), name="folded"),
                              (2, 3, 8, 8, 3)),
    "LocalResponseNormalization": (
        lambda: LocalResponseNormalization(local_size=3, alpha=0.1, beta=0.5, k=2.0,
                                           name="lrn"), (2, 4, 4, 6)),
    "VGGFace2Preprocess": (lambda: VGGFace2Preprocess(name="preprocess"), (2, 4, 4, 3)),
}


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_custom_layer_round_trips(name, tmp_path):
    make, shape = LAYERS[name]
    inputs = np.random.default_rng(0).uniform(0, 255, shape).astype(np.float32)
    assert_layer_round_trips(make(), inputs, tmp_path)


def test_every_registered_tfmer_layer_is_tested():
    registered = {key.split(">", 1)[1] for key in keras.saving.get_custom_objects()
                  if key.startswith("tfmer>")}
    assert registered == set(LAYERS)
