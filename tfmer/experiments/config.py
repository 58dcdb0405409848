"""Frozen experiment configs, `--set key=value` overrides and their cross-field checks."""

from __future__ import annotations

import dataclasses
import json
import re
import typing

SCALES = ("paper", "builtin", "quick")
HEADS = ("bilstm", "lstm", "fc")
"""`model.head` values (`tfmer.models.clip.build_clip_model`)."""
GRADCAM = "gradcam"
"""`model.unfreeze_from` value: choose the layer by Grad-CAM inside each training fold."""
_PROTOCOL = re.compile(r"^(loso|kfold(\d+))$")


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Input: which classes, frame size, temporal sampling.

    Attributes:
        classes: the class list the experiment expects; None takes the dataset's.
        image_size: frames are resized to `image_size` x `image_size`.
        window: frames per training sample (N consecutive frames, random start); evaluation
            averages the softmax over sliding windows of N. None feeds whole clips.
        eval_stride: step between the evaluation's sliding windows.
        flip: random horizontal flips of whole clips while training.
        rotation: random rotations of training samples by an angle drawn uniformly from
            [-rotation, rotation] degrees (one angle per sample); 0 turns them off.
        balance_classes: draw each training sample from a class chosen uniformly instead
            of visiting every clip once per epoch (Bai & Goecke 2020, Table 1 AugI).
        frames_per_class: with `balance_classes`, training samples per class and epoch
            (an epoch is `frames_per_class * num_classes` samples).
    """

    classes: tuple | None = None
    image_size: int = 224
    window: int | None = 13
    eval_stride: int = 1
    flip: bool = True
    rotation: float = 0.0
    balance_classes: bool = False
    frames_per_class: int | None = None


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Network: backbone, temporal head, what trains.

    Attributes:
        backbone: a key of `tfmer.models.clip.BACKBONES`.
        weights: pretrained backbone weight file (e.g. keras-vggface's
            `rcmalli_vggface_tf_notop_resnet50.h5`), or None to train from scratch.
        head: `bilstm`, `lstm` (recurrent heads over a window) or `fc` (per-frame fully
            connected layers, frame softmaxes averaged over time).
        head_units: LSTM units (per direction for `bilstm`); unused by `fc`.
        head_layers: stacked recurrent layers; unused by `fc`.
        fc_units: widths of the ReLU layers of the `fc` head, in order (each followed by
            `dropout`); the class layer comes after them.
        dropout: dropout before the softmax (and after each `fc_units` layer).
        unfreeze_from: backbone layer from which on weights train (earlier ones frozen);
            `gradcam` chooses it in each training fold by Grad-CAM on that fold's training
            frames (Bai & Goecke 2020, Section 4.3); None trains everything.
        gradcam_layers: backbone layers Grad-CAM scores for layer selection, in order
            (empty: every convolutional layer).
        gradcam_frames: training frames sampled for the layer selection.
        gradcam_canonical_landmarks: score the layers against the canonical face layout
            (`gradcam.regions.CANONICAL_LANDMARKS`) instead of each clip's own landmarks;
            only for aligned face crops (`python -m data_prep ... --align`), and only when
            asked for: clips without landmarks otherwise stop the run with an error.
    """

    backbone: str = "vggface2_resnet50"
    weights: str | None = None
    head: str = "bilstm"
    head_units: int = 128
    head_layers: int = 1
    fc_units: tuple[int, ...] = (1024, 256)
    dropout: float = 0.5
    unfreeze_from: str | None = None
    gradcam_layers: tuple = ()
    gradcam_frames: int = 16
    gradcam_canonical_landmarks: bool = False


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Optimisation budget and stopping rule.

    Attributes:
        optimizer: `adam` or `sgd` (with `momentum`).
        learning_rate: initial learning rate.
        momentum: SGD momentum.
        batch_size: training samples per step.
        epochs: the fixed budget, or the most epochs with early stopping.
        early_stopping: stop on the validation loss of an inner split of the *training*
            subjects (never the test subjects) and keep the best weights.
        patience: epochs without improvement before stopping.
        validation_fraction: share of training subjects held out for early stopping.
        eval_batch_size: clips per evaluation batch.
    """

    optimizer: str = "adam"
    learning_rate: float = 1e-4
    momentum: float = 0.9
    batch_size: int = 8
    epochs: int = 20
    early_stopping: bool = True
    patience: int = 5
    validation_fraction: float = 0.2
    eval_batch_size: int = 1


@dataclasses.dataclass(frozen=True)
class ProtocolConfig:
    """Cross-validation.

    Attributes:
        protocol: `kfold5` (any `kfoldK`) subject-independent K folds, or `loso`.
        seeds: training seeds; each repeats the whole cross-validation on the same folds.
        fold_seed: seed of the subject-to-fold assignment (fixed, so every method of a
            comparison sees the same folds).
    """

    protocol: str = "kfold5"
    seeds: int = 1
    fold_seed: int = 0


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    """A registered experiment, fully resolved.

    Attributes:
        name: registry name, e.g. `exp3`.
        paper: the paper it reproduces (short citation with table).
        description: one line.
        scale: `paper` (the published setting), `builtin` (sized for the built-in data on a
            CPU) or `quick` (a few seconds' smoke run).
    """

    name: str
    paper: str
    description: str
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    protocol: ProtocolConfig = ProtocolConfig()
    scale: str = "paper"

    @property
    def num_folds(self) -> int | None:
        """K of `kfoldK`, None for LOSO."""
        match = _PROTOCOL.match(self.protocol.protocol)
        return int(match.group(2)) if match and match.group(2) else None

    def validate(self) -> "ExperimentConfig":
        """Cross-field checks; returns self. Raises ValueError naming the field and value."""
        checks = [
            (self.scale in SCALES, f"scale {self.scale!r} is not one of {SCALES}"),
            (self.data.image_size >= 32, f"data.image_size {self.data.image_size} < 32"),
            (self.data.window is None or self.data.window >= 1,
             f"data.window {self.data.window} must be >= 1 or none"),
            (self.data.eval_stride >= 1, f"data.eval_stride {self.data.eval_stride} < 1"),
            (self.data.classes is None or len(set(self.data.classes)) == len(self.data.classes)
             and len(self.data.classes) >= 2,
             f"data.classes {self.data.classes} must list at least 2 distinct classes"),
            (self.data.rotation >= 0 and self.data.rotation < 180,
             f"data.rotation {self.data.rotation} not in [0, 180) degrees"),
            (not self.data.balance_classes or (self.data.frames_per_class or 0) >= 1,
             f"data.balance_classes needs data.frames_per_class >= 1, found "
             f"{self.data.frames_per_class}"),
            (self.model.head in HEADS, f"model.head {self.model.head!r} is not one of {HEADS}"),
            (self.model.head != "fc" or all(u >= 1 for u in self.model.fc_units),
             f"model.fc_units {self.model.fc_units} must all be >= 1"),
            (self.model.head_layers >= 1, f"model.head_layers {self.model.head_layers} < 1"),
            (self.model.head_units >= 1, f"model.head_units {self.model.head_units} < 1"),
            (0 <= self.model.dropout < 1, f"model.dropout {self.model.dropout} not in [0, 1)"),
            (self.train.optimizer in ("adam", "sgd"),
             f"train.optimizer {self.train.optimizer!r} is not adam or sgd"),
            (self.train.learning_rate > 0, f"train.learning_rate {self.train.learning_rate} <= 0"),
            (self.train.batch_size >= 1, f"train.batch_size {self.train.batch_size} < 1"),
            (self.train.epochs >= 1, f"train.epochs {self.train.epochs} < 1"),
            (0 < self.train.validation_fraction < 1,
             f"train.validation_fraction {self.train.validation_fraction} not in (0, 1)"),
            (_PROTOCOL.match(self.protocol.protocol) is not None,
             f"protocol {self.protocol.protocol!r} is not kfoldK (e.g. kfold5) or loso"),
            (self.num_folds is None or self.num_folds >= 2,
             f"protocol {self.protocol.protocol!r} needs at least 2 folds"),
            (self.protocol.seeds >= 1, f"protocol.seeds {self.protocol.seeds} < 1"),
        ]
        problems = [message for ok, message in checks if not ok]
        if problems:
            raise ValueError(f"experiment {self.name}: " + "; ".join(problems))
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def override(config: ExperimentConfig, assignments) -> ExperimentConfig:
    """Applies `section.field=value` assignments (e.g. `train.epochs=3`) and validates.

    Values are JSON (`3`, `0.5`, `true`, `null`, `["a", "b"]`) or plain strings; `none`
    means None and `a,b,c` a tuple for tuple fields.

    Raises:
        ValueError: unknown section or field (listing the valid ones), or a bad value.
    """
    if isinstance(assignments, dict):
        assignments = [f"{k}={json.dumps(v)}" for k, v in assignments.items()]
    for assignment in assignments:
        key, sep, text = assignment.partition("=")
        section, dot, field = key.strip().partition(".")
        sections = {f.name: f for f in dataclasses.fields(config)
                    if dataclasses.is_dataclass(f.default)}
        if not sep or not dot or section not in sections:
            raise ValueError(f"--set {assignment!r}: expected SECTION.FIELD=VALUE with SECTION "
                             f"one of {', '.join(sections)}")
        part = getattr(config, section)
        hints = typing.get_type_hints(type(part))
        if field not in hints:
            raise ValueError(f"--set {assignment!r}: {section} has no field {field!r}; fields: "
                             + ", ".join(hints))
        value = _parse(text.strip(), hints[field], assignment)
        part = dataclasses.replace(part, **{field: value})
        config = dataclasses.replace(config, **{section: part})
    return config.validate()


def _parse(text: str, hint, assignment: str):
    if text.lower() in ("none", "null"):
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = text
    allowed = typing.get_args(hint) or (hint,)
    if typing.get_origin(hint) is tuple and allowed[0] is int:  # tuple[int, ...]
        items = value if isinstance(value, list) else str(value).split(",")
        try:
            return tuple(int(str(v).strip()) for v in items if str(v).strip())
        except ValueError:
            raise ValueError(f"--set {assignment!r}: {text!r} is not a list of integers "
                             f"(e.g. 1024,256)") from None
    if tuple in allowed or typing.get_origin(hint) is tuple:
        items = value if isinstance(value, list) else str(value).split(",")
        return tuple(str(v).strip() for v in items if str(v).strip())
    if bool in allowed:
        if isinstance(value, bool):
            return value
    elif int in allowed and isinstance(value, int) and not isinstance(value, bool):
        return value
    elif float in allowed and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    elif str in allowed:
        return str(value)
    raise ValueError(f"--set {assignment!r}: {text!r} is not a valid "
                     + " or ".join(getattr(t, "__name__", str(t)) for t in allowed))
