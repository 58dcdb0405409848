"""How accurate and how costly is the converter's onset -> apex flow (`data_prep.flow`)?

A real face photo (matplotlib's Grace Hopper portrait, cropped square) at 128 and 224 px is
moved by a known sub-pixel translation (0.6 px right, 0.4 px up) and, separately, scaled
by 2 % about its centre (bicubic warps). For each method: the mean end-point error of the
translation's flow (target <= 0.15 px), the median optical strain of the scaling against
its analytic value sqrt(2) x 0.02 = 0.0283 (u = s x, v = s y: exx = eyy = s, exy = 0), both
over the interior (an eighth of the side away from the border), and the time of one flow
(median of 5) on one core.

    python benchmarks/flow_accuracy.py
"""

from __future__ import annotations

import statistics
import time

import cv2
import matplotlib.cbook
import numpy as np

from data_prep import flow

SHIFT = (0.6, -0.4)
SCALE = 0.02
EPE_TARGET = 0.15


def face(size: int) -> np.ndarray:
    photo = cv2.imread(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    photo = cv2.cvtColor(photo[20:492, 40:472], cv2.COLOR_BGR2RGB)
    return cv2.resize(photo, (size, size), interpolation=cv2.INTER_AREA)


def warp(image: np.ndarray, matrix) -> np.ndarray:
    size = image.shape[0]
    return cv2.warpAffine(image, np.float32(matrix), (size, size), flags=cv2.INTER_CUBIC,
                          borderMode=cv2.BORDER_REFLECT)


def main() -> None:
    cv2.setNumThreads(1)  # as in a converter worker
    analytic = np.sqrt(2) * SCALE
    print(f"shift {SHIFT} px, scaling {SCALE:.0%} (analytic strain {analytic:.4f}); "
          f"interior of the frame; one core")
    for size in (128, 224):
        image = face(size)
        moved = warp(image, [[1, 0, SHIFT[0]], [0, 1, SHIFT[1]]])
        centre = (size - 1) / 2
        scaled = warp(image, [[1 + SCALE, 0, -SCALE * centre], [0, 1 + SCALE, -SCALE * centre]])
        inside = slice(size // 8, -size // 8)
        for method in flow.METHODS:
            times = []
            for _ in range(5):
                started = time.perf_counter()
                found = flow.optical_flow(image, moved, method)
                times.append(time.perf_counter() - started)
            error = np.hypot(found[..., 0] - SHIFT[0], found[..., 1] - SHIFT[1])[inside, inside]
            strain = flow.optical_strain(flow.optical_flow(image, scaled, method))
            median = float(np.median(strain[inside, inside]))
            print(f"  {size} px {method:<9}: end-point error {error.mean():.3f} px (target <= "
                  f"{EPE_TARGET}: ratio {error.mean() / EPE_TARGET:.2f}); strain median "
                  f"{median:.4f} ({median / analytic:.2f} of analytic); "
                  f"{statistics.median(times) * 1000:.0f} ms per flow")


if __name__ == "__main__":
    main()
