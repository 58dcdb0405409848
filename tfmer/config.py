"""The experiment config: frozen dataclasses, their cross-field checks, `--set key=value`
overrides, and the way back from a saved `config.json` (`ExperimentConfig.from_dict`).

The schema every layer shares: the engine (`tfmer.training`) reads its sections, the methods
(`tfmer.experiments`) fill them in, and a run folder saves them. Free of TensorFlow.
"""

from __future__ import annotations

import dataclasses
import json
import re
import typing

from tfmer.records import MOTION_CHANNELS

SCALES = ("paper", "builtin", "quick")
HEADS = ("bilstm", "lstm", "fc")
STRATEGIES = ("default", "mirrored", "multiworker")
PRECISIONS = ("auto", "off", "mixed_float16", "mixed_bfloat16")
SWITCHES = ("auto", "on", "off")
"""`model.head` values: the temporal heads of `tfmer.models.clip.build_clip_model`."""
GRADCAM = "gradcam"
"""`model.unfreeze_from` value: choose the layer by Grad-CAM inside each training fold."""
GRADCAM_TARGETS = ("probe", "predicted")
"""`model.gradcam_target` values: what the layer selection's heatmaps explain
(`gradcam.scoring.heatmap_target`)."""
MONITORS = ("val_loss", "val_accuracy")
"""`TrainConfig.monitor` values: the inner validation figure the best epoch is chosen on."""
STAGES = ("expression", "frames", "joint")
"""`TransferConfig.stages`, in the order they run (Wang et al. 2018, Sections 3.3-3.5)."""
ENCODERS = (None, "exp1")
"""`TransferConfig.encoder` values: the backbone alone, or Bai & Goecke's Exp-I network."""
FEATURE_LAYERS = ("FC6", "FC7")
"""`TransferConfig.feature_layer` values: the TLCNN CNN layer whose output feeds the LSTM."""
SVM_LAYERS = ("C5", "M5", "FC6", "FC7")
"""`TransferConfig.svm_layer` values: TLCNN CNN layers whose clip mean can feed the SVM."""
TLCNN_CNN = "tlcnn_cnn"
"""`model.backbone` of the staged TLCNN experiments (`tfmer.models.tlcnn.build_tlcnn_cnn`)."""
TLCNN_FC_UNITS = (4096, 4096)
"""The widths of the TLCNN CNN's FC6 and FC7 (Section 3.4)."""
INPUTS = ("frames", "flow", "appearance")
"""`data.input` values: the clip's frames, its onset -> apex motion (`flow/uvs`), or its
appearance matrix (`tfmer.appearance`, STRCN-A)."""
JITTER_COPIES = 96
"""Temporal jittering's copies of a clip: 12 ratios x 8 interpolation kernels (Xia et al.)."""
FLOW_METHODS = ("tvl1", "farneback", "dis")
"""The flow methods of the converter (`python -m data_prep ... --flow`, `data_prep.flow`)."""
HANDCRAFTED = ("lbptop", "stlbpip", "stclqp", "mdmo", "fdm", "biwoof")
"""`handcrafted.method` values: the features of `tfmer.handcrafted` an SVM classifies."""
KERNELS = ("linear", "rbf", "poly", "chi2")
"""`handcrafted.kernel` values: scikit-learn's SVM kernels and the exponential chi-square
kernel `exp(-gamma * sum((x - y)^2 / (x + y)))` (`sklearn.metrics.pairwise.chi2_kernel`)."""
_PROTOCOL = re.compile(
    r"^(loso|lodo|kfold(\d+)(-clips)?|train=[^,=]+(,[^,=]+)*,test=[^,=]+)$")
"""`protocol.protocol` values (`tfmer.protocols.make_folds`)."""


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
        tim: the frames per clip the experiment expects the dataset to hold (its
            `python -m data_prep ... --tim`, e.g. 32 or 64 for TLCNN's TIM32 and TIM64);
            None accepts any. A dataset of another length stops the run before training.
        input: `frames` (windows of frames, `[B, N, S, S, 3]`), `flow` (each clip's onset
            -> apex optical flow and strain as the converter stored it, resized to
            `image_size` with the displacements rescaled, `[B, S, S, 3]`: u, v, strain)
            or `appearance` (STRCN-A: each frame's facial pixels that move most in the
            fold's training clips, `tfmer.appearance`, as one column of a matrix
            `[B, P, columns, 1]`, resampled to `columns` columns).
        flow: with `input: flow`, the flow method the experiment expects the dataset to
            have been converted with (`python -m data_prep ... --flow`); None accepts any.
            A dataset without motion, or with another method, stops the run before
            training.
        columns: with `input: appearance`, the columns (resampled frames) of the matrix.
        jitter_copies: with `input: appearance`, training copies of every clip per epoch
            made by temporal jittering (Xia et al. 2018: drop a share of the columns at
            random, resample back with an interpolation kernel): `JITTER_COPIES` (96)
            takes every (share, kernel) pair once, as the release; fewer takes that many
            pairs drawn at random per clip and epoch; 0 none.
    """

    classes: tuple | None = None
    image_size: int = 224
    window: int | None = 13
    eval_stride: int = 1
    flip: bool = True
    rotation: float = 0.0
    balance_classes: bool = False
    frames_per_class: int | None = None
    tim: int | None = None
    input: str = "frames"
    flow: str | None = None
    columns: int = 150
    jitter_copies: int = 0


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Network: backbone, temporal head, what trains.

    Attributes:
        backbone: a key of `tfmer.models.clip.BACKBONES`; `tlcnn_cnn` for the staged
            TLCNN experiments (`transfer.stages`), `c3d` for the 3D-CNN.
        weights: pretrained backbone weight file (e.g. keras-vggface's
            `rcmalli_vggface_tf_notop_resnet50.h5`), or None to train from scratch.
        head: `bilstm`, `lstm` (recurrent heads over a window) or `fc` (per-frame fully
            connected layers, frame softmaxes averaged over time).
        head_units: LSTM units (per direction for `bilstm`; the LSTM of TLCNN's joint
            model); unused by `fc`.
        head_layers: stacked recurrent layers; unused by `fc`.
        fc_units: widths of the ReLU layers of the `fc` head, in order (each followed by
            `dropout`); the class layer comes after them. For `tlcnn_cnn`: the widths of
            FC6 and FC7, (4096, 4096).
        dropout: dropout before the softmax (and after each `fc_units` layer).
        unfreeze_from: backbone layer from which on weights train (earlier ones frozen; a
            residual block's output trains its whole block, `tfmer.models.clip.trainable_from`);
            `gradcam` chooses it in each training fold by Grad-CAM on that fold's training
            frames (Bai & Goecke 2020, Section 4.3); None trains everything.
        gradcam_layers: backbone layers Grad-CAM scores for layer selection, in order
            (empty: every convolutional layer).
        gradcam_frames: training frames sampled for the layer selection.
        gradcam_target: what the layer selection's heatmaps explain: `probe` each frame's
            labelled class through a linear probe fitted briefly on the backbone's pooled
            features of the sampled training frames (the model's own head is untrained
            then); `predicted` each frame's predicted class with the model's own head
            (`gradcam.scoring.heatmap_target`).
        gradcam_canonical_landmarks: score the layers against the canonical face layout
            (`gradcam.regions.CANONICAL_LANDMARKS`) instead of each clip's own landmarks;
            only for aligned face crops (`python -m data_prep ... --align`), and only when
            asked for: clips without landmarks otherwise stop the run with an error.
        channels: the motion channels a motion network reads, in order, of `u`, `v` and
            `strain` (`tfmer.records.MOTION_CHANNELS`); empty for the others.
        filters: the convolution widths of a motion network (`tfmer.models.motion`), in
            the order its builder takes them (e.g. STSTNet's three streams 3, 5, 8); empty
            for the others.
        pool_size: the output size of a motion network's last adaptive pooling (RCN).
        weight_decay: L2 weight decay coupled to the gradient as MatConvNet's and
            PyTorch's SGD apply it (`gradient + weight_decay * w`) on the kernels of a
            motion network; 0 for none.
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
    gradcam_target: str = "probe"
    gradcam_canonical_landmarks: bool = False
    channels: tuple = ()
    filters: tuple[int, ...] = ()
    pool_size: int = 7
    weight_decay: float = 0.0


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Optimisation budget, learning-rate schedule and stopping rule.

    Attributes:
        optimizer: `adam` or `sgd` (with `momentum`).
        learning_rate: initial (base) learning rate.
        momentum: SGD momentum.
        batch_size: training samples per step.
        epochs: the fixed budget, or the most epochs with early stopping.
        early_stopping: choose the best epoch by `monitor` on an inner split of the
            *training* subjects (never the test subjects), stop after `patience` epochs
            without improvement and keep the best weights. Off: a fixed budget and the
            last weights.
        patience: epochs without improvement before stopping; `epochs` runs the whole
            budget and keeps the best epoch.
        validation_fraction: share of training subjects held out for early stopping.
        eval_batch_size: clips per evaluation batch.
        decay_steps: step decay (Caffe's `step` policy): the learning rate is multiplied
            by `decay_rate` every `decay_steps` training steps (staircase
            `keras.optimizers.schedules.ExponentialDecay`); None keeps it constant.
        decay_rate: the factor of each decay step (of `decay_steps` or `decay_epochs`).
        decay_epochs: step decay by epochs (PyTorch's `StepLR`, MatConvNet's per-epoch
            rates): the learning rate is multiplied by `decay_rate` every `decay_epochs`
            epochs, whatever an epoch's step count; None: none. Not with `decay_steps`.
        steps_per_epoch: None: an epoch is one pass over the training clips; a number:
            an epoch is that many batches drawn from an endless stream of passes (every
            batch full), so validation comes every `steps_per_epoch` steps and the budget
            is `steps_per_epoch * epochs` steps.
        finetune_learning_rate: a second phase (Wang et al. 2018, Section 4.2): restart
            from the weights the first phase ends with (the best epoch with early
            stopping) at this base learning rate, with the same schedule, budget and
            stopping rule and a fresh optimizer state, then keep the best epoch of both
            phases. None: one phase.
        monitor: `val_loss` (lowest) or `val_accuracy` (highest), the figure of the
            inner validation split the best epoch is chosen on.
        frozen_cache: with the backbone's first layers frozen (`model.unfreeze_from`),
            compute their outputs for the fit's training clips once, on disk in the run
            folder, and train the rest on them (`tfmer.training.frozen`): `off` (the
            default: it pays only when l_s is late, BENCHMARKS.md, and it holds a fold's
            features on disk), `on`, or `auto` (on from 3 epochs, where it has paid for
            its one pass over every frame). Only for windows of frames without random
            rotation or class balancing.
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
    decay_steps: int | None = None
    decay_rate: float = 0.1
    decay_epochs: int | None = None
    steps_per_epoch: int | None = None
    finetune_learning_rate: float | None = None
    monitor: str = "val_loss"
    frozen_cache: str = "off"


@dataclasses.dataclass(frozen=True)
class TransferConfig:
    """Staged training with transfer between stages (TLCNN, Wang et al. 2018, Section 3).

    Attributes:
        stages: the stages to run, in order, a subset of `STAGES`; empty for a single
            model trained by `tfmer.training.ModelTrainer`.
            `expression`: the CNN on still expression images (`expression_data`, its own
            classes), once per seed, independent of the folds (other people);
            `frames`: the CNN with the micro-expression classes, its C1..FC7 copied from
            the expression stage, on single frames of the fold's training clips;
            `joint`: CNN and LSTM together on windows of `data.window` consecutive frames,
            the CNN's layers shared with the frames stage. Each stage trains with its own
            section: `expression_train`, `frame_train`, `train`.
        expression_data: a converted expression image set (`python -m data_prep
            expression --root DIR --out DIR --classes expression9`); the expression stage
            needs it unless `expression_weights` is given.
        expression_weights: the `expression.weights.h5` of an earlier run (same
            `data.image_size` and `model` section), reused instead of training the
            expression stage.
        feature_layer: the CNN layer whose output feeds the LSTM, one of `FEATURE_LAYERS`
            (Section 3.5: FC6).
        svm_layer: with no `joint` stage: after the last stage, a linear SVM on each clip's
            mean over its frames of this CNN layer's output (one of `SVM_LAYERS`), e.g.
            `C5` for C5+SVM; None: the joint model classifies.
        svm_c: the SVM's regularisation constant C (fixed, not tuned).
        encoder: what feeds a recurrent head (Bai & Goecke's Exp-II/III): None, the
            backbone's features of each frame; `exp1`, the Exp-I network "repackaged"
            (Section 4.4): backbone and fc1-fc3 trained first as exp1 (at the same scale) on
            single frames of the fold's training subjects, their per-frame class
            probabilities then feeding the LSTM, trained on with it
            (`tfmer.experiments.bai_goecke.RepackagedTrainer`).
        encoder_weights: with `encoder: exp1`, the weights of a trained exp1 model (an exp1
            run's `final.weights.h5`) to start from instead of training Exp-I in each fold.
            An exp1 run's final model has seen every subject of its data: only weights
            trained on other subjects keep a cross-validation honest (a run warns).
    """

    stages: tuple = ()
    expression_data: str | None = None
    expression_weights: str | None = None
    feature_layer: str = "FC6"
    svm_layer: str | None = None
    svm_c: float = 1.0
    encoder: str | None = None
    encoder_weights: str | None = None


@dataclasses.dataclass(frozen=True)
class HandcraftedConfig:
    """Handcrafted features and the SVM that classifies them (`tfmer.training.SVMTrainer`,
    the `*_svm` experiments); `method` None for the networks.

    Features depend on the clip alone: they are computed once per run and cached in the run
    folder (`tfmer.clip_features`); what is learnt from clips (STCLQP's codebooks, SLPP,
    the SVM) is fit on each fold's training clips only, and every candidate setting is
    chosen by inner cross-validation on the training subjects.

    Attributes:
        method: one of `HANDCRAFTED`; None: a network.
        grid: (rows, cols) of the blocks the face is cut into; empty for methods without
            blocks (MDMO's regions come from landmarks) and FDM (`grids`).
        radii: LBP radii, (Rx, Ry, Rt) for LBP-TOP, one radius for STLBP-IP's 2D-LBP and
            STCLQP's neighbourhood.
        points: neighbours of each LBP (LBP-TOP, STLBP-IP, STCLQP).
        flow: the optical flow computed at feature extraction from the decoded frames (MDMO:
            first frame -> every frame; FDM: frame -> next frame), one of `FLOW_METHODS`;
            None for the methods without flow, and for Bi-WOOF, which reads the onset ->
            apex motion the converter stored (`--flow`).
        grids: FDM: the candidate grids, P for a P x P grid of cuboids, one chosen by inner
            cross-validation.
        taus: FDM: the candidate cuboid lengths tau (frames), chosen likewise.
        words: STCLQP: the words of each component's k-means codebook.
        components: STCLQP: the dimensions SLPP keeps (0: classes - 1).
        weight: MDMO's lambda, the weight of the angles against the magnitudes.
        kernel: the SVM's kernel, one of `KERNELS`.
        c: the candidate penalties C (one value: fixed, no search).
        gamma: the candidate kernel widths of `rbf` and `chi2` (empty: scikit-learn's
            `scale`, 1 / (features x variance), for rbf; 1 / the mean chi-square distance
            of the training clips for chi2, `tfmer.svm.Chi2SVC`).
        degree: the degree of the `poly` kernel.
        inner_folds: subject folds of the training subjects for the search (used when
            there is more than one candidate).
        workers: processes extracting features (0: one per CPU core); results do not
            depend on it.
    """

    method: str | None = None
    grid: tuple[int, ...] = ()
    radii: tuple[int, ...] = ()
    points: int = 8
    flow: str | None = None
    grids: tuple[int, ...] = ()
    taus: tuple[int, ...] = ()
    words: int = 20
    components: int = 0
    weight: float = 0.77
    kernel: str = "linear"
    c: tuple[float, ...] = (1.0,)
    gamma: tuple[float, ...] = ()
    degree: int = 3
    inner_folds: int = 3
    workers: int = 0


@dataclasses.dataclass(frozen=True)
class ProtocolConfig:
    """Cross-validation.

    Attributes:
        protocol: `kfold5` (any `kfoldK`) subject-independent K folds, `loso`, or across
            databases `lodo` (leave one database out) or `train=A,test=B` (database names,
            several training ones separated by commas; `tfmer.protocols.make_folds`);
            `kfoldK-clips` splits clips, not subjects, leaking subjects into the test folds
            (only to compare with papers that split so; a run warns).
        seeds: training seeds; each repeats the whole cross-validation on the same folds.
        fold_seed: seed of the subject-to-fold assignment (fixed, so every method of a
            comparison sees the same folds).
        deterministic: TensorFlow's ops, tf.data's included, run deterministically
            (`tf.config.experimental.enable_op_determinism`), so that with the seeds each
            fit sets a run gives the same figures again and a resumed run those of an
            uninterrupted one; false: parallel input pipelines in any order (faster where
            decoding is the bottleneck), figures that vary a little from run to run.
    """

    protocol: str = "kfold5"
    seeds: int = 1
    fold_seed: int = 0
    deterministic: bool = True


@dataclasses.dataclass(frozen=True)
class DeviceConfig:
    """How the training step runs: `auto` uses what a GPU is good at where TensorFlow
    finds one and changes nothing on a CPU (`tfmer.devices.resolve`; the resolved settings
    are recorded in the run folder's `device.json`).

    Attributes:
        strategy: `default` (one device), `mirrored` (every local GPU, the global batch
            `train.batch_size` split across them) or `multiworker` (the workers of the
            cluster in `TF_CONFIG`: `tfmer.devices`); `train.py --strategy`.
        mixed_precision: `auto` (bfloat16 on GPUs of compute capability >= 8, float16 on
            7.x, else float32), `off`, `mixed_float16` or `mixed_bfloat16`; softmax stays
            float32.
        xla: `auto` (on with a GPU), `on` or `off`: the training step compiled with XLA.
        prefetch_to_device: `auto` (with a GPU), `on` or `off`: training batches staged on
            the device ahead of the step.
    """

    strategy: str = "default"
    mixed_precision: str = "auto"
    xla: str = "auto"
    prefetch_to_device: str = "auto"


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    """A registered experiment, fully resolved.

    Attributes:
        name: registry name, e.g. `exp3`.
        paper: the paper it reproduces (short citation with table).
        description: one line.
        scale: `paper` (the published setting), `builtin` (sized for the built-in data on a
            CPU) or `quick` (a few seconds' smoke run).
        data, model, protocol: input, network and cross-validation.
        train: the optimisation of the model (of the `joint` stage for staged experiments).
        transfer: the stages of staged experiments (`TransferConfig`); empty for others.
        expression_train: the optimisation of the `expression` stage.
        frame_train: the optimisation of the `frames` stage.
        handcrafted: the features and SVM of the handcrafted baselines; `method` None for
            the networks.
        device: where and how the training step runs (`DeviceConfig`).
    """

    name: str
    paper: str
    description: str
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    protocol: ProtocolConfig = ProtocolConfig()
    scale: str = "paper"
    transfer: TransferConfig = TransferConfig()
    expression_train: TrainConfig = TrainConfig()
    frame_train: TrainConfig = TrainConfig()
    handcrafted: HandcraftedConfig = HandcraftedConfig()
    device: DeviceConfig = DeviceConfig()

    @property
    def num_folds(self) -> int | None:
        """K of `kfoldK`, None for LOSO."""
        match = _PROTOCOL.match(self.protocol.protocol)
        return int(match.group(2)) if match and match.group(2) else None

    def validate(self) -> "ExperimentConfig":
        """Cross-field checks; returns self. Raises ValueError naming the field and value."""
        checks = [
            (self.scale in SCALES, f"scale {self.scale!r} is not one of {SCALES}"),
            (self.data.image_size >= (8 if self.data.input == "flow" else 32),
             f"data.image_size {self.data.image_size} < "
             f"{8 if self.data.input == 'flow' else 32}"),
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
            (self.device.strategy in STRATEGIES,
             f"device.strategy {self.device.strategy!r} is not one of {STRATEGIES}"),
            (self.device.mixed_precision in PRECISIONS,
             f"device.mixed_precision {self.device.mixed_precision!r} is not one of "
             f"{PRECISIONS}"),
            (self.device.xla in SWITCHES,
             f"device.xla {self.device.xla!r} is not one of {SWITCHES}"),
            (self.device.prefetch_to_device in SWITCHES,
             f"device.prefetch_to_device {self.device.prefetch_to_device!r} is not one of "
             f"{SWITCHES}"),
            (self.model.head != "fc" or all(u >= 1 for u in self.model.fc_units),
             f"model.fc_units {self.model.fc_units} must all be >= 1"),
            (self.model.head_layers >= 1, f"model.head_layers {self.model.head_layers} < 1"),
            (self.model.head_units >= 1, f"model.head_units {self.model.head_units} < 1"),
            (0 <= self.model.dropout < 1, f"model.dropout {self.model.dropout} not in [0, 1)"),
            (self.model.gradcam_target in GRADCAM_TARGETS,
             f"model.gradcam_target {self.model.gradcam_target!r} is not one of "
             f"{GRADCAM_TARGETS}"),
            (self.data.tim is None or self.data.tim >= 2,
             f"data.tim {self.data.tim} must be >= 2 or none"),
            *self._input_checks(),
            (set(self.model.channels) <= set(MOTION_CHANNELS)
             and len(set(self.model.channels)) == len(self.model.channels),
             f"model.channels {tuple(self.model.channels)} must be distinct channels of "
             f"{MOTION_CHANNELS}"),
            ((self.data.input == "flow") == bool(self.model.channels),
             f"model.channels {tuple(self.model.channels)} with data.input "
             f"{self.data.input!r}: a motion network (and only one) reads motion channels"),
            (all(f >= 1 for f in self.model.filters),
             f"model.filters {tuple(self.model.filters)} must all be >= 1"),
            (self.model.pool_size >= 1, f"model.pool_size {self.model.pool_size} < 1"),
            (self.model.weight_decay >= 0,
             f"model.weight_decay {self.model.weight_decay} < 0"),
            *_train_checks("train", self.train),
            *_train_checks("expression_train", self.expression_train),
            *_train_checks("frame_train", self.frame_train),
            *self._transfer_checks(),
            *self._handcrafted_checks(),
            (_PROTOCOL.match(self.protocol.protocol) is not None,
             f"protocol {self.protocol.protocol!r} is not kfoldK (e.g. kfold5), loso, lodo, "
             f"train=A,test=B (database names) or kfoldK-clips"),
            (self.num_folds is None or self.num_folds >= 2,
             f"protocol {self.protocol.protocol!r} needs at least 2 folds"),
            (self.protocol.seeds >= 1, f"protocol.seeds {self.protocol.seeds} < 1"),
        ]
        problems = [message for ok, message in checks if not ok]
        if problems:
            raise ValueError(f"experiment {self.name}: " + "; ".join(problems))
        return self

    def _input_checks(self) -> list:
        """`(ok, message)` checks of `data.input` against the rest of the `data` section."""
        data = self.data
        checks = [
            (data.input in INPUTS, f"data.input {data.input!r} is not one of {INPUTS}"),
            (data.input == "flow" or data.flow is None,
             f"data.flow {data.flow!r} is set but data.input is {data.input!r}"),
            (data.input == "appearance" or data.jitter_copies == 0,
             f"data.jitter_copies {data.jitter_copies} is set but data.input is "
             f"{data.input!r}"),
            (0 <= data.jitter_copies <= JITTER_COPIES,
             f"data.jitter_copies {data.jitter_copies} not in [0, {JITTER_COPIES}]"),
            (data.columns >= 2, f"data.columns {data.columns} < 2"),
        ]
        if data.input == "frames":
            return checks
        return checks + [
            (data.flow is None or data.flow in FLOW_METHODS,
             f"data.flow {data.flow!r} is not one of {FLOW_METHODS} or none"),
            (data.window is None,
             f"data.window {data.window}: a {data.input} model reads one input per clip "
             f"(data.window none)"),
            (data.rotation == 0 and not data.balance_classes,
             f"data.rotation and data.balance_classes sample frames; a {data.input} model "
             f"reads one input per clip (set them to 0 and false)"),
            (data.input != "appearance" or not data.flip,
             "data.flip: an appearance matrix's rows are the mask's pixels, which a flip "
             "would reorder (set it to false)"),
            (not self.transfer.stages,
             f"transfer.stages {tuple(self.transfer.stages)} train on frames, not on "
             f"{data.input}"),
            (self.model.unfreeze_from is None,
             f"model.unfreeze_from {self.model.unfreeze_from!r}: a {data.input} network "
             f"trains whole (none)"),
        ]

    def _transfer_checks(self) -> list:
        """`(ok, message)` checks of the `transfer` section against the others."""
        transfer, stages = self.transfer, tuple(self.transfer.stages)
        encoder = [
            (transfer.encoder in ENCODERS,
             f"transfer.encoder {transfer.encoder!r} is not one of {ENCODERS}"),
            (transfer.encoder is None or self.model.head in ("lstm", "bilstm"),
             f"transfer.encoder {transfer.encoder} feeds a recurrent head; model.head is "
             f"{self.model.head!r}"),
            (transfer.encoder_weights is None or transfer.encoder is not None,
             f"transfer.encoder_weights {transfer.encoder_weights} needs transfer.encoder exp1"),
        ]
        if not stages:
            return encoder + [(self.model.backbone != TLCNN_CNN,
                               f"model.backbone {TLCNN_CNN} needs transfer.stages (e.g. "
                               f"frames,joint)")]
        return encoder + [
            (transfer.encoder is None,
             f"transfer.encoder {transfer.encoder} and transfer.stages {stages}: one or the "
             f"other"),
            (tuple(s for s in STAGES if s in stages) == stages,
             f"transfer.stages {stages} must be distinct stages of {STAGES}, in that order"),
            ("frames" in stages or "joint" in stages,
             f"transfer.stages {stages} has no micro-expression stage (frames or joint)"),
            (self.model.backbone == TLCNN_CNN,
             f"transfer.stages needs model.backbone {TLCNN_CNN}, found {self.model.backbone!r}"),
            (("joint" in stages) != (transfer.svm_layer is not None),
             f"transfer.stages {stages} with transfer.svm_layer {transfer.svm_layer}: the last "
             f"classifier is either the joint stage's LSTM or the SVM, exactly one of them"),
            (transfer.svm_layer is None or transfer.svm_layer in SVM_LAYERS,
             f"transfer.svm_layer {transfer.svm_layer!r} is not one of {SVM_LAYERS}"),
            (transfer.svm_c > 0, f"transfer.svm_c {transfer.svm_c} <= 0"),
            (transfer.feature_layer in FEATURE_LAYERS,
             f"transfer.feature_layer {transfer.feature_layer!r} is not one of {FEATURE_LAYERS}"),
            ("expression" in stages or (transfer.expression_data is None
                                        and transfer.expression_weights is None),
             f"transfer.expression_data {transfer.expression_data} / expression_weights "
             f"{transfer.expression_weights} are set but transfer.stages {stages} has no "
             f"expression stage"),
            ("joint" not in stages or self.data.window is not None,
             "data.window none: the joint stage trains on windows of data.window frames"),
            (transfer.svm_layer is None or self.data.window is None,
             f"data.window {self.data.window}: the SVM classifies whole clips (data.window "
             f"none)"),
            (len(self.model.fc_units) == 2 and min(self.model.fc_units) >= 1,
             f"model.fc_units {tuple(self.model.fc_units)} must be the two widths of the TLCNN "
             f"CNN's FC6 and FC7 (the paper's {TLCNN_FC_UNITS})"),
            ("joint" not in stages or self.model.head == "lstm" and self.model.head_layers == 1,
             f"model.head {self.model.head!r} x {self.model.head_layers}: the TLCNN model has "
             f"one LSTM layer (model.head lstm, model.head_layers 1)"),
            # One inner split of the training subjects serves every micro-expression stage,
            # so no stage trains on the subjects another one chooses its best epoch on.
            (self.frame_train.validation_fraction == self.train.validation_fraction,
             f"frame_train.validation_fraction {self.frame_train.validation_fraction} must "
             f"equal train.validation_fraction {self.train.validation_fraction} (the stages "
             f"share one inner split)"),
        ]

    def _handcrafted_checks(self) -> list:
        """`(ok, message)` checks of the `handcrafted` section against the others."""
        features = self.handcrafted
        if features.method is None:
            return []
        return [
            (features.method in HANDCRAFTED,
             f"handcrafted.method {features.method!r} is not one of {HANDCRAFTED} or none"),
            (features.kernel in KERNELS,
             f"handcrafted.kernel {features.kernel!r} is not one of {KERNELS}"),
            (len(features.c) >= 1 and all(c > 0 for c in features.c),
             f"handcrafted.c {tuple(features.c)} must list penalties > 0"),
            (all(g > 0 for g in features.gamma),
             f"handcrafted.gamma {tuple(features.gamma)} must all be > 0"),
            (features.flow is None or features.flow in FLOW_METHODS,
             f"handcrafted.flow {features.flow!r} is not one of {FLOW_METHODS} or none"),
            (len(features.grid) in (0, 2) and all(g >= 1 for g in features.grid),
             f"handcrafted.grid {tuple(features.grid)} must be rows,cols >= 1 (or none)"),
            (all(r >= 1 for r in features.radii),
             f"handcrafted.radii {tuple(features.radii)} must all be >= 1"),
            (all(g >= 1 for g in features.grids) and all(t >= 1 for t in features.taus),
             f"handcrafted.grids {tuple(features.grids)} and taus {tuple(features.taus)} must "
             f"all be >= 1"),
            (features.points >= 1, f"handcrafted.points {features.points} < 1"),
            (features.words >= 2, f"handcrafted.words {features.words} < 2"),
            (features.components >= 0, f"handcrafted.components {features.components} < 0"),
            (features.degree >= 1, f"handcrafted.degree {features.degree} < 1"),
            (features.inner_folds >= 2, f"handcrafted.inner_folds {features.inner_folds} < 2"),
            (features.workers >= 0, f"handcrafted.workers {features.workers} < 0"),
            *self._method_needs(),
            (self.data.window is None and self.data.input == "frames"
             and not self.transfer.stages and not self.data.flip,
             f"data.window {self.data.window}, data.input {self.data.input!r}, data.flip "
             f"{self.data.flip}: handcrafted features read whole clips as converted "
             f"(data.window none, data.input frames, data.flip false, no transfer.stages)"),
        ]

    def _method_needs(self) -> list:
        """`(ok, message)` checks of the settings each handcrafted method reads."""
        features, method = self.handcrafted, self.handcrafted.method
        radii = {"lbptop": 3, "stlbpip": 1, "stclqp": 1}.get(method)
        blocks = method in ("lbptop", "stlbpip", "stclqp", "biwoof")
        flow = method in ("mdmo", "fdm")
        return [
            (not blocks or len(features.grid) == 2,
             f"handcrafted.grid {tuple(features.grid)}: {method} cuts the face into rows,cols "
             f"blocks"),
            (radii is None or len(features.radii) == radii,
             f"handcrafted.radii {tuple(features.radii)}: {method} takes {radii} radius(es)"),
            (flow == (features.flow is not None),
             f"handcrafted.flow {features.flow!r}: {method} "
             + ("computes flow: name one of " + str(FLOW_METHODS) if flow
                else "computes no flow (none)")),
            (method != "fdm" or (features.grids and features.taus),
             f"handcrafted.grids {tuple(features.grids)} and taus {tuple(features.taus)}: fdm "
             f"chooses among candidate grids and taus (at least one of each)"),
        ]

    def to_dict(self) -> dict:
        """The config as plain JSON-able values (what a run's `config.json` holds)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, saved: dict, source: str = "the config") -> "ExperimentConfig":
        """The config `to_dict()` gave, validated: the inverse of `to_dict` (JSON lists
        back to tuples). Keys that are not fields (a run's `dataset` entry) are ignored;
        a field missing from `saved` takes its default.

        Args:
            saved: e.g. a run's parsed `config.json`.
            source: what `saved` came from, named in errors.

        Raises:
            ValueError: no `name`, a section that is not a mapping, or a section field
                this version of tfmer does not know (listing the known ones).
        """
        if not isinstance(saved, dict) or "name" not in saved:
            raise ValueError(f"{source} is not an experiment config (no \"name\" entry)")
        values = {}
        for field in dataclasses.fields(cls):
            if field.name not in saved:
                continue
            value = saved[field.name]
            if dataclasses.is_dataclass(field.default):
                section = type(field.default)
                if not isinstance(value, dict):
                    raise ValueError(f"{source}: {field.name} must be a mapping, found {value!r}")
                known = {f.name for f in dataclasses.fields(section)}
                unknown = sorted(set(value) - known)
                if unknown:
                    raise ValueError(f"{source}: {field.name} has no field(s) "
                                     f"{', '.join(unknown)} in this version of tfmer; fields: "
                                     + ", ".join(sorted(known)))
                value = section(**{k: tuple(v) if isinstance(v, list) else v
                                   for k, v in value.items()})
            values[field.name] = value
        missing = [f.name for f in dataclasses.fields(cls)
                   if f.default is dataclasses.MISSING and f.name not in values]
        if missing:
            raise ValueError(f"{source} lacks {', '.join(missing)}")
        return cls(**values).validate()


def _train_checks(section: str, train: TrainConfig) -> list:
    """`(ok, message)` checks of one `TrainConfig` section, messages naming `section`."""
    return [
        (train.optimizer in ("adam", "sgd"),
         f"{section}.optimizer {train.optimizer!r} is not adam or sgd"),
        (train.learning_rate > 0, f"{section}.learning_rate {train.learning_rate} <= 0"),
        (train.batch_size >= 1, f"{section}.batch_size {train.batch_size} < 1"),
        (train.epochs >= 1, f"{section}.epochs {train.epochs} < 1"),
        (train.patience >= 1, f"{section}.patience {train.patience} < 1"),
        (0 < train.validation_fraction < 1,
         f"{section}.validation_fraction {train.validation_fraction} not in (0, 1)"),
        (train.eval_batch_size >= 1, f"{section}.eval_batch_size {train.eval_batch_size} < 1"),
        (train.decay_steps is None or train.decay_steps >= 1,
         f"{section}.decay_steps {train.decay_steps} must be >= 1 or none"),
        (0 < train.decay_rate <= 1, f"{section}.decay_rate {train.decay_rate} not in (0, 1]"),
        (train.decay_epochs is None or train.decay_epochs >= 1,
         f"{section}.decay_epochs {train.decay_epochs} must be >= 1 or none"),
        (train.decay_epochs is None or train.decay_steps is None,
         f"{section}.decay_steps {train.decay_steps} and decay_epochs {train.decay_epochs}: "
         f"decay by steps or by epochs, not both"),
        (train.steps_per_epoch is None or train.steps_per_epoch >= 1,
         f"{section}.steps_per_epoch {train.steps_per_epoch} must be >= 1 or none"),
        (train.finetune_learning_rate is None or train.finetune_learning_rate > 0,
         f"{section}.finetune_learning_rate {train.finetune_learning_rate} must be > 0 or none"),
        (train.monitor in MONITORS,
         f"{section}.monitor {train.monitor!r} is not one of {MONITORS}"),
        (train.frozen_cache in SWITCHES,
         f"{section}.frozen_cache {train.frozen_cache!r} is not one of {SWITCHES}"),
    ]


def override(config: ExperimentConfig, assignments) -> ExperimentConfig:
    """Applies `section.field=value` assignments (e.g. `train.epochs=3`) and validates.

    Values are JSON (`3`, `0.5`, `true`, `null`, `["a", "b"]`) or plain strings; `none`
    means None (the empty tuple for tuple fields that cannot be None) and `a,b,c` a tuple
    for tuple fields.

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
        if type(None) in typing.get_args(hint):
            return None
        if hint is tuple or typing.get_origin(hint) is tuple:
            return ()
        raise ValueError(f"--set {assignment!r}: the field cannot be none")
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = text
    allowed = typing.get_args(hint) or (hint,)
    if typing.get_origin(hint) is tuple and allowed[0] in (int, float):  # tuple[int, ...]
        items = value if isinstance(value, list) else str(value).split(",")
        number = allowed[0]
        try:
            return tuple(number(str(v).strip()) for v in items if str(v).strip())
        except ValueError:
            raise ValueError(f"--set {assignment!r}: {text!r} is not a list of "
                             f"{'integers' if number is int else 'numbers'} "
                             f"(e.g. {'1024,256' if number is int else '0.1,1,10'})") from None
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
