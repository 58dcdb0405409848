"""The trainer interface `cross_validate` works through (`BaseTrainer`), the trainer of Keras
networks (`Trainer`) and the default one-model trainer (`ModelTrainer`).

`BaseTrainer` is what cross-validation needs of any method: fit on training subjects,
predict test subjects, export the final model (the SVM baselines implement it directly,
`tfmer.training.svm`). A `Trainer` owns the networks of one experiment for a whole run.
Tracing a training step costs seconds (half a minute for a ResNet-50 clip model on a 2-core
CPU), so the networks are built and compiled once; `reset(seed)` then gives them the initial
weights and dropout states a fresh build with that seed draws and the optimizers their
initial state, so every fold trains as a new model would. Adding a network trainer: subclass
`Trainer`, implement `build` and `fit`, list the compiled models in `compiled_models`;
`predict`, `reset`, saving and export come with the base.
"""

from __future__ import annotations

import abc

import keras
import tensorflow as tf

from gradcam import conv_layer_names, scoring
from tfmer import data, export, run_folder
from tfmer.config import GRADCAM, ExperimentConfig
from tfmer.models.clip import BACKBONE_LAYER, clip_probabilities, freeze_before
from tfmer.run_folder import FINAL_WEIGHTS, INITIAL_WEIGHTS, RunFolder
from tfmer.training.frozen import FrozenPrefix, cache_path, unsuitable
from tfmer.training.fit import (
    CompiledModel,
    inner_split,
    save_weights,
    validation_batches,
    with_epochs,
)

SEED_STRIDE = 1000
"""The fit of fold f under training seed s has seed `SEED_STRIDE * s + f` (`cross_validate`);
the final model's fit has seed 0. Staged trainers run their fold-independent stage once per
training seed, `seed // SEED_STRIDE`."""


def seed_states(model: keras.Model) -> list:
    """The states of a model's random seed generators (the dropout layers' masks), in
    layer order. They are variables but not weights: `set_weights` leaves them, and a
    model built before `keras.utils.set_random_seed` draws them from an unseeded state."""
    return [v for v in model.variables if v.path.endswith("seed_generator_state")]


class BaseTrainer(abc.ABC):
    """What cross-validation needs of a trainer.

    Subclasses implement `fit`, `predict` and `export`.

    Attributes:
        config: the resolved experiment.
        num_classes: classes of the output.
        run_folder: the run's `RunFolder` (trainers keep files there), or None.
        selection: what the last fit chose on its training subjects (a Grad-CAM layer, an
            SVM's setting), or None; cross-validation hands every fold's to
            `write_selections`.
        held_out: the training subjects the last fit chose its best epoch on (empty
            without early stopping); never test subjects.
        frame_level: `predict` also returns each frame's probabilities.
    """

    def __init__(self, config: ExperimentConfig, num_classes: int, run_dir=None):
        self.config, self.num_classes = config, num_classes
        self.run_folder = None if run_dir is None else RunFolder(run_dir)
        self.selection, self.held_out = None, []
        self.frame_level = False

    @abc.abstractmethod
    def fit(self, info: data.DatasetInfo, subjects, seed: int, log=print,
            final: bool = False) -> dict:
        """Trains afresh (whatever earlier fits did) on the clips of `subjects` only.

        Args:
            info: the converted dataset.
            subjects: the training subjects of the fold (all subjects for the final model).
            seed: the fit's seed (`SEED_STRIDE * training seed + fold`).
            log: progress lines go here.
            final: the run's all-subject model, the one `export` writes.

        Returns:
            The per-epoch history (`loss`, `accuracy`, ... as `CompiledModel.fit` gives
            it), empty for a method without epochs.
        """

    @abc.abstractmethod
    def predict(self, info: data.DatasetInfo, subjects) -> list[dict]:
        """Clip-level probabilities for the clips of `subjects`.

        Returns:
            `[{"clip_id", "subject", "y_true", "y_pred", "probabilities"}]` in shard order
            (for `frame_level` trainers also `window_probabilities`).
        """

    def plan(self, info: data.DatasetInfo, fits: list, log=print) -> None:
        """Called once before the run's fits with all of them, `[(training subjects,
        seed)]` in the order `fit` will see them (a trainer may prepare what several fits
        share in one pass; nothing by default)."""

    def before_final(self, keep_initial: bool = False) -> None:
        """Called before the final model's fit (with `keep_initial`, a network saves the
        weights it starts from)."""

    def record(self, recorder) -> None:
        """Checkpoints and TensorBoard logs of the fits go to `recorder` (a
        `tfmer.training.fit.FoldRecorder`; None: not recorded). Nothing by default."""

    def write_selections(self, folder: RunFolder, selections: list[dict]) -> None:
        """Writes every fold's `selection` (`[{"fold", "seed", ...}]`) into the run folder:
        `gradcam.json` (a Grad-CAM layer selection)."""
        folder.write_json(run_folder.GRADCAM, selections)

    @abc.abstractmethod
    def export(self, classes, export_root, extra: dict) -> tuple:
        """Exports the final model under `export_root/<experiment>/<version>/` with
        `assets/tfmer.json` (`tfmer.export`); returns `(folder, what it serves)`."""


class Trainer(BaseTrainer):
    """The trainer of Keras networks, and what every such trainer shares.

    Subclasses implement `build` (the networks, drawn from Keras' global seed) and `fit`
    (which starts with `reset(seed)`; with `final`, it saves the weights in the run folder,
    `save`), and set `compiled_models` after calling this constructor.

    Attributes:
        config: the resolved experiment.
        num_classes: classes of the softmax.
        run_folder: the run's `RunFolder` (trainers save weights there), or None.
        networks: what `build` returned, built once; `reset` re-initialises them.
        model: the last of `networks`, scored and exported: frames `[B, T, H, W, 3]` in
            0..255 (or with `data.input: flow` motion maps `[B, S, S, 3]`) -> probabilities
            `[B, K]`.
        compiled_models: the `CompiledModel`s whose optimizers `reset` restarts.
        selection: the last fit's Grad-CAM layer selection, or None.
        held_out: the training subjects the last fit chose its best epoch on (empty
            without early stopping); never test subjects.
        frame_level: windows of one frame (`data.window` 1): `predict` also returns each
            frame's probabilities, from the same pass.
    """

    def __init__(self, config: ExperimentConfig, num_classes: int, run_dir=None):
        super().__init__(config, num_classes, run_dir)
        self.frame_level = config.data.window == 1
        self.networks = self.build()
        self.model = self.networks[-1]
        self.compiled_models: list[CompiledModel] = []
        if config.data.input != "frames":  # one input per clip: flow or appearance
            self._score = tf.function(lambda inputs: self.model(inputs, training=False),
                                      reduce_retracing=True)
        else:
            self._score = tf.function(
                lambda frames: clip_probabilities(self.model, frames, config.data.window,
                                                  config.data.eval_stride,
                                                  return_windows=self.frame_level),
                reduce_retracing=True)

    @abc.abstractmethod
    def build(self) -> tuple[keras.Model, ...]:
        """Freshly initialised networks; the last one is the model scored and exported."""

    def reset(self, seed: int) -> None:
        """Fresh initial weights and random-number states (dropout masks), as `build`
        draws them after `keras.utils.set_random_seed(seed)`, and the optimizers' initial
        states: the networks then train as new ones built with that seed would, whatever
        they did before."""
        keras.utils.set_random_seed(seed)
        for network, fresh in zip(self.networks, self.build()):
            network.set_weights(fresh.get_weights())
            for state, fresh_state in zip(seed_states(network), seed_states(fresh)):
                state.assign(fresh_state)
        for compiled in self.compiled_models:
            compiled.reset_optimizer()

    def predict(self, info: data.DatasetInfo, subjects) -> list[dict]:
        """Clip-level probabilities for the clips of `subjects` (`data.predict_clips`: the
        mean softmax over sliding windows, whole clips, or each clip's motion map).

        Returns:
            `[{"clip_id", "subject", "y_true", "y_pred", "probabilities"}]` in shard order;
            for frame models (`frame_level`) also `window_probabilities` `[W][K]`, one row
            per scored frame.
        """
        return data.predict_clips(self._score, info, subjects,
                                  image_size=self.config.data.image_size,
                                  batch_size=self.config.train.eval_batch_size,
                                  with_windows=self.frame_level, kind=self.config.data.input)

    def export_metadata(self) -> dict:
        """What the exported model needs beyond its config to prepare its input, for
        `assets/tfmer.json` (e.g. the appearance mask of the last fit); none by default."""
        return {}

    def before_final(self, keep_initial: bool = False) -> None:
        """With `keep_initial`, keeps the state the final fit starts from (`reset(0)`) as
        `initial.weights.h5`; else `gradcam compare` rebuilds it from seed 0 (a model's
        size saved)."""
        if keep_initial:
            self.reset(0)
            self.save(INITIAL_WEIGHTS)

    def record(self, recorder) -> None:
        for compiled in self.compiled_models:
            compiled.recorder = recorder

    def export(self, classes, export_root, extra: dict) -> tuple:
        """The SavedModel of `model` (`tfmer.export.export_saved_model`)."""
        path = export.export_saved_model(self.model, self.config, classes, export_root,
                                         extra={**extra, "gradcam_selection": self.selection,
                                                **self.export_metadata()})
        return path, f"SavedModel (serving_default: {self.config.data.input} -> probabilities)"

    def save(self, name: str = FINAL_WEIGHTS, model: keras.Model | None = None) -> None:
        """Saves the weights of `model` (default the exported model) in the run folder as
        `name` (`tfmer.run_folder`: `final.weights.h5`, `initial.weights.h5`, ...)."""
        save_weights(self.model if model is None else model, self.run_folder.file(name))


class ModelTrainer(Trainer):
    """The default trainer: one model, one optimizer (`train`), the best epoch kept on
    held-out training subjects; with `model.unfreeze_from: gradcam` a Grad-CAM layer
    selection on the fold's training subjects first (Bai & Goecke 2020, Section 4.3)."""

    def __init__(self, config: ExperimentConfig, num_classes: int, run_dir=None, *, build):
        """Args: config, num_classes, run_dir: as `Trainer`; build: `build(config,
        num_classes) -> keras.Model`, the experiment's model."""
        self._build_model = build
        super().__init__(config, num_classes, run_dir)
        self.compiled = CompiledModel(self.model, config.train)
        self.compiled_models = [self.compiled]
        self._frozen = None  # the model cut at its frozen layers (`frozen_prefix`)
        self._frozen_note = None  # why it is not, when said

    def build(self) -> tuple[keras.Model]:
        return (self._build_model(self.config, self.num_classes),)

    def fit(self, info: data.DatasetInfo, subjects, seed: int, log=print,
            final: bool = False) -> dict:
        config = self.config
        self.reset(seed)
        if config.model.unfreeze_from == GRADCAM:
            self.selection = self.select_layer(info, subjects, seed, log)
        fit_subjects, self.held_out = inner_split(subjects, config.train, seed, log)
        validation = self.validation_batches(info, self.held_out) if self.held_out else None
        # An epoch: every clip once, or with class balancing frames_per_class samples for
        # each class (Bai & Goecke 2020, Table 1 AugI); or steps_per_epoch batches.
        # With temporal jittering, every clip several times (data.jitter_copies).
        samples = (config.data.frames_per_class * self.num_classes
                   if config.data.balance_classes else
                   len(info.clips_of(fit_subjects)) * (config.data.jitter_copies or 1))
        cut = self.frozen_prefix(log)
        if cut is None:
            training = self.training_batches(info, fit_subjects, samples, seed)
            history = self.compiled.fit(with_epochs(training, samples, config.train),
                                        validation, log)
        else:
            history = self._fit_on_frozen(cut, info, fit_subjects, validation, samples, seed,
                                          log)
        if final:
            self.save()
        return history

    def frozen_prefix(self, log=print):
        """The model cut at its frozen layers for this fit (`tfmer.training.frozen`), or
        None when the fit trains on frames (nothing frozen, or `frozen.unsuitable`)."""
        reason = unsuitable(self.config)
        backbone = (self.model.get_layer(BACKBONE_LAYER).layer
                    if BACKBONE_LAYER in [layer.name for layer in self.model.layers] else None)
        if backbone is None or backbone.layers[1].trainable:
            return None
        if reason is not None:
            if reason != self._frozen_note:
                log(f"  the frozen layers are recomputed at every step: {reason}")
                self._frozen_note = reason
            return None
        flags = tuple(layer.trainable for layer in backbone.layers)
        if self._frozen is None or self._frozen.frozen != flags:
            self._frozen = FrozenPrefix(self.model, self.config.train, flags)
            self._frozen.compiled.recorder = self.compiled.recorder
            self.compiled_models = [self.compiled, self._frozen.compiled]
        return self._frozen

    def _fit_on_frozen(self, cut, info, subjects, validation, samples: int, seed: int, log):
        """`fit` on the frozen prefix's features, computed once (the file goes after)."""
        config = self.config
        cache = cut.write(info, subjects, cache_path(self.run_folder, seed),
                          image_size=config.data.image_size, flip=config.data.flip, log=log)
        try:
            if validation is not None:
                validation = cut.validation_features(validation, len(info.clips_of(
                    self.held_out)), config.train.batch_size)
            training = cut.training_batches(cache, window=config.data.window,
                                            batch_size=config.train.batch_size,
                                            repeat=bool(config.train.steps_per_epoch), seed=seed)
            return cut.compiled.fit(with_epochs(training, samples, config.train), validation,
                                    log)
        finally:
            cache.path.unlink(missing_ok=True)

    def validation_batches(self, info: data.DatasetInfo, subjects):
        """The held-out training subjects' `(inputs, labels)` batches the best epoch is
        chosen on, as `data.input` says (`tfmer.training.fit.validation_batches`)."""
        config = self.config
        return validation_batches(info, subjects, image_size=config.data.image_size,
                                  batch_size=config.train.batch_size,
                                  window=config.data.window, kind=config.data.input)

    def training_batches(self, info: data.DatasetInfo, subjects, samples: int, seed: int):
        """One epoch's training batches of `subjects` (`samples` samples; an endless stream
        with `train.steps_per_epoch`): windows of frames (`data.train_dataset`) or motion
        maps (`data.flow_train_dataset`), as `data.input` says."""
        config, repeat = self.config, bool(self.config.train.steps_per_epoch)
        if config.data.input == "flow":
            return data.flow_train_dataset(
                info, subjects, image_size=config.data.image_size,
                batch_size=config.train.batch_size, flip=config.data.flip, repeat=repeat,
                seed=seed)
        return data.train_dataset(
            info, subjects, window=config.data.window, image_size=config.data.image_size,
            batch_size=config.train.batch_size, flip=config.data.flip,
            rotation=config.data.rotation, balance_classes=config.data.balance_classes,
            samples_per_epoch=samples, repeat=repeat, seed=seed)

    def select_layer(self, info: data.DatasetInfo, subjects, seed: int, log=print) -> dict:
        """Grad-CAM layer selection (Bai & Goecke 2020, Section 4.3) on training subjects.

        Scores the candidate backbone layers by the share of Grad-CAM heat on facial
        features over a sample of the subjects' frames, corrected for each layer's
        resolution (`gradcam.scoring`), the heatmaps explaining what
        `model.gradcam_target` says (by default each frame's label through a linear probe
        fitted on these training frames: the model's head is untrained here); then trains
        the backbone from the best layer on (earlier layers frozen), recompiling when that
        changes what trains.

        Returns:
            `{"selected", "layers": [{"name", "score", "area", "ceiling", "normalised"}],
            "frames": [clip ids], "class_target": the target used, "probe": its fit or
            None}`.
        """
        config = self.config
        sample = scoring.sample_frames(
            info, subjects, image_size=config.data.image_size,
            count=config.model.gradcam_frames, seed=seed,
            canonical_landmarks=config.model.gradcam_canonical_landmarks)
        if config.model.weights is None:
            log("  warning: Grad-CAM layer selection on a randomly initialised backbone ranks "
                "layers by chance feature patterns; the paper selects on VGGFace2 weights "
                "(--set model.weights=PATH)")
        layers = list(config.model.gradcam_layers) or conv_layer_names(self.model)
        target = scoring.heatmap_target(self.model, sample, config.model.gradcam_target,
                                        lambda line: log(f"  {line}"))
        scores = scoring.score_layers(target.model, sample.frames, sample.landmarks, layers,
                                      target.class_index)
        chosen = scoring.select_layer(scores)
        self.train_from(chosen)
        best = next(s for s in scores if s["name"] == chosen)
        log(f"  Grad-CAM layer selection on {len(sample.frames)} training frames "
            f"({target.name} target): {chosen} (normalised {best['normalised']:.2f}: "
            f"{best['score']:.2f} of the heat on facial features, uniform {best['area']:.2f}, "
            f"ceiling at its resolution {best['ceiling']:.2f})")
        return {"selected": chosen, "layers": scores, "frames": sample.clip_ids,
                "class_target": target.name, "probe": target.probe}

    def train_from(self, layer_name: str) -> None:
        """Trains the backbone from `layer_name` on, freezing the layers before it."""
        backbone = self.model.get_layer(BACKBONE_LAYER).layer
        before = [layer.trainable for layer in backbone.layers]
        for layer in backbone.layers:
            layer.trainable = True
        freeze_before(backbone, layer_name)
        if [layer.trainable for layer in backbone.layers] != before:
            self.compiled.compile()
