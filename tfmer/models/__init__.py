"""Model builders: backbones and the paper-faithful networks."""

from tfmer.models.tlcnn import (
    C3D_INPUT_SIZE,
    TLCNN_FEATURE_LAYERS,
    TLCNN_INPUT_SHAPE,
    LocalResponseNormalization,
    build_c3d,
    build_svm_clip_model,
    build_tlcnn_clip_model,
    build_tlcnn_cnn,
    tlcnn_feature_model,
    tlcnn_trunk,
)
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
    "C3D_INPUT_SIZE",
    "LocalResponseNormalization",
    "TLCNN_FEATURE_LAYERS",
    "TLCNN_INPUT_SHAPE",
    "VGGFACE2_BLOCK_OUTPUTS",
    "VGGFACE2_MEAN_BGR",
    "VGGFace2Preprocess",
    "build_c3d",
    "build_svm_clip_model",
    "build_tlcnn_clip_model",
    "build_tlcnn_cnn",
    "keras_vggface_name",
    "load_vggface2_weights",
    "tlcnn_feature_model",
    "tlcnn_trunk",
    "vggface2_preprocess",
    "vggface2_resnet50",
]
