"""The fit loop every trainer uses: one compiled model per `TrainConfig` section, the best
epoch kept on held-out training subjects, the inner split, and batches as `fit` takes them.

Honest by construction: the best epoch is chosen on an inner split of the *training*
subjects (`inner_split`), never on the test subjects, which no function here sees.
"""

from __future__ import annotations

import json
import math
import pathlib
import sys
import time

import keras
import numpy as np
import tensorflow as tf

from tfmer import data, devices, protocols
from tfmer.config import TrainConfig
from tfmer.files import atomic
from tfmer.run_folder import TENSORBOARD, RunFolder
from tfmer.training.distributed import DistributedFit


def save_weights(model: keras.Model, path: pathlib.Path) -> None:
    """Saves the weights of `model`'s layers atomically.

    Through an uncompiled model on the same layers: `save_weights` of a compiled model also
    writes the optimizer's state (SGD momentum: as large again), which nothing reads.
    """
    with atomic(path) as temporary:
        keras.Model(model.inputs, model.outputs, name=model.name).save_weights(temporary)


def _optimizer(train: TrainConfig, base_rate: keras.Variable):
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
        self.wait, self.start_wait = self.start_wait, 0

    start_wait = 0
    """The count of epochs without improvement a phase starts with: 0, or a resumed phase's."""

    def state(self) -> tuple[dict, list]:
        """`(figures, best weights)`, for a checkpoint (`restore`)."""
        return ({"best": self.best, "best_epoch": self.best_epoch, "epochs": self.epochs,
                 "wait": self.wait}, self.weights or [])

    def restore(self, figures: dict, weights: list) -> None:
        """Continues from a checkpoint's `state`."""
        self.best, self.best_epoch, self.epochs = (figures["best"], figures["best_epoch"],
                                                   figures["epochs"])
        self.start_wait, self.weights = figures["wait"], (list(weights) or None)

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


class EpochDecay(keras.callbacks.Callback):
    """Step decay by epochs (`TrainConfig.decay_epochs`): at the start of epoch e (0-based,
    counted within a fit) the base learning rate is `rate * decay_rate ** (e // every)`.

    Args:
        base_rate: the optimizer's base learning-rate variable (`CompiledModel`).
        rate: the fit's initial base learning rate.
        decay_rate, every: the factor and the epochs between decays.
    """

    def __init__(self, base_rate: keras.Variable, rate: float, decay_rate: float, every: int):
        super().__init__()
        self.base_rate, self.rate, self.decay_rate, self.every = (base_rate, rate, decay_rate,
                                                                  every)

    def on_epoch_begin(self, epoch, logs=None):
        self.base_rate.assign(self.rate * self.decay_rate ** (epoch // self.every))


class EpochLog(keras.callbacks.Callback):
    """One progress line every `every` epochs and at the last one, for long budgets (the
    motion methods train hundreds of short epochs, where Keras' line per epoch floods the
    log): `  epoch 50/500: loss 0.6120 - accuracy 0.7800 (12 s)`."""

    def __init__(self, epochs: int, every: int, log=print):
        super().__init__()
        self.epochs, self.every, self.log = epochs, every, log
        self.started = None

    def on_train_begin(self, logs=None):
        self.started = time.time()

    def on_epoch_end(self, epoch, logs=None):
        done = epoch + 1
        if done % self.every and done != self.epochs:
            return
        figures = " - ".join(f"{key} {float(value):.4f}" for key, value in (logs or {}).items()
                             if key != "learning_rate")
        self.log(f"  epoch {done}/{self.epochs}: {figures} ({time.time() - self.started:.0f} s)")


LOGGED_EPOCHS = 20
"""Budgets of more epochs log one line every tenth of the budget (`EpochLog`) instead of
Keras' line per epoch."""


def synchronise_batch_norm(model: keras.Model) -> None:
    """Batch normalisation in `model` (nested models and wrappers included) computes its
    statistics over the global batch of a distributed step, as on one device."""
    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.synchronized = True


class CompiledModel:
    """A model compiled once for a `TrainConfig` section, with a resettable optimizer.
    The training step is compiled with XLA, and its batches staged on the GPU, where the
    run's device settings say so (`tfmer.devices.current`); under `multiworker` tfmer's
    own loop trains it (`tfmer.training.distributed`), elsewhere `keras.Model.fit`.

    Tracing a training step costs seconds (half a minute for a ResNet-50 clip model on a
    2-core CPU), so the model is compiled once and `reset_optimizer` gives the optimizer its
    initial state and base learning rate for each fit (and for the fine-tune phase).
    The loss is sparse categorical cross-entropy over the model's probabilities.
    """

    def __init__(self, model: keras.Model, train: TrainConfig):
        self.model, self.train = model, train
        self.compile()

    def compile(self) -> None:
        """(Re)compiles (after a change of what trains) and keeps the optimizer's start."""
        settings = devices.current()
        if settings.strategy != "default":
            synchronise_batch_norm(self.model)
        self._base_rate = keras.Variable(self.train.learning_rate, trainable=False,
                                         name="base_learning_rate")
        self.model.compile(optimizer=_optimizer(self.train, self._base_rate),
                           loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                           jit_compile=settings.xla)
        self.model.optimizer.build(self.model.trainable_variables)
        self._optimizer_start = [v.numpy() for v in self.model.optimizer.variables]
        self._fit = (DistributedFit(self.model).fit if settings.strategy == "multiworker"
                     else self._keras_fit)

    def _keras_fit(self, batches, *, validation, **options):
        return self.model.fit(batches, validation_data=validation, shuffle=False, **options)

    def reset_optimizer(self, learning_rate: float | None = None) -> None:
        """The optimizer's initial state (step 0, no momentum) at base `learning_rate`
        (default the section's `learning_rate`)."""
        for variable, value in zip(self.model.optimizer.variables, self._optimizer_start):
            variable.assign(value)
        self._base_rate.assign(self.train.learning_rate if learning_rate is None
                               else learning_rate)

    def fit(self, training, validation=None, log=print, callbacks=()) -> dict:
        """Trains with the section's budget and stopping rule, then its fine-tune phase.

        With a `recorder` (a run's fits, `FoldRecorder`), the state at every finished
        epoch is checkpointed in the run folder and a resumed fit continues from it, and
        TensorBoard logs are written.

        Args:
            training: `(inputs, labels)` batches; one epoch of them, or with
                `steps_per_epoch` an endless stream.
            validation: `(inputs, labels)` batches of the inner split of the training
                subjects; needed with early stopping, else None (the last weights stay).
            callbacks: more Keras callbacks, called after the section's own.

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
        recorder = self.recorder
        call = recorder.next_call() if recorder else None
        saved = recorder.saved(call) if recorder else None
        if saved is not None and saved["finished"]:
            recorder.restore_model(self, saved)
            recorder.finished(saved["history"])
            log("  resumed: this training had finished")
            return saved["history"]
        history, ran, start = {}, [], (0, 0)
        if saved is not None:
            history, ran, start = saved["history"], saved["ran"], (saved["phase"],
                                                                    saved["epoch"])
        for phase, rate in enumerate(rates):
            if phase < start[0]:
                continue
            self.reset_optimizer(rate)
            initial, batches = 0, training
            if saved is not None and phase == start[0]:
                initial = start[1]
                recorder.restore(self, saved, keep, optimizer=initial > 0)
                if keep is not None and keep.start_wait >= keep.patience:
                    initial = train.epochs  # the phase had stopped early
                batches = replay(training, ran, initial, train.steps_per_epoch)
                log(f"  resumed after epoch {start[1]} of {train.epochs}"
                    f"{' of the fine-tune phase' if phase else ''}")
            if phase:
                log(f"  fine-tuning from the {'best' if keep else 'last'} weights at base "
                    f"learning rate {rate:g}")
            phase_callbacks = [keep] if keep else []
            quiet = train.epochs > LOGGED_EPOCHS
            if quiet:
                phase_callbacks.append(EpochLog(train.epochs, train.epochs // 10, log))
            if train.decay_epochs:
                phase_callbacks.append(EpochDecay(self._base_rate, rate, train.decay_rate,
                                                  train.decay_epochs))
            if recorder:
                phase_callbacks += recorder.callbacks(self, call, phase, ran, history, keep)
            staged = devices.current().prefetch_to_device
            if staged:  # last in the pipeline, as tf.data requires
                batches = batches.apply(tf.data.experimental.prefetch_to_device(staged))
            result = self._fit(batches, validation=validation, epochs=train.epochs,
                               initial_epoch=initial, steps_per_epoch=train.steps_per_epoch,
                               callbacks=phase_callbacks + list(callbacks),
                               verbose=0 if quiet else 1 if sys.stdout.isatty() else 2)
            for key, values in result.history.items():
                history.setdefault(key, []).extend(float(v) for v in values)
            ran = ran + [initial + len(result.epoch)]
            if recorder:
                recorder.save(self, call, phase + 1, 0, ran, history, keep,
                              finished=phase + 1 == len(rates))
        if recorder:
            recorder.finished(history)
        if keep and keep.best_epoch is not None:
            log(f"  kept epoch {keep.best_epoch} of {keep.epochs} ({train.monitor} "
                f"{keep.best:.4f} on the held-out split)")
        return history

    recorder = None
    """The run's `FoldRecorder` (checkpoints, TensorBoard), or None (`Trainer.record`)."""


def replay(training, ran: list, epochs: int, steps_per_epoch: int | None):
    """The training batches of a resumed fit, drawn as they would have been.

    A pipeline's random draws (shuffles, windows, flips) depend on how often it was
    iterated before; so the batches of the finished epochs (`ran`: those of the finished
    phases; `epochs`: of the phase resumed) are drawn again, without training, as
    `keras.Model.fit` draws them (Keras 3's epoch iterator; `tests/test_resume.py` checks
    that the two agree): every epoch of a one-epoch dataset opens an iterator, takes its
    declared number of batches and opens the next epoch's iterator at once, which the
    next epoch replaces; an endless stream (`steps_per_epoch`) has one iterator per phase.
    """
    if steps_per_epoch is None:
        batches = int(training.cardinality())
        for _ in range(sum(ran) + epochs):
            iterator = iter(training)
            for _ in range(batches):
                next(iterator)
            iter(training)
        return training
    for count in ran:
        iterator = iter(training)
        for _ in range(count * steps_per_epoch):
            next(iterator)
    return training.skip(epochs * steps_per_epoch)


class _Checkpointing(keras.callbacks.Callback):
    """Checkpoints the fit at the end of every epoch (`FoldRecorder.save`)."""

    def __init__(self, recorder, compiled, call, phase, ran, history, keep):
        super().__init__()
        self.recorder, self.compiled, self.call, self.phase = recorder, compiled, call, phase
        self.ran, self.keep = ran, keep
        self.history = {key: list(values) for key, values in history.items()}

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))
        self.recorder.save(self.compiled, self.call, self.phase, epoch + 1, self.ran,
                           self.history, self.keep, finished=False)


CHECKPOINT_SHARE = 0.1
"""The largest share of training time checkpoints take (`FoldRecorder.save`)."""


class FoldRecorder:
    """What a run's fits leave in its folder while they train: the fit in progress at its
    last finished epoch (`checkpoints/<fit>.npz`), so that a killed run goes on from there
    (`train.py --resume`), and TensorBoard logs (`tensorboard/<fit>/<model>/`).

    A trainer's fit may train several models in turn (`CompiledModel.fit` calls: an
    encoder or a stage, then the model), numbered in the order the fit makes them. The
    checkpoint holds the call in progress: its model's variables (weights, batch-norm
    statistics, the dropout layers' random states), the optimizer's, the base learning
    rate, the best epoch kept so far and the history; and the histories of the calls
    finished before it. A resumed fit runs the trainer's `fit` again from its start
    (the reset, the inner split and a Grad-CAM selection are deterministic); calls the
    checkpoint has finished return their histories without training, and the call in
    progress loads its state, draws again the batches of its finished epochs (`replay`)
    and trains on. (A later call starts from its model's checkpointed state, so what an
    earlier call trained reaches it through the variables alone: true of every trainer
    in tfmer, whose later models hold or copy the earlier ones' layers.)

    Attributes:
        folder: the run folder.
        tag: the fit being recorded (`run_folder.fit_tag`), or None between fits.
    """

    def __init__(self, folder: RunFolder):
        self.folder, self.tag = folder, None
        self._calls, self._finished, self._saved = 0, [], None
        self._last = None  # (end, seconds) of the last checkpoint written

    @property
    def path(self) -> pathlib.Path:
        """The checkpoint of the fit being recorded (`RunFolder.checkpoint`)."""
        return self.folder.checkpoint(self.tag)

    def begin(self, tag: str) -> None:
        """Starts recording the fit `tag`, from its checkpoint when there is one."""
        self.tag, self._calls, self._finished, self._saved = tag, 0, [], None
        self._last = None
        if self.path.is_file():
            with np.load(self.path) as stored:
                self._saved = {"meta": json.loads(str(stored["meta"])),
                               "arrays": {k: stored[k] for k in stored.files if k != "meta"}}

    def end(self) -> None:
        """The fit's results are kept: its checkpoint goes."""
        self.discard(self.tag)
        self.tag, self._saved = None, None

    def discard(self, tag: str) -> None:
        """Removes the checkpoint of the fit `tag` (one left by a kill after the fit's
        results were kept)."""
        self.folder.checkpoint(tag).unlink(missing_ok=True)

    def next_call(self) -> int:
        self._calls += 1
        return self._calls - 1

    def saved(self, call: int) -> dict | None:
        """What the checkpoint holds of `call`: None (nothing: train it), `{"finished":
        True, "history"}` for a call finished before the one checkpointed, or the call's
        state (`finished`, `phase`, `epoch`, `ran`, `history`)."""
        if self._saved is None:
            return None
        meta = self._saved["meta"]
        if call < meta["call"]:
            return {"finished": True, "history": meta["finished_histories"][call],
                    "arrays": None}
        if call > meta["call"]:
            return None
        return {**meta["state"], "arrays": self._saved["arrays"]}

    def finished(self, history: dict) -> None:
        self._finished.append(history)

    def restore_model(self, compiled: "CompiledModel", saved: dict) -> None:
        """The model's variables as checkpointed (a finished call checkpointed last)."""
        if saved["arrays"] is None:
            return
        for i, variable in enumerate(compiled.model.variables):
            variable.assign(saved["arrays"][f"model_{i}"])

    def restore(self, compiled: "CompiledModel", saved: dict, keep, *,
                optimizer: bool) -> None:
        """The call's checkpointed state: the model's variables, the best epoch kept; with
        `optimizer` (inside a phase; a phase starts with a fresh one) the optimizer's
        variables and base learning rate."""
        arrays = saved["arrays"]
        self.restore_model(compiled, saved)
        if optimizer:
            for i, variable in enumerate(compiled.model.optimizer.variables):
                variable.assign(arrays[f"optimizer_{i}"])
            compiled._base_rate.assign(float(arrays["base_rate"]))
        if keep is not None and saved["keep"] is not None:
            count = saved["keep"]["weights"]
            keep.restore(saved["keep"], [arrays[f"keep_{i}"] for i in range(count)])
            if not optimizer:
                keep.start_wait = 0

    def save(self, compiled: "CompiledModel", call: int, phase: int, epoch: int, ran: list,
             history: dict, keep, *, finished: bool) -> None:
        """Checkpoints `call` at `epoch` of `phase` (atomically: a kill while writing
        leaves the previous checkpoint), unless the last checkpoint is too recent: at most
        `CHECKPOINT_SHARE` of the training time goes to checkpoints (a ResNet-50's takes a
        second or two; epochs of minutes are all checkpointed)."""
        now = time.perf_counter()
        if self._last is not None and now - self._last[0] < self._last[1] / CHECKPOINT_SHARE:
            return
        arrays = {f"model_{i}": v.numpy() for i, v in enumerate(compiled.model.variables)}
        arrays.update({f"optimizer_{i}": v.numpy()
                       for i, v in enumerate(compiled.model.optimizer.variables)})
        arrays["base_rate"] = np.float64(compiled._base_rate.numpy())
        keep_figures = None
        if keep is not None:
            keep_figures, weights = keep.state()
            keep_figures = {**keep_figures, "weights": len(weights)}
            arrays.update({f"keep_{i}": w for i, w in enumerate(weights)})
        meta = {"tag": self.tag, "call": call, "finished_histories": self._finished,
                "state": {"finished": finished, "phase": phase, "epoch": epoch, "ran": ran,
                          "history": history, "keep": keep_figures}}
        with atomic(self.path) as temporary, open(temporary, "wb") as f:
            np.savez(f, meta=json.dumps(meta), **arrays)
        self._last = (time.perf_counter(), time.perf_counter() - now)

    def callbacks(self, compiled: "CompiledModel", call: int, phase: int, ran: list,
                  history: dict, keep) -> list:
        """The callbacks of one phase of `call`: the checkpoint at every epoch's end and
        TensorBoard logs in `tensorboard/<fit>/<model>/`."""
        logs = self.folder.file(TENSORBOARD) / self.tag / f"{call}-{compiled.model.name}"
        return [_Checkpointing(self, compiled, call, phase, ran, history, keep),
                keras.callbacks.TensorBoard(str(logs), write_graph=False, profile_batch=0)]


def inner_split(subjects, train: TrainConfig, seed: int, log=print) -> tuple[list, list]:
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
                       window: int | None, clips=None, kind: str = "frames"):
    """The inner validation split as `CompiledModel.fit` takes it: `(inputs, labels)`
    batches of the clips of `subjects` (or the given `clips` ids): each clip's central
    window (`data.eval_dataset`), or with `kind` `flow` its motion map
    (`data.flow_eval_dataset`), with their count declared."""
    if kind == "flow":
        dataset = data.flow_eval_dataset(info, subjects, image_size=image_size,
                                         batch_size=batch_size, clips=clips)
    else:
        dataset = data.eval_dataset(info, subjects, image_size=image_size,
                                    batch_size=batch_size, window=window, clips=clips)
    count = len(clips) if clips is not None else len(info.clips_of(subjects))
    return with_cardinality(dataset.map(lambda inputs, labels, ids: (inputs, labels)), count,
                            batch_size)


def with_epochs(dataset, samples: int, train: TrainConfig):
    """Training batches as `CompiledModel.fit` takes them: with `train.steps_per_epoch` an
    endless stream as is, else one pass of `samples` samples (`with_cardinality`)."""
    if train.steps_per_epoch:
        return dataset
    return with_cardinality(dataset, samples, train.batch_size)
