"""Grad-CAM heatmaps, layer scoring and selection, reports (`python -m gradcam`)."""
