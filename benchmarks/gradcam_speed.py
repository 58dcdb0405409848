"""How long does Grad-CAM layer scoring take on the real network?

Grad-CAM heatmaps of every convolutional layer and residual block output of the VGGFace2
ResNet-50 (69 layers) with a 4-class softmax head, for 16 frames at 224 px, through
`gradcam.grad_cams` (one forward and one backward pass per batch for all layers). Target
(issue 4): at most 60 s on the 2-core CPU.

    python benchmarks/gradcam_speed.py [--frames 16] [--batch 8]
"""

from __future__ import annotations

import argparse
import time

import keras
import numpy as np

import gradcam
from tfmer.models import vggface2_resnet50


def peak_rss_gib() -> float:
    with open("/proc/self/status") as f:
        peak = next(line for line in f if line.startswith("VmHWM:"))
    return int(peak.split()[1]) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()
    backbone = vggface2_resnet50(include_top=False, pooling="avg", input_shape=(224, 224, 3))
    inputs = keras.Input((224, 224, 3))
    model = keras.Model(inputs, keras.layers.Dense(4, activation="softmax")(backbone(inputs)))
    frames = np.random.default_rng(0).uniform(0, 255, (args.frames, 224, 224, 3))
    layers = gradcam.conv_layer_names(model)
    started = time.perf_counter()
    maps = gradcam.grad_cams(model, frames.astype("float32"), layers, batch_size=args.batch)
    elapsed = time.perf_counter() - started
    assert len(maps) == len(layers)
    print(f"{len(layers)} layers x {args.frames} frames at 224 px (batches of {args.batch}): "
          f"{elapsed:.1f} s (target <= 60 s: ratio {elapsed / 60:.2f}); "
          f"peak memory {peak_rss_gib():.2f} GiB")


if __name__ == "__main__":
    main()
