"""How fast do raw clips convert, and how much memory does a worker need?

Clips of 640x480 JPEG frames showing a real face (matplotlib's Grace Hopper portrait,
moving a little from frame to frame) go through the whole converter: read, detect the face
and landmarks once per clip, crop, resize to 128 px, TIM to 32 frames, PNG-encode, write
shards; with and without the onset -> apex TV-L1 flow (`--flow tvl1`, the default, and
`--flow none`). Targets (issue 3): at least 150 input frames/s on the 2-core machine, faster
with more workers; a worker holds one clip at a time, under 2 GiB for a 200-frame clip.

    python benchmarks/convert_speed.py [--clips 12] [--frames 100]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import pathlib
import tempfile
import time

import cv2
import matplotlib.cbook
import numpy as np

from data_prep import clip

# `manifest` (and with it TensorFlow) is imported inside the functions: the converter's
# worker processes re-import this module, and workers need no TensorFlow.


def write_clips(root: pathlib.Path, clips: int, frames: int) -> pathlib.Path:
    """`clips` folders of `frames` 640x480 JPEGs with a moving face, and a manifest CSV."""
    photo = cv2.imread(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    photo = cv2.resize(photo, (400, 469), interpolation=cv2.INTER_AREA)
    rng = np.random.default_rng(0)
    lines = ["path,subject,label,fps"]
    for c in range(clips):
        folder = root / f"clip{c:02d}"
        folder.mkdir(parents=True)
        for f in range(frames):
            canvas = np.full((480, 640, 3), 90, np.uint8)
            dx = int(120 + 40 * np.sin(2 * np.pi * (c / clips + f / frames)))
            canvas[5:474, dx:dx + 400] = photo
            noise = rng.integers(-3, 4, canvas.shape)
            canvas = np.clip(canvas.astype(np.int16) + noise, 0, 255).astype(np.uint8)
            cv2.imwrite(str(folder / f"img{f + 1}.jpg"), canvas, [cv2.IMWRITE_JPEG_QUALITY, 90])
        lines.append(f"{folder.name},s{c % 4},happiness,200")
    (root / "manifest.csv").write_text("\n".join(lines) + "\n")
    return root / "manifest.csv"


def convert_rate(csv_path: pathlib.Path, out: pathlib.Path, workers: int, frames: int,
                 flow: str = "tvl1") -> float:
    """Input frames per second of a whole conversion (pool start-up included)."""
    from data_prep import manifest

    options = clip.ConvertOptions(num_frames=32, size=128, crop="detect", workers=workers,
                                  flow=flow, progress=False)
    started = time.perf_counter()
    info = manifest.convert_manifest(csv_path, out, options=options)
    elapsed = time.perf_counter() - started
    assert not info["errors"], info["errors"]
    return info["num_clips"] * frames / elapsed


def _peak_worker(args) -> float:
    """In a fresh process: convert one clip, return the peak resident memory (GiB)."""
    folder, = args
    source = clip.ClipSource("long", "s0", "happiness", folder, label="happiness")
    options = clip.ConvertOptions(num_frames=32, size=128, crop="detect")
    clip.convert_clip(source, "bench", ("happiness",), options)
    with open("/proc/self/status") as f:
        peak = next(line for line in f if line.startswith("VmHWM:"))
    return int(peak.split()[1]) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=12)
    parser.add_argument("--frames", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        csv_path = write_clips(tmp / "raw", args.clips, args.frames)
        print(f"{args.clips} clips x {args.frames} frames of 640x480 JPEG; "
              f"{os.cpu_count()} CPU(s)")
        rates = {}
        for workers in sorted({1, os.cpu_count() or 1}):
            for flow in ("none", "tvl1"):
                rates[workers, flow] = convert_rate(csv_path, tmp / f"out{workers}{flow}",
                                                    workers, args.frames, flow)
                print(f"  {workers} worker(s), --flow {flow:<4}: {rates[workers, flow]:.0f} "
                      f"input frames/s (target >= 150 on 2 cores: ratio "
                      f"{rates[workers, flow] / 150:.2f})")
        most = max(workers for workers, _ in rates)
        if most > 1:
            print(f"  scaling {most} workers / 1 (--flow tvl1): "
                  f"{rates[most, 'tvl1'] / rates[1, 'tvl1']:.2f}x")
        long_clip = write_clips(tmp / "long", 1, 200).parent / "clip00"
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            peak = pool.map(_peak_worker, [(long_clip,)])[0]
        print(f"  worker peak memory, one 200-frame 640x480 clip: {peak:.2f} GiB "
              f"(target < 2 GiB: ratio {peak / 2:.2f})")


if __name__ == "__main__":
    main()
