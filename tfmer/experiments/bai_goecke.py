"""Bai & Goecke, "Investigating LSTM for Micro-Expression Recognition", ICMI 2020 companion
(`../shared/seeds/004_*`): VGGFace2 ResNet-50 frame encoder + fully connected layers on
single frames (Exp-I), + LSTM / Bi-LSTM decoder (Exp-II, Exp-III)."""

from __future__ import annotations

import dataclasses
import json
import pathlib

from tfmer import data
from tfmer.config import (
    GRADCAM,
    DataConfig,
    ExperimentConfig,
    ModelConfig,
    ProtocolConfig,
    TrainConfig,
    TransferConfig,
)
from tfmer.experiments import registry
from tfmer.experiments.registry import register
from tfmer.models import VGGFACE2_BLOCK_OUTPUTS
from tfmer.models.clip import BACKBONE_LAYER, build_clip_model
from tfmer.run_folder import CONFIG
from tfmer.training import ModelTrainer


def build_recurrent(config: ExperimentConfig, num_classes: int):
    """VGGFace2 ResNet-50 under `TimeDistributed`, then the head (recurrent, or `fc` per
    frame) and softmax; with `transfer.encoder: exp1`, the recurrent head reads the
    per-frame class probabilities of Exp-I's fc layers."""
    return build_clip_model(
        num_classes=num_classes, image_size=config.data.image_size, num_frames=None,
        backbone=config.model.backbone, weights=config.model.weights, head=config.model.head,
        head_units=config.model.head_units, head_layers=config.model.head_layers,
        fc_units=config.model.fc_units, dropout=config.model.dropout,
        # With `gradcam` the trainer freezes per fold, once it has chosen the layer.
        unfreeze_from=None if config.model.unfreeze_from == GRADCAM else config.model.unfreeze_from,
        frame_head=config.transfer.encoder is not None, name=config.name)


def encoder_config(config: ExperimentConfig) -> ExperimentConfig:
    """The Exp-I stage of a repackaged Exp-II/III (`RepackagedTrainer`): exp1 at the
    config's scale (its frame sampling, augmentation and training), with the config's
    classes, frame size and whole `model` section (backbone, weights, fc widths, l_s),
    so that its layers are those of the config's encoder."""
    exp1_config = registry.get("exp1", config.scale)
    return dataclasses.replace(
        exp1_config,
        data=dataclasses.replace(exp1_config.data, classes=config.data.classes,
                                 image_size=config.data.image_size),
        model=dataclasses.replace(config.model, head="fc"))


def encoder_layers(model) -> list[str]:
    """The layers an Exp-I model hands on to a repackaged Exp-II/III: the backbone, fc1..
    and the class layer `logits`."""
    return [layer.name for layer in model.layers
            if layer.name == BACKBONE_LAYER or layer.name.startswith("fc_")
            or layer.name == "logits"]


class RepackagedTrainer(ModelTrainer):
    """Exp-II/III with the Exp-I network "repackaged" as the encoder (Section 4.4;
    `transfer.encoder: exp1`). Each fit first trains Exp-I (`encoder_config`) on single
    frames of the fit's training subjects, so no test subject reaches the encoder, or
    takes a trained one from `transfer.encoder_weights`; then Exp-II/III starts from its
    backbone, fc layers and class layer and trains the whole on windows (the layers before
    Exp-I's l_s stay frozen, with the l_s it chose on the same training subjects).

    Attributes:
        encoder: the Exp-I trainer (its last fit's model and Grad-CAM selection).
    """

    def __init__(self, config: ExperimentConfig, num_classes: int, run_dir=None):
        self.encoder = ModelTrainer(encoder_config(config), num_classes, None,
                                    build=build_recurrent)
        self._from_encoder = False
        self._loaded = False
        super().__init__(config, num_classes, run_dir, build=build_recurrent)

    def fit(self, info: data.DatasetInfo, subjects, seed: int, log=print,
            final: bool = False) -> dict:
        """Exp-I on the subjects' frames (or the given encoder weights), then Exp-II/III
        from it. Returns Exp-II/III's history, Exp-I's under `encoder_<key>`."""
        weights = self.config.transfer.encoder_weights
        if weights is None:
            log(f"  stage exp1: the encoder on single frames of "
                f"{len(info.clips_of(subjects))} clips")
            first = self.encoder.fit(info, subjects, seed, log)
        else:
            first = self._load_encoder(weights, info, log)
        self._from_encoder = True
        try:
            log(f"  stage {self.config.name}: windows of {self.config.data.window} frames "
                f"through the exp1 encoder")
            history = super().fit(info, subjects, seed, log, final)
        finally:
            self._from_encoder = False
        return {**history, **{f"encoder_{key}": values for key, values in first.items()}}

    def record(self, recorder) -> None:
        """The encoder's fits are recorded too."""
        super().record(recorder)
        self.encoder.record(recorder)

    def reset(self, seed: int) -> None:
        """As `Trainer.reset`; inside a fit, the encoder's layers then take Exp-I's
        weights."""
        super().reset(seed)
        if self._from_encoder:
            for name in encoder_layers(self.encoder.model):
                self.model.get_layer(name).set_weights(
                    self.encoder.model.get_layer(name).get_weights())

    def select_layer(self, info: data.DatasetInfo, subjects, seed: int, log=print) -> dict:
        """Exp-I's l_s of this fit (chosen on the same training subjects), unless the
        encoder came from a file: then chosen anew (`ModelTrainer.select_layer`)."""
        if self.encoder.selection is None:
            return super().select_layer(info, subjects, seed, log)
        chosen = self.encoder.selection["selected"]
        self.train_from(chosen)
        log(f"  the backbone trains from exp1's l_s {chosen} on")
        return self.encoder.selection

    def _load_encoder(self, path, info: data.DatasetInfo, log) -> dict:
        """Loads an exp1 model's weights into the encoder (once: no fit changes them),
        warning when they come from a run on the same data (its final model has seen
        every subject)."""
        path = pathlib.Path(path)
        log(f"  stage exp1: the encoder from {path}")
        if self._loaded:
            return {}
        if not path.is_file():
            raise FileNotFoundError(f"transfer.encoder_weights {path} does not exist "
                                    f"(an exp1 run's final.weights.h5)")
        try:
            self.encoder.model.load_weights(path)
        except ValueError as error:
            raise ValueError(f"transfer.encoder_weights {path} do not fit exp1 at "
                             f"{self.config.data.image_size} px with model.fc_units "
                             f"{list(self.config.model.fc_units)}: {error}") from None
        self._loaded = True
        run_config = path.with_name(CONFIG)
        if run_config.is_file():
            trained_on = json.loads(run_config.read_text(encoding="utf-8")).get(
                "dataset", {}).get("name")
            if trained_on == info.name:
                log(f"  warning: the encoder {path} was trained on every subject of "
                    f"{info.name}, this run's test subjects included: the figures are "
                    f"optimistic (leave transfer.encoder_weights out to train exp1 per fold)")
        return {}


def recurrent_trainer(config: ExperimentConfig, num_classes: int, run_dir=None):
    """Exp-II/III's trainer: `ModelTrainer` on `build_recurrent`, or with `transfer.encoder:
    exp1`, `RepackagedTrainer`."""
    if config.transfer.encoder is None:
        return ModelTrainer(config, num_classes, run_dir, build=build_recurrent)
    return RepackagedTrainer(config, num_classes, run_dir)


SMIC4 = ("negative", "positive", "surprise", "non-micro")
"""Bai & Goecke's classes (Section 4.1): `python -m data_prep smic` converts to them."""

# Built-in synthetic data on a 2-core CPU within 10 minutes for all folds and the final
# model (BENCHMARKS.md): 64 px frames, one epoch, three windows per test clip. A ResNet-50
# step costs ~0.1 s per frame on 2 cores whatever the frame size (op overhead). The built-in
# data has the tlcnn4 classes, and the whole backbone trains (a Grad-CAM selection per fold
# would add a recompilation, ~30 s, per fold; `--set model.unfreeze_from=gradcam` asks
# for it).
# The repackaged Exp-I encoder (a second training per fold) is left out at these scales too.
BUILTIN = {"data.classes": None, "data.image_size": 64, "data.eval_stride": 10,
           "train.epochs": 1, "train.early_stopping": False, "train.learning_rate": 3e-4,
           "train.eval_batch_size": 4, "model.unfreeze_from": None, "transfer.encoder": None}
QUICK = {"data.classes": None, "data.image_size": 32, "data.window": 4, "data.eval_stride": 8,
         "train.epochs": 1, "train.batch_size": 4, "train.early_stopping": False,
         "train.eval_batch_size": 8, "model.head_units": 16, "model.unfreeze_from": None,
         "transfer.encoder": None}


@register(
    "exp3",
    build=build_recurrent,
    trainer=recurrent_trainer,
    builtin=BUILTIN,
    quick=QUICK,
)
def exp3() -> ExperimentConfig:
    """Exp-III: VGGFace2 ResNet-50 + one-layer Bi-LSTM on windows of N = 13 frames.

    Run: `python train.py --experiment exp3 --data DIR` (SMIC-HS converted with
    `python -m data_prep smic ...`); add `--set model.weights=PATH` with keras-vggface's
    `rcmalli_vggface_tf_notop_resnet50.h5` for the VGGFace2 pre-training the paper uses.
    With no `--data`, it runs on the built-in synthetic data at the `builtin` scale.

    Reproduces: Table 3 (Bi-LSTM, f_N = 13: 60.60 %) and Table 4 (VGGFace2+Bi-LSTM:
    60.06 % accuracy), SMIC-HS, 4 classes (negative, positive, surprise, non-micro),
    5-fold cross-validation (Section 4.6). The paper's 5 groups are of clips ("65-66
    sequences in each validation group"), which can put one subject's clips in training
    and test; tfmer's folds are of subjects (`kfold5`, as every experiment), so the
    published figures are not directly comparable (they are likely optimistic).
    `--protocol kfold5-clips` splits clips as the paper does, for that comparison only
    (the run warns that it leaks subjects).

    As published: VGGFace2 ResNet-50 encoder per frame (Section 3.1), one-layer Bi-LSTM
    decoder (Section 4.5), N = 13 consecutive frames per sample (Sections 4.2, 4.4; N = 13
    best in Table 3), 5-fold CV (Section 4.6; of clips there, of subjects here: above).

    Deliberate changes and choices the paper leaves open:
    * Windows: the paper trains on every window of each training clip (Table 1, AugII);
      we draw one random window per clip per epoch (the same windows in expectation) and
      score a test clip by the mean softmax over its sliding windows (not stated). AugII's
      class balance (about 1700 windows of each class, Table 1) is `--set
      data.balance_classes=true --set data.frames_per_class=1700` (each window from a class
      chosen uniformly); off by default. The windows are not flipped (AugII is the sliding
      window alone; exp-I's flips and rotations are AugI): `--set data.flip=true` asks.
    * Input: 224 px face crops of the converted (TIM32-normalised by default) clips, where
      the paper fed uncropped SMIC-HS frames (Section 4.4); convert with
      `--tim 0 --crop none` to feed them as the paper did (landmarks are still stored).
    * Retrained layers: l_s is chosen by Grad-CAM (Section 4.3) inside each training fold,
      on a sample of 16 of its training frames (`gradcam.select`): the block output whose
      heat, explaining each frame's labelled class through a linear probe fitted briefly
      on the backbone's features (`model.gradcam_target: probe`; the head is untrained
      then), falls most on the brows, eyes, nose wings and mouth corners (the regions of
      Section 5, from the clips' landmarks), ranked by the share corrected for the layer's
      resolution (`gradcam.scoring.normalised_score`); layers before it are frozen. The
      paper chose by eye, once; the per-fold choice keeps test subjects out of it.
    * Encoder: the paper feeds the LSTM from the Exp-I network "repackaged" (Section 4.4:
      its "D-dimension one-hot-vector outputs" per frame). At the paper scale each fold
      therefore first trains exp1 (backbone and fc1-fc3, its recipe) on single frames of
      its training subjects, then this model on windows, starting from exp1's layers, the
      LSTM reading each frame's class probabilities (`transfer.encoder: exp1`,
      `RepackagedTrainer`); whether the paper fine-tuned the encoder in Exp-II/III is not
      said: here it trains on from exp1's l_s. `--set transfer.encoder_weights=FILE`
      starts from a trained exp1 model instead (an exp1 run's `final.weights.h5` has seen
      all of its data's subjects: honest only for weights trained on other subjects, and a
      run on the same data warns). The built-in and quick scales feed the backbone's
      features to the LSTM directly (`transfer.encoder: none`, one training per fold).
    * Not given in the paper (our choices): Bi-LSTM width 128 per direction, dropout 0.5,
      Adam at 1e-4, batch 8 windows, at most 20 epochs with early stopping (patience 5)
      on an inner validation split of 20 % of the training subjects.
    """
    return ExperimentConfig(
        name="exp3",
        paper="Bai & Goecke 2020, Table 3-4",
        description="VGGFace2 ResNet-50 + 1-layer Bi-LSTM on 13-frame windows",
        data=DataConfig(classes=SMIC4, image_size=224, window=13, eval_stride=1, flip=False),
        model=ModelConfig(backbone="vggface2_resnet50", head="bilstm", head_units=128,
                          head_layers=1, dropout=0.5, unfreeze_from=GRADCAM,
                          gradcam_layers=VGGFACE2_BLOCK_OUTPUTS),
        train=TrainConfig(optimizer="adam", learning_rate=1e-4, batch_size=8, epochs=20,
                          early_stopping=True, patience=5, validation_fraction=0.2),
        transfer=TransferConfig(encoder="exp1"),
        protocol=ProtocolConfig(protocol="kfold5", seeds=1),
    )


@register(
    "exp2",
    build=build_recurrent,
    trainer=recurrent_trainer,
    builtin=BUILTIN,
    quick=QUICK,
)
def exp2() -> ExperimentConfig:
    """Exp-II: VGGFace2 ResNet-50 + three-layer LSTM on windows of N = 13 frames.

    Run: `python train.py --experiment exp2 --data DIR` (SMIC-HS converted with
    `python -m data_prep smic ...`, `smic4` classes); `--set data.window=15` for the other
    length of Table 3; `--set model.weights=PATH` for the VGGFace2 pre-training.

    Reproduces: Table 3 (3-layer LSTM, f_N = 13: 57.58 %; f_N = 15: 56.07 %) and Table 4
    (VGGFace2+LSTM: 59.09 % accuracy), SMIC-HS, 4 classes, 5-fold CV of clips (Section
    4.6; subject folds here, so not directly comparable: see exp3).

    As published: the exp-I encoder (Section 4.4) feeding a 3-layer uni-directional LSTM
    decoder (Section 4.4, Figure 2) on N consecutive frames, N = 13 (Table 3), windows cut
    from each fold's own training clips only (Section 4.6).

    Deliberate changes and choices the paper leaves open: as exp3 (one random window per
    clip per epoch, mean softmax over sliding windows for a test clip, 224 px converted
    frames, early stopping on held-out training subjects, the repackaged exp1 encoder
    trained per fold at the paper scale and left out at the smaller ones); LSTM width 128
    (not given).
    """
    return dataclasses.replace(
        exp3(), name="exp2", paper="Bai & Goecke 2020, Table 3-4",
        description="VGGFace2 ResNet-50 + 3-layer LSTM on 13-frame windows",
        model=dataclasses.replace(exp3().model, head="lstm", head_layers=3))


# Exp-I at the small scales: one frame per sample, classes balanced; an epoch is
# `frames_per_class * 4` frames (builtin: 128 frames, 16 steps of 8; quick: 8 frames, 2
# steps of 4). Test clips are scored on every frame (eval_stride 1), as at the paper scale.
BUILTIN_EXP1 = {**BUILTIN, "data.eval_stride": 1, "data.frames_per_class": 32,
                "train.batch_size": 8}
QUICK_EXP1 = {**{k: v for k, v in QUICK.items() if k != "model.head_units"},
              "data.window": 1, "data.eval_stride": 1, "data.frames_per_class": 2,
              "model.fc_units": [16, 8]}


@register(
    "exp1",
    build=build_recurrent,
    builtin=BUILTIN_EXP1,
    quick=QUICK_EXP1,
)
def exp1() -> ExperimentConfig:
    """Exp-I: VGGFace2 ResNet-50 + fully connected layers fc1-fc3, on single frames.

    Run: `python train.py --experiment exp1 --data DIR` (SMIC-HS converted with
    `python -m data_prep smic ...`, `smic4` classes); `--set model.weights=PATH` with
    keras-vggface's `rcmalli_vggface_tf_notop_resnet50.h5` for the VGGFace2 pre-training.
    With no `--data`, it runs on the built-in synthetic data at the `builtin` scale;
    `--quick` for a smoke run. Besides `metrics.json` (clips), the run writes
    `frame_metrics.json`: accuracy/UF1/UAR over all test frames, and over clips by the
    majority vote of their frames.

    Reproduces: Table 4 (VGGFace2 alone: 30.2 % accuracy), SMIC-HS, 4 classes (negative,
    positive, surprise, non-micro), 5-fold CV of clips (Section 4.6; subject folds here, so
    not directly comparable: see exp3), with the frame
    augmentation of Table 1 (AugI: about 15000 frames per class).

    As published: VGGFace2 ResNet-50 per frame (Section 3.1) with the outputs of the
    retrained layers fully connected to the classification layers fc1, fc2, fc3 (Section
    4.3); l_s chosen by Grad-CAM (Section 4.3); training samples are single frames,
    augmented by flipping and random rotation, with per-class multipliers so each class
    gives about 15000 frames (Section 4.2, Table 1 AugI); 5-fold CV.

    Deliberate changes and choices the paper leaves open:
    * Head widths (not given): fc1 1024 and fc2 256 units with ReLU, each followed by
      dropout 0.5; fc3 is the class layer. The model averages fc3's logits over the frames
      of its input before the softmax (one frame: that frame's softmax).
    * Sampling: instead of a fixed augmented set, each training sample is drawn from a
      class chosen uniformly, then a random clip of that class (of the fold's training
      subjects), one random frame of it, a random flip and a rotation by an angle uniform
      in [-10, 10] degrees (the range is not given); an epoch is 15000 x 4 frames, as
      Table 1's AugI totals. The class sequence repeats each epoch (a fixed seed); clips,
      frames, flips and angles do not.
    * Scoring (not stated): a test clip's probabilities are the mean of the softmax of each
      of its frames; `frame_metrics.json` adds per-frame and majority-vote figures (which
      of these Table 4's 30.2 % is, the paper does not say).
    * Input, Grad-CAM layer selection per fold and early stopping as exp3; Adam at 1e-4,
      batch 32 frames, at most 20 epochs with patience 5 (not given).
    """
    base = exp3()
    return dataclasses.replace(
        base, name="exp1", paper="Bai & Goecke 2020, Table 4",
        description="VGGFace2 ResNet-50 + fc1-fc3 on single frames, classes balanced",
        data=dataclasses.replace(base.data, window=1, eval_stride=1, flip=True, rotation=10.0,
                                 balance_classes=True, frames_per_class=15000),
        model=dataclasses.replace(base.model, head="fc", fc_units=(1024, 256)),
        train=dataclasses.replace(base.train, batch_size=32), transfer=TransferConfig())
