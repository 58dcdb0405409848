"""Grad-CAM layer selection for an experiment (`python -m gradcam select`): the experiment's
model on sample frames of a dataset, every candidate layer scored (`gradcam.scoring`), l_s
picked, and the report written (`gradcam.report`).
"""

from __future__ import annotations

import pathlib
import time

import keras

from gradcam import regions, report
from gradcam.scoring import (
    candidate_layers,
    heatmap_target,
    layer_heatmaps,
    region_masks,
    sample_frames,
    score_heatmaps,
    select_layer,
    split,
)
from tfmer import data, experiments, protocols


def select(experiment: str, data_dir, out_dir, *, scale: str = "builtin", fold: int | None = None,
           count: int = 16, layers=None, canonical_landmarks: bool = False, seed: int = 0,
           target: str | None = None, overrides=(), log=print) -> dict:
    """Scores the candidate layers of an experiment's model, picks l_s, writes the report.

    The model is the experiment's, built at `scale` with the dataset's class count and
    initialised with `seed` (with `--set model.weights=PATH`, the pretrained backbone). The
    heatmaps explain what `model.gradcam_target` says (`gradcam.scoring.heatmap_target`):
    by default each frame's labelled class through a linear probe fitted on the sampled
    frames' backbone features (the model's own head is untrained); layers are ranked by
    their heat share corrected for resolution (`normalised`, see `gradcam.scoring`).

    Args:
        experiment: registered experiment name.
        data_dir: converted dataset folder.
        out_dir: report folder (see `gradcam.report.write_report`).
        scale: `paper`, `builtin` or `quick` (see `tfmer.experiments.get`).
        fold: sample frames of the training subjects of this fold of the experiment's
            protocol only (the folds `train.py` makes), as training chooses l_s per fold;
            None: of all subjects, which a cross-validation also tests on (said in the log).
        count: frames (one per clip) to score on.
        layers: candidate layers (see `candidate_layers`); None: the config's
            `model.gradcam_layers`, else every conv layer.
        canonical_landmarks: use `gradcam.regions.CANONICAL_LANDMARKS` (aligned face crops
            only) instead of the clips' landmarks.
        seed: seed of the model's initial weights and of the frame sample.
        target: `probe` or `predicted`, what the heatmaps explain (as `--set
            model.gradcam_target=...`); None: the config's `model.gradcam_target`.
        overrides: `--set` style config overrides, e.g. `("model.weights=PATH",)`.
        log: progress lines go here.

    Returns:
        The report dict written to `out_dir/report.json`; `class_target` the target used
        (`predicted` also where a probe was asked for but the frames are of one class),
        `probe` the probe's fit (or None).

    Raises:
        ValueError: unknown experiment, layer or target, count < 1, clips without
            landmarks, an experiment that does not read frames (a motion model), a fold the
            protocol does not have.
        FileNotFoundError: `data_dir` is not a converted dataset.
    """
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    if target is not None:
        overrides = (*overrides, f"model.gradcam_target={target}")
    config = experiments.get(experiment, scale, overrides)
    if config.data.input != "frames":
        raise ValueError(f"experiment {experiment} reads {config.data.input}, not frames: "
                         "Grad-CAM layer selection scores the backbones of frame models")
    info = data.load_info(data_dir)
    subjects = _subjects(config, info, fold, log)
    size = config.data.image_size
    started = time.time()
    sample = sample_frames(info, subjects, image_size=size, count=count, seed=seed,
                           canonical_landmarks=canonical_landmarks)
    frames = sample.frames
    log(f"sampled {len(frames)} apex frames ({size} px) from {info.name} "
        f"({time.time() - started:.1f} s)")
    started = time.time()
    if config.model.weights is None:
        log("warning: no pretrained weights (--set model.weights=PATH): the backbone is "
            "randomly initialised, so the layer ranking reflects chance feature patterns, "
            "not what a face network attends to")
    keras.utils.set_random_seed(seed)
    model = experiments.build(config, len(info.classes))
    names = candidate_layers(model, layers, config.model.gradcam_layers)
    log(f"built {config.name} ({config.scale} scale, {len(info.classes)} classes); "
        f"Grad-CAM of {len(names)} layers ({time.time() - started:.1f} s)")
    started = time.time()
    explained = heatmap_target(model, sample, config.model.gradcam_target, log)
    heatmaps = layer_heatmaps(explained.model, frames, names, explained.class_index)
    masks = region_masks(sample.landmarks, size)
    scores = score_heatmaps(heatmaps, masks)
    selected = select_layer(scores)
    frozen, trainable = split(model, selected)
    log(f"heatmaps ({explained.name} target) and scores of {len(names)} layers x "
        f"{len(frames)} frames ({time.time() - started:.1f} s)")
    content = {
        "layers": scores, "selected": selected, "frozen": frozen, "trainable": trainable,
        "experiment": config.name, "scale": config.scale,
        "data": str(pathlib.Path(data_dir).resolve()), "image_size": size, "seed": seed,
        "weights": config.model.weights,
        "frames": sample.clip_ids, "class_target": explained.name, "probe": explained.probe,
        "regions": regions.REGION_NAMES,
        "landmarks": "canonical" if canonical_landmarks else "clips",
        "fold": fold, "subjects": sorted(subjects),
    }
    started = time.time()
    report.write_report(out_dir, content, frames, masks, heatmaps)
    log(f"wrote the report to {out_dir} ({time.time() - started:.1f} s)")
    return content


def _subjects(config, info: data.DatasetInfo, fold: int | None, log) -> list[str]:
    """The subjects whose frames are scored: the training subjects of `fold`, or all."""
    if fold is None:
        log(f"frames of all {len(info.subjects)} subjects of {info.name}: a layer chosen on "
            f"them (and a probe fitted on their labels) has seen every subject a "
            f"cross-validation tests on; training chooses l_s "
            f"in each fold on its training subjects alone (--fold K: fold K's)")
        return list(info.subjects)
    folds = protocols.make_folds(info.subjects, config.protocol.protocol, config.num_folds,
                                 config.protocol.fold_seed)
    if not 0 <= fold < len(folds):
        raise ValueError(f"fold {fold} is not a fold of {config.protocol.protocol} on "
                         f"{info.name} (folds 0..{len(folds) - 1})")
    log(f"frames of the {len(folds[fold]['train_subjects'])} training subjects of fold {fold} "
        f"({config.protocol.protocol}; its test subjects "
        f"{', '.join(folds[fold]['test_subjects'])} left out)")
    return folds[fold]["train_subjects"]
