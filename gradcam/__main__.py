"""`python -m gradcam select --experiment NAME [--data DIR] --out DIR`: Grad-CAM layer selection.

Scores the experiment's candidate backbone layers by the share of their Grad-CAM heat on the
facial features of sample frames, corrected for each layer's resolution, picks l_s (Bai &
Goecke 2020, Section 4.3; `--target` says what the heatmaps explain) and writes
`DIR/report.json`, `DIR/report.html` and PNG grids (see `gradcam.select.select`). With no
`--data`, the built-in synthetic dataset (built on first use in `data/synthetic`, as
`train.py` does) at the experiment's `builtin` scale; `--quick` shrinks any run.

`python -m gradcam compare RUN_DIR [--out DIR] [--layer NAME]`: Grad-CAM of a finished run's
final model before and after training (Bai & Goecke 2020, Figure 4); writes
`DIR/before_after.png` and `DIR/before_after.json` (see `gradcam.compare.compare`).
"""

from __future__ import annotations

import argparse
import sys
import time

from data_prep import builtin
from gradcam import compare, report, select
from tfmer import cli
from tfmer.config import GRADCAM_TARGETS


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m gradcam",
                                     description="Grad-CAM layer selection and reports")
    commands = parser.add_subparsers(dest="command", required=True)
    command = commands.add_parser(
        "select", help="score the backbone layers, pick l_s, write a report",
        description=__doc__.split("\n")[0].strip("`"))
    command.add_argument("--experiment", required=True, help="registered experiment name")
    command.add_argument("--data", help="converted dataset folder (holding dataset.json); "
                         f"default: the built-in synthetic data in {builtin.clips_dir()}")
    command.add_argument("--out", required=True, help="report folder")
    command.add_argument("--quick", action="store_true",
                         help="the experiment's quick scale (low resolution)")
    command.add_argument("--count", type=int, default=16,
                         help="sample frames, one per clip (default 16)")
    command.add_argument("--fold", type=int,
                         help="sample the training subjects of this fold of the experiment's "
                         "protocol only, as training does (default: all subjects)")
    command.add_argument("--layers", help="comma-separated candidate layers, or `all` for "
                         "every conv layer; default the experiment's model.gradcam_layers")
    command.add_argument("--canonical-landmarks", action="store_true",
                         help="a fixed landmark layout instead of the clips' own (valid "
                         "for aligned face crops only)")
    command.add_argument("--seed", type=int, default=0,
                         help="seed of the model's initial weights and the frame sample")
    command.add_argument("--target", choices=GRADCAM_TARGETS,
                         help="what the heatmaps explain: `probe`, each frame's labelled "
                         "class through a linear probe fitted on the backbone's features of "
                         "the sampled frames; `predicted`, each frame's predicted class with "
                         "the model's own (untrained) head; default the experiment's "
                         "model.gradcam_target")
    command.add_argument("--set", dest="overrides", action="append", default=[],
                         metavar="KEY=VALUE",
                         help="override a config field, e.g. model.weights=PATH")
    command = commands.add_parser(
        "compare", help="Grad-CAM of a run's final model before and after training",
        description="Grad-CAM heatmaps of the same sample frames with a finished run's final "
        "model before and after training, at one layer (Bai & Goecke 2020, Figure 4).")
    command.add_argument("run_dir", metavar="RUN_DIR",
                         help="a train.py run folder (runs/<experiment>/<time stamp>)")
    command.add_argument("--out", help=f"output folder (default RUN_DIR/{compare.OUT_DIR})")
    command.add_argument("--layer", help="layer to explain; default the final model's "
                         "Grad-CAM selection, else the backbone's last block output")
    command.add_argument("--count", type=int, default=8,
                         help="sample frames, one per clip, of all subjects (default 8)")
    command.add_argument("--canonical-landmarks", action="store_true",
                         help="a fixed landmark layout instead of the clips' own (valid "
                         "for aligned face crops only)")
    return parser


def _compare(args) -> int:
    started = time.time()
    content = compare.compare(args.run_dir, args.out, layer=args.layer, count=args.count,
                              canonical_landmarks=args.canonical_landmarks)
    out = args.out or f"{args.run_dir}/{compare.OUT_DIR}"
    print(compare.summary(content))
    print(f"figure: {out}/{compare.FIGURE} ({time.time() - started:.0f} s)")
    return 0


def _select(args) -> int:
    scale = "quick" if args.quick else ("paper" if args.data else "builtin")
    layers = args.layers
    if layers and layers != "all":
        layers = [name.strip() for name in layers.split(",") if name.strip()]
    started = time.time()
    content = select.select(
        args.experiment, args.data or builtin.clips(), args.out, scale=scale, fold=args.fold,
        count=args.count,
        layers=layers, canonical_landmarks=args.canonical_landmarks, seed=args.seed,
        target=args.target, overrides=args.overrides)
    print(report.summary(content))
    print(f"report: {args.out}/report.html ({time.time() - started:.0f} s)")
    return 0


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    return cli.run(_compare if args.command == "compare" else _select, args)


if __name__ == "__main__":
    sys.exit(main())
