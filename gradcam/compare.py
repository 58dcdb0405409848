"""Grad-CAM of a run's final model before and after training (Bai & Goecke 2020, Figure 4).

Section 5 of the paper compares the Grad-CAM heatmaps of the same frames before and after
training: afterwards the heat gathers on the eyes, eyebrows, nose wings and mouth corners.
`train.py` keeps the final model's trained weights (the model trained on all subjects) in the
run folder (`tfmer.run_folder.FINAL_WEIGHTS`) and draws its initial ones again from the seed
(or reads `INITIAL_WEIGHTS`, kept with `--keep-initial`); `compare` rebuilds that model from
the run's `config.json`, sets each state in turn and
takes Grad-CAM of the same sample frames at one layer, scoring each heatmap by its share of
heat on the facial features (`gradcam.regions`).

The frames (one per clip, the apex when known; `gradcam.scoring.sample_frames`) come from all
the run's subjects: the final model trained on every one of them, so these are training
frames, not held-out ones. Each heatmap explains the class the frame's clip is labelled with,
so before and after explain the same class. A clip model sees each frame as a one-frame clip,
as in the layer selection.

`python -m gradcam compare RUN_DIR` runs `compare`.
"""

from __future__ import annotations

import pathlib

import keras
import numpy as np

from gradcam import regions, report, scoring
from gradcam.core import conv_layer_names
from tfmer import data, experiments, export
from tfmer.config import GRADCAM
from tfmer.files import write_json_atomic
from tfmer.run_folder import CONFIG, FINAL_WEIGHTS, INITIAL_WEIGHTS, RunFolder

OUT_DIR = "gradcam_before_after"
"""The default output folder, inside the run folder."""
FIGURE = "before_after.png"
RESULT = "before_after.json"
CLASS_TARGET = "label"
"""What the heatmaps explain: the class each frame's clip is labelled with."""
SELECTED = "the final model's Grad-CAM selection"
LAST_BLOCK = "the backbone's last block output"
CHOSEN = "chosen with --layer"


def load_run(run_dir) -> RunFolder:
    """A run folder written by `tfmer.training.cross_validate` (`train.py`) that kept its
    final model's trained weights.

    Raises:
        FileNotFoundError: not a run folder (no `config.json`), or a run without the final
            model's weights (trained with `--no-export`).
        ValueError: a `config.json` that is not a run's.
    """
    run = RunFolder(run_dir)
    run.saved_config()
    if not run.file(FINAL_WEIGHTS).is_file():
        raise FileNotFoundError(
            f"{run.path} has no {FINAL_WEIGHTS}: the run was trained with --no-export (or by "
            f"a tfmer that kept no weights), so its final model's weights after training are "
            f"unknown; train again without --no-export")
    return run


def drawn_initial_weights(run: RunFolder, num_classes: int) -> list:
    """The weights the run's final model started from, drawn again as its trainer drew
    them (`reset(0)`: the same seed gives the same weights, pretrained ones included)."""
    trainer = experiments.trainer(run.config(), num_classes, None)
    trainer.reset(0)
    return trainer.model.get_weights()


def recorded_selection(run: RunFolder) -> str | None:
    """The layer the final model's Grad-CAM selection chose, from the SavedModel export the
    run records in `export.json` (`assets/tfmer.json`, `gradcam_selection`); None when the
    run exported none or made no selection.

    Raises:
        FileNotFoundError: `export.json` names an export that no longer exists.
    """
    saved_model = run.saved_model()
    if saved_model is None:
        return None
    selection = export.load_metadata(saved_model).get("gradcam_selection")
    return selection["selected"] if selection else None


def choose_layer(run: RunFolder, model: keras.Model, layer: str | None = None) -> tuple[str, str]:
    """The layer to compare at, and where the choice came from.

    `layer` if given; else, for a run that selects layers by Grad-CAM
    (`model.unfreeze_from: gradcam`), the final model's choice (`recorded_selection`); else
    the last of the config's `model.gradcam_layers`, or of `conv_layer_names(model)`
    (`conv5_3_out` for the VGGFace2 ResNet-50).

    Returns:
        `(name, source)`, source one of `CHOSEN`, `SELECTED`, `LAST_BLOCK`.

    Raises:
        ValueError: `layer` is not a backbone layer (listing the conv layers); a Grad-CAM
            run whose recorded selection cannot be read.
    """
    if layer is not None:
        return scoring.candidate_layers(model, [layer])[0], CHOSEN
    config = run.config()
    if config.model.unfreeze_from == GRADCAM:
        try:
            selected = recorded_selection(run)
        except (OSError, KeyError) as error:
            raise ValueError(f"cannot read the final model's Grad-CAM selection of {run.path} "
                             f"({error}); pass --layer") from error
        if selected is None:
            raise ValueError(f"{run.path} records no Grad-CAM selection of its final model "
                             "(export.json and the SavedModel's assets/tfmer.json); pass --layer")
        return selected, SELECTED
    return (list(config.model.gradcam_layers) or conv_layer_names(model))[-1], LAST_BLOCK


def class_heatmaps(model: keras.Model, frames, layer: str, class_indices) -> np.ndarray:
    """Grad-CAM of each frame for its own class: float32 `[N, h, w]` in 0..1.

    Args:
        model: frame or clip model (a clip model sees one-frame clips).
        frames: `[N, S, S, 3]` RGB in 0..255.
        layer: the layer to explain.
        class_indices: int `[N]`, the class to explain per frame.
    """
    return scoring.layer_heatmaps(model, frames, [layer], class_index=class_indices)[layer]


def before_after_heatmaps(run: RunFolder, model: keras.Model, frames, layer: str,
                          class_indices) -> tuple[np.ndarray, np.ndarray]:
    """`class_heatmaps` with the run's final model before and after training.

    Args:
        model: the run's model (`experiments.build(run.config(), classes)`); its weights are
            replaced, ending with the trained ones.

    Returns:
        `(before, after)`, each float32 `[N, h, w]`.

    Raises:
        ValueError: a weight file that does not fit the model rebuilt from `config.json`.
    """
    if run.file(INITIAL_WEIGHTS).is_file():  # kept with --keep-initial
        _load(model, run, INITIAL_WEIGHTS)
    else:
        model.set_weights(drawn_initial_weights(run, model.output.shape[-1]))
    before = class_heatmaps(model, frames, layer, class_indices)
    _load(model, run, FINAL_WEIGHTS)
    return before, class_heatmaps(model, frames, layer, class_indices)


def _load(model: keras.Model, run: RunFolder, name: str) -> None:
    path = run.file(name)
    try:
        model.load_weights(path)
    except ValueError as error:
        first = (str(error).strip() or repr(error)).splitlines()[0]
        raise ValueError(f"{path} does not fit the model rebuilt from "
                         f"{run.file(CONFIG)}: {first}") from error


def compare(run_dir, out_dir=None, *, layer: str | None = None, count: int = 8,
            canonical_landmarks: bool = False, seed: int = 0, log=print) -> dict:
    """Grad-CAM of the same frames with a run's final model before and after training.

    Writes `out_dir/before_after.png` (`gradcam.report.plot_before_after`), then
    `out_dir/before_after.json` (the returned dict), each via a temporary name.

    Args:
        run_dir: a finished `train.py` run that kept its final model's weights.
        out_dir: output folder; default `run_dir/gradcam_before_after`.
        layer: the layer to explain; default as `choose_layer`.
        count: sample frames, one per clip, from all subjects.
        canonical_landmarks: `gradcam.regions.CANONICAL_LANDMARKS` (aligned face crops
            only) instead of the clips' landmarks; also taken when the run's config has
            `model.gradcam_canonical_landmarks`.
        seed: the frame sample's seed.
        log: progress lines go here.

    Returns:
        `{"layer", "layer_source", "frames": [{"clip_id", "label", "before", "after"}],
        "mean_before", "mean_after", "area", "zero_maps", ...}`: per frame the share of its
        heat on the facial features before and after training, their means over the frames,
        the mean region area (the share of a uniform heatmap), and how many heatmaps are
        all zero (no positive evidence for the class at the layer; they count as share 0,
        as in the layer selection).

    Raises:
        FileNotFoundError: not a run folder, no weight files, the run's dataset is gone.
        ValueError: count < 1, an unknown layer, clips without landmarks, a dataset whose
            classes differ from the run's, a run of a model that does not read frames.
    """
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    run = load_run(run_dir)
    config, data_dir = run.config(), run.dataset_dir()
    if config.data.input != "frames":
        raise ValueError(f"run {run.path} is of {config.name}, which reads "
                         f"{config.data.input}, not frames: Grad-CAM compares frame models")
    out = pathlib.Path(out_dir) if out_dir is not None else run.file(OUT_DIR)
    if not (data_dir / "dataset.json").is_file():
        raise FileNotFoundError(f"run {run.path} trained on {data_dir} (config.json's "
                                "dataset.path), which holds no dataset.json any more")
    info = data.load_info(data_dir)
    classes = tuple(config.data.classes or info.classes)
    if classes != info.classes:
        raise ValueError(f"run {run.path} trained on classes {list(classes)} but its dataset "
                         f"{data_dir} now has {list(info.classes)}")
    model = experiments.build(config, len(classes))
    layer, source = choose_layer(run, model, layer)
    size = config.data.image_size
    # A run that selected its layers on the canonical layout compares on it too.
    canonical_landmarks = canonical_landmarks or config.model.gradcam_canonical_landmarks
    frames, landmarks, clip_ids, class_indices, _ = scoring.sample_frames(
        info, None, image_size=size, count=count, seed=seed,
        canonical_landmarks=canonical_landmarks)  # labels index `classes` (checked above)
    log(f"{len(frames)} frames of all {len(info.subjects)} subjects of {info.name}; Grad-CAM "
        f"of {config.name}'s final model at {layer} ({source}) before and after training")
    before, after = before_after_heatmaps(run, model, frames, layer, class_indices)
    masks = scoring.region_masks(landmarks, size)
    entries = [{"clip_id": clip_id, "label": classes[index],
                "before": regions.heat_in_regions(b, mask),
                "after": regions.heat_in_regions(a, mask)}
               for clip_id, index, b, a, mask in zip(clip_ids, class_indices, before, after, masks)]
    content = {
        "layer": layer, "layer_source": source, "frames": entries,
        "mean_before": float(np.mean([e["before"] for e in entries])),
        "mean_after": float(np.mean([e["after"] for e in entries])),
        "area": float(np.mean(masks)),
        "zero_maps": {"before": _zero_maps(before), "after": _zero_maps(after)},
        "experiment": config.name, "scale": config.scale, "run": str(run.path.resolve()),
        "data": str(data_dir), "num_subjects": len(info.subjects), "image_size": size,
        "class_target": CLASS_TARGET, "regions": regions.REGION_NAMES,
        "landmarks": "canonical" if canonical_landmarks else "clips", "seed": seed,
        "weights": {"before": INITIAL_WEIGHTS if run.file(INITIAL_WEIGHTS).is_file()
                    else "drawn again from seed 0", "after": FINAL_WEIGHTS},
    }
    report.plot_before_after(frames, masks, before, after, content, out / FIGURE)
    write_json_atomic(out / RESULT, content)
    return content


def summary(content: dict) -> str:
    """A few lines for the terminal: the layer and the mean heat share before -> after."""
    lines = [f"{content['experiment']}'s final model at {content['layer']} "
             f"({content['layer_source']}), {len(content['frames'])} frames:",
             f"  share of heat on {content['regions']}: before {content['mean_before']:.3f} "
             f"-> after {content['mean_after']:.3f} (uniform heat {content['area']:.3f})"]
    zeros = content["zero_maps"]
    if zeros["before"] or zeros["after"]:
        lines.append(f"  all-zero heatmaps (counted as 0): {zeros['before']} before, "
                     f"{zeros['after']} after")
    return "\n".join(lines)


def _zero_maps(heatmaps) -> int:
    """How many `[h, w]` maps of `[N, h, w]` are all zero."""
    return int(np.sum(~np.any(np.asarray(heatmaps) > 0, axis=(1, 2))))
