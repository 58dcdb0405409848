"""Model builders: backbones and the paper-faithful networks."""

from tfmer.models.vggface import (
    VGGFACE2_BLOCK_OUTPUTS,
    VGGFACE2_MEAN_BGR,
    VGGFace2Preprocess,
    keras_vggface_name,
    load_vggface2_weights,
    vggface2_preprocess,
    vggface2_resnet50,
)

__all__ = [
    "VGGFACE2_BLOCK_OUTPUTS",
    "VGGFACE2_MEAN_BGR",
    "VGGFace2Preprocess",
    "keras_vggface_name",
    "load_vggface2_weights",
    "vggface2_preprocess",
    "vggface2_resnet50",
]
