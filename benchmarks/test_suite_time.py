"""How long does the default test suite take?

Runs `python -m pytest -q` (the README's test command, with the settings of the checkout's
`setup.cfg`) in a checkout, with that checkout first on `PYTHONPATH`, and prints its wall
time. With `--against OTHER`, runs OTHER's suite first, then this one, one after the
other on an otherwise idle machine, and prints the ratio. Target (issue 10): the suite
gets faster, not slower (ratio <= 1).

    python benchmarks/test_suite_time.py [--repo DIR] [--against OLDER_CHECKOUT]
"""

from __future__ import annotations

import argparse
import os
import pathlib
import re
import subprocess
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[1]


def suite_time(repo: pathlib.Path) -> tuple[float, str]:
    """`(wall seconds, pytest's summary line)` of the default suite of `repo`."""
    environment = {**os.environ, "PYTHONPATH": str(repo)}
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
                            cwd=repo, env=environment, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    lines = [line for line in result.stdout.splitlines() if re.search(r"\d+ (passed|failed)",
                                                                       line)]
    return elapsed, lines[-1] if lines else f"pytest exited {result.returncode}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repo", default=str(REPO), help="the checkout to time")
    parser.add_argument("--against", help="an older checkout to time first, for the ratio")
    args = parser.parse_args()
    reference = None
    if args.against:
        reference, summary = suite_time(pathlib.Path(args.against).resolve())
        print(f"{args.against}: {reference:.0f} s ({summary})", flush=True)
    elapsed, summary = suite_time(pathlib.Path(args.repo).resolve())
    print(f"{args.repo}: {elapsed:.0f} s ({summary})")
    if reference:
        print(f"ratio {elapsed / reference:.2f} (target <= 1)")


if __name__ == "__main__":
    main()
