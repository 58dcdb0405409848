"""Grad-CAM layer scoring (Bai & Goecke 2020, Section 4.3): the layer l_s whose heat lies
closest to the facial features is chosen; the backbone's layers before l_s are frozen and
l_s onward retrained.

Stages, each a function of its own: `sample_frames` (one apex frame per sampled clip, with
its landmarks) -> `layer_heatmaps` (one batched Grad-CAM pass for all candidate layers) ->
`score_heatmaps` (share of heat on `gradcam.regions`) -> `select_layer` -> `split`.
`score_layers` runs the middle two. The trainer runs the stages per training fold
(`tfmer.training.ModelTrainer.select_layer`); `gradcam.select.select` runs them for an
experiment and writes the report (`python -m gradcam select`). Nothing here knows the
experiment registry: it takes a model and a dataset.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

from gradcam import regions
from gradcam.core import conv_layer_names, grad_cams
from tfmer import data
from tfmer.landmarks import NUM_LANDMARKS
from tfmer.models.clip import BACKBONE_LAYER, trainable_from
from tfmer.records import UNKNOWN


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


def sample_frames(info: data.DatasetInfo, subjects=None, *, image_size: int, count: int = 16,
                  seed: int = 0, canonical_landmarks: bool = False):
    """One frame each of a deterministic sample of clips, with its facial landmarks.

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
        `(frames, landmarks, clip_ids)`: uint8 `[N, S, S, 3]` RGB, each clip's apex frame
        (`stored_index`); float32 `[N, 68, 2]` (x, y) in S x S pixel coordinates, the
        clip's stored landmarks (those of its first stored frame, which head motion within
        a micro-expression barely moves) scaled from the stored size; N clip ids.

    Raises:
        ValueError: no clips of `subjects`, or a sampled clip without landmarks (naming it).
    """
    clips = info.clips if subjects is None else info.clips_of(subjects)
    if not clips:
        raise ValueError(f"{info.path} holds no clips of subjects {sorted(subjects)}")
    sample = sample_clips(clips, info.classes, count, seed)
    chosen = [c["id"] for c in sample]
    found = {}
    for clip in data.read_clips(info, {c["subject"] for c in sample}):
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
    return np.stack(frames), np.stack(landmarks), chosen


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
        class_index: the class to explain; None: each frame's predicted class.

    Returns:
        `{layer: float [N, h, w]}`, each map ReLU'd and divided by its maximum.
    """
    inputs = np.asarray(frames, np.float32)
    clip_model = len(model.inputs[0].shape) == 5
    if clip_model:
        inputs = inputs[:, None]  # [N, 1, S, S, 3]
    maps = grad_cams(model, inputs, list(layer_names), class_index=class_index,
                     batch_size=batch_size)
    return {name: np.asarray(maps[name])[:, 0] if clip_model else np.asarray(maps[name])
            for name in layer_names}


def score_heatmaps(heatmaps: dict, masks) -> list[dict]:
    """Scores each layer's heatmaps by their share of heat on the facial features.

    Args:
        heatmaps: `{layer: [N, h, w]}` (see `layer_heatmaps`), in network order.
        masks: bool `[N, S, S]` region masks (see `gradcam.regions.region_mask`).

    Returns:
        `[{"name", "score", "area"}]` in the order of `heatmaps`: `score` the mean over
        frames of `heat_in_regions`, `area` the mean mask area fraction (what a uniform
        heatmap would score).
    """
    area = float(np.mean([np.mean(mask) for mask in masks]))
    return [{"name": name,
             "score": float(np.mean([regions.heat_in_regions(h, m) for h, m in zip(maps, masks)])),
             "area": area}
            for name, maps in heatmaps.items()]


def score_layers(model: keras.Model, frames, landmarks, layer_names,
                 class_index=None) -> list[dict]:
    """Grad-CAM layer scores (`layer_heatmaps` then `score_heatmaps`).

    Args:
        model: frame or clip model (see `layer_heatmaps`).
        frames: uint8 `[N, S, S, 3]` RGB.
        landmarks: `[N, 68, 2]` (x, y) landmarks of the frames at S x S.
        layer_names: candidate layers.
        class_index: class to explain; None: each frame's predicted class.

    Returns:
        `[{"name", "score", "area"}]` in the order of `layer_names`, scores in 0..1.
    """
    masks = region_masks(landmarks, np.shape(frames)[1])
    return score_heatmaps(layer_heatmaps(model, frames, layer_names, class_index), masks)


def region_masks(landmarks, size: int) -> np.ndarray:
    """bool `[N, S, S]` region masks of `[N, 68, 2]` landmarks."""
    return np.stack([regions.region_mask(points, size) for points in landmarks])


def select_layer(scores: list[dict]) -> str:
    """The best-scoring layer's name (the first of equal scores).

    Raises:
        ValueError: no scores.
    """
    if not scores:
        raise ValueError("no layer scores to select from")
    return max(scores, key=lambda s: s["score"])["name"]


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
