"""The main job as a new user runs it: `python train.py --experiment exp3` on a fresh folder.

Measures, in a new empty working folder (so the built-in data is generated too): wall time
of the whole run (data generation, all folds, the final model and its export) and the peak
resident memory of the largest process. Targets (issue 2): at most 600 s on the 2-core CPU,
peak under 6 GiB. Prints the run's pooled figures next to chance.

    python benchmarks/builtin_run.py [--workdir DIR] [extra train.py arguments]
"""

from __future__ import annotations

import argparse
import json
import pathlib
import resource
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
TIME_LIMIT_S = 600
MEMORY_LIMIT_GIB = 6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", help="empty working folder (default: a new temporary one)")
    args, extra = parser.parse_known_args()
    workdir = pathlib.Path(args.workdir or tempfile.mkdtemp(prefix="tfmer-builtin-"))
    workdir.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, str(REPO / "train.py"), "--experiment", "exp3", *extra]
    print(f"running {' '.join(command)} in {workdir}", flush=True)
    started = time.perf_counter()
    subprocess.run(command, cwd=workdir, check=True)
    elapsed = time.perf_counter() - started
    peak_gib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
    (run_dir,) = sorted((workdir / "runs" / "exp3").iterdir())[-1:]
    result = json.loads((run_dir / "metrics.json").read_text())
    print(f"\nwall time {elapsed:.0f} s (limit {TIME_LIMIT_S} s, "
          f"ratio {elapsed / TIME_LIMIT_S:.2f})")
    print(f"peak RSS {peak_gib:.2f} GiB (limit {MEMORY_LIMIT_GIB} GiB, "
          f"ratio {peak_gib / MEMORY_LIMIT_GIB:.2f})")
    pooled, chance = result["pooled"], result["chance"]
    print("pooled " + ", ".join(f"{m} {pooled[m]:.3f} (chance {chance[m]:.3f})"
                                for m in ("accuracy", "uf1", "uar")))
    print(f"run folder {run_dir}")


if __name__ == "__main__":
    main()
