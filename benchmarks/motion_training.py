"""The motion experiments as a new user runs them: `python train.py --experiment NAME` with no
`--data`, each at its `builtin` scale, in one fresh working folder.

Measures the built-in data's conversion once (it carries the TV-L1 flow the motion methods
read), then per experiment the wall time of the whole run (all five folds, the final model
and its export) and its pooled UF1 / UAR. Targets (issue 11): `ststnet` UF1 >= 0.5 within
240 s with the conversion included; `strcn_g` and `rcn` UF1 >= 0.45 within 600 s.

    python benchmarks/motion_training.py [--experiments ststnet,rcn] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import pathlib
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
EXPERIMENTS = ("ststnet", "off_apexnet", "rcn", "rcn_a", "rcn_s", "rcn_w", "strcn_g")
# name -> (UF1 at least, seconds at most, whether the conversion counts in the time)
TARGETS = {"ststnet": (0.5, 240, True), "strcn_g": (0.45, 600, False),
           "rcn": (0.45, 600, False)}


def _timed(command, workdir, log) -> float:
    started = time.perf_counter()
    with open(log, "w") as handle:
        subprocess.run(command, cwd=workdir, check=True, stdout=handle,
                       stderr=subprocess.STDOUT)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--experiments", default=",".join(EXPERIMENTS))
    parser.add_argument("--workdir", help="empty working folder (default: a new temporary one)")
    args = parser.parse_args()
    workdir = pathlib.Path(args.workdir or tempfile.mkdtemp(prefix="tfmer-motion-"))
    workdir.mkdir(parents=True, exist_ok=True)
    conversion = _timed([sys.executable, "-c", "from data_prep import builtin; builtin.clips()"],
                        workdir, workdir / "conversion.log")
    print(f"built-in data with TV-L1 flow (96 clips, 128 px): {conversion:.0f} s "
          f"(in {workdir})", flush=True)
    print(f"{'experiment':<12} {'run s':>6} {'UF1':>6} {'UAR':>6}  target")
    for name in args.experiments.split(","):
        elapsed = _timed([sys.executable, str(REPO / "train.py"), "--experiment", name],
                         workdir, workdir / f"{name}.log")
        (run_dir,) = sorted((workdir / "runs" / name).iterdir())[-1:]
        pooled = json.loads((run_dir / "metrics.json").read_text())["pooled"]
        line = f"{name:<12} {elapsed:>6.0f} {pooled['uf1']:>6.3f} {pooled['uar']:>6.3f}"
        if name in TARGETS:
            uf1, limit, with_conversion = TARGETS[name]
            total = elapsed + (conversion if with_conversion else 0)
            line += (f"  UF1 >= {uf1} (ratio {pooled['uf1'] / uf1:.2f}); "
                     f"{total:.0f} s{' with the conversion' if with_conversion else ''} "
                     f"<= {limit} s (ratio {total / limit:.2f})")
        print(line, flush=True)


if __name__ == "__main__":
    main()
