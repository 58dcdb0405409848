"""Grad-CAM layer scoring (Bai & Goecke 2020, Section 4.3): the layer l_s whose heat lies
closest to the facial features is chosen; the backbone's layers before l_s are frozen and
l_s onward retrained.

Stages, each a function of its own: `sample_frames` (one apex frame per sampled clip, with
its landmarks and labelled class) -> `heatmap_target` (what the heatmaps explain) ->
`layer_heatmaps` (one batched Grad-CAM pass for all candidate layers) -> `score_heatmaps`
(share of heat on `gradcam.regions`, corrected for resolution) -> `select_layer` -> `split`.
`score_layers` runs `layer_heatmaps` and `score_heatmaps`. The trainer runs the stages per
training fold (`tfmer.training.ModelTrainer.select_layer`); `gradcam.select.select` runs
them for an experiment and writes the report (`python -m gradcam select`). Nothing here
knows the experiment registry: it takes a model and a dataset.

What the heatmaps explain (`model.gradcam_target`). The model is freshly built when l_s is
chosen, so its own classification head is untrained and its predicted class means nothing.
`probe` (the default) explains each frame's labelled class through a linear probe instead:
a softmax layer fitted briefly on the frozen backbone's pooled features of the sampled
frames (`fit_probe`), on top of the same backbone (`probe_model`), so the heat shows where
the backbone's evidence for the frame's emotion lies. The frames come from the training
subjects of a fold (the trainer) or from the subjects asked for (`python -m gradcam select
--fold K`), so fitting on their labels uses nothing a fold tests on. `predicted` explains
each frame's predicted class with the model's own head, as before the probe existed.

Resolution correction (a deliberate change: the paper, which chose l_s by eye, and a raw
score rank layers by the share of heat on the regions). A layer's h x w map is upsampled
bilinearly to S x S before scoring, and a coarse map is blurred by it: a 7 x 7 map at
224 px cannot put as much of its heat on thin regions as a 56 x 56 map can, so the raw
share favours high-resolution layers. For each layer `score_heatmaps` therefore also gives
the ceiling, the largest share any non-negative map of that resolution reaches on the same
masks (a one-hot map: `gradcam.regions.share_ceiling`), and ranks layers by

    normalised = (score - area) / (ceiling - area),

with `area` the masks' area fraction (the share of uniform heat): 0 is no better than
uniform heat, 1 as concentrated on the regions as the layer's resolution allows, below 0
worse than uniform. A layer with no room above uniform (ceiling <= area, e.g. 1 x 1 maps)
scores 0 and is chosen only if every layer is such (`select_layer`). `score` (the raw
share), `area` and `ceiling` are reported with it.
"""

from __future__ import annotations

import dataclasses
import math
import typing

import keras
import numpy as np
import scipy.special
import tensorflow as tf

from gradcam import regions
from gradcam.core import call_tensors, conv_layer_names, grad_cams
from tfmer import data
from tfmer.config import GRADCAM_TARGETS
from tfmer.landmarks import NUM_LANDMARKS
from tfmer.models.clip import BACKBONE_LAYER, trainable_from
from tfmer.records import UNKNOWN

PROBE, PREDICTED = GRADCAM_TARGETS
"""The `model.gradcam_target` values: each frame's labelled class through a linear probe
(`fit_probe`); each frame's predicted class with the model's own head."""
PROBE_STEPS = 300
"""Full-batch gradient-descent steps of `fit_probe`."""
PROBE_L2 = 1e-3
"""L2 penalty of `fit_probe` on the weights of the standardised features."""
NO_ROOM = 1e-6
"""`normalised_score` is 0 for a ceiling less than this above the area (no room to rank)."""


def stored_index(num_frames: int, onset: int, apex: int, offset: int) -> int:
    """Index of a clip's apex among its stored frames, else of its middle frame.

    The stored frames span onset..offset when both are known (`python -m data_prep`), TIM
    resampling them to `num_frames` at evenly spaced positions, so the apex's relative
    position `(apex - onset) / (offset - onset)` maps to the nearest stored index (without
    TIM that is `apex - onset`). An apex outside onset..offset counts as the nearer end.

    Args:
        num_frames: stored frames T.
        onset, apex, offset: source frame numbers, `UNKNOWN` (-1) when not coded.

    Returns:
        An index in 0..T-1: the apex's, or `(T - 1) // 2` when the apex, onset or offset is
        unknown or offset <= onset.
    """
    if UNKNOWN in (onset, apex, offset) or offset <= onset:
        return (num_frames - 1) // 2
    position = min(max((apex - onset) / (offset - onset), 0.0), 1.0)
    return math.floor(position * (num_frames - 1) + 0.5)


def sample_clips(clips, classes, count: int, seed: int = 0) -> list[dict]:
    """A deterministic sample of `count` clip summaries spread over the classes.

    Each class's clips (sorted by id) are shuffled with `seed`, then the classes take turns
    in `classes` order until `count` clips are drawn or none are left.

    Args:
        clips: `dataset.json` clip summaries (`id`, `label`, ...).
        classes: the class names, in order.
    """
    rng = np.random.default_rng(seed)
    queues = []
    for name in classes:
        group = sorted((c for c in clips if c["label"] == name), key=lambda c: c["id"])
        queues.append([group[i] for i in rng.permutation(len(group))])
    chosen = []
    for turn in range(max(map(len, queues), default=0)):
        chosen += [queue[turn] for queue in queues if turn < len(queue)]
    return chosen[:count]


class FrameSample(typing.NamedTuple):
    """Sample frames of a dataset for Grad-CAM (`sample_frames`).

    Attributes:
        frames: uint8 `[N, S, S, 3]` RGB, each clip's apex frame (`stored_index`).
        landmarks: float32 `[N, 68, 2]` (x, y) in S x S pixel coordinates.
        clip_ids: the N clips' ids.
        labels: int64 `[N]`, each clip's labelled class as an index into `classes`.
        classes: the dataset's class names, in order (`DatasetInfo.classes`).
    """

    frames: np.ndarray
    landmarks: np.ndarray
    clip_ids: list
    labels: np.ndarray
    classes: tuple


def sample_frames(info: data.DatasetInfo, subjects=None, *, image_size: int, count: int = 16,
                  seed: int = 0, canonical_landmarks: bool = False) -> FrameSample:
    """One frame each of a deterministic sample of clips, with its facial landmarks and
    its clip's labelled class.

    The labels are those of the subjects asked for: pass a fold's training subjects (as
    the trainer does) and a probe fitted on them (`heatmap_target`) sees no test subject.

    Args:
        info: the converted dataset.
        subjects: the subjects to sample from (e.g. a fold's training subjects); None: all.
        image_size: frames are resized to S x S as the training pipeline does.
        count: clips to sample (fewer when the subjects have fewer), spread over classes
            (`sample_clips`).
        seed: the sample's seed.
        canonical_landmarks: use `gradcam.regions.CANONICAL_LANDMARKS` for every frame
            instead of the clips' own landmarks; valid for aligned face crops only.

    Returns:
        A `FrameSample`: the apex frames; the clips' stored landmarks (those of its first
        stored frame, which head motion within a micro-expression barely moves) scaled
        from the stored size; the clip ids; their labels (`dataset.json`) as indices into
        `info.classes`.

    Raises:
        ValueError: no clips of `subjects`, or a sampled clip without landmarks (naming it).
    """
    clips = info.clips if subjects is None else info.clips_of(subjects)
    if not clips:
        raise ValueError(f"{info.path} holds no clips of subjects {sorted(subjects)}")
    sample = sample_clips(clips, info.classes, count, seed)
    chosen = [c["id"] for c in sample]
    found = {}
    for clip in data.read_clips(info, clips=chosen):
        clip_id = clip["clip/id"].numpy().decode("utf-8")
        if clip_id in chosen:
            found[clip_id] = _apex_frame(clip, image_size, canonical_landmarks, info)
            if len(found) == len(chosen):
                break
    missing = [clip_id for clip_id in chosen if clip_id not in found]
    if missing:
        raise ValueError(f"{info.path}: dataset.json lists clips its shards do not hold: "
                         + ", ".join(missing))
    frames, landmarks = zip(*(found[clip_id] for clip_id in chosen))
    labels = np.array([info.classes.index(clip["label"]) for clip in sample], np.int64)
    return FrameSample(np.stack(frames), np.stack(landmarks), chosen, labels,
                       tuple(info.classes))


def _apex_frame(clip: dict, size: int, canonical: bool, info: data.DatasetInfo):
    """A parsed clip's apex frame resized to S x S (uint8), and its landmarks at S."""
    encoded = clip["image/encoded"]
    index = stored_index(int(tf.shape(encoded)[0]), *(int(clip[f"clip/{key}"])
                                                      for key in ("onset", "apex", "offset")))
    frame = data.resize_frames(data.decode_frames(encoded[index:index + 1], 3), size)[0]
    frame = np.clip(np.rint(frame.numpy()), 0, 255).astype(np.uint8)
    if canonical:
        return frame, regions.canonical_landmarks(size)
    points = clip["clip/landmarks"].numpy()
    if not points.size:
        clip_id = clip["clip/id"].numpy().decode("utf-8")
        raise ValueError(
            f"clip {clip_id} of {info.path} has no facial landmarks to find the facial "
            "features with; convert with `--crop detect` (dlib locates them), or, for "
            "aligned face crops only, use the canonical face layout: --canonical-landmarks "
            "(python -m gradcam), --set model.gradcam_canonical_landmarks=true (train.py)")
    stored = np.array([int(clip["image/width"]), int(clip["image/height"])], np.float32)
    # Pixel centres: x_S + 0.5 = (x + 0.5) * S / width.
    return frame, ((points.reshape(NUM_LANDMARKS, 2) + 0.5) * size / stored
                   - 0.5).astype(np.float32)


def layer_heatmaps(model: keras.Model, frames, layer_names, class_index=None,
                   batch_size: int = 8) -> dict:
    """Grad-CAM heatmaps of frames at every named layer, from one `grad_cams` call (a
    forward and backward pass per batch of `batch_size` frames for all layers together).

    Args:
        model: a frame model (`[b, S, S, 3]` input) or a clip model (`[b, T, S, S, 3]`),
            which sees each frame as a one-frame clip.
        frames: `[N, S, S, 3]` RGB in 0..255.
        layer_names: layers to explain (top level or inside the backbone).
        class_index: the class to explain: an int for all frames, int `[N]` per frame
            (e.g. `Target.class_index`), or None for each frame's predicted class.

    Returns:
        `{layer: float [N, h, w]}`, each map ReLU'd and divided by its maximum.
    """
    inputs = _model_inputs(model, frames)
    clip_model = inputs.ndim == 5
    maps = grad_cams(model, inputs, list(layer_names), class_index=class_index,
                     batch_size=batch_size)
    return {name: np.asarray(maps[name])[:, 0] if clip_model else np.asarray(maps[name])
            for name in layer_names}


def score_heatmaps(heatmaps: dict, masks) -> list[dict]:
    """Scores each layer's heatmaps by their share of heat on the facial features, and
    that share corrected for the layer's resolution (see the module docstring).

    Args:
        heatmaps: `{layer: [N, h, w]}` (see `layer_heatmaps`), in network order.
        masks: bool `[N, S, S]` region masks (see `gradcam.regions.region_mask`).

    Returns:
        `[{"name", "score", "area", "ceiling", "normalised"}]` in the order of `heatmaps`:
        `score` the mean over frames of `heat_in_regions`, `area` the mean mask area
        fraction (what a uniform heatmap would score), `ceiling` the mean over frames of
        the highest share a map of the layer's resolution can reach
        (`gradcam.regions.share_ceiling`), `normalised` the `normalised_score` of the three.
    """
    masks = np.asarray(masks, bool)
    area = float(np.mean([np.mean(mask) for mask in masks]))
    ceilings = {}  # by resolution: layers of one stage share it
    scores = []
    for name, maps in heatmaps.items():
        shape = tuple(np.shape(maps)[1:])
        if shape not in ceilings:
            ceilings[shape] = float(np.mean(regions.share_ceiling(shape, masks)))
        score = float(np.mean([regions.heat_in_regions(h, m) for h, m in zip(maps, masks)]))
        scores.append({"name": name, "score": score, "area": area, "ceiling": ceilings[shape],
                       "normalised": normalised_score(score, area, ceilings[shape])})
    return scores


def normalised_score(score: float, area: float, ceiling: float) -> float:
    """`(score - area) / (ceiling - area)`: 0 for uniform heat, 1 at the resolution's
    ceiling, negative below uniform; 0 when the ceiling is not `NO_ROOM` above the area
    (a 1 x 1 map, whose ceiling is the area)."""
    if ceiling - area < NO_ROOM:
        return 0.0
    return (score - area) / (ceiling - area)


def score_layers(model: keras.Model, frames, landmarks, layer_names,
                 class_index=None) -> list[dict]:
    """Grad-CAM layer scores (`layer_heatmaps` then `score_heatmaps`).

    Args:
        model: frame or clip model (see `layer_heatmaps`), e.g. `Target.model`.
        frames: uint8 `[N, S, S, 3]` RGB.
        landmarks: `[N, 68, 2]` (x, y) landmarks of the frames at S x S.
        layer_names: candidate layers.
        class_index: class to explain: an int, int `[N]` per frame (`Target.class_index`),
            or None for each frame's predicted class.

    Returns:
        `[{"name", "score", "area", "ceiling", "normalised"}]` in the order of
        `layer_names` (see `score_heatmaps`).
    """
    masks = region_masks(landmarks, np.shape(frames)[1])
    return score_heatmaps(layer_heatmaps(model, frames, layer_names, class_index), masks)


def region_masks(landmarks, size: int) -> np.ndarray:
    """bool `[N, S, S]` region masks of `[N, 68, 2]` landmarks."""
    return np.stack([regions.region_mask(points, size) for points in landmarks])


def select_layer(scores: list[dict]) -> str:
    """The layer of the highest `normalised` score (the first of equal ones): the heat
    most concentrated on the facial features for its resolution, not the highest raw
    share (see the module docstring).

    Layers with no room above uniform heat (`ceiling - area < NO_ROOM`, e.g. the 1 x 1
    maps of the last stage at 32 px) rank below all others: their 0 says nothing about
    where their heat lies, yet would beat layers whose heat misses the regions (negative
    scores). Among only such layers, the first.

    Raises:
        ValueError: no scores.
    """
    if not scores:
        raise ValueError("no layer scores to select from")
    return max(scores, key=lambda s: (s["ceiling"] - s["area"] >= NO_ROOM,
                                      s["normalised"]))["name"]


@dataclasses.dataclass(frozen=True)
class Target:
    """What the Grad-CAM heatmaps explain (`heatmap_target`).

    Attributes:
        model: the model to take Grad-CAM of: `probe_model` for `probe`, the model itself
            for `predicted`; its backbone layers are the model's own.
        class_index: int `[N]`, the class to explain per sample frame (its label), or None
            for each frame's predicted class.
        name: the target used, `probe` or `predicted`.
        probe: the probe's fit (`fit_probe`'s summary), or None.
    """

    model: keras.Model
    class_index: np.ndarray | None
    name: str
    probe: dict | None = None


def heatmap_target(model: keras.Model, sample: FrameSample, target: str,
                   log=print) -> Target:
    """What the heatmaps of `sample` explain, as `model.gradcam_target` says.

    `probe`: fits a linear probe on the backbone's pooled features of the sample frames
    against their labels (`probe_features`, `fit_probe`) and explains each frame's label
    with it (`probe_model`). The frames must come from training subjects only (see
    `sample_frames`). A probe needs two classes: when every frame is of one class, the
    target falls back to `predicted` with a warning (logged, and `Target.name` says so).
    `predicted`: the model itself, each frame's predicted class.

    Args:
        model: the frame or clip model (see `layer_heatmaps`).
        sample: the sample frames and their labels (`sample_frames`).
        target: `probe` or `predicted`.
        log: the fallback warning and the probe's fit go here.

    Raises:
        ValueError: an unknown target (listing the valid ones); a probe for a model
            without a `backbone` layer (see `probe_features`).
    """
    if target not in GRADCAM_TARGETS:
        raise ValueError(f"unknown Grad-CAM target {target!r}; valid: "
                         f"{', '.join(GRADCAM_TARGETS)}")
    if target == PREDICTED:
        return Target(model, None, PREDICTED)
    present = [sample.classes[i] for i in np.unique(sample.labels)]
    if len(present) < 2:
        log(f"warning: all {len(sample.labels)} sample frames are of class "
            f"{', '.join(present)}: no probe can be fitted to one class, so the heatmaps "
            f"explain each frame's predicted class with the model's own head (target "
            f"{PREDICTED})")
        return Target(model, None, PREDICTED)
    features = probe_features(model, sample.frames)
    kernel, bias, fit = fit_probe(features, sample.labels, len(sample.classes))
    log(f"heatmaps explain each frame's labelled class through a linear probe on the "
        f"backbone's pooled features ({len(features)} frames of {len(present)} classes, "
        f"{fit['steps']} steps: training accuracy {fit['accuracy']:.2f}, loss "
        f"{fit['loss']:.3f})")
    return Target(probe_model(model, kernel, bias), sample.labels, PROBE, fit)


def probe_features(model: keras.Model, frames, batch_size: int = 8) -> np.ndarray:
    """The frozen backbone's pooled features of frames, as the probe sees them.

    The frames go through the model's own layers up to and including its `backbone`
    layer (the preprocessing layer of `build_clip_model` included; a clip model sees
    each frame as a one-frame clip), in inference mode, then `_pooled_backbone`.

    Args:
        model: a frame or clip model with a `backbone` layer.
        frames: `[N, S, S, 3]` RGB in 0..255.
        batch_size: frames per forward pass.

    Returns:
        float32 `[N, D]`.
    """
    extractor = keras.Model(model.inputs[0], _pooled_backbone(model))
    inputs = _model_inputs(model, frames)
    return np.concatenate([keras.ops.convert_to_numpy(
        extractor(inputs[start:start + batch_size], training=False))
        for start in range(0, len(inputs), batch_size)])


def fit_probe(features, labels, num_classes: int, *, steps: int = PROBE_STEPS,
              l2: float = PROBE_L2) -> tuple[np.ndarray, np.ndarray, dict]:
    """A softmax regression of labels on features: a briefly trained linear probe.

    The features are standardised (each dimension to mean 0, standard deviation 1; a
    constant one is only centred), then the weights W and bias b, from zero, take `steps`
    full-batch gradient-descent steps on the mean cross-entropy plus `l2 / 2 * |W|^2`,
    each of size 1 / L with L = |[Z, 1]|_2^2 / (2 N) + l2 a Lipschitz constant of the
    gradient (softmax's Jacobian is at most 1/2), so every step lowers the loss. Nothing
    is random: the fit is a function of its inputs. The standardisation is folded into
    the returned kernel and bias, which act on the raw features.

    Args:
        features: `[N, D]` (`probe_features`).
        labels: int `[N]` in 0..num_classes-1.
        num_classes: the probe's classes K (absent ones get low scores).
        steps: gradient-descent steps.
        l2: the weight penalty.

    Returns:
        `(kernel, bias, summary)`: float32 `[D, K]` and `[K]`, the logits being
        `features @ kernel + bias`; `{"steps", "l2", "accuracy", "loss"}` with the
        accuracy on the fitted frames and the final cross-entropy (without the penalty).

    Raises:
        ValueError: labels that do not match the features or lie outside 0..K-1.
    """
    x = np.asarray(features, np.float64)
    labels = np.asarray(labels)
    if x.ndim != 2 or labels.shape != (len(x),):
        raise ValueError(f"fit_probe needs [N, D] features and N labels, got features of "
                         f"shape {list(x.shape)} and labels of shape {list(labels.shape)}")
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(f"labels {sorted(set(labels.tolist()))} outside 0..{num_classes - 1}")
    mean, std = x.mean(axis=0), x.std(axis=0)
    std[std == 0] = 1.0
    z = (x - mean) / std
    targets = np.eye(num_classes)[labels]
    step = 1.0 / (np.linalg.norm(np.hstack([z, np.ones((len(z), 1))]), 2) ** 2 / (2 * len(z))
                  + l2)
    weights, bias = np.zeros((z.shape[1], num_classes)), np.zeros(num_classes)
    for _ in range(steps):
        error = (scipy.special.softmax(z @ weights + bias, axis=1) - targets) / len(z)
        weights -= step * (z.T @ error + l2 * weights)
        bias -= step * error.sum(axis=0)
    probabilities = scipy.special.softmax(z @ weights + bias, axis=1)
    summary = {
        "steps": steps, "l2": l2,
        "accuracy": float(np.mean(probabilities.argmax(axis=1) == labels)),
        "loss": float(-np.mean(np.log(probabilities[np.arange(len(z)), labels] + 1e-12))),
    }
    kernel = weights / std[:, None]
    return (kernel.astype(np.float32), (bias - mean @ kernel).astype(np.float32), summary)


def probe_model(model: keras.Model, kernel, bias) -> keras.Model:
    """The model's input and backbone with a linear probe as the head.

    `frames -> (the model's layers up to its backbone) -> _pooled_backbone -> Dense
    (softmax, kernel and bias given)`, built on the model's own graph: the backbone layers
    are shared (Grad-CAM names them as in the model), nothing is copied or retrained.

    Args:
        model: a frame or clip model with a `backbone` layer.
        kernel, bias: `[D, K]` and `[K]` (`fit_probe`).

    Returns:
        A model of the same input as `model`, probabilities `[batch, K]`.
    """
    kernel, bias = np.asarray(kernel, np.float32), np.asarray(bias, np.float32)
    dense = keras.layers.Dense(kernel.shape[1], activation="softmax", name="probe")
    probe = keras.Model(model.inputs[0], dense(_pooled_backbone(model)),
                        name=f"{model.name}_probe")
    dense.set_weights([kernel, bias])
    return probe


def _pooled_backbone(model: keras.Model):
    """The tensor of the `backbone` layer's output in the model's graph, averaged over
    every axis between the batch and the channels: `[b, D]` as it is, `[b, T, D]` over
    time (one-frame clips here), `[b, h, w, D]` over space."""
    if BACKBONE_LAYER not in [layer.name for layer in model.layers]:
        raise ValueError(f"model {model.name!r} has no {BACKBONE_LAYER!r} layer whose "
                         f"features a probe could classify; use the Grad-CAM target "
                         f"{PREDICTED!r} (--target {PREDICTED}, --set "
                         f"model.gradcam_target={PREDICTED})")
    _, features = call_tensors(model.get_layer(BACKBONE_LAYER))
    pooling = {2: None, 3: keras.layers.GlobalAveragePooling1D,
               4: keras.layers.GlobalAveragePooling2D}
    if len(features.shape) not in pooling:
        raise ValueError(f"the {BACKBONE_LAYER!r} layer of model {model.name!r} outputs "
                         f"shape {tuple(features.shape)}; a probe takes [b, D], [b, T, D] "
                         f"or [b, h, w, D] features")
    pool = pooling[len(features.shape)]
    return features if pool is None else pool(name="probe_pool")(features)


def _model_inputs(model: keras.Model, frames) -> np.ndarray:
    """float32 frames `[N, S, S, 3]` as the model takes them: as they are for a frame
    model, as one-frame clips `[N, 1, S, S, 3]` for a clip model."""
    inputs = np.asarray(frames, np.float32)
    return inputs[:, None] if len(model.inputs[0].shape) == 5 else inputs


def backbone_of(model: keras.Model) -> keras.Model:
    """The frame backbone: the model wrapped by the layer `backbone`, or the model itself."""
    names = [layer.name for layer in model.layers]
    if BACKBONE_LAYER not in names:
        return model
    layer = model.get_layer(BACKBONE_LAYER)
    return getattr(layer, "layer", layer)


def split(model: keras.Model, selected: str) -> tuple[list[str], list[str]]:
    """The backbone layers `tfmer.models.clip.freeze_before(backbone, selected)` would freeze
    and those it would leave trainable; nothing is frozen here.

    Returns:
        `(frozen, trainable)`: layer names in the backbone's order, before and from the
        layer training starts at (`trainable_from`: `selected`, or the first layer of the
        residual block whose output it is).

    Raises:
        ValueError: `selected` is not a backbone layer (the message lists the valid ones).
    """
    backbone = backbone_of(model)
    names = [layer.name for layer in backbone.layers]
    cut = names.index(trainable_from(backbone, selected))
    return names[:cut], names[cut:]


def candidate_layers(model: keras.Model, layers, configured=()) -> list[str]:
    """The layers to score, in the backbone's order.

    Args:
        layers: names, `"all"` for every `conv_layer_names` layer, or None for `configured`
            (the config's `model.gradcam_layers`), else every conv layer.

    Raises:
        ValueError: a name that is not a backbone layer (listing the conv layers).
    """
    convs = conv_layer_names(model)
    if layers == "all" or (layers is None and not configured):
        names = convs
    else:
        names = list(dict.fromkeys(configured if layers is None else layers))
    backbone = backbone_of(model)
    order = {layer.name: i for i, layer in enumerate(backbone.layers)}
    unknown = [name for name in names if name not in order]
    if unknown:
        raise ValueError(f"unknown layer(s) {', '.join(unknown)} in {backbone.name}; "
                         f"conv layers: {', '.join(convs)}")
    return sorted(names, key=order.get)
