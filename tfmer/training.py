"""Cross-validated training of a registered experiment, then one final model for export.

Honest by construction: folds are by subject; epochs and weights are chosen either by a
fixed budget or by early stopping on an inner split of the *training* subjects; test
subjects are only ever predicted, once, after training; metrics pool the predictions of all
folds over the fixed class list.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import os
import pathlib
import sys
import time

import keras
import tensorflow as tf

from gradcam import conv_layer_names, select
from tfmer import data, experiments, export, protocols, results
from tfmer.files import write_json_atomic
from tfmer.models.clip import clip_probabilities, freeze_before


INITIAL_WEIGHTS = "initial.weights.h5"
FINAL_WEIGHTS = "final.weights.h5"
"""The final model's weights before and after training, in the run folder."""


def save_weights(model, path: pathlib.Path) -> None:
    """Saves the weights of `model`'s layers via a temporary name and a rename.

    Through an uncompiled model on the same layers: `save_weights` of a compiled model also
    writes the optimizer's state (SGD momentum: as large again), which nothing reads.
    """
    temporary = path.with_name(f".{path.stem}.tmp.weights.h5")
    keras.Model(model.inputs, model.outputs, name=model.name).save_weights(temporary)
    os.replace(temporary, path)


SEED_STRIDE = 1000
"""The fit of fold f under training seed s has seed `SEED_STRIDE * s + f` (`cross_validate`);
the final model's fit has seed 0. Staged trainers run their fold-independent stage once per
training seed, `seed // SEED_STRIDE`."""


def resolve_classes(config, info: data.DatasetInfo):
    """Fixes the config's class list to the dataset's (checking they agree when both set)."""
    if config.data.classes is not None and tuple(config.data.classes) != info.classes:
        raise ValueError(f"experiment {config.name} expects classes {list(config.data.classes)} "
                         f"but {info.path} has {list(info.classes)}; convert with the matching "
                         f"--classes, or take the dataset's with --set data.classes=none")
    return dataclasses.replace(config, data=dataclasses.replace(config.data, classes=info.classes))


def check_inputs(config, info: data.DatasetInfo) -> None:
    """Checks, before any training, that the dataset and the other inputs suit the experiment.

    Raises:
        ValueError: the dataset's clips are not `data.tim` frames long, or an expression
            stage has neither expression images nor stage-1 weights (one line, naming the
            way out).
        FileNotFoundError: the expression images or stage-1 weights given do not exist.
    """
    tim = config.data.tim
    if tim is not None and info.num_frames != tim:
        found = "clips of different lengths" if info.num_frames is None else (
            f"{info.num_frames} frames per clip")
        raise ValueError(f"experiment {config.name} expects TIM{tim} clips (data.tim {tim}) but "
                         f"{info.path} has {found}; convert with `python -m data_prep ... "
                         f"--tim {tim}` (or accept any length: --set data.tim=none)")
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


def _optimizer(train, base_rate: keras.Variable):
    """The optimizer of `train`; its learning rate is `base_rate` (a variable, so the
    fine-tune phase can change it without retracing), decayed stepwise with `decay_steps`."""
    rate = (keras.optimizers.schedules.ExponentialDecay(
                base_rate, train.decay_steps, train.decay_rate, staircase=True)
            if train.decay_steps else (lambda: base_rate))
    if train.optimizer == "sgd":
        return keras.optimizers.SGD(rate, momentum=train.momentum)
    return keras.optimizers.Adam(rate)


class KeepBest(keras.callbacks.Callback):
    """Keeps the weights of the best epoch by `monitor` and restores them when a fit ends.

    A fit stops after `patience` epochs without improvement. The best carries over to later
    fits with the same callback (the fine-tune phase), whose epochs continue the count.
    An epoch improves on the best when its `val_loss` is lower or `val_accuracy` higher.

    Attributes:
        best: the best value so far (None before the first epoch).
        best_epoch: its epoch, 1-based over all fits.
        epochs: epochs seen over all fits.
    """

    def __init__(self, monitor: str, patience: int):
        super().__init__()
        self.monitor, self.patience = monitor, patience
        self.sign = -1.0 if monitor == "val_loss" else 1.0
        self.best, self.best_epoch, self.epochs, self.wait, self.weights = None, None, 0, 0, None

    def on_train_begin(self, logs=None):
        self.wait = 0

    def on_epoch_end(self, epoch, logs=None):
        self.epochs += 1
        if self.monitor not in (logs or {}):
            raise ValueError(f"cannot keep the best epoch by {self.monitor}: the epoch logged "
                             f"only {', '.join(sorted(logs or {}))}")
        value = float(logs[self.monitor])
        if not math.isnan(value) and (self.best is None or self.sign * (value - self.best) > 0):
            self.best, self.best_epoch, self.wait = value, self.epochs, 0
            self.weights = self.model.get_weights()
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.weights is not None:
            self.model.set_weights(self.weights)


class CompiledModel:
    """A model compiled once for a `TrainConfig` section, with a resettable optimizer.

    Tracing a training step costs seconds (half a minute for a ResNet-50 clip model on a
    2-core CPU), so the model is compiled once and `reset_optimizer` gives the optimizer its
    initial state and base learning rate for each fit (and for the fine-tune phase).
    The loss is sparse categorical cross-entropy over the model's probabilities.
    """

    def __init__(self, model: keras.Model, train):
        self.model, self.train = model, train
        self.compile()

    def compile(self) -> None:
        """(Re)compiles (after a change of what trains) and keeps the optimizer's start."""
        self._base_rate = keras.Variable(self.train.learning_rate, trainable=False,
                                         name="base_learning_rate")
        self.model.compile(optimizer=_optimizer(self.train, self._base_rate),
                           loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        self.model.optimizer.build(self.model.trainable_variables)
        self._optimizer_start = [v.numpy() for v in self.model.optimizer.variables]

    def reset_optimizer(self, learning_rate: float) -> None:
        """The optimizer's initial state (step 0, no momentum) at base `learning_rate`."""
        for variable, value in zip(self.model.optimizer.variables, self._optimizer_start):
            variable.assign(value)
        self._base_rate.assign(learning_rate)

    def fit(self, training, validation=None, log=print) -> dict:
        """Trains with the section's budget and stopping rule, then its fine-tune phase.

        Args:
            training: `(inputs, labels)` batches; one epoch of them, or with
                `steps_per_epoch` an endless stream.
            validation: `(inputs, labels)` batches of the inner split of the training
                subjects; needed with early stopping, else None (the last weights stay).

        Returns:
            The per-epoch lists of `loss`, `accuracy` (and `val_loss`, `val_accuracy`),
            the fine-tune phase's epochs appended to the first phase's.
        """
        train = self.train
        keep = None
        if train.early_stopping:
            if validation is None:
                raise ValueError("early stopping needs validation batches (an inner split)")
            keep = KeepBest(train.monitor, train.patience)
        rates = [train.learning_rate] + ([train.finetune_learning_rate]
                                         if train.finetune_learning_rate else [])
        history = {}
        for phase, rate in enumerate(rates):
            self.reset_optimizer(rate)
            if phase:
                log(f"  fine-tuning from the {'best' if keep else 'last'} weights at base "
                    f"learning rate {rate:g}")
            result = self.model.fit(training, validation_data=validation, epochs=train.epochs,
                                    steps_per_epoch=train.steps_per_epoch,
                                    callbacks=[keep] if keep else [], shuffle=False,
                                    verbose=1 if sys.stdout.isatty() else 2)
            for key, values in result.history.items():
                history.setdefault(key, []).extend(float(v) for v in values)
        if keep and keep.best_epoch is not None:
            log(f"  kept epoch {keep.best_epoch} of {keep.epochs} ({train.monitor} "
                f"{keep.best:.4f} on the held-out split)")
        return history


def inner_split(subjects, train, seed: int, log=print) -> tuple[list, list]:
    """The training subjects to fit on and the held-out ones to choose the best epoch on
    (`protocols.inner_split`); without early stopping, all of them and none."""
    if not train.early_stopping:
        return list(subjects), []
    fit_subjects, held_out = protocols.inner_split(subjects, train.validation_fraction, seed)
    log(f"  best epoch chosen on held-out training subjects: {', '.join(held_out)}")
    return fit_subjects, held_out


def with_cardinality(dataset, samples: int, batch_size: int):
    """`dataset`, one pass of `samples` samples in batches of `batch_size`, with its batch
    count declared (else Keras learns it by running out of data, and warns)."""
    return dataset.apply(tf.data.experimental.assert_cardinality(
        math.ceil(samples / batch_size)))


def validation_batches(info: data.DatasetInfo, subjects, *, image_size: int, batch_size: int,
                       window: int | None, clips=None):
    """The inner validation split as `CompiledModel.fit` takes it: `(frames, labels)`
    batches of the clips of `subjects` (or the given `clips` ids), each clip's central
    window (`data.eval_dataset`), with their count declared."""
    dataset = data.eval_dataset(info, subjects, image_size=image_size, batch_size=batch_size,
                                window=window, clips=clips)
    count = len(clips) if clips is not None else len(info.clips_of(subjects))
    return with_cardinality(dataset.map(lambda frames, labels, ids: (frames, labels)), count,
                            batch_size)


def with_epochs(dataset, samples: int, train):
    """Training batches as `CompiledModel.fit` takes them: with `train.steps_per_epoch` an
    endless stream as is, else one pass of `samples` samples (`with_cardinality`)."""
    if train.steps_per_epoch:
        return dataset
    return with_cardinality(dataset, samples, train.batch_size)


class FoldTrainer:
    """One compiled model, reused for every fold, seed and the final model of a run.

    Tracing the training step of a ResNet-50 clip model takes about half a minute on a
    2-core CPU, and a new model per fold would pay it every time. The model is built and
    compiled once; `reset(seed)` gives it the initial weights a new model built with that
    seed has, and the optimizer its initial state, so each fold trains as a new model would.

    `cross_validate` uses a trainer through `reset`, `fit`, `predict` and the attributes
    below; staged trainers (`tfmer.transfer.TransferTrainer`) offer the same.

    Attributes:
        model: the model trained and exported: frames `[B, T, H, W, 3]` in 0..255 ->
            probabilities `[B, K]`.
        selection: the last fit's Grad-CAM layer selection, or None.
        held_out: the training subjects the last fit chose its best epoch on (empty
            without early stopping); never test subjects.
        frame_level: windows of one frame; `predict` also returns each frame's scores.
    """

    def __init__(self, config, num_classes: int, run_dir=None):
        """Args: config: the resolved experiment; num_classes: classes of the softmax;
        run_dir: the run folder (the final fit saves `final.weights.h5` there)."""
        self.config, self.num_classes, self.run_dir = config, num_classes, run_dir
        self.model = experiments.build(config, num_classes)
        self.selection, self.held_out = None, []
        self.compiled = CompiledModel(self.model, config.train)
        # Frame models (windows of 1 frame) also return each frame's probabilities, from
        # the same pass, for the frame-level and majority-vote figures.
        self.frame_level = config.data.window == 1
        self._score = tf.function(
            lambda frames: clip_probabilities(self.model, frames, config.data.window,
                                              config.data.eval_stride,
                                              return_windows=self.frame_level),
            reduce_retracing=True)

    def reset(self, seed: int) -> None:
        """Fresh initial weights (as `experiments.build` draws them after
        `keras.utils.set_random_seed(seed)`) and the optimizer's initial state."""
        keras.utils.set_random_seed(seed)
        self.model.set_weights(experiments.build(self.config, self.num_classes).get_weights())
        self.compiled.reset_optimizer(self.config.train.learning_rate)

    def fit(self, info: data.DatasetInfo, subjects, seed: int, log=print,
            final: bool = False) -> dict:
        """Resets, then trains on the clips of `subjects` only.

        Args:
            final: the run's all-subject model: its weights are saved as
                `final.weights.h5` in the run folder.

        Returns:
            The per-epoch history (`CompiledModel.fit`); with early stopping the weights of
            the best validation epoch are restored.
        """
        config = self.config
        self.reset(seed)
        if config.model.unfreeze_from == experiments.GRADCAM:
            self.selection = self.select_layer(info, subjects, seed, log)
        fit_subjects, self.held_out = inner_split(subjects, config.train, seed, log)
        validation = None
        if self.held_out:
            validation = validation_batches(
                info, self.held_out, image_size=config.data.image_size,
                batch_size=config.train.batch_size, window=config.data.window)
        # An epoch: every clip once, or with class balancing frames_per_class samples for
        # each class (Bai & Goecke 2020, Table 1 AugI); or steps_per_epoch batches.
        samples = (config.data.frames_per_class * self.num_classes
                   if config.data.balance_classes else len(info.clips_of(fit_subjects)))
        training = data.train_dataset(
            info, fit_subjects, window=config.data.window, image_size=config.data.image_size,
            batch_size=config.train.batch_size, flip=config.data.flip,
            rotation=config.data.rotation, balance_classes=config.data.balance_classes,
            samples_per_epoch=samples, repeat=bool(config.train.steps_per_epoch), seed=seed)
        history = self.compiled.fit(with_epochs(training, samples, config.train), validation,
                                    log)
        if final:
            save_weights(self.model, pathlib.Path(self.run_dir) / FINAL_WEIGHTS)
        return history

    def select_layer(self, info: data.DatasetInfo, subjects, seed: int, log=print) -> dict:
        """Grad-CAM layer selection (Bai & Goecke 2020, Section 4.3) on training subjects.

        Scores the candidate backbone layers by the share of Grad-CAM heat on facial
        features over a sample of the subjects' frames, then trains the backbone from the
        best layer on (earlier layers frozen), recompiling when that changes what trains.

        Returns:
            `{"selected", "layers": [{"name", "score", "area"}], "frames": [clip ids]}`.
        """
        config = self.config
        frames, landmarks, clip_ids = select.sample_frames(
            info, subjects, image_size=config.data.image_size,
            count=config.model.gradcam_frames, seed=seed,
            canonical_landmarks=config.model.gradcam_canonical_landmarks)
        if config.model.weights is None:
            log("  warning: Grad-CAM layer selection on a randomly initialised backbone ranks "
                "layers by chance feature patterns; the paper selects on VGGFace2 weights "
                "(--set model.weights=PATH)")
        layers = list(config.model.gradcam_layers) or conv_layer_names(self.model)
        scores = select.score_layers(self.model, frames, landmarks, layers)
        chosen = select.select_layer(scores)
        self.train_from(chosen)
        best = next(s for s in scores if s["name"] == chosen)
        log(f"  Grad-CAM layer selection on {len(frames)} training frames: {chosen} "
            f"({best['score']:.2f} of the heat on facial features, uniform {best['area']:.2f})")
        return {"selected": chosen, "layers": scores, "frames": clip_ids}

    def train_from(self, layer_name: str) -> None:
        """Trains the backbone from `layer_name` on, freezing the layers before it."""
        backbone = self.model.get_layer("backbone").layer
        before = [layer.trainable for layer in backbone.layers]
        for layer in backbone.layers:
            layer.trainable = True
        freeze_before(backbone, layer_name)
        if [layer.trainable for layer in backbone.layers] != before:
            self.compiled.compile()

    def predict(self, info: data.DatasetInfo, subjects) -> list[dict]:
        """Clip-level probabilities for the clips of `subjects` (sliding-window mean).

        Returns:
            `[{"clip_id", "subject", "y_true", "y_pred", "probabilities"}]` in shard order;
            for frame models (`frame_level`) also `window_probabilities` `[W][K]`, one row
            per scored frame.
        """
        return data.predict_clips(self._score, info, subjects,
                                  image_size=self.config.data.image_size,
                                  batch_size=self.config.train.eval_batch_size,
                                  with_windows=self.frame_level)


def new_run_dir(runs_root, experiment: str) -> pathlib.Path:
    """`runs/<experiment>/<YYYYmmdd-HHMMSS>[-n]/`, created."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    root = pathlib.Path(runs_root) / experiment
    for n in range(1000):
        path = root / (stamp if n == 0 else f"{stamp}-{n}")
        try:
            path.mkdir(parents=True)
            return path
        except FileExistsError:
            continue
    raise RuntimeError(f"cannot create a run folder under {root}")


def cross_validate(config, data_dir, *, runs_root="runs", export_root="saved_models",
                   export_final=True, log=print) -> tuple[pathlib.Path, dict]:
    """Runs the experiment's protocol on a converted dataset and writes the run folder.

    Writes `config.json`, `folds.json`, `predictions.csv`, `metrics.json`, `histories.json`,
    the plots, for frame models (`data.window` 1) `frame_metrics.json` (per-frame and
    majority-vote figures, `results.frame_metrics`) and, with `model.unfreeze_from:
    gradcam`, `gradcam.json` (each fold's layer scores and choice, made on its training
    subjects); then, with `export_final`, trains one model on all subjects with the same
    recipe, keeps its weights before and after training (`initial.weights.h5`,
    `final.weights.h5`) and exports it as a SavedModel (recorded in `export.json`).

    The experiment's trainer (`experiments.trainer_class`, default `FoldTrainer`) gets the
    run folder: staged trainers save their stage weights there (`tfmer.transfer`).

    Returns:
        `(run_dir, metrics)`.
    """
    info = data.load_info(data_dir)
    config = resolve_classes(config, info)
    check_inputs(config, info)
    folds = protocols.make_folds(info.subjects, config.protocol.protocol, config.num_folds,
                                 config.protocol.fold_seed)
    run_dir = new_run_dir(runs_root, config.name)
    write_json_atomic(run_dir / "config.json", {
        **config.to_dict(),
        "dataset": {"path": str(info.path.resolve()), "name": info.name,
                    "num_clips": len(info.clips), "num_subjects": len(info.subjects),
                    "num_frames": info.num_frames, "tim": info.raw.get("tim")}})
    write_json_atomic(run_dir / "folds.json", folds)
    stages = config.transfer.stages
    log(f"run folder {run_dir}\n{config.name} at the {config.scale} scale: "
        f"{config.data.image_size} px, "
        f"{'stages ' + ', '.join(stages) + ', ' if stages else ''}"
        f"windows of {config.data.window} frames, {config.train.epochs} epoch(s)"
        f"{' at most (early stopping)' if config.train.early_stopping else ''}, "
        f"{config.protocol.protocol} ({len(folds)} folds) x {config.protocol.seeds} seed(s) on "
        f"{info.name}: {len(info.clips)} clips, {len(info.subjects)} subjects")
    trainer_class = experiments.trainer_class(config.name) or FoldTrainer
    trainer = trainer_class(config, len(info.classes), run_dir)
    rows, histories, selections = [], [], []
    for seed in range(config.protocol.seeds):
        for fold in folds:
            started = time.time()
            log(f"fold {fold['fold']} ({fold['fold'] + 1} of {len(folds)}), seed {seed}: train on "
                f"{len(info.clips_of(fold['train_subjects']))} clips of "
                f"{len(fold['train_subjects'])} subjects, test on "
                f"{len(info.clips_of(fold['test_subjects']))} clips of "
                f"{', '.join(fold['test_subjects'])}")
            history = trainer.fit(info, fold["train_subjects"],
                                  seed=SEED_STRIDE * seed + fold["fold"], log=log)
            predicted = trainer.predict(info, fold["test_subjects"])
            for row in predicted:
                row.update(fold=fold["fold"], seed=seed)
            rows += predicted
            histories.append({"label": f"fold {fold['fold']} seed {seed}", "history": history})
            if trainer.selection:
                selections.append({"fold": fold["fold"], "seed": seed, **trainer.selection})
            correct = sum(r["y_pred"] == r["y_true"] for r in predicted)
            log(f"  fold {fold['fold']}: {correct}/{len(predicted)} test clips correct "
                f"({time.time() - started:.0f} s)")
    results.write_predictions(run_dir / "predictions.csv", rows, info.classes)
    write_json_atomic(run_dir / "histories.json", histories)
    if selections:
        write_json_atomic(run_dir / "gradcam.json", selections)
    metrics = results.write_report(run_dir, rows, info.classes, experiment=config.name,
                                   protocol=config.protocol.protocol, histories=histories)
    log(results.summary(metrics))
    if trainer.frame_level:
        frame_metrics = results.frame_metrics(rows, info.classes,
                                              eval_stride=config.data.eval_stride)
        write_json_atomic(run_dir / "frame_metrics.json", frame_metrics)
        log(results.frame_summary(frame_metrics))
    if config.model.backbone == "vggface2_resnet50" and config.model.weights is None:
        log("  The backbone was trained from scratch: on a few hundred clips expect figures "
            "near chance.\n  For the VGGFace2 pre-training of the paper pass keras-vggface's "
            "weight file:\n  --set model.weights=/path/to/rcmalli_vggface_tf_notop_resnet50.h5")
    if export_final:
        log(f"final model: the same recipe on all {len(info.subjects)} subjects")
        trainer.reset(0)  # the state `fit` starts from, kept for before/after Grad-CAM
        save_weights(trainer.model, run_dir / INITIAL_WEIGHTS)
        history = trainer.fit(info, info.subjects, seed=0, log=log, final=True)
        path = export.export_saved_model(trainer.model, config, info.classes, export_root, extra={
            "run": str(run_dir.resolve()), "dataset": info.name, "tim": info.raw.get("tim"),
            "cross_validated": metrics["pooled"], "final_history": history,
            "gradcam_selection": trainer.selection})
        write_json_atomic(run_dir / "export.json", {"saved_model": str(path.resolve())})
        log(f"exported SavedModel {path} (serving_default: frames -> probabilities)")
    return run_dir, metrics
