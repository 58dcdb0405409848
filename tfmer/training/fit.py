"""The fit loop every trainer uses: one compiled model per `TrainConfig` section, the best
epoch kept on held-out training subjects, the inner split, and batches as `fit` takes them.

Honest by construction: the best epoch is chosen on an inner split of the *training*
subjects (`inner_split`), never on the test subjects, which no function here sees.
"""

from __future__ import annotations

import math
import pathlib
import sys
import time

import keras
import tensorflow as tf

from tfmer import data, protocols
from tfmer.config import TrainConfig
from tfmer.files import atomic


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


class CompiledModel:
    """A model compiled once for a `TrainConfig` section, with a resettable optimizer.

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
        self._base_rate = keras.Variable(self.train.learning_rate, trainable=False,
                                         name="base_learning_rate")
        self.model.compile(optimizer=_optimizer(self.train, self._base_rate),
                           loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        self.model.optimizer.build(self.model.trainable_variables)
        self._optimizer_start = [v.numpy() for v in self.model.optimizer.variables]

    def reset_optimizer(self, learning_rate: float | None = None) -> None:
        """The optimizer's initial state (step 0, no momentum) at base `learning_rate`
        (default the section's `learning_rate`)."""
        for variable, value in zip(self.model.optimizer.variables, self._optimizer_start):
            variable.assign(value)
        self._base_rate.assign(self.train.learning_rate if learning_rate is None
                               else learning_rate)

    def fit(self, training, validation=None, log=print, callbacks=()) -> dict:
        """Trains with the section's budget and stopping rule, then its fine-tune phase.

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
        history = {}
        for phase, rate in enumerate(rates):
            self.reset_optimizer(rate)
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
            result = self.model.fit(training, validation_data=validation, epochs=train.epochs,
                                    steps_per_epoch=train.steps_per_epoch,
                                    callbacks=phase_callbacks + list(callbacks), shuffle=False,
                                    verbose=0 if quiet else 1 if sys.stdout.isatty() else 2)
            for key, values in result.history.items():
                history.setdefault(key, []).extend(float(v) for v in values)
        if keep and keep.best_epoch is not None:
            log(f"  kept epoch {keep.best_epoch} of {keep.epochs} ({train.monitor} "
                f"{keep.best:.4f} on the held-out split)")
        return history


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
