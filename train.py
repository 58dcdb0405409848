"""`python train.py --experiment NAME [--data DIR] ...`: cross-validated training + export.

With no `--data`, the built-in synthetic dataset is built on first use (`data/synthetic`;
`data/synthetic_tim64` for TIM64 experiments, `data/synthetic_expression` for an expression
stage: `data_prep.builtin`) and the experiment runs at its `builtin` scale, sized for a CPU;
`--quick` shrinks any run to a smoke test. See README.md.
"""

from __future__ import annotations

import argparse
import sys

# Only TensorFlow-free modules at the top: building the built-in data runs the converter in
# spawned processes, which re-import this script. TensorFlow loads in `_train`.
from data_prep import builtin
from tfmer import cli
from tfmer.config import STRATEGIES
from tfmer.run_folder import RunFolder

INTERRUPTED = 130
"""The exit status after Ctrl-C (128 + SIGINT, as shells report it)."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0].strip("`"))
    parser.add_argument("--experiment", help="registered experiment name (see --list)")
    parser.add_argument("--list", action="store_true", help="list the experiments and exit")
    parser.add_argument("--data", help="converted dataset folder (holding dataset.json); "
                        f"default: the built-in synthetic data in {builtin.ROOT}/")
    parser.add_argument("--protocol", help="kfoldK (e.g. kfold5), loso, lodo (leave one "
                        "database out), train=A,test=B (databases, e.g. train=casme2,test=samm) "
                        "or kfoldK-clips (folds of clips: leaks subjects); default: the "
                        "experiment's, loso on the MEGC 2019 composite")
    parser.add_argument("--seeds", type=int, help="training seeds (repeats of the whole CV)")
    parser.add_argument("--out", default="runs", help="runs root (default: runs)")
    parser.add_argument("--quick", action="store_true",
                        help="a quick look: fewer frames, lower resolution, one epoch")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="override a config field, e.g. train.epochs=5")
    parser.add_argument("--export-dir", default="saved_models",
                        help="SavedModel root (default: saved_models)")
    parser.add_argument("--no-export", action="store_true",
                        help="skip the final all-subjects model and its export")
    parser.add_argument("--resume", metavar="RUN_DIR",
                        help="go on with a killed or interrupted run: its finished folds are "
                        "kept, the fold in progress continues from its last finished epoch "
                        "(other options, if given, must give the run's config)")
    parser.add_argument("--run-dir", metavar="DIR",
                        help="the run folder to write (created by the first job of a run; "
                        "the others check that it is a run of their config); default: a new "
                        "one under --out")
    parser.add_argument("--folds", type=_folds, metavar="LIST",
                        help="with --run-dir: train only these folds (0-16, 3, 0,2,5-7), every "
                        "seed of each, while other jobs train the others; the job that "
                        "finishes the last pools the run (or evaluate.py RUN_DIR)")
    parser.add_argument("--final", action="store_true",
                        help="with --run-dir: train and export the final all-subject model "
                        "(alone, or beside --folds); jobs without it train no final model")
    parser.add_argument("--strategy", choices=STRATEGIES,
                        help="tf.distribute within a fold (device.strategy): mirrored, every "
                        "local GPU with the batch split across them; multiworker, the "
                        "workers of the cluster in TF_CONFIG (run this command on each); "
                        "default one device")
    parser.add_argument("--keep-initial", action="store_true",
                        help="also keep the final model's weights before training "
                        "(initial.weights.h5; gradcam compare rebuilds them from the seed)")
    parser.add_argument("--permute-labels", type=int, default=0, metavar="N",
                        help="label-permutation check: repeat the cross-validation N times "
                        "with each fold's training labels shuffled, and report the p-value "
                        "of the real UF1 (each repeat costs a whole cross-validation)")
    return parser


def _folds(text: str) -> list[int]:
    try:
        return cli.fold_list(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _train(args) -> int:
    cli.import_tensorflow()
    from tfmer import experiments, training

    if args.list:
        print("\n".join(experiments.describe(name) for name in experiments.names()))
        return 0
    if args.resume and not args.experiment:  # the run's own config and data
        folder = RunFolder(args.resume)
        return _cross_validate(args, folder.config(), folder.dataset_dir(), experiments,
                               training)
    overrides = list(args.overrides)
    if args.protocol:
        overrides.append(f"protocol.protocol={args.protocol}")
    if args.seeds is not None:
        overrides.append(f"protocol.seeds={args.seeds}")
    if args.strategy:
        overrides.append(f"device.strategy={args.strategy}")
    scale = "quick" if args.quick else ("paper" if args.data else "builtin")
    config = experiments.get(args.experiment, scale, overrides)
    data_dir = args.data
    if data_dir is None:
        config, data_dir = builtin.prepare(config)
    return _cross_validate(args, config, data_dir, experiments, training,
                           dataset_protocol=args.protocol is None)


def _cross_validate(args, config, data_dir, experiments, training,
                    dataset_protocol=False) -> int:
    job = args.folds is not None or args.final  # only some fits of the run
    training.cross_validate(config, data_dir, experiments.trainer, runs_root=args.out,
                            export_root=args.export_dir,
                            export_final=args.final if job else not args.no_export,
                            permute_labels=args.permute_labels,
                            dataset_protocol=dataset_protocol, resume=args.resume,
                            keep_initial=args.keep_initial, run_dir=args.run_dir,
                            only_folds=(args.folds or []) if job else None)
    return 0


def main(argv=None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not args.list and not args.experiment and not args.resume:
        parser.error("--experiment is required (see --list)")
    if (args.folds is not None or args.final) and not args.run_dir:
        parser.error("--folds and --final train part of a run: give its folder with --run-dir")
    if args.run_dir and args.resume:
        parser.error("--resume RUN_DIR goes on with that run: give no --run-dir")
    if args.final and args.no_export:
        parser.error("--final trains the model to export: give no --no-export")
    try:
        return cli.run(_train, args)
    except KeyboardInterrupt as interrupted:  # the message names the resume command
        print(f"\n{interrupted or 'interrupted'}", file=sys.stderr)
        return INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
