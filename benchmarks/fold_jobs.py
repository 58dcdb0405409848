"""Folds as jobs: two `train.py --run-dir DIR --folds ...` processes started together on
this machine against one process training the same folds, and the pooled results of both.

    python benchmarks/fold_jobs.py [--experiment ststnet] [--jobs 2]

Each run trains the experiment's builtin-scale cross-validation on the built-in data
without the final model (`--no-export`; the jobs get no `--final`). The folds are dealt
round-robin to the jobs (fold i to job i mod J). Printed: the wall time of each, their
ratio, and whether `predictions.csv` and the pooled figures of `metrics.json` are
identical (they must be: training is deterministic and the same folds are trained).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import subprocess
import sys
import tempfile
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--experiment", default="ststnet")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--folds", type=int, default=5, help="the kfold protocol's K")
    args = parser.parse_args()
    train = [sys.executable, "train.py", "--experiment", args.experiment,
             "--protocol", f"kfold{args.folds}"]
    with tempfile.TemporaryDirectory() as folder:
        root = pathlib.Path(folder)
        started = time.perf_counter()
        subprocess.run(train + ["--out", str(root / "one"), "--no-export"], check=True,
                       capture_output=True)
        one_s = time.perf_counter() - started
        (one,) = (root / "one" / args.experiment).iterdir()

        jobs = root / "jobs"
        started = time.perf_counter()
        running = [subprocess.Popen(
            train + ["--run-dir", str(jobs), "--folds",
                     ",".join(str(f) for f in range(j, args.folds, args.jobs))],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            for j in range(args.jobs)]
        for job in running:
            _, err = job.communicate()
            if job.returncode != 0:
                sys.exit(f"a job failed: {err.strip().splitlines()[-1:]}")
        jobs_s = time.perf_counter() - started

        same_predictions = ((one / "predictions.csv").read_text()
                            == (jobs / "predictions.csv").read_text())
        pooled = [json.loads((run / "metrics.json").read_text())["pooled"]
                  for run in (one, jobs)]
    print(f"{args.experiment}, builtin scale, kfold{args.folds}, no final model:")
    print(f"  one process:            {one_s:7.1f} s")
    print(f"  {args.jobs} jobs started together: {jobs_s:7.1f} s  (ratio jobs / one "
          f"{jobs_s / one_s:.2f})")
    print(f"  predictions.csv identical: {same_predictions}; pooled figures identical: "
          f"{pooled[0] == pooled[1]} (UF1 {pooled[1]['uf1']:.3f}, UAR {pooled[1]['uar']:.3f})")


if __name__ == "__main__":
    main()
