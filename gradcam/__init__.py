"""Grad-CAM heatmaps, layer scoring and selection, reports (`python -m gradcam`)."""

from tfmer import cli

cli.import_tensorflow()  # before `gradcam.core` loads it: no start-up lines (TFMER_TF_LOGS=1)

from gradcam.core import conv_layer_names, grad_cam, grad_cams, overlay  # noqa: E402

__all__ = ["conv_layer_names", "grad_cam", "grad_cams", "overlay"]
