"""Staged training with transfer between the stages, the trainer of TLCNN (Wang et al. 2018,
Sections 3.3-3.5, 4.1-4.2) and its ablations, as `tfmer.training.cross_validate` runs it in
each fold. `StagedTrainer` is abstract in its networks: a method subclasses it with the
builders of its frame CNN, the clip model on that CNN's layers, and the part of the CNN
that carries over between class sets (`tfmer.experiments.tlcnn.TLCNNTrainer`).

The stages (`transfer.stages`, a subset in this order) of one fit, on the fold's training
subjects only:

1. `expression` (Section 4.1): the frame CNN (`build_cnn`; TLCNN's is
   `tfmer.models.tlcnn.build_tlcnn_cnn`) with the
   expression set's classes (`expression9`: 9) on its still images (`transfer.expression_data`),
   4/5 of the images for training and 1/5 for validation ("We split all the images into 5
   parts"), trained with `expression_train`. The images show other people than the clips, so
   the stage does not depend on the fold: it runs once per training seed, at that seed's first
   fit, and saves the CNN's `trunk` (TLCNN: C1..FC7) (`expression.weights.h5`) in the run
   folder; or
   `transfer.expression_weights` gives such a file of an earlier run and the stage is skipped.
2. `frames` (Section 4.2): the CNN with the micro-expression classes starts from stage 1's
   C1..FC7 (FC8, the class layer, is new) and trains on single frames of the fold's training
   clips (`frame_train`); the best epoch is chosen on the per-frame accuracy (`monitor`) of
   every frame of the held-out training subjects' clips.
3. `joint` (Sections 3.5, 4.2): the long-term model (`build_model`; TLCNN's is
   `tfmer.models.tlcnn.build_tlcnn_clip_model`): the same CNN
   layers up to `transfer.feature_layer` under `FoldedTimeDistributed`, so it starts from the
   frames stage's weights, an LSTM and a class layer, trained together on `data.window`
   consecutive frames of each clip (`train`); test clips are scored by the mean softmax over
   sliding windows (`data.eval_stride`).

With `transfer.svm_layer` instead of a joint stage (C5+SVM, Section 4.2): after the last stage,
each training clip's frames go through the CNN up to that layer, the outputs are averaged over
the clip's frames and flattened, standardised (`standardisation`), and a linear SVM
(`sklearn.svm.LinearSVC`, C `transfer.svm_c`, fixed) is fit to the fold's training clips.
Standardisation and SVM are folded into one dense layer of a Keras model
(`tfmer.models.tlcnn.build_svm_clip_model`),
so prediction and the exported SavedModel are the same network; its `probabilities` are a
softmax of the SVM's one-vs-rest decision values: the argmax is the SVM's prediction, the
values are not calibrated probabilities.

Validation is honest: one inner split of the fold's training subjects (`protocols.inner_split`
with `train.validation_fraction`, drawn from the fold seed) holds out the subjects on which
every micro-expression stage with early stopping chooses its best epoch, so no stage trains on
subjects another stage chooses on; test subjects are only ever predicted. Stages without early
stopping train on all the fold's training subjects for their fixed budget.

Saved in the run folder: the stage-1 weights of each training seed (`expression.weights.h5`
for seed 0, `expression.seed<N>.weights.h5` for seed N); for the final (all-subject) model
`frames.weights.h5` (the whole CNN after the frames stage) and `final.weights.h5` (the exported
model: after the joint stage, or the CNN with the SVM layer). Per-fold stage weights are not
kept: at 227 px one CNN is about 240 MB.
"""

from __future__ import annotations

import abc
import pathlib
import time

import keras
import numpy as np
import tensorflow as tf
from sklearn.svm import LinearSVC

from tfmer import data, protocols
from tfmer.config import ExperimentConfig
from tfmer.files import locked
from tfmer.models.tlcnn import SVM_FEATURES, SVM_LAYER
from tfmer.run_folder import FINAL_WEIGHTS, FRAMES_WEIGHTS, expression_weights
from tfmer.training.fit import (
    CompiledModel,
    inner_split,
    save_weights,
    validation_batches,
    with_cardinality,
    with_epochs,
)
from tfmer.training.trainer import SEED_STRIDE, Trainer

ABSENT_CLASS_LOGIT = -1e4
"""The SVM layer's bias for classes no training clip has: probability 0."""


def standardisation(features: np.ndarray) -> tuple[np.ndarray, float]:
    """`(mean, scale)` standardising clip features `[N, D]` as one block: each feature
    centred on its training mean, all divided by one scale, the root mean square of the
    features' standard deviations (1 when they are all constant).

    One scale, not one per feature: the features are activations of one CNN layer, on one
    scale already, and dividing a feature that barely varies over the training clips by its
    own tiny deviation would give it a huge weight, so that a test clip's slight activation
    of it, or numerical noise, would decide the class.
    """
    mean = features.mean(axis=0)
    scale = float(np.sqrt(np.mean(features.var(axis=0))))
    return mean, scale if scale > 0 else 1.0


def first_frames(dataset):
    """`(frames [B, 1, S, S, C], labels)` batches -> `(images [B, S, S, C], labels)`."""
    return dataset.map(lambda frames, labels: (frames[:, 0], labels))


def every_frame(info: data.DatasetInfo, subjects, *, image_size: int, batch_size: int):
    """Every frame of the subjects' clips as a sample labelled with its clip's class.

    Returns:
        `tf.data.Dataset` of `(images float32 [B, S, S, C] in 0..255, labels int32 [B])`.
    """
    clips = data.eval_dataset(info, subjects, image_size=image_size, batch_size=1)
    frames = clips.map(lambda clip, labels, ids: (clip[0], tf.repeat(labels, tf.shape(clip)[1])))
    count = sum(clip["num_frames"] for clip in info.clips_of(subjects))
    return with_cardinality(frames.unbatch().batch(batch_size), count, batch_size)


class StagedTrainer(Trainer):
    """The trainer of the staged experiments (`transfer.stages`), for `cross_validate`.

    The frame CNN and the exported model are built on shared layers and compiled once (one
    optimizer per stage) and reset for each fit, as every `Trainer`. Subclasses give the
    networks: `build_cnn`, `build_model` (on the CNN's layers) and `trunk`.

    Attributes:
        cnn: the frame CNN with the micro-expression classes.
        model: the exported model on the CNN's layers: frames `[B, T, H, W, 3]` in 0..255
            -> probabilities `[B, K]`.
        held_out: the training subjects the last fit chose its best epochs on (empty when
            no micro-expression stage stops early); never test subjects.
        svm: with `transfer.svm_layer`, the last fit's `(mean, scale, LinearSVC)`
            (`standardisation`).
    """

    def __init__(self, config: ExperimentConfig, num_classes: int, run_dir):
        """Args: config: the resolved experiment; num_classes: the micro-expression
        classes; run_dir: the run folder (stage weights are saved there)."""
        super().__init__(config, num_classes, run_dir)
        self.stages = tuple(config.transfer.stages)
        self.cnn = self.networks[0]
        self.frames = (CompiledModel(self.cnn, config.frame_train)
                       if "frames" in self.stages else None)
        self.joint = CompiledModel(self.model, config.train) if "joint" in self.stages else None
        self.compiled_models = [c for c in (self.frames, self.joint) if c is not None]
        self.svm = None
        self._expression_files = {}  # training seed -> stage-1 weights file

    @abc.abstractmethod
    def build_cnn(self, num_classes: int, name: str) -> keras.Model:
        """A fresh frame CNN: images `[B, S, S, 3]` in 0..255 -> `num_classes` softmax."""

    @abc.abstractmethod
    def build_model(self, cnn: keras.Model) -> keras.Model:
        """The exported clip model on `cnn`'s layers (the joint model, or the SVM model
        with `transfer.svm_layer`)."""

    @abc.abstractmethod
    def trunk(self, cnn: keras.Model) -> keras.Model:
        """The part of a frame CNN the expression stage hands on (no class layer), on
        `cnn`'s layers."""

    def build(self) -> tuple[keras.Model, keras.Model]:
        """`(cnn, model)`: the frame CNN with the micro-expression classes and the exported
        model on its layers."""
        cnn = self.build_cnn(self.num_classes, "tlcnn_cnn")
        return cnn, self.build_model(cnn)

    def fit(self, info: data.DatasetInfo, subjects, seed: int, log=print,
            final: bool = False) -> dict:
        """Resets, then runs the stages on the clips of `subjects` (and the expression set).

        Args:
            seed: the fit's seed (`SEED_STRIDE * training seed + fold`).
            final: the run's all-subject model: `frames.weights.h5` and
                `final.weights.h5` are saved in the run folder.

        Returns:
            The per-epoch history of the last micro-expression stage under the usual keys
            (`loss`, `accuracy`, `val_loss`, `val_accuracy`), the earlier stages' under
            `<stage>_<key>` (`frames_loss`, ...; `expression_...` in the fit that trained
            stage 1).
        """
        config = self.config
        histories = {}
        if "expression" in self.stages:  # before the reset: it draws from its own seed
            histories["expression"] = self.train_expression(seed // SEED_STRIDE, log)
        self.reset(seed)
        if "expression" in self.stages:
            self.load_expression(seed // SEED_STRIDE)
        # One split for every stage that stops early (their validation fractions agree).
        stage_trains = {"frames": config.frame_train, "joint": config.train}
        stopping = [stage_trains[s] for s in self.stages
                    if s in stage_trains and stage_trains[s].early_stopping]
        fit_subjects, self.held_out = (inner_split(subjects, stopping[0], seed, log)
                                       if stopping else (list(subjects), []))
        if "frames" in self.stages:
            train = config.frame_train
            histories["frames"] = self._fit_frames(
                info, fit_subjects if train.early_stopping else subjects, seed, log)
            if final:
                self.save(FRAMES_WEIGHTS, self.cnn)
        if "joint" in self.stages:
            train = config.train
            histories["joint"] = self._fit_joint(
                info, fit_subjects if train.early_stopping else subjects, seed, log)
        if config.transfer.svm_layer:
            self._fit_svm(info, subjects, log)
        if final:
            self.save(FINAL_WEIGHTS)
        last = "joint" if "joint" in self.stages else "frames"
        history = dict(histories.pop(last))
        for stage, stage_history in histories.items():
            history.update({f"{stage}_{key}": values for key, values in stage_history.items()})
        return history

    def train_expression(self, training_seed: int, log=print) -> dict:
        """Stage 1 of `training_seed`, unless it has its weights already: trains the
        expression CNN and saves its C1..FC7 in the run folder, or takes
        `transfer.expression_weights`.

        Returns:
            The expression stage's history when it trained now, else `{}`.
        """
        if training_seed in self._expression_files:
            return {}
        if self.config.transfer.expression_weights:
            path = pathlib.Path(self.config.transfer.expression_weights)
            log(f"  stage expression: C1..FC7 from {path}")
            self._expression_files[training_seed] = path
            return {}
        kept = self.run_folder.file(expression_weights(training_seed))
        with locked(kept):  # jobs of one run: the first trains it, the others wait for it
            if kept.is_file():  # trained before a resume, or by another job of the run
                log(f"  stage expression: C1..FC7 from {kept}, trained before")
                self._expression_files[training_seed] = kept
                return {}
            path, history = self._train_expression(training_seed, log)
        self._expression_files[training_seed] = path
        return history

    def load_expression(self, training_seed: int) -> None:
        """Sets the CNN's C1..FC7 to stage 1's of `training_seed` (`train_expression`);
        FC8, the class layer, keeps its initial weights.

        Raises:
            ValueError: the stage-1 weights file does not fit the CNN (names the file).
        """
        path = self._expression_files[training_seed]
        try:
            self.trunk(self.cnn).load_weights(path)
        except ValueError as error:
            raise ValueError(f"stage-1 weights {path} do not fit the CNN of {self.config.name} "
                             f"(data.image_size {self.config.data.image_size}): {error}"
                             ) from None

    def _train_expression(self, training_seed: int, log):
        """Trains the expression CNN and saves its C1..FC7; returns `(file, history)`."""
        config, train = self.config, self.config.expression_train
        started = time.time()
        info = data.load_info(config.transfer.expression_data)
        keras.utils.set_random_seed(SEED_STRIDE * training_seed)
        cnn = self.build_cnn(len(info.classes), "expression_cnn")
        images = [clip["id"] for clip in info.clips]
        fit_images, held_images = images, []
        if train.early_stopping:
            fit_images, held_images = protocols.inner_split(
                images, train.validation_fraction, SEED_STRIDE * training_seed)
        log(f"  stage expression (seed {training_seed}): {len(info.classes)} classes, "
            f"{len(fit_images)} images of {info.name} to train on, {len(held_images)} to "
            f"choose the best epoch on")
        training = first_frames(data.train_dataset(
            info, None, clips=fit_images, window=1, image_size=config.data.image_size,
            batch_size=train.batch_size, flip=config.data.flip, rotation=config.data.rotation,
            repeat=bool(train.steps_per_epoch), seed=training_seed))
        validation = None
        if held_images:
            validation = first_frames(validation_batches(
                info, None, clips=held_images, window=1, image_size=config.data.image_size,
                batch_size=train.batch_size))
        history = CompiledModel(cnn, train).fit(with_epochs(training, len(fit_images), train),
                                                validation, log)
        path = self.run_folder.file(expression_weights(training_seed))
        save_weights(self.trunk(cnn), path)
        log(f"  stage expression: saved C1..FC7 in {path} ({time.time() - started:.0f} s)")
        return path, history

    def _fit_frames(self, info, subjects, seed: int, log) -> dict:
        """Stage 2: the CNN on single frames of the subjects' clips."""
        config, train = self.config, self.config.frame_train
        log(f"  stage frames: single frames of {len(info.clips_of(subjects))} clips")
        training = first_frames(data.train_dataset(
            info, subjects, window=1, image_size=config.data.image_size,
            batch_size=train.batch_size, flip=config.data.flip, rotation=config.data.rotation,
            repeat=bool(train.steps_per_epoch), seed=seed))
        validation = None
        if train.early_stopping:
            validation = every_frame(info, self.held_out, image_size=config.data.image_size,
                                     batch_size=train.batch_size)
        return self.frames.fit(with_epochs(training, len(info.clips_of(subjects)), train),
                               validation, log)

    def _fit_joint(self, info, subjects, seed: int, log) -> dict:
        """Stage 3: CNN and LSTM together on windows of `data.window` frames."""
        config, train = self.config, self.config.train
        log(f"  stage joint: windows of {config.data.window} frames of "
            f"{len(info.clips_of(subjects))} clips")
        training = data.train_dataset(
            info, subjects, window=config.data.window, image_size=config.data.image_size,
            batch_size=train.batch_size, flip=config.data.flip, rotation=config.data.rotation,
            repeat=bool(train.steps_per_epoch), seed=seed)
        validation = None
        if train.early_stopping:
            validation = validation_batches(
                info, self.held_out, image_size=config.data.image_size,
                batch_size=train.batch_size, window=config.data.window)
        return self.joint.fit(with_epochs(training, len(info.clips_of(subjects)), train),
                              validation, log)

    def _fit_svm(self, info, subjects, log) -> None:
        """The SVM on the clip means of `transfer.svm_layer`, folded into the `svm` layer."""
        config = self.config
        features_model = keras.Model(self.model.inputs,
                                     self.model.get_layer(SVM_FEATURES).output)
        features, labels = [], []
        for frames, batch_labels, _ in data.eval_dataset(
                info, subjects, image_size=config.data.image_size,
                batch_size=config.train.eval_batch_size):
            features.append(features_model(frames, training=False).numpy())
            labels.append(batch_labels.numpy())
        features, labels = np.concatenate(features), np.concatenate(labels)
        mean, scale = standardisation(features)
        svm = LinearSVC(C=config.transfer.svm_c, max_iter=10000).fit((features - mean) / scale,
                                                                    labels)
        weights = np.zeros((features.shape[1], self.num_classes), np.float32)
        bias = np.full(self.num_classes, ABSENT_CLASS_LOGIT, np.float32)
        if len(svm.classes_) == 2:  # one decision value d for classes_[1]: logits -d/2, d/2
            for sign, label in zip((-0.5, 0.5), svm.classes_):
                weights[:, label], bias[label] = sign * svm.coef_[0], sign * svm.intercept_[0]
        else:
            weights[:, svm.classes_], bias[svm.classes_] = svm.coef_.T, svm.intercept_
        # decision(x) = ((x - mean) / scale) @ W + b = x @ (W / scale) + (b - mean @ W / scale)
        weights = weights / scale
        bias = bias - mean @ weights
        self.model.get_layer(SVM_LAYER).set_weights([weights.astype(np.float32),
                                                     bias.astype(np.float32)])
        self.svm = (mean, scale, svm)
        log(f"  linear SVM (C {config.transfer.svm_c:g}) on {features.shape[1]} "
            f"{config.transfer.svm_layer} features of {len(labels)} clips: training accuracy "
            f"{svm.score((features - mean) / scale, labels):.3f}")
