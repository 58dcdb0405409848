"""Export: `saved_models/<experiment>/<version>/` with `assets/tfmer.json` (class names,
preprocessing, the conversion settings, the resolved config), and the model itself:

* a network: a SavedModel with a `serving_default` signature `frames [batch, T, H, W, C]`
  float32 0..255 (a motion model: `flow [batch, S, S, 3]`, u, v, strain; STRCN-A:
  `appearance [batch, P, columns, 1]`) -> `probabilities [batch, K]`;
* an SVM baseline: its fitted scikit-learn pipeline `model.skops` (`tfmer.svm.save`),
  which reads the features `tfmer.clip_features` computes from the converted clip with the
  settings of `preprocessing.handcrafted` and the candidate `preprocessing.chosen`.

A frames model trained on TIM clips also gets `lite/model.tflite` (`tfmer.lite`: the same
endpoint at the clip's fixed length and stored size, which `python -m tfmer.predict` runs
without TensorFlow).

This module owns the format: `load_metadata` (`tfmer.assets`, TensorFlow-free),
`load_svm`, `evaluate_export` and `score_records` (clips converted in memory,
`python -m tfmer.predict`) read it."""

from __future__ import annotations

import dataclasses
import pathlib
import tempfile
import warnings

import keras
import numpy as np
import tensorflow as tf

from tfmer import clip_features, data, results, svm
from tfmer.assets import METADATA, load_metadata
from tfmer.config import ExperimentConfig
from tfmer.files import atomic, write_json_atomic
from tfmer.lite import LITE
from tfmer.models.clip import clip_probabilities
from tfmer.records import MOTION_CHANNELS
from tfmer.run_folder import METRICS, RunFolder

SVM_MODEL = "model.skops"
"""An SVM baseline's pipeline in its export folder."""
LEARNED = "learned.npz"
"""A learning SVM baseline's learned part of its features (STCLQP's codebooks), beside."""


def next_version(root) -> int:
    """1 + the highest integer version folder under `root` (1 for a new experiment)."""
    root = pathlib.Path(root)
    versions = [int(p.name) for p in root.glob("*") if p.is_dir() and p.name.isdigit()]
    return max(versions, default=0) + 1


def export_saved_model(model: keras.Model, config, classes, export_root="saved_models",
                       extra=None) -> pathlib.Path:
    """Exports a trained clip model for serving.

    The endpoint scores whole clips the way cross-validation did: the mean softmax over
    sliding windows of `config.data.window` frames every `config.data.eval_stride` frames.

    Args:
        model: the trained Keras model.
        config: its resolved `ExperimentConfig`.
        classes: the class names, in output order.
        export_root: root folder; the model goes to `<root>/<experiment>/<version>/`.
        extra: more metadata for `assets/tfmer.json` (e.g. the run folder, the dataset);
            an appearance model's `appearance` entry (its mask, `Trainer.export_metadata`)
            goes into `preprocessing`.

    Returns:
        The version folder. It is written under a temporary name and renamed when complete.
    """
    root = pathlib.Path(export_root) / config.name
    root.mkdir(parents=True, exist_ok=True)
    version = next_version(root)
    final = root / str(version)
    size, window, stride = config.data.image_size, config.data.window, config.data.eval_stride

    archive = keras.export.ExportArchive()
    archive.track(model)
    extra = dict(extra or {})
    conversion = extra.get("conversion") or {}
    preprocessing = {"input": config.data.input, "image_size": size, "tim": extra.get("tim")}
    if config.data.input == "flow":
        archive.add_endpoint(
            name="serving_default",
            fn=lambda flow: {"probabilities": model(flow, training=False)},
            input_signature=[tf.TensorSpec([None, size, size, 3], tf.float32, name="flow")])
        tensor = {"name": "flow", "shape": ["batch", size, size, 3], "dtype": "float32",
                  "channels": list(MOTION_CHANNELS)}
        preprocessing["flow"] = {
            "method": conversion.get("flow"), "apex": conversion.get("apex"),
            "from": "onset frame", "to": "apex frame",
            "resize": "bilinear, antialiased; u times S / stored width, v times S / stored "
                      "height (pixels at S); strain unchanged (tfmer.data.flow_input)"}
    elif config.data.input == "appearance":
        columns = config.data.columns
        archive.add_endpoint(
            name="serving_default",
            fn=lambda matrix: {"probabilities": model(matrix, training=False)},
            input_signature=[tf.TensorSpec([None, None, columns, 1], tf.float32,
                                           name="appearance")])
        tensor = {"name": "appearance", "shape": ["batch", "P", columns, 1],
                  "dtype": "float32", "range": [0, 255],
                  "rows": "the masked pixels of `preprocessing.appearance.mask`, down each "
                          "column of the grey frame (tfmer.appearance.appearance_matrix)"}
        if "appearance" not in extra:
            raise ValueError(f"{config.name} reads appearance matrices: export it with its mask "
                             f"(extra['appearance'], `Trainer.export_metadata`)")
        preprocessing["appearance"] = extra.pop("appearance")  # recorded there only
    else:
        archive.add_endpoint(
            name="serving_default",
            fn=lambda frames: {"probabilities": clip_probabilities(model, frames, window,
                                                                   stride)},
            input_signature=[tf.TensorSpec([None, None, size, size, 3], tf.float32,
                                           name="frames")])
        tensor = {"name": "frames", "shape": ["batch", "T", size, size, 3],
                  "dtype": "float32", "range": [0, 255], "color": "RGB"}
        preprocessing.update(window=window, eval_stride=stride)
    lite = None
    if config.data.input == "frames" and extra.get("tim") and conversion.get("size"):
        lite = lite_model(model, window, stride, extra["tim"], conversion["size"], size)
    if lite is not None:
        extra["lite"] = {"file": LITE, "input": {
            "name": "frames", "shape": [1, extra["tim"], conversion["size"],
                                        conversion["size"], 3],
            "dtype": "float32", "range": [0, 255], "color": "RGB",
            "frames": "the converted clip's frames as stored, decoded; the model resizes "
                      "them to preprocessing.image_size"}}
    with atomic(final) as temporary:
        archive.write_out(str(temporary), verbose=False)
        if lite is not None:
            (temporary / LITE).parent.mkdir()
            (temporary / LITE).write_bytes(lite)
        write_json_atomic(temporary / METADATA, _metadata(config, classes, version, tensor,
                                                          preprocessing, extra))
    return final


def area_matrix(stored: int, size: int) -> np.ndarray:
    """float32 `[size, stored]`: the area resize of `tfmer.data.resize_frames` along one
    axis as a matrix (it is linear and separable: `R @ frame @ R.T` per channel), read off
    the resize of the unit vectors."""
    if stored == size:
        return np.eye(size, dtype=np.float32)
    units = tf.eye(stored)[:, :, None, None]  # [stored images, stored rows, 1, 1]
    return tf.transpose(tf.image.resize(units, [size, 1], method="area")[:, :, 0, 0]).numpy()


def lite_model(model: keras.Model, window: int | None, stride: int, num_frames: int,
               stored: int, size: int) -> bytes | None:
    """The TFLite flatbuffer of the frames endpoint at one clip `[1, num_frames, stored,
    stored, 3]` of stored frames, resized to `size` inside (`area_matrix`); TFLite's
    built-in operators only, so LiteRT runs it. None, with a warning naming the reason,
    when the converter cannot convert the model (the SavedModel still serves it)."""
    resize = tf.constant(area_matrix(stored, size))

    @tf.function(input_signature=[tf.TensorSpec([1, num_frames, stored, stored, 3],
                                                tf.float32, name="frames")])
    def endpoint(frames):
        frames = tf.einsum("ah,bthwc,gw->btagc", resize, frames, resize)
        return {"probabilities": clip_probabilities(model, frames, window, stride)}

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [endpoint.get_concrete_function()], endpoint)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    try:
        return converter.convert()
    except Exception as error:  # the converter's errors have no common type
        reason = (str(error).strip().splitlines() or [type(error).__name__])[-1][:300]
        warnings.warn(f"no TFLite model in the export (python -m tfmer.predict loads "
                      f"TensorFlow for it): the converter failed: {reason}", stacklevel=2)
        return None


def _metadata(config, classes, version: int, tensor: dict, preprocessing: dict,
              extra: dict) -> dict:
    """The content of `assets/tfmer.json`."""
    return {
        "experiment": config.name,
        "version": version,
        "classes": list(classes),
        "input": tensor,
        "output": {"name": "probabilities", "shape": ["batch", len(classes)]},
        "preprocessing": preprocessing,
        "config": config.to_dict(),
        **extra,
    }


def export_svm(estimator, config, classes, export_root="saved_models", extra=None,
               learned: dict | None = None) -> pathlib.Path:
    """Exports an SVM baseline's final pipeline with its feature settings.

    Args:
        estimator: the fitted pipeline (`tfmer.svm.fit`).
        config: its resolved `ExperimentConfig` (`handcrafted` names the features).
        classes: the class names, in output order.
        export_root: root folder; the model goes to `<root>/<experiment>/<version>/`.
        extra: more metadata; its `chosen` entry (the candidate setting the pipeline was
            fit with, `tfmer.svm.search`) goes into `preprocessing`.
        learned: what the features learnt from the training clips (STCLQP's codebooks, a
            dict of arrays), saved as `learned.npz`; None for the other methods.

    Returns:
        The version folder (`model.skops`, `assets/tfmer.json`, `learned.npz`), written
        under a temporary name and renamed when complete.
    """
    root = pathlib.Path(export_root) / config.name
    root.mkdir(parents=True, exist_ok=True)
    version = next_version(root)
    final = root / str(version)
    extra = dict(extra or {})
    settings = config.handcrafted
    tensor = {"name": "features", "method": settings.method,
              "reads": "the converted clip: RGB frames uint8 [T, H, W, 3]"
                       + (", its landmarks" if settings.method == "mdmo" else "")
                       + (", its onset -> apex motion" if settings.method == "biwoof" else "")}
    preprocessing = {"input": "features", "image_size": None, "tim": extra.get("tim"),
                     "handcrafted": config.to_dict()["handcrafted"],
                     "chosen": extra.pop("chosen")}
    with atomic(final) as temporary:
        temporary.mkdir()
        svm.save(estimator, temporary / SVM_MODEL)
        if learned is not None:
            np.savez(temporary / LEARNED, **learned)
        write_json_atomic(temporary / METADATA, _metadata(config, classes, version, tensor,
                                                          preprocessing, extra))
    return final


def load_svm(model_dir) -> tuple:
    """An exported SVM baseline: `(pipeline, handcrafted settings, chosen candidate,
    learned part of the features or None)`."""
    metadata = load_metadata(model_dir)
    config = ExperimentConfig.from_dict(metadata["config"], source=f"{model_dir}/{METADATA}")
    path = pathlib.Path(model_dir) / LEARNED
    learned = None
    if path.is_file():
        with np.load(path, allow_pickle=False) as stored:
            learned = dict(stored)
    return (svm.load(pathlib.Path(model_dir) / SVM_MODEL), config.handcrafted,
            metadata["preprocessing"]["chosen"], learned)


def appearance_mask(recorded: dict) -> np.ndarray:
    """The bool mask an appearance model was trained with, from its `assets/tfmer.json`
    entry `{"mask_size": [h, w], "mask": [row-major flat indices]}`."""
    mask = np.zeros(recorded["mask_size"], bool)
    mask.flat[recorded["mask"]] = True
    return mask


def evaluate_export(model_dir, data_dir, out_dir=None) -> dict:
    """Scores an exported model on every clip of a converted dataset.

    The dataset's class list must equal the model's. With `out_dir`, writes
    `predictions.csv` and `metrics.json` there.

    Returns:
        The metrics (as `tfmer.results.compute_metrics`, protocol `export`).
    """
    metadata = load_metadata(model_dir)
    info = data.load_info(data_dir)
    if tuple(metadata["classes"]) != info.classes:
        raise ValueError(f"{model_dir} predicts {metadata['classes']} but {data_dir} has "
                         f"classes {list(info.classes)}")
    preprocessing = metadata["preprocessing"]
    if preprocessing.get("input") == "features":
        rows = _score_svm(model_dir, info, metadata["experiment"])
    else:
        rows = _score_saved_model(model_dir, info, metadata)
    for row in rows:
        row.update(fold=0, seed=0)
    result = results.compute_metrics(rows, info.classes, experiment=metadata["experiment"],
                                     protocol="export")
    if out_dir is not None:
        folder = RunFolder(out_dir)
        folder.write_predictions(rows, info.classes)
        folder.write_json(METRICS, result)
    return result


def load_serving(model_dir):
    """The `serving_default` function of an exported network (`tf.saved_model.load`)."""
    return tf.saved_model.load(str(model_dir)).signatures["serving_default"]


def score_records(model_dir, clip_records, *, serve=None, workers: int | None = None,
                  log=print) -> list[dict]:
    """Scores clips converted in memory with an exported model, through the pipeline of
    `evaluate_export`: the records are written to a temporary shard
    (`tfmer.data.records_dataset`) and read back by the readers that score a converted
    dataset, so a clip gets the probabilities `evaluate.py --model` gives it.

    Args:
        model_dir: the export (a SavedModel or an SVM baseline's `model.skops`).
        clip_records: `tfmer.records.ClipRecord`s (`data_prep.clip.convert_clip` with the
            export's conversion settings), labelled with classes of the export.
        serve: the network's `load_serving(model_dir)`, when already loaded.
        workers: an SVM baseline's feature processes (None: its config's setting; 1 in
            this process).
        log: where an SVM baseline's feature summary line goes.

    Returns:
        One `{"clip_id", "subject", "y_true", "y_pred", "probabilities"}` per record, in
        their order.
    """
    metadata = load_metadata(model_dir)
    clip_records = list(clip_records)
    with tempfile.TemporaryDirectory(prefix="tfmer-records-") as folder:
        info = data.records_dataset(folder, clip_records, metadata["classes"])
        if metadata["preprocessing"].get("input") == "features":
            rows = _score_svm(model_dir, info, metadata["experiment"], workers=workers,
                              log=log)
        else:
            rows = _score_saved_model(model_dir, info, metadata, serve=serve)
    position = {record.clip_id: i for i, record in enumerate(clip_records)}
    return sorted(rows, key=lambda row: position[row["clip_id"]])


def _score_svm(model_dir, info: data.DatasetInfo, experiment: str,
               workers: int | None = None, log=print) -> list[dict]:
    """Every clip's probabilities from an exported SVM baseline: the features computed as
    in training (`tfmer.clip_features`; by `workers` processes when given), then the
    pipeline."""
    estimator, settings, chosen, learned = load_svm(model_dir)
    if workers is not None:
        settings = dataclasses.replace(settings, workers=workers)
    clip_features.check_clips(settings, info, experiment)
    features = (clip_features.compute(settings, info, log=log) if learned is None
                else clip_features.apply_learned(settings, info, [learned])[0])
    return clip_features.predict(estimator, features, chosen["variant"], info, info.clips)


def _score_saved_model(model_dir, info: data.DatasetInfo, metadata: dict,
                       serve=None) -> list[dict]:
    """Every clip's probabilities from an exported network (`serve`: its
    `load_serving(model_dir)`, loaded here when None)."""
    serve = serve if serve is not None else load_serving(model_dir)
    preprocessing = metadata["preprocessing"]
    name, kind = metadata["input"]["name"], preprocessing.get("input", "frames")

    def score(inputs):
        return serve(**{name: inputs})["probabilities"]

    if kind == "appearance":
        batches = data.appearance_eval_dataset(
            info, None, appearance_mask(preprocessing["appearance"]),
            columns=metadata["input"]["shape"][2])
        return data.score_batches(score, info, batches)
    return data.predict_clips(score, info, None, image_size=preprocessing["image_size"],
                              kind=kind)
