"""Dense optical flow and optical strain between two frames (OpenCV), free of TensorFlow:
the converter stores each clip's onset -> apex motion with them (`data_prep.flow`), and the
handcrafted features that need other flow (MDMO's first frame -> every frame, FDM's
frame -> next frame, `tfmer.handcrafted`) compute it with them.

* Flow (OpenCV, `opencv-contrib-python-headless`), on grey frames, `u` horizontal (positive
  to the right) and `v` vertical (positive downwards) in pixels of the stored frames:
  `tvl1` Dual TV-L1 (Zach, Pock, Bischof 2007; `cv2.optflow.DualTVL1OpticalFlow`, OpenCV's
  defaults: tau 0.25, lambda 0.15, theta 0.3, 5 scales, warps 5, epsilon 0.01), the flow
  STSTNet, OFF-ApexNet and the RCNs were trained on; `farneback` (Farneback 2003, the
  parameters of OpenCV's own example: pyramid scale 0.5, 3 levels, window 15, 3 iterations,
  poly_n 5, sigma 1.2); `dis` (Kroeger et al. 2016, the `MEDIUM` preset).
* Optical strain magnitude (Shreve et al. 2011; Liong et al. 2019, Eq. 3-4):
  `|e| = sqrt(exx^2 + eyy^2 + 2 exy^2)`, `exx = du/dx`, `eyy = dv/dy`,
  `exy = (du/dy + dv/dx) / 2`, the derivatives by central differences (one-sided at the
  border, `numpy.gradient`).

TV-L1 values differ between OpenCV major versions by up to ~0.65 px (`../shared/RESEARCH.md`):
tests check flows against analytic motion with tolerances, never against stored TV-L1 values.
"""

from __future__ import annotations

import cv2
import numpy as np

from tfmer.config import FLOW_METHODS

METHODS = FLOW_METHODS
"""The flow methods, `tvl1`, `farneback` and `dis`."""


def optical_flow(first: np.ndarray, second: np.ndarray, method: str = "tvl1") -> np.ndarray:
    """Dense optical flow from `first` to `second`.

    Args:
        first, second: RGB uint8 frames `[H, W, 3]` of the same size.
        method: one of `METHODS`.

    Returns:
        float32 `[H, W, 2]`: `(u, v)` in pixels, the displacement of each pixel of `first`
        (positive right and down): `first[y, x]` is seen at `second[y + v, x + u]`.

    Raises:
        ValueError: an unknown method (listing the known ones).
    """
    if method not in METHODS:
        raise ValueError(f"unknown flow method {method!r}; known: {', '.join(METHODS)}")
    grey = [cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)
            for frame in (first, second)]
    if method == "tvl1":
        flow = cv2.optflow.DualTVL1OpticalFlow_create().calc(grey[0], grey[1], None)
    elif method == "farneback":
        flow = cv2.calcOpticalFlowFarneback(grey[0], grey[1], None, pyr_scale=0.5, levels=3,
                                            winsize=15, iterations=3, poly_n=5,
                                            poly_sigma=1.2, flags=0)
    else:
        flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM).calc(
            grey[0], grey[1], None)
    return flow.astype(np.float32)


def optical_strain(flow: np.ndarray) -> np.ndarray:
    """Optical strain magnitude of a flow field.

    Args:
        flow: `[H, W, 2]` `(u, v)` in pixels.

    Returns:
        float32 `[H, W]`: `sqrt(exx^2 + eyy^2 + 2 exy^2)` (the module docstring).
    """
    u, v = flow[..., 0].astype(np.float64), flow[..., 1].astype(np.float64)
    du_dy, du_dx = np.gradient(u)
    dv_dy, dv_dx = np.gradient(v)
    shear = (du_dy + dv_dx) / 2
    return np.sqrt(du_dx ** 2 + dv_dy ** 2 + 2 * shear ** 2).astype(np.float32)


def motion(first: np.ndarray, second: np.ndarray, method: str = "tvl1") -> np.ndarray:
    """The stored motion of a clip: float32 `[H, W, 3]`, channels u, v and strain
    magnitude (`optical_flow`, `optical_strain`)."""
    flow = optical_flow(first, second, method)
    return np.concatenate([flow, optical_strain(flow)[..., None]], axis=-1)
