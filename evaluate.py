"""`python evaluate.py RUN_DIR` recomputes a finished run's metrics from its predictions
and writes its `report.html` again (`tfmer.html_report`); a run whose folds were trained
by jobs (`train.py --run-dir DIR --folds ...`) and not pooled yet is pooled first
(`tfmer.training.merge`: the files an uninterrupted run writes);
`python evaluate.py --model SAVED_MODEL_DIR --data DIR` scores an exported model;
`python evaluate.py --compare RUN_DIR... [--out DIR]` compares runs (`tfmer.compare`)."""

from __future__ import annotations

import argparse
import sys

from tfmer import cli, compare, html_report, results
from tfmer.run_folder import FOLD_RESULTS, METRICS, PREDICTIONS, RunFolder


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0].strip("`"))
    parser.add_argument("run_dir", nargs="?", help="a finished run folder (runs/EXP/ID)")
    parser.add_argument("--model", help="an exported SavedModel folder (saved_models/EXP/N)")
    parser.add_argument("--data", help="converted dataset to score --model on")
    parser.add_argument("--compare", nargs="+", metavar="RUN_DIR",
                        help="compare finished runs against the first (paired t-tests per "
                             "fold): writes comparison.md, .csv, .png and .html into --out")
    parser.add_argument("--out", help="with --model: write predictions.csv and metrics.json "
                                      f"here; with --compare: the report folder (default "
                                      f"{compare.DEFAULT_OUT}/)")
    return parser


def _compare(args) -> int:
    result = compare.write_comparison(args.compare, args.out or compare.DEFAULT_OUT)
    print(result["markdown"] + "wrote " + ", ".join(result["files"]))
    return 0


def _recompute(args) -> int:
    folder = RunFolder(args.run_dir)
    if not folder.file(PREDICTIONS).is_file() and folder.file(FOLD_RESULTS).is_dir():
        cli.import_tensorflow()  # pooling writes the trainer's selections
        from tfmer import experiments, training

        training.merge(folder.path, experiments.trainer)
        return 0
    result = results.recompute(folder)
    print(results.summary(result))
    stored = folder.read_json(METRICS)
    if stored is not None:
        same = stored["pooled"] == result["pooled"]
        print(f"  {'matches' if same else 'DIFFERS FROM'} {folder.file(METRICS)}")
    print(f"report {html_report.write_report(folder.path)}")
    return 0


def _score_export(args) -> int:
    cli.import_tensorflow()  # only this mode needs TensorFlow
    from tfmer import export

    print(results.summary(export.evaluate_export(args.model, args.data, out_dir=args.out)))
    return 0


def main(argv=None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.compare:
        if args.run_dir or args.model or args.data:
            parser.error("--compare takes run folders only: give no RUN_DIR, --model or --data")
        return cli.run(_compare, args)
    if bool(args.run_dir) == bool(args.model) or bool(args.model) != bool(args.data):
        parser.error("give either RUN_DIR, or --model DIR together with --data DIR")
    return cli.run(_recompute if args.run_dir else _score_export, args)


if __name__ == "__main__":
    sys.exit(main())
