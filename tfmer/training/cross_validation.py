"""Cross-validated training of an experiment, then one final model for export.

Honest by construction: folds are by subject; epochs and weights are chosen either by a
fixed budget or by early stopping on an inner split of the *training* subjects; test
subjects are only ever predicted, once, after training; metrics pool the predictions of all
folds over the fixed class list.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import shutil
import tempfile
import time
from collections.abc import Callable

import numpy as np

from tfmer import clip_features, data, devices, html_report, protocols, results
from tfmer.metrics import classification_metrics
from tfmer.config import ExperimentConfig
from tfmer.run_folder import (
    CONFIG,
    DEVICE,
    EXPORT,
    FOLDS,
    FRAME_METRICS,
    HISTORIES,
    METRICS,
    OPTIONS,
    VERSIONS,
    RunFolder,
    fit_tag,
)
from tfmer.training.fit import FoldRecorder
from tfmer.training.trainer import SEED_STRIDE, BaseTrainer

TrainerFactory = Callable[[ExperimentConfig, int, pathlib.Path], BaseTrainer]
"""`make_trainer(config, num_classes, run_dir) -> BaseTrainer`: how a method trains
(`tfmer.experiments.trainer` looks it up in the registry)."""


def resolve_classes(config, info: data.DatasetInfo):
    """Fixes the config's class list to the dataset's (checking they agree when both set)."""
    if config.data.classes is not None and tuple(config.data.classes) != info.classes:
        raise ValueError(f"experiment {config.name} expects classes {list(config.data.classes)} "
                         f"but {info.path} has {list(info.classes)}; convert with the matching "
                         f"--classes, or take the dataset's with --set data.classes=none")
    return dataclasses.replace(config, data=dataclasses.replace(config.data, classes=info.classes))


def follow_dataset_protocol(config, info: data.DatasetInfo, log=print):
    """The config with the protocol the dataset is published with (`dataset.json
    ["protocol"]`), saying so when it replaces the config's; unchanged when it names none."""
    published = info.raw.get("protocol")
    if published is None or published == config.protocol.protocol:
        return config
    log(f"{info.name} is published with {published}: running it instead of "
        f"{config.name}'s {config.protocol.protocol} (--protocol for another)")
    return dataclasses.replace(config, protocol=dataclasses.replace(config.protocol,
                                                                    protocol=published))


def check_inputs(config, info: data.DatasetInfo) -> None:
    """Checks, before any training, that the dataset and the other inputs suit the experiment.

    Raises:
        ValueError: the dataset's clips are not `data.tim` frames long, a motion model's
            dataset holds no flow or flow of another method than `data.flow`, or an
            expression stage has neither expression images nor stage-1 weights (one line,
            naming the way out).
        FileNotFoundError: the expression images or stage-1 weights given do not exist.
    """
    tim = config.data.tim
    if tim is not None and info.num_frames != tim:
        found = "clips of different lengths" if info.num_frames is None else (
            f"{info.num_frames} frames per clip")
        raise ValueError(f"experiment {config.name} expects TIM{tim} clips (data.tim {tim}) but "
                         f"{info.path} has {found}; convert with `python -m data_prep ... "
                         f"--tim {tim}` (or accept any length: --set data.tim=none)")
    if config.data.input == "flow":
        check_motion(config, info)
    if config.handcrafted.method is not None:
        clip_features.check_clips(config.handcrafted, info, config.name)
    transfer = config.transfer
    if "expression" not in transfer.stages:
        return
    if transfer.expression_weights is not None:
        if not pathlib.Path(transfer.expression_weights).is_file():
            raise FileNotFoundError(f"transfer.expression_weights {transfer.expression_weights} "
                                    f"does not exist (a run's expression.weights.h5)")
    elif transfer.expression_data is not None:
        data.load_info(transfer.expression_data)  # raises, naming the folder, when unusable
    else:
        raise ValueError(
            f"experiment {config.name} pre-trains on expression images (stage 1): convert a set "
            f"with `python -m data_prep expression --root DIR --out DIR --classes expression9` "
            f"and pass it with --set transfer.expression_data=DIR (or stage-1 weights of an "
            f"earlier run with --set transfer.expression_weights=FILE); tlcnn_e runs without it")


def _recipe(config) -> str:
    """How the method trains, for the run's first line."""
    features = config.handcrafted
    if features.method is not None:
        searched = len(features.c) * max(1, len(features.gamma)) > 1 or features.grids
        return (f"{features.method} features of whole clips, {features.kernel} SVM"
                f"{' (settings chosen by inner cross-validation)' if searched else ''}")
    stages = config.transfer.stages
    return (f"{config.data.image_size} px, "
            f"{'stages ' + ', '.join(stages) + ', ' if stages else ''}"
            f"{_samples(config)}, {config.train.epochs} epoch(s)"
            f"{' at most (early stopping)' if config.train.early_stopping else ''}")


def _samples(config) -> str:
    """What one training sample is, for the run's first line."""
    if config.data.input == "flow":
        return "onset -> apex flow (" + ", ".join(config.model.channels) + ")"
    if config.data.input == "appearance":
        return (f"appearance matrices of {config.data.columns} columns, "
                f"{config.data.jitter_copies} jittered copies per clip")
    if config.data.window is None:
        return "whole clips"
    return f"windows of {config.data.window} frames"


def _fold_line(info: data.DatasetInfo, fold: dict) -> str:
    """What a fold trains and tests on, for its first log line."""
    train, test = info.clips_of(fold["train_subjects"]), info.clips_of(fold["test_subjects"])
    if info.unit == "clip":
        return (f"train on {len(train)} clips, test on {len(test)} clips of "
                f"{len({c['subject'] for c in test})} subjects")
    return (f"train on {len(train)} clips of {len(fold['train_subjects'])} subjects, test on "
            f"{len(test)} clips of {', '.join(fold['test_subjects'])}")


def check_motion(config, info: data.DatasetInfo) -> None:
    """Checks that every clip of the dataset carries onset -> apex motion, of the method
    `data.flow` names (any when None).

    Raises:
        ValueError: clips without motion (converted with `--flow none`), or motion of
            another method; the message names the `--flow` to convert with.
    """
    wanted = config.data.flow or "tvl1"
    missing = [clip["id"] for clip in info.clips if "flow" not in clip]
    if missing:
        raise ValueError(
            f"experiment {config.name} reads each clip's onset -> apex optical flow, but "
            f"{len(missing)} of the {len(info.clips)} clips of {info.path} have none (e.g. "
            f"{missing[0]}): it was converted with --flow none; convert it again with "
            f"`python -m data_prep ... --flow {wanted}`")
    methods = sorted({clip["flow"]["method"] for clip in info.clips})
    if config.data.flow is not None and methods != [config.data.flow]:
        raise ValueError(
            f"experiment {config.name} expects {config.data.flow} flow (data.flow "
            f"{config.data.flow}) but {info.path} holds {', '.join(methods)} flow; convert "
            f"with `python -m data_prep ... --flow {config.data.flow}`, or accept it with "
            f"--set data.flow=none")


def single_class_test_folds(info: data.DatasetInfo, folds) -> list[tuple]:
    """The folds whose test clips are all of one class (common under LOSO: a subject with
    clips of one emotion), as `(fold, test subjects, class)`."""
    found = []
    for fold in folds:
        labels = {clip["label"] for clip in info.clips_of(fold["test_subjects"])}
        if len(labels) == 1:
            found.append((fold["fold"], fold["test_subjects"], labels.pop()))
    return found


def permuted_labels(info: data.DatasetInfo, subjects, seed: int) -> dict:
    """`{clip id: class index}`: the labels of the clips of `subjects` shuffled among those
    clips (the same multiset of labels, drawn with `seed`)."""
    clips = info.clips_of(subjects)
    labels = [info.classes.index(clip["label"]) for clip in clips]
    order = np.random.default_rng(seed).permutation(len(clips))
    return {clip["id"]: labels[i] for clip, i in zip(clips, order)}


def permutation_check(trainer: BaseTrainer, info: data.DatasetInfo, folds, count: int,
                      real_uf1: float, log=print) -> dict:
    """The label-permutation check of a cross-validation: `count` repeats of it (training
    seed 0) with each fold's training labels shuffled among its training clips (test
    labels untouched), scored as the real run is. The shuffled labels reach training
    through `DatasetInfo.relabelled`, so every trainer and pipeline sees them (the
    held-out subjects of early stopping are training subjects and are shuffled too; a
    stage-1 expression set is not).

    Returns:
        `{"n", "uf1": [UF1 of each repeat], "real_uf1", "p_value"}`: p is the share of
        runs scoring at least the real UF1, the real run counted (`(1 + #{uf1 >= real}) /
        (n + 1)`), so it is never 0.
    """
    scores = []
    for repeat in range(1, count + 1):
        rows = []
        for fold in folds:
            labels = permuted_labels(info, fold["train_subjects"], SEED_STRIDE * repeat
                                     + fold["fold"])
            trainer.fit(info.relabelled(labels), fold["train_subjects"], seed=fold["fold"],
                        log=lambda line: None)
            rows += trainer.predict(info, fold["test_subjects"])
        scores.append(metrics_of(rows, info)["uf1"])
        log(f"  permutation {repeat} of {count}: UF1 {scores[-1]:.3f}")
    p_value = (1 + sum(score >= real_uf1 for score in scores)) / (count + 1)
    return {"n": count, "uf1": scores, "real_uf1": real_uf1, "p_value": p_value}


def metrics_of(rows, info: data.DatasetInfo) -> dict:
    """Accuracy, UF1 and UAR of prediction rows over the dataset's class list."""
    return classification_metrics([r["y_true"] for r in rows], [r["y_pred"] for r in rows],
                                  len(info.classes))


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a run: its finished folds are kept; `run_dir` says where, and the
    message how to go on (`--resume`, a `job`'s own command again; a `multiworker` run
    does not go on)."""

    def __init__(self, run_dir: pathlib.Path, job: bool = False, multiworker: bool = False):
        if multiworker:
            again = "a multi-worker run does not resume"
        else:
            command = ("the same command again" if job
                       else f"`python train.py --resume {run_dir}`")
            again = f"go on with {command}"
        super().__init__(f"interrupted: the finished folds are kept in {run_dir}; {again}")
        self.run_dir = run_dir


def make_deterministic(config: ExperimentConfig) -> None:
    """With `protocol.deterministic`, TensorFlow's ops (tf.data included) run
    deterministically (`tf.config.experimental.enable_op_determinism`): with the seeds every
    fit sets, a run gives the same figures again. For the whole process, from here on."""
    if config.protocol.deterministic:
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


def check_resumable(folder: RunFolder, config: ExperimentConfig, info: data.DatasetInfo,
                    folds: list) -> None:
    """Checks that `folder` is a run of this very command: the same resolved config, data
    and folds.

    Raises:
        FileNotFoundError: not a run folder.
        ValueError: a config, dataset or folds that differ (naming the first difference).
    """
    saved = folder.saved_config()
    saved_dataset = saved.pop("dataset")
    wanted = json.loads(json.dumps(config.to_dict()))  # as config.json holds it
    for key in sorted(set(saved) | set(wanted)):
        if saved.get(key) != wanted.get(key):
            difference = _first_difference(saved.get(key), wanted.get(key), key)
            raise ValueError(f"cannot resume {folder.path}: its config differs from the "
                             f"command's at {difference} (resume with the command that "
                             f"started it, or just `python train.py --resume {folder.path}`)")
    path = ",".join(str(p.resolve()) for p in info.paths)
    if saved_dataset.get("path") != path:
        raise ValueError(f"cannot resume {folder.path}: it trained on "
                         f"{saved_dataset.get('path')}, not {path}")
    if folder.folds() != folds:
        raise ValueError(f"cannot resume {folder.path}: its {FOLDS} differs from the folds "
                         f"of {path} (the dataset changed since)")


def _first_difference(saved, wanted, key: str) -> str:
    """`key.sub: saved != wanted` for the first differing entry of two config values."""
    if isinstance(saved, dict) and isinstance(wanted, dict):
        for sub in sorted(set(saved) | set(wanted)):
            if saved.get(sub) != wanted.get(sub):
                return _first_difference(saved.get(sub), wanted.get(sub), f"{key}.{sub}")
    return f"{key} (run: {saved!r}, command: {wanted!r})"


def _eta(seconds: float) -> str:
    """A duration for a progress line: `40 s`, `12 min`, `3.5 h`."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


def cross_validate(config: ExperimentConfig, data_dir, make_trainer: TrainerFactory, *,
                   runs_root="runs", export_root="saved_models", export_final=True,
                   permute_labels: int = 0, dataset_protocol: bool = False, resume=None,
                   keep_initial: bool = False, run_dir=None, only_folds=None,
                   log=print) -> tuple[pathlib.Path, dict | None]:
    """Runs the experiment's protocol on a converted dataset and writes the run folder.

    Writes `config.json`, `versions.json`, `folds.json`, each fold's results as it
    finishes (`folds/`), TensorBoard logs (`tensorboard/`), then `predictions.csv`,
    `metrics.json`, `histories.json`, the plots, for frame models (`data.window` 1)
    `frame_metrics.json` (per-frame and majority-vote figures, `results.frame_metrics`)
    and each fold's choice made on its training subjects where the trainer makes one
    (`gradcam.json` with `model.unfreeze_from: gradcam`, `search.json` for an SVM's
    search); then, with `export_final`, trains one model on all subjects with the same
    recipe (a network keeps its trained weights, `final.weights.h5`) and exports it (a
    SavedModel, or an SVM baseline's scikit-learn model; recorded in `export.json`); last
    `report.html`. File names and formats: `tfmer.run_folder`.

    A run killed (or stopped with Ctrl-C: `Interrupted`) goes on with `resume`: the
    folds it finished are kept, the fit in progress continues from its last finished
    epoch (`tfmer.training.fit.FoldRecorder`); with `protocol.deterministic` the figures
    are those of an uninterrupted run.

    Folds as jobs: with `run_dir` and `only_folds`, this process trains those folds (every
    seed of each) into `run_dir`, created by the first job of the run and checked by the
    others (the same config, data and folds), while other processes train other folds;
    each fit is claimed (`RunFolder.claim`), so no two train one. Whichever job finds
    every fit finished pools them (under the run's lock) into the files an uninterrupted
    run writes; else `merge` (`evaluate.py RUN_DIR`) does, once they are.

    Across workers (`device.strategy: multiworker`, every worker running this with its
    `TF_CONFIG`): every fit trains on all of them at once (`tfmer.training.distributed`);
    the chief writes the run folder and the export, the other workers the same files into
    a scratch folder, removed when they end. A whole run, in one go: not with `resume`,
    `run_dir` or `only_folds` (the workers would have to agree on what is done).

    Args:
        config: the resolved experiment.
        data_dir: the converted dataset (holding `dataset.json`).
        make_trainer: how the method trains: `make_trainer(config, num_classes, run_dir)`
            gives the `BaseTrainer` used for every fold and the final model; it gets the
            run folder, where staged trainers save their stage weights and SVM trainers
            their feature cache.
        runs_root, export_root: where the run folder and the SavedModel go.
        export_final: train and export the final all-subject model (in this process).
        permute_labels: after the real run, the label-permutation check with this many
            repeats (`permutation_check`, training seed 0), recorded in `metrics.json` as
            `permutation`; each repeat costs a whole cross-validation.
        dataset_protocol: run the protocol the dataset is published with
            (`dataset.json["protocol"]`, e.g. `loso` for the MEGC 2019 composite) instead
            of the config's, when the dataset names one (`train.py` without `--protocol`).
        resume: a run folder of this config to go on with (`check_resumable`), instead of
            a new one; it ends as it was started (`options.json`: export, permutation
            check, initial weights), whatever these arguments say.
        keep_initial: also keep the final model's weights before training
            (`initial.weights.h5`; `gradcam compare` rebuilds them from the seed without).
        run_dir: the run folder to write (created when it does not hold a run; a run
            there must be of this config), instead of a new one under `runs_root`.
        only_folds: the fold indices this process trains (with `run_dir`); None: all.
        log: progress lines go here.

    Returns:
        `(run_dir, metrics)`; metrics None when folds of the run are still missing.

    Raises:
        ValueError: a fold of `only_folds` outside the protocol, `only_folds` with the
            permutation check, a run folder of another config, a fit another process is
            training, `multiworker` without a cluster or with `resume`, `run_dir` (one
            line each, before any training).
    """
    info = data.load_info(data_dir)
    config = resolve_classes(config, info)
    if dataset_protocol:
        config = follow_dataset_protocol(config, info, log)
    check_inputs(config, info)
    if permute_labels < 0:
        raise ValueError(f"--permute-labels {permute_labels}: the number of repeats is >= 0")
    source = info
    if protocols.splits_clips(config.protocol.protocol):
        info = info.by_clip()  # folds, training and prediction by clip from here on
    folds = protocols.make_folds(info.subjects, config.protocol.protocol, config.num_folds,
                                 config.protocol.fold_seed)
    if only_folds is not None:
        check_fold_subset(only_folds, folds, config, permute_labels)
    settings = devices.resolve(config.device, devices.local_gpus())
    scratch = None  # a multi-worker run's folder on a worker that is not the chief
    if settings.strategy == "multiworker":
        if resume is not None or run_dir is not None:
            raise ValueError("device.strategy multiworker trains a whole run in one go: give "
                             "no --resume, --run-dir or --folds (train folds as jobs, each "
                             "on one machine, instead)")
        if not settings.chief:
            scratch = pathlib.Path(tempfile.mkdtemp(prefix=f"tfmer-worker{settings.worker}-"))
            log(f"worker {settings.worker} of {settings.workers}: training alongside the "
                f"chief, which writes the run; this worker's files go to {scratch} "
                f"(removed at the end)")
            runs_root, export_root = scratch / "runs", scratch / "saved_models"
    options = {"export_final": export_final,
               "export_root": str(pathlib.Path(export_root).resolve()),
               "permute_labels": permute_labels, "keep_initial": keep_initial}
    if resume is not None:
        folder = RunFolder(resume)
        check_resumable(folder, config, info, folds)
        recorded = folder.read_json(OPTIONS, options)
        if recorded != options:
            log("resuming as the run started: "
                + ", ".join(f"{key} {value}" for key, value in recorded.items()))
        options = recorded
    elif run_dir is not None:
        folder = RunFolder(run_dir)
        folder.path.mkdir(parents=True, exist_ok=True)
        with folder.lock():  # one job creates the run, the others check it is theirs
            if folder.file(CONFIG).is_file():
                check_resumable(folder, config, info, folds)
            else:
                _start_run(folder, config, info, source, folds, options, settings)
    else:
        folder = RunFolder.create(runs_root, config.name)
        _start_run(folder, config, info, source, folds, options, settings)
    try:
        with devices.use(settings):
            log(settings.describe())
            return _run(config, info, source, folds, folder, make_trainer,
                        options["export_root"], options["export_final"],
                        options["permute_labels"], resume is not None, options["keep_initial"],
                        only_folds, log)
    except KeyboardInterrupt:
        raise Interrupted(folder.path, job=only_folds is not None,
                          multiworker=settings.strategy == "multiworker") from None
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def check_fold_subset(only_folds, folds: list, config: ExperimentConfig,
                      permute_labels: int) -> None:
    """Checks a job's folds (`--folds`) against the protocol's.

    Raises:
        ValueError: a fold outside the protocol, or a permutation check asked of a job.
    """
    outside = sorted(set(only_folds) - {fold["fold"] for fold in folds})
    if outside:
        raise ValueError(f"--folds: fold {outside[0]} is outside the protocol "
                         f"{config.protocol.protocol}, whose folds are 0-{len(folds) - 1}")
    if permute_labels:
        raise ValueError("--permute-labels repeats the whole cross-validation: run it in one "
                         "process, without --folds/--final")


def _start_run(folder: RunFolder, config, info, source, folds, options,
               settings: devices.Settings) -> None:
    """A new run's first files: its config, versions, device settings, options, folds."""
    folder.write_config(config, {
        "path": ",".join(str(path.resolve()) for path in info.paths), "name": info.name,
        "num_clips": len(info.clips), "num_subjects": len(source.subjects),
        "num_frames": info.num_frames, "tim": info.raw.get("tim")})
    folder.write_json(VERSIONS, html_report.versions())
    folder.write_json(DEVICE, settings.to_dict())
    folder.write_json(OPTIONS, options)
    folder.write_json(FOLDS, folds)


def _run(config, info, source, folds, folder: RunFolder, make_trainer, export_root,
         export_final, permute_labels, resuming, keep_initial, only_folds, log):
    """`cross_validate` once its run folder is there."""
    run_dir = folder.path
    make_deterministic(config)
    fits = _all_fits(config, folds)
    mine = [(seed, fold) for seed, fold in fits
            if only_folds is None or fold["fold"] in only_folds]
    kept = folder.fold_results()
    todo = [(seed, fold) for seed, fold in mine if (fold["fold"], seed) not in kept]
    exported = folder.file(EXPORT).is_file()  # by the process resumed, or another job
    final = export_final and not exported
    joined = " (resumed)" if resuming else (f" (a job: folds {_ranges(only_folds)}"
                                            f"{' and the final model' if export_final else ''})"
                                            if only_folds is not None else "")
    log(f"run folder {run_dir}{joined}\n{config.name} at the "
        f"{config.scale} scale: {_recipe(config)}, {config.protocol.protocol} ({len(folds)} "
        f"folds) x {config.protocol.seeds} seed(s) on {info.name}: {len(info.clips)} clips, "
        f"{len(source.subjects)} subjects")
    if info.unit == "clip":
        log(f"  warning: {config.protocol.protocol} splits clips, not subjects: a subject's "
            f"clips are in training and test folds at once, so the model can recognise the "
            f"person, not the expression, and the figures are optimistic. Use it only to "
            f"compare with papers that split so (Bai & Goecke 2020, Section 4.6); report "
            f"subject-independent folds (kfold5, loso)")
    single = single_class_test_folds(info, [fold for seed, fold in mine if seed == 0])
    if single:
        log(f"  note: {len(single)} fold(s) test clips of one class only (" + ", ".join(
            f"fold {f}: {', '.join(subjects)} ({label})" for f, subjects, label in single[:5])
            + (", ..." if len(single) > 5 else "") + f"): their per-fold UF1 and UAR count all "
            f"{len(info.classes)} classes, so they reach 1/{len(info.classes)} at most; the "
            f"pooled figures are unaffected")
    done = len(mine) - len(todo)
    if done:
        log(f"  {done} of {len(mine)} fold fits finished before: kept, not retrained")
    tags = [fit_tag(fold["fold"], seed) for seed, fold in todo] + (["final"] if final else [])
    with folder.claim(tags):
        trainer = make_trainer(config, len(info.classes), run_dir)
        recorder = FoldRecorder(folder)
        trainer.record(recorder)
        for fold, seed in kept:
            recorder.discard(fit_tag(fold, seed))  # left by a kill after the fit was kept
        trainer.plan(info, [(fold["train_subjects"], SEED_STRIDE * seed + fold["fold"])
                            for seed, fold in todo]
                     + ([(list(info.subjects), 0)] if final else []), log)
        durations = []
        for seed, fold in todo:
            started = time.time()
            log(f"fold {fold['fold']} ({fold['fold'] + 1} of {len(folds)}), seed {seed}: "
                + _fold_line(info, fold))
            recorder.begin(fit_tag(fold["fold"], seed))
            history = trainer.fit(info, fold["train_subjects"],
                                  seed=SEED_STRIDE * seed + fold["fold"], log=log)
            predicted = trainer.predict(info, fold["test_subjects"])
            for row in predicted:
                row.update(fold=fold["fold"], seed=seed)
            result = {"fold": fold["fold"], "seed": seed, "predictions": predicted,
                      "history": history, "selection": trainer.selection,
                      "device": devices.current().to_dict()}
            folder.write_fold_result(fold["fold"], seed, result)
            recorder.end()
            durations.append(time.time() - started)
            log(_progress_line(result, info, durations, len(todo) + bool(final)))
        metrics = _pool_if_complete(config, info, fits, folder, trainer, recorder,
                                    permute_labels, log)
        if exported and export_final:
            log(f"final model: exported before ({folder.saved_model()})")
        elif final:
            pooled = (folder.read_json(METRICS) or {}).get("pooled")
            _final_model(trainer, recorder, info, source, folder, export_root, keep_initial,
                         pooled, log)
    if folder.file(METRICS).is_file():
        log(f"report {html_report.write_report(run_dir)}")
    return run_dir, metrics


def _all_fits(config: ExperimentConfig, folds: list) -> list[tuple[int, dict]]:
    """Every fit of a run's folds, `[(training seed, fold)]`, seed by seed."""
    return [(seed, fold) for seed in range(config.protocol.seeds) for fold in folds]


def _ranges(numbers) -> str:
    """`0-3,7` for [0, 1, 2, 3, 7]; `none` for []."""
    numbers, parts = sorted(set(numbers)), []
    for number in numbers:
        if parts and number == parts[-1][1] + 1:
            parts[-1][1] = number
        else:
            parts.append([number, number])
    return ",".join(f"{a}" if a == b else f"{a}-{b}" for a, b in parts) or "none"


def _missing(fits, kept) -> str:
    """The fits (`fit_tag`) of `fits` without results in `kept`, listed (the first six):
    `fold3.seed0, fold5.seed0`; empty when none is missing."""
    missing = [fit_tag(fold["fold"], seed) for seed, fold in fits
               if (fold["fold"], seed) not in kept]
    listed = ", ".join(missing[:6]) + (", ..." if len(missing) > 6 else "")
    return f"{len(missing)} of {len(fits)} ({listed})" if missing else ""


def _pool_if_complete(config, info, fits, folder: RunFolder, trainer, recorder,
                      permute_labels, log) -> dict | None:
    """Pools the run's folds (`pool`) when all are finished (with the permutation check
    when asked); else says which are missing and returns None."""
    with folder.lock():
        kept = folder.fold_results()
        missing = _missing(fits, kept)
        if missing:
            log(f"  fold fits of the run still missing: {missing}; the last job pools them, "
                f"or `python evaluate.py {folder.path}` once all are there")
            return None
        permutation = None
        if permute_labels:
            log(f"label-permutation check: {permute_labels} repeat(s) of the cross-validation "
                f"with each fold's training labels shuffled (test labels untouched)")
            rows = [row for seed, fold in fits if seed == 0
                    for row in kept[fold["fold"], seed]["predictions"]]
            trainer.record(None)
            permutation = permutation_check(trainer, info, [f for s, f in fits if s == 0],
                                            permute_labels, metrics_of(rows, info)["uf1"], log)
            trainer.record(recorder)
        metrics = pool(config, info, fits, kept, folder, trainer, permutation, log)
    if (config.model.backbone == "vggface2_resnet50" and config.model.weights is None
            and config.handcrafted.method is None):
        log("  The backbone was trained from scratch: on a few hundred clips expect figures "
            "near chance.\n  For the VGGFace2 pre-training of the paper pass keras-vggface's "
            "weight file:\n  --set model.weights=/path/to/rcmalli_vggface_tf_notop_resnet50.h5")
    return metrics


def pool(config, info, fits, kept: dict, folder: RunFolder, trainer: BaseTrainer,
         permutation=None, log=print) -> dict:
    """Writes a run's pooled results from its finished fits `kept`
    (`RunFolder.fold_results`), in the order of `fits`: `predictions.csv`,
    `histories.json`, the trainer's selections, `metrics.json` with the plots (and the
    `permutation` check when given) and, for frame models, `frame_metrics.json`; returns
    the metrics. The same files whether the fits ran in one process or in many jobs."""
    rows, histories, selections = [], [], []
    for seed, fold in fits:
        result = kept[fold["fold"], seed]
        rows += result["predictions"]
        histories.append({"label": f"fold {fold['fold']} seed {seed}",
                          "history": result["history"]})
        if result["selection"]:
            selections.append({"fold": fold["fold"], "seed": seed, **result["selection"]})
    folder.write_predictions(rows, info.classes)
    folder.write_json(HISTORIES, histories)
    if selections:
        trainer.write_selections(folder, selections)
    metrics = results.write_report(folder, rows, info.classes, experiment=config.name,
                                   protocol=config.protocol.protocol,
                                   histories=histories if any(h["history"] for h in histories)
                                   else None, permutation=permutation)
    log(results.summary(metrics))
    if trainer.frame_level:
        frame_metrics = results.frame_metrics(rows, info.classes,
                                              eval_stride=config.data.eval_stride)
        folder.write_json(FRAME_METRICS, frame_metrics)
        log(results.frame_summary(frame_metrics))
    return metrics


def _final_model(trainer, recorder, info, source, folder: RunFolder, export_root,
                 keep_initial, pooled, log) -> None:
    """Trains the final model on every subject, exports it and records `export.json`."""
    log(f"final model: the same recipe on all {len(source.subjects)} subjects")
    trainer.before_final(keep_initial)
    recorder.begin(fit_tag(None, 0))
    history = trainer.fit(info, info.subjects, seed=0, log=log, final=True)
    path, serves = trainer.export(info.classes, export_root, extra={
        "run": str(folder.path.resolve()), "dataset": info.name, "tim": info.raw.get("tim"),
        "conversion": info.raw.get("settings"), "cross_validated": pooled,
        "final_history": history})
    folder.write_json(EXPORT, {"saved_model": str(path.resolve())})
    recorder.end()
    log(f"exported {path}: {serves}")


def merge(run_dir, make_trainer: TrainerFactory, log=print) -> dict:
    """Pools a run whose folds were trained by jobs (`cross_validate(only_folds=...)`)
    into the files an uninterrupted run writes, and its `report.html`
    (`evaluate.py RUN_DIR` on a run without `predictions.csv`).

    Raises:
        FileNotFoundError: not a run folder.
        ValueError: fits of the run are missing (naming them and the command that trains
            them).
    """
    folder = RunFolder(run_dir)
    config = folder.config()
    info = data.load_info(folder.dataset_dir())
    if protocols.splits_clips(config.protocol.protocol):
        info = info.by_clip()
    folds = folder.folds()
    fits = _all_fits(config, folds)
    with folder.lock():
        kept = folder.fold_results()
        missing = _missing(fits, kept)
        if missing:
            raise ValueError(f"{folder.path}: fold fits not finished: {missing}; train them "
                             f"with `python train.py --experiment {config.name} ... --run-dir "
                             f"{folder.path} --folds N`")
        metrics = pool(config, info, fits, kept, folder,
                       make_trainer(config, len(info.classes), folder.path), None, log)
    log(f"report {html_report.write_report(folder.path)}")
    return metrics


def _progress_line(result: dict, info: data.DatasetInfo, durations: list, fits: int) -> str:
    """A finished fold's figures and the time the run has left: `fits` trainings in all
    this session (the final model counted as one), `durations` those done."""
    predicted = result["predictions"]
    figures = metrics_of(predicted, info)
    correct = sum(r["y_pred"] == r["y_true"] for r in predicted)
    left = fits - len(durations)
    estimate = (f"about {_eta(left * sum(durations) / len(durations))} left ({left} more "
                f"fit{'s' if left != 1 else ''}, at {_eta(sum(durations) / len(durations))} "
                f"each)" if left else "no fit left")
    return (f"  fold {result['fold']}: {correct}/{len(predicted)} test clips correct, UF1 "
            f"{figures['uf1']:.3f}, UAR {figures['uar']:.3f} ({durations[-1]:.0f} s); "
            f"{estimate}")
