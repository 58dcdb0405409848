"""How long does the converter take to start, and how much memory does a process hold?

Measured, each `--repeat` times after one untimed warm-up run (median and range printed):

* start-up: wall time from launching `python -m data_prep manifest --root CSV --out DIR
  --crop none --tim 4 --size 32 --workers N` as a subprocess to its exit, on tiny clips
  (4 frames of 32x32 PNG), where converting the frames takes milliseconds, so the figure is
  start-up (interpreter, imports, pool) plus shutdown. Cases: one clip with `--workers 1`
  (converted in the main process) and two clips with `--workers 2` (a pool of two spawned
  workers), each clip with a landmarks file in the manifest, so no face model is loaded;
  and one clip without, whose landmarks the converter looks for (`--crop none` still
  detects them), which loads dlib's face models. Target: <= 2 s. With each, the peak
  resident memory of the largest process of the conversion (`ru_maxrss` of the subprocess
  and of the workers it reaped).
* worker memory: the peak resident memory (`VmHWM`) of a spawned worker (with the
  converter's `clip.init_worker`) after converting one clip of 8 frames of 640x480 JPEG
  showing a face (matplotlib's Grace Hopper portrait) to 32 frames of 128 px: with
  `--crop none` and the landmarks given (no face model), with `--crop none` (landmarks
  detected) and with `--crop detect`. Target: < 300 MiB.
* built-in data workers: the largest peak resident memory of the worker processes while
  `python train.py --experiment exp3 --quick` builds the built-in data in an empty folder
  (sampled from `/proc` every 0.2 s until training starts; the script is the spawned
  workers' main module, which they re-import). Target: < 300 MiB.

`--repo` picks the checkout whose `data_prep` runs (the subprocesses get it as working
folder and first `PYTHONPATH` entry), so the same script gives figures before a change:

    python benchmarks/convert_startup.py [--repeat 3]
    python benchmarks/convert_startup.py --repo /path/to/older/checkout
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

# Only the standard library at the top: spawned workers re-import this module, and the
# worker memory must be the converter's, not this script's.

STARTUP_TARGET_S = 2.0
WORKER_MEMORY_TARGET_MIB = 300.0


def write_tiny_clips(root: pathlib.Path, clips: int, landmarks: bool) -> pathlib.Path:
    """`clips` folders of 4 random 32x32 PNG frames (with a landmarks file each, or
    without), and their manifest CSV."""
    import cv2
    import numpy as np

    rng = np.random.default_rng(0)
    lines = ["path,subject,label,landmarks"]
    for c in range(clips):
        folder = root / f"clip{c}"
        folder.mkdir(parents=True)
        for f in range(4):
            cv2.imwrite(str(folder / f"img{f}.png"), rng.integers(0, 256, (32, 32, 3), np.uint8))
        if landmarks:
            write_landmarks(root / f"clip{c}.txt", 32, 32)
        lines.append(f"{folder.name},s{c},happiness,{f'clip{c}.txt' if landmarks else ''}")
    (root / "manifest.csv").write_text("\n".join(lines) + "\n")
    return root / "manifest.csv"


def write_landmarks(path: pathlib.Path, width: int, height: int) -> pathlib.Path:
    """A landmarks file: 68 lines `x y` on an ellipse inside a `width` x `height` frame."""
    import numpy as np

    angles = np.linspace(0, 2 * np.pi, 68, endpoint=False)
    points = np.stack([width * (0.5 + 0.3 * np.cos(angles)),
                       height * (0.5 + 0.4 * np.sin(angles))], axis=1)
    np.savetxt(path, points, fmt="%.2f")
    return path


def write_face_clip(folder: pathlib.Path, frames: int = 8) -> pathlib.Path:
    """`frames` 640x480 JPEGs of a face moving a little (as `convert_speed.py` draws them)."""
    import cv2
    import matplotlib.cbook
    import numpy as np

    photo = cv2.imread(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    photo = cv2.resize(photo, (400, 469), interpolation=cv2.INTER_AREA)
    folder.mkdir(parents=True)
    for f in range(frames):
        canvas = np.full((480, 640, 3), 90, np.uint8)
        dx = int(120 + 40 * np.sin(2 * np.pi * f / frames))
        canvas[5:474, dx:dx + 400] = photo
        cv2.imwrite(str(folder / f"img{f + 1}.jpg"), canvas, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return folder


def _environment(repo: pathlib.Path) -> dict:
    """This process's environment with `repo` first on `PYTHONPATH`."""
    paths = [str(repo)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return dict(os.environ, PYTHONPATH=os.pathsep.join(paths))


def conversion_run(repo: pathlib.Path, csv_path: pathlib.Path, out: pathlib.Path,
                   workers: int) -> tuple[float, float]:
    """One `python -m data_prep manifest` of `repo`: (wall seconds launch to exit, peak MiB
    of its largest process)."""
    command = [sys.executable, "-m", "data_prep", "manifest", "--root", str(csv_path),
               "--out", str(out), "--crop", "none", "--tim", "4", "--size", "32",
               "--workers", str(workers)]
    with tempfile.TemporaryFile("w+") as log:
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=repo, env=_environment(repo),
                                   stdout=subprocess.DEVNULL, stderr=log)
        _, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        if process.returncode:
            log.seek(0)
            raise RuntimeError(f"{' '.join(command)} (in {repo}) exited with "
                               f"{process.returncode}:\n{log.read()}")
    return elapsed, usage.ru_maxrss / 1024


def worker_peak(repo: pathlib.Path, folder: pathlib.Path, crop: str,
                landmarks: pathlib.Path | None) -> float:
    """Peak MiB of a spawned worker of `repo`'s converter after converting the clip in
    `folder` (measured by this script in a subprocess running `repo`'s `data_prep`)."""
    command = [sys.executable, str(pathlib.Path(__file__).resolve()), "--worker-peak",
               str(folder), "--crop", crop]
    if landmarks is not None:
        command += ["--landmarks", str(landmarks)]
    result = subprocess.run(command, cwd=repo, env=_environment(repo), capture_output=True,
                            text=True)
    if result.returncode:
        raise RuntimeError(f"worker measurement in {repo} failed:\n{result.stderr}")
    return float(result.stdout.split()[-1])


def _measure_worker(folder: str, crop: str, landmarks: str | None) -> None:
    """In the measuring subprocess: one spawned converter worker converts the clip."""
    from data_prep import clip

    with multiprocessing.get_context("spawn").Pool(1, clip.init_worker) as pool:
        print(pool.apply(_peak_worker, (folder, crop, landmarks)))


def _peak_worker(folder: str, crop: str, landmarks: str | None) -> float:
    """In the spawned worker: convert the clip, return the peak resident memory (MiB)."""
    from data_prep import clip

    source = clip.ClipSource("face", "s0", "happiness", pathlib.Path(folder), label="happiness",
                             landmarks=pathlib.Path(landmarks) if landmarks else None)
    options = clip.ConvertOptions(num_frames=32, size=128, crop=crop)
    clip.convert_clip(source, "bench", ("happiness",), options)
    with open("/proc/self/status") as status:
        peak = next(line for line in status if line.startswith("VmHWM:"))
    return int(peak.split()[1]) / 1024


def builtin_worker_peak(repo: pathlib.Path) -> float:
    """Peak MiB of the largest worker process while `repo`'s `train.py` builds the built-in
    data in a new empty folder; the run is stopped when training starts."""
    with tempfile.TemporaryDirectory() as folder, tempfile.TemporaryFile("w+") as log:
        process = subprocess.Popen(
            [sys.executable, str(repo / "train.py"), "--experiment", "exp3", "--quick",
             "--no-export"], cwd=folder, env=_environment(repo), stdout=log,
            stderr=subprocess.STDOUT)
        peak = 0
        try:
            while process.poll() is None:
                for child in _children(process.pid):
                    peak = max(peak, _peak_kib(child))
                log.seek(0)
                if "run folder" in log.read():
                    break
                time.sleep(0.2)
        finally:
            process.kill()
            process.wait()
    return peak / 1024


def _children(pid: int) -> list[int]:
    path = pathlib.Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()] if path.exists() else []


def _peak_kib(pid: int) -> int:
    try:
        status = pathlib.Path(f"/proc/{pid}/status").read_text()
    except OSError:  # the worker ended
        return 0
    return next((int(line.split()[1]) for line in status.splitlines()
                 if line.startswith("VmHWM:")), 0)


def _summary(values: list[float], unit: str, precision: int) -> str:
    return (f"{statistics.median(values):.{precision}f} {unit} "
            f"(runs {min(values):.{precision}f}-{max(values):.{precision}f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repo", type=pathlib.Path,
                        default=pathlib.Path(__file__).resolve().parents[1],
                        help="checkout whose converter runs (default: this script's)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per case")
    parser.add_argument("--worker-peak", metavar="FOLDER", help=argparse.SUPPRESS)
    parser.add_argument("--crop", default="none", help=argparse.SUPPRESS)
    parser.add_argument("--landmarks", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker_peak:
        _measure_worker(args.worker_peak, args.crop, args.landmarks)
        return
    repo = args.repo.resolve()
    print(f"converter of {repo}; Python {sys.version.split()[0]}, {os.cpu_count()} CPU(s); "
          f"median of {args.repeat} run(s) after a warm-up")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        print("start-up: `python -m data_prep manifest ... --crop none --tim 4 --size 32`, "
              "wall time launch to exit")
        cases = (("1 clip, landmarks given, --workers 1 (no pool)   ", 1, 1, True),
                 ("2 clips, landmarks given, --workers 2 (2 spawned)", 2, 2, True),
                 ("1 clip, landmarks detected, --workers 1 (no pool)", 1, 1, False))
        for case, (label, clips, workers, landmarks) in enumerate(cases):
            csv_path = write_tiny_clips(tmp / f"tiny{case}", clips, landmarks)
            runs = [conversion_run(repo, csv_path, tmp / f"out{case}-{run}", workers)
                    for run in range(args.repeat + 1)][1:]
            seconds = [s for s, _ in runs]
            peaks = [p for _, p in runs]
            print(f"  {label}: {_summary(seconds, 's', 2)}; target <= {STARTUP_TARGET_S:.0f} s: "
                  f"ratio {statistics.median(seconds) / STARTUP_TARGET_S:.2f}; largest process "
                  f"peak {_summary(peaks, 'MiB', 0)}")
        folder = write_face_clip(tmp / "face")
        given = write_landmarks(tmp / "face.txt", 640, 480)
        print("worker peak memory (VmHWM), one 8-frame 640x480 clip to 32 frames of 128 px")
        for label, crop, landmarks in (("--crop none, landmarks given", "none", given),
                                       ("--crop none, detected      ", "none", None),
                                       ("--crop detect              ", "detect", None)):
            peaks = [worker_peak(repo, folder, crop, landmarks) for _ in range(args.repeat)]
            print(f"  {label}: {_summary(peaks, 'MiB', 0)}; target < "
                  f"{WORKER_MEMORY_TARGET_MIB:.0f} MiB: "
                  f"ratio {statistics.median(peaks) / WORKER_MEMORY_TARGET_MIB:.2f}")
    peak = builtin_worker_peak(repo)
    print(f"built-in data built by `python train.py --experiment exp3 --quick`: largest "
          f"worker peak {peak:.0f} MiB; target < {WORKER_MEMORY_TARGET_MIB:.0f} MiB: ratio "
          f"{peak / WORKER_MEMORY_TARGET_MIB:.2f}")


if __name__ == "__main__":
    main()
