"""Resume overhead: a run killed (SIGKILL) in its third fold and resumed with `--resume`,
against the same run uninterrupted.

Runs `python train.py --experiment EXP --no-export` three times in one working folder
(the built-in data is built first, untimed): uninterrupted; again, killed when the log
has shown the third fold's first epoch line; then `python train.py --resume RUN_DIR`.
Prints the wall times, the ratio of killed + resumed to uninterrupted + one fold (target
<= 1: the overhead is at most one fold) and whether the pooled figures and predictions
are equal (with `protocol.deterministic` they must be).

    python benchmarks/resume_overhead.py [--experiment exp3] [--workdir DIR] [train.py args]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import signal
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
KILL_FOLD = 2
"""The fold (0-based) the run is killed in: the third."""


def _run(command, cwd, kill_in_fold: int | None = None) -> tuple[float, list[str]]:
    """Runs `command`; with `kill_in_fold`, SIGKILLs it once the log shows that fold's
    first finished epoch. Returns `(wall seconds, log lines)`."""
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    lines, in_fold = [], False
    for line in process.stdout:
        lines.append(line.rstrip("\n"))
        if kill_in_fold is None:
            continue
        in_fold = in_fold or line.startswith(f"fold {kill_in_fold} (")
        if in_fold and ("loss" in line or "epoch " in line):  # an epoch has ended
            process.send_signal(signal.SIGKILL)
            break
    process.wait()
    if kill_in_fold is None and process.returncode != 0:
        raise SystemExit("\n".join(lines[-20:]) + f"\nexit status {process.returncode}")
    return time.perf_counter() - started, lines


def _fold_seconds(lines) -> list[float]:
    """Each finished fold's duration, from its progress line `  fold F: ... (S s); ...`."""
    found = []
    for line in lines:
        if line.startswith("  fold ") and " test clips correct" in line:
            found.append(float(line.split(" s); ")[0].rsplit("(", 1)[1]))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--experiment", default="exp3")
    parser.add_argument("--workdir", help="working folder (default: a new temporary one)")
    args, extra = parser.parse_known_args()
    workdir = pathlib.Path(args.workdir or tempfile.mkdtemp(prefix="tfmer-resume-"))
    workdir.mkdir(parents=True, exist_ok=True)
    train = [sys.executable, str(REPO / "train.py")]
    command = train + ["--experiment", args.experiment, "--no-export", *extra]
    subprocess.run([sys.executable, "-c", "from data_prep import builtin; builtin.clips()"],
                   cwd=workdir, check=True, stdout=subprocess.DEVNULL)
    runs = workdir / "runs" / args.experiment
    print(f"{' '.join(command)} in {workdir}", flush=True)

    whole_s, whole_log = _run(command, workdir)
    (whole,) = sorted(runs.iterdir())[-1:]
    folds = _fold_seconds(whole_log)
    print(f"uninterrupted: {whole_s:.0f} s ({len(folds)} folds, "
          f"{', '.join(f'{s:.0f}' for s in folds)} s)", flush=True)

    killed_s, _ = _run(command, workdir, kill_in_fold=KILL_FOLD)
    killed = sorted(set(runs.iterdir()) - {whole})[-1]
    kept = sorted(p.name for p in (killed / "folds").iterdir())
    print(f"killed in fold {KILL_FOLD} after {killed_s:.0f} s; kept {', '.join(kept)}",
          flush=True)
    resumed_s, resumed_log = _run(train + ["--resume", str(killed)], workdir)
    print(f"resumed: {resumed_s:.0f} s", flush=True)

    budget = whole_s + max(folds)
    total = killed_s + resumed_s
    same_metrics = (json.loads((whole / "metrics.json").read_text())["pooled"]
                    == json.loads((killed / "metrics.json").read_text())["pooled"])
    same_predictions = ((whole / "predictions.csv").read_text()
                        == (killed / "predictions.csv").read_text())
    print(f"killed + resumed {total:.0f} s against uninterrupted + one fold {budget:.0f} s: "
          f"ratio {total / budget:.2f} (target <= 1); overhead {total - whole_s:.0f} s "
          f"({(total - whole_s) / max(folds):.2f} of the longest fold)")
    print(f"pooled figures equal: {same_metrics}; predictions.csv equal: {same_predictions}")
    print(next(line for line in resumed_log if "finished before" in line).strip())


if __name__ == "__main__":
    main()
