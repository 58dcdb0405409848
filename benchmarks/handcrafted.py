"""The handcrafted baselines (issue 12): extractor speed, feature throughput, whole runs, and
TLCNN's Table 3 on the built-in data.

1. `lbp_top` of a grey `[32, 128, 128]` clip at radii 1 with nearest sampling (target
   <= 30 ms) and the TLCNN setting (RGB, 6 x 6 blocks, radii 3; target <= 0.2 s), best of 5,
   on one core; every method's extractor on one built-in clip.
2. Feature extraction of the 96 built-in clips (`tfmer.clip_features.compute`, reading and
   decoding included) with 1 and 2 worker processes, in clips/s.
3. `python train.py --experiment NAME` (no `--data`: the built-in data at the builtin scale,
   all five folds, the final model and its export) per baseline: wall time (target <= 120 s)
   and pooled UF1 / UAR.
4. With `--table3`: also the deep methods of Table 3 (`tlcnn`, `tlcnn_e`, `tlcnn_em`,
   `c5_svm`, `c3d`) and `python evaluate.py --compare` of all of them, TLCNN first.

    python benchmarks/handcrafted.py [--table3] [--workdir DIR] [--skip-speed]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")  # the extractor timings are for one core

import numpy as np  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
BASELINES = ("lbptop_svm", "stlbpip_svm", "stclqp_svm", "mdmo_svm", "fdm_svm", "biwoof_svm")
DEEP = ("tlcnn", "tlcnn_e", "tlcnn_em", "c5_svm", "c3d")
RUN_LIMIT = 120.0


def _best(function, repeats: int = 5) -> float:
    function()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return min(times)


def speed() -> None:
    from tfmer.handcrafted import lbp_top, lbp_top_tlcnn

    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, (32, 128, 128), dtype=np.uint8)
    rgb = rng.integers(0, 256, (32, 128, 128, 3), dtype=np.uint8)
    for label, function, limit in (
            ("lbp_top grey [32, 128, 128], radii 1, nearest", lambda: lbp_top(grey), 0.030),
            ("lbp_top_tlcnn RGB, 6x6 blocks, radii 3", lambda: lbp_top_tlcnn(rgb), 0.200)):
        seconds = _best(function)
        print(f"{label}: {1000 * seconds:.1f} ms (target <= {1000 * limit:.0f} ms, ratio "
              f"{seconds / limit:.2f})", flush=True)


def per_clip_and_throughput() -> None:
    from tfmer import cli

    cli.import_tensorflow()
    from data_prep import builtin
    from tfmer import clip_features, data, experiments
    from tfmer.handcrafted.methods import extract, method

    info = data.load_info(builtin.clips())
    clip = next(clip_features.read_inputs(info, [info.subjects[0]]))
    print(f"\n{'experiment':<12} {'ms/clip':>8} {'1 worker':>10} {'2 workers':>10}  (clips/s, "
          f"{len(info.clips)} clips read, decoded and extracted; STCLQP: sample, codebooks "
          f"of one fold, features)")
    for name in BASELINES:
        settings = experiments.get(name, "builtin").handcrafted
        spec = method(settings.method)
        if spec.learn is None:
            one = _best(lambda: extract(clip, settings), repeats=3)
        else:  # the per-clip cost of a learning method: its sample, then its features
            learned = [spec.learn([spec.sample(clip, settings)], settings, 0)]
            one = _best(lambda: (spec.sample(clip, settings),
                                 spec.apply(clip, settings, learned)), repeats=3)
        rates = []
        for workers in (1, 2):
            chosen = dataclasses.replace(settings, workers=workers)
            started = time.perf_counter()
            if spec.learn is None:
                clip_features.compute(chosen, info, log=lambda line: None)
            else:
                clip_features.compute_learned(chosen, info, [(info.subjects, 0)],
                                              log=lambda line: None)
            rates.append(len(info.clips) / (time.perf_counter() - started))
        print(f"{name:<12} {1000 * one:>8.1f} {rates[0]:>10.1f} {rates[1]:>10.1f}", flush=True)


def _run(command, workdir, log) -> float:
    started = time.perf_counter()
    with open(log, "w") as handle:
        subprocess.run(command, cwd=workdir, check=True, stdout=handle, stderr=subprocess.STDOUT)
    return time.perf_counter() - started


def runs(names, workdir: pathlib.Path) -> list[pathlib.Path]:
    print(f"\n{'experiment':<12} {'run s':>6} {'UF1':>6} {'UAR':>6}  target (in {workdir})")
    run_dirs = []
    for name in names:
        elapsed = _run([sys.executable, str(REPO / "train.py"), "--experiment", name],
                       workdir, workdir / f"{name}.log")
        run_dir = sorted((workdir / "runs" / name).iterdir())[-1]
        run_dirs.append(run_dir)
        pooled = json.loads((run_dir / "metrics.json").read_text())["pooled"]
        target = (f"<= {RUN_LIMIT:.0f} s (ratio {elapsed / RUN_LIMIT:.2f})"
                  if name in BASELINES else "")
        print(f"{name:<12} {elapsed:>6.0f} {pooled['uf1']:>6.3f} {pooled['uar']:>6.3f}  {target}",
              flush=True)
    return run_dirs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--table3", action="store_true",
                        help="also train Table 3's deep methods and compare all of them")
    parser.add_argument("--skip-speed", action="store_true", help="runs only")
    parser.add_argument("--workdir", help="working folder (default: a new temporary one)")
    args = parser.parse_args()
    workdir = pathlib.Path(args.workdir or tempfile.mkdtemp(prefix="tfmer-handcrafted-"))
    workdir.mkdir(parents=True, exist_ok=True)
    if not args.skip_speed:
        speed()
        os.chdir(workdir)  # the built-in data is built (once) under the working folder
        per_clip_and_throughput()
    names = (DEEP if args.table3 else ()) + BASELINES
    run_dirs = runs(names, workdir)
    if args.table3:
        out = workdir / "table3"
        subprocess.run([sys.executable, str(REPO / "evaluate.py"), "--compare",
                        *map(str, run_dirs), "--out", str(out)], cwd=workdir, check=True)
        print((out / "comparison.md").read_text())


if __name__ == "__main__":
    main()
