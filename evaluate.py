"""`python evaluate.py RUN_DIR` recomputes a finished run's metrics from its predictions;
`python evaluate.py --model SAVED_MODEL_DIR --data DIR` scores an exported model;
`python evaluate.py --compare RUN_DIR... [--out DIR]` compares runs (`tfmer.compare`)."""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

import tfmer  # noqa: F401  (quiets TensorFlow's start-up logging before it loads)
from tfmer import compare, results


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0].strip("`"))
    parser.add_argument("run_dir", nargs="?", help="a finished run folder (runs/EXP/ID)")
    parser.add_argument("--model", help="an exported SavedModel folder (saved_models/EXP/N)")
    parser.add_argument("--data", help="converted dataset to score --model on")
    parser.add_argument("--compare", nargs="+", metavar="RUN_DIR",
                        help="compare finished runs against the first (paired t-tests per "
                             "fold): writes comparison.md, .csv and .png into --out")
    parser.add_argument("--out", help="with --model: write predictions.csv and metrics.json "
                                      f"here; with --compare: the report folder (default "
                                      f"{compare.DEFAULT_OUT}/)")
    return parser


def main(argv=None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.compare:
        if args.run_dir or args.model or args.data:
            parser.error("--compare takes run folders only: give no RUN_DIR, --model or --data")
        try:
            result = compare.write_comparison(args.compare, args.out or compare.DEFAULT_OUT)
        except (OSError, ValueError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        print(result["markdown"] + "wrote " + ", ".join(result["files"]))
        return 0
    if bool(args.run_dir) == bool(args.model) or bool(args.model) != bool(args.data):
        parser.error("give either RUN_DIR, or --model DIR together with --data DIR")
    try:
        if args.run_dir:
            result = results.recompute(args.run_dir)
            stored = pathlib.Path(args.run_dir) / "metrics.json"
            print(results.summary(result))
            if stored.is_file():
                same = json.loads(stored.read_text())["pooled"] == result["pooled"]
                print(f"  {'matches' if same else 'DIFFERS FROM'} {stored}")
        else:
            from tfmer import export  # loads TensorFlow, which the other modes do not need

            result = export.evaluate_export(args.model, args.data, out_dir=args.out)
            print(results.summary(result))
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
