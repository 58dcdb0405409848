"""Multi-worker training on one machine: `train.py --strategy multiworker` with two worker
processes on the loopback (127.0.0.1, free ports) against one process, same command.

    python benchmarks/multiworker.py [--experiment ststnet] [--scale quick|builtin]

Both train the experiment's cross-validation on the built-in data without the final model
(`--no-export`) and with dropout off (each replica draws its own masks: with it the
figures differ by chance). Printed: each wall time, their ratio, and the largest
differences between the two runs' losses (the first epoch's, any epoch's) and predicted
probabilities: they train on the same global batches, so the first epoch agrees to float
precision and later epochs drift only as float summation order compounds.
On one machine two workers share its cores, so this measures the cost of the
all-reduce and of every worker reading the global batch, not a speed-up: that needs
machines (or GPUs) of their own.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import socket
import subprocess
import sys
import tempfile
import time


def _ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for one in sockets:
        one.bind(("127.0.0.1", 0))
    ports = [one.getsockname()[1] for one in sockets]
    for one in sockets:
        one.close()
    return ports


def _folds(run: pathlib.Path) -> dict:
    return {path.name: json.loads(path.read_text()) for path in (run / "folds").glob("*.json")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--experiment", default="ststnet")
    parser.add_argument("--scale", choices=("quick", "builtin"), default="builtin")
    parser.add_argument("--protocol", default="kfold5")
    args = parser.parse_args()
    train = [sys.executable, "train.py", "--experiment", args.experiment, "--protocol",
             args.protocol, "--no-export", "--set", "model.dropout=0"] + (
        ["--quick"] if args.scale == "quick" else [])
    with tempfile.TemporaryDirectory() as folder:
        root = pathlib.Path(folder)
        started = time.perf_counter()
        subprocess.run(train + ["--out", str(root / "one")], check=True, capture_output=True)
        one_s = time.perf_counter() - started

        addresses = [f"127.0.0.1:{port}" for port in _ports(2)]
        started = time.perf_counter()
        workers = [subprocess.Popen(
            train + ["--strategy", "multiworker", "--out", str(root / "two")],
            env={**os.environ, "TF_CONFIG": json.dumps({
                "cluster": {"worker": addresses}, "task": {"type": "worker", "index": i}})},
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for i in (0, 1)]
        for worker in workers:
            _, err = worker.communicate()
            if worker.returncode != 0:
                sys.exit(f"a worker failed: {err.strip().splitlines()[-1:]}")
        two_s = time.perf_counter() - started
        (one,), (two,) = ((root / name / args.experiment).iterdir() for name in ("one", "two"))
        folds = [_folds(one), _folds(two)]
    first = max(abs(folds[0][name]["history"]["loss"][0] - folds[1][name]["history"]["loss"][0])
                for name in folds[0])
    loss = max(abs(a - b) for name in folds[0]
               for a, b in zip(folds[0][name]["history"]["loss"],
                               folds[1][name]["history"]["loss"]))
    probability = max(abs(a - b) for name in folds[0]
                      for r1, r2 in zip(folds[0][name]["predictions"],
                                        folds[1][name]["predictions"])
                      for a, b in zip(r1["probabilities"], r2["probabilities"]))
    epochs = len(next(iter(folds[0].values()))["history"]["loss"])
    print(f"{args.experiment}, {args.scale} scale, {args.protocol}, no final model, "
          f"dropout off:")
    print(f"  one process:                  {one_s:7.1f} s")
    print(f"  two workers on the loopback:  {two_s:7.1f} s  (ratio two / one "
          f"{two_s / one_s:.2f})")
    print(f"  largest difference of the two runs: first epoch's loss {first:.1e}; any of the "
          f"{epochs} epochs' loss {loss:.1e}; a predicted probability {probability:.1e}")


if __name__ == "__main__":
    main()
