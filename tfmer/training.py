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


def resolve_classes(config, info: data.DatasetInfo):
    """Fixes the config's class list to the dataset's (checking they agree when both set)."""
    if config.data.classes is not None and tuple(config.data.classes) != info.classes:
        raise ValueError(f"experiment {config.name} expects classes {list(config.data.classes)} "
                         f"but {info.path} has {list(info.classes)}; convert with the matching "
                         f"--classes, or take the dataset's with --set data.classes=none")
    return dataclasses.replace(config, data=dataclasses.replace(config.data, classes=info.classes))


def _optimizer(train):
    if train.optimizer == "sgd":
        return keras.optimizers.SGD(train.learning_rate, momentum=train.momentum)
    return keras.optimizers.Adam(train.learning_rate)


class FoldTrainer:
    """One compiled model, reused for every fold, seed and the final model of a run.

    Tracing the training step of a ResNet-50 clip model takes about half a minute on a
    2-core CPU, and a new model per fold would pay it every time. The model is built and
    compiled once; `reset(seed)` gives it the initial weights a new model built with that
    seed has, and the optimizer its initial state, so each fold trains as a new model would.
    """

    def __init__(self, config, num_classes: int):
        self.config, self.num_classes = config, num_classes
        self.model = experiments.build(config, num_classes)
        self.selection = None
        self._compile()
        # Frame models (windows of 1 frame) also return each frame's probabilities, from
        # the same pass, for the frame-level and majority-vote figures.
        self.frame_level = config.data.window == 1
        self._score = tf.function(
            lambda frames: clip_probabilities(self.model, frames, config.data.window,
                                              config.data.eval_stride,
                                              return_windows=self.frame_level),
            reduce_retracing=True)

    def _compile(self) -> None:
        """(Re)compiles with a new optimizer and keeps its initial state for `reset`."""
        self.model.compile(optimizer=_optimizer(self.config.train),
                           loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        self.model.optimizer.build(self.model.trainable_variables)
        self._optimizer_start = [v.numpy() for v in self.model.optimizer.variables]

    def reset(self, seed: int) -> None:
        """Fresh initial weights (as `experiments.build` draws them after
        `keras.utils.set_random_seed(seed)`) and the optimizer's initial state."""
        keras.utils.set_random_seed(seed)
        self.model.set_weights(experiments.build(self.config, self.num_classes).get_weights())
        for variable, value in zip(self.model.optimizer.variables, self._optimizer_start):
            variable.assign(value)

    def fit(self, info: data.DatasetInfo, subjects, seed: int, log=print) -> dict:
        """Resets, then trains on the clips of `subjects` only.

        Returns:
            The Keras history (per-epoch lists); with early stopping the weights of the best
            validation epoch are restored.
        """
        config = self.config
        self.reset(seed)
        if config.model.unfreeze_from == experiments.GRADCAM:
            self.selection = self.select_layer(info, subjects, seed, log)
        fit_subjects, validation, callbacks = list(subjects), None, []
        if config.train.early_stopping:
            fit_subjects, held_out = protocols.inner_split(
                subjects, config.train.validation_fraction, seed)
            log(f"  early stopping on held-out training subjects: {', '.join(held_out)}")
            validation = data.eval_dataset(
                info, held_out, image_size=config.data.image_size,
                batch_size=config.train.batch_size, window=config.data.window,
            ).map(lambda frames, labels, ids: (frames, labels))
            callbacks.append(keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=config.train.patience, restore_best_weights=True))
        # An epoch: every clip once, or with class balancing frames_per_class samples for
        # each class (Bai & Goecke 2020, Table 1 AugI).
        samples = (config.data.frames_per_class * self.num_classes
                   if config.data.balance_classes else len(info.clips_of(fit_subjects)))
        training = data.train_dataset(
            info, fit_subjects, window=config.data.window, image_size=config.data.image_size,
            batch_size=config.train.batch_size, flip=config.data.flip,
            rotation=config.data.rotation, balance_classes=config.data.balance_classes,
            samples_per_epoch=samples, seed=seed,
        ).apply(tf.data.experimental.assert_cardinality(
            math.ceil(samples / config.train.batch_size)))
        history = self.model.fit(training, validation_data=validation,
                                 epochs=config.train.epochs, callbacks=callbacks, shuffle=False,
                                 verbose=1 if sys.stdout.isatty() else 2)
        return {k: [float(v) for v in values] for k, values in history.history.items()}

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
            self._compile()

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


INITIAL_WEIGHTS = "initial.weights.h5"
FINAL_WEIGHTS = "final.weights.h5"
"""The final model's weights before and after training, in the run folder."""


def _save_weights(model, path: pathlib.Path) -> None:
    """`model.save_weights` via a temporary name and a rename."""
    temporary = path.with_name(f".{path.stem}.tmp.weights.h5")
    model.save_weights(temporary)
    os.replace(temporary, path)


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
    majority-vote figures, `results.frame_metrics`) and, with `model.unfreeze_from: gradcam`, `gradcam.json` (each fold's layer
    scores and choice, made on its training subjects); then, with `export_final`, trains one model on all subjects with the same
    recipe, keeps its weights before and after training (`initial.weights.h5`,
    `final.weights.h5`) and exports it as a SavedModel (recorded in `export.json`).

    Returns:
        `(run_dir, metrics)`.
    """
    info = data.load_info(data_dir)
    config = resolve_classes(config, info)
    folds = protocols.make_folds(info.subjects, config.protocol.protocol, config.num_folds,
                                 config.protocol.fold_seed)
    run_dir = new_run_dir(runs_root, config.name)
    write_json_atomic(run_dir / "config.json", {
        **config.to_dict(),
        "dataset": {"path": str(info.path.resolve()), "name": info.name,
                    "num_clips": len(info.clips), "num_subjects": len(info.subjects),
                    "num_frames": info.num_frames, "tim": info.raw.get("tim")}})
    write_json_atomic(run_dir / "folds.json", folds)
    log(f"run folder {run_dir}\n{config.name} at the {config.scale} scale: "
        f"{config.data.image_size} px, windows of {config.data.window} frames, "
        f"{config.train.epochs} epoch(s)"
        f"{' at most (early stopping)' if config.train.early_stopping else ''}, "
        f"{config.protocol.protocol} ({len(folds)} folds) x {config.protocol.seeds} seed(s) on "
        f"{info.name}: {len(info.clips)} clips, {len(info.subjects)} subjects")
    trainer = FoldTrainer(config, len(info.classes))
    rows, histories, selections = [], [], []
    for seed in range(config.protocol.seeds):
        for fold in folds:
            started = time.time()
            log(f"fold {fold['fold']} ({fold['fold'] + 1} of {len(folds)}), seed {seed}: train on "
                f"{len(info.clips_of(fold['train_subjects']))} clips of "
                f"{len(fold['train_subjects'])} subjects, test on "
                f"{len(info.clips_of(fold['test_subjects']))} clips of "
                f"{', '.join(fold['test_subjects'])}")
            history = trainer.fit(info, fold["train_subjects"], seed=1000 * seed + fold["fold"],
                                  log=log)
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
    if config.model.weights is None:
        log("  The backbone was trained from scratch: on a few hundred clips expect figures "
            "near chance.\n  For the VGGFace2 pre-training of the paper pass keras-vggface's "
            "weight file:\n  --set model.weights=/path/to/rcmalli_vggface_tf_notop_resnet50.h5")
    if export_final:
        log(f"final model: the same recipe on all {len(info.subjects)} subjects")
        trainer.reset(0)  # the state `fit` starts from, kept for before/after Grad-CAM
        _save_weights(trainer.model, run_dir / INITIAL_WEIGHTS)
        history = trainer.fit(info, info.subjects, seed=0, log=log)
        _save_weights(trainer.model, run_dir / FINAL_WEIGHTS)
        path = export.export_saved_model(trainer.model, config, info.classes, export_root, extra={
            "run": str(run_dir.resolve()), "dataset": info.name, "tim": info.raw.get("tim"),
            "cross_validated": metrics["pooled"], "final_history": history,
            "gradcam_selection": trainer.selection})
        write_json_atomic(run_dir / "export.json", {"saved_model": str(path.resolve())})
        log(f"exported SavedModel {path} (serving_default: frames -> probabilities)")
    return run_dir, metrics
