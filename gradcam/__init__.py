"""Grad-CAM heatmaps, layer scoring and selection, reports (`python -m gradcam`)."""

from gradcam.core import conv_layer_names, grad_cam, grad_cams, overlay

__all__ = ["conv_layer_names", "grad_cam", "grad_cams", "overlay"]
