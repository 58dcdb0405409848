"""`python -m gradcam select --experiment NAME [--data DIR] --out DIR`: Grad-CAM layer selection.

Scores the experiment's candidate backbone layers by the share of their Grad-CAM heat on the
facial features of sample frames, picks l_s (Bai & Goecke 2020, Section 4.3) and writes
`DIR/report.json`, `DIR/report.html` and PNG grids (see `gradcam.select.select`). With no
`--data`, the built-in synthetic dataset (built on first use in `data/synthetic`, as
`train.py` does) at the experiment's `builtin` scale; `--quick` shrinks any run.
"""

from __future__ import annotations

import argparse
import sys
import time

from data_prep import synthetic
from gradcam import report, select

BUILTIN_DATA = "data/synthetic"  # as train.py


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m gradcam",
                                     description="Grad-CAM layer selection and reports")
    commands = parser.add_subparsers(dest="command", required=True)
    command = commands.add_parser(
        "select", help="score the backbone layers, pick l_s, write a report",
        description=__doc__.split("\n")[0].strip("`"))
    command.add_argument("--experiment", required=True, help="registered experiment name")
    command.add_argument("--data", help="converted dataset folder (holding dataset.json); "
                         f"default: the built-in synthetic data in {BUILTIN_DATA}")
    command.add_argument("--out", required=True, help="report folder")
    command.add_argument("--quick", action="store_true",
                         help="the experiment's quick scale (low resolution)")
    command.add_argument("--count", type=int, default=16,
                         help="sample frames, one per clip (default 16)")
    command.add_argument("--layers", help="comma-separated candidate layers, or `all` for "
                         "every conv layer; default the experiment's model.gradcam_layers")
    command.add_argument("--canonical-landmarks", action="store_true",
                         help="a fixed landmark layout instead of the clips' own (valid "
                         "for aligned face crops only)")
    command.add_argument("--seed", type=int, default=0,
                         help="seed of the model's initial weights and the frame sample")
    command.add_argument("--set", dest="overrides", action="append", default=[],
                         metavar="KEY=VALUE",
                         help="override a config field, e.g. model.weights=PATH")
    return parser


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    scale = "quick" if args.quick else ("paper" if args.data else "builtin")
    layers = args.layers
    if layers and layers != "all":
        layers = [name.strip() for name in layers.split(",") if name.strip()]
    started = time.time()
    try:
        data_dir = args.data or synthetic.ensure(BUILTIN_DATA)
        content = select.select(
            args.experiment, data_dir, args.out, scale=scale, count=args.count, layers=layers,
            canonical_landmarks=args.canonical_landmarks, seed=args.seed,
            overrides=args.overrides)
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(report.summary(content))
    print(f"report: {args.out}/report.html ({time.time() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
