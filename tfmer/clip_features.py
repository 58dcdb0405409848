"""Handcrafted features of a converted dataset (`tfmer.handcrafted.methods`): clips read
from the shards, features extracted in worker processes that never load TensorFlow (their
task, `tfmer.handcrafted.methods.extract`, lives in a module free of it), with a progress
bar, and cached (`features.npz` in the run folder).

Features depend on each clip alone (their settings are fixed by the config), so a run
computes them once and every fold, the final model and the search over candidate settings
read them from the cache. What is learnt from clips (codebooks, projections, the SVM) is
not in the cache: it is fit per fold on training clips (`tfmer.svm`).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import multiprocessing
import os
import pathlib

import numpy as np
import tensorflow as tf
import tqdm

from tfmer import data, records, svm
from tfmer.config import HandcraftedConfig
from tfmer.files import atomic, locked
from tfmer.handcrafted.methods import (
    ClipInputs,
    apply_task,
    extract,
    method,
    sample_task,
    set_learned,
)


@dataclasses.dataclass(frozen=True)
class Features:
    """Every clip's features under every candidate setting.

    Attributes:
        clip_ids: the clips, in shard order.
        variants: `{variant: [per-clip float32 arrays]}`, in the order of `clip_ids`
            (variant `""` for a method without candidate settings).
    """

    clip_ids: tuple
    variants: dict

    def rows(self, clip_ids) -> list[int]:
        """The positions of `clip_ids` in `clip_ids`."""
        position = {clip_id: i for i, clip_id in enumerate(self.clip_ids)}
        return [position[clip_id] for clip_id in clip_ids]

    def select(self, variant: str, clip_ids):
        """The features of `clip_ids` under `variant`: `[N, D]` float32 when every clip's
        have one shape, else a list of arrays (STCLQP's codes)."""
        chosen = [self.variants[variant][i] for i in self.rows(clip_ids)]
        if len({a.shape for a in chosen}) == 1:
            return np.stack(chosen)
        return chosen


def predict(estimator, features: Features, variant: str, info: data.DatasetInfo,
            clips) -> list[dict]:
    """Prediction rows of `clips` (dataset summaries) by a fitted SVM pipeline on their
    `variant` features: `[{"clip_id", "subject", "y_true", "y_pred", "probabilities"}]`
    (`tfmer.svm.probabilities`; `y_pred` their argmax)."""
    probabilities = svm.probabilities(
        estimator, features.select(variant, [c["id"] for c in clips]), len(info.classes))
    return [{"clip_id": c["id"], "subject": c["subject"],
             "y_true": info.classes.index(c["label"]), "y_pred": int(p.argmax()),
             "probabilities": p.tolist()} for c, p in zip(clips, probabilities)]


def check_clips(settings: HandcraftedConfig, info: data.DatasetInfo, experiment: str) -> None:
    """Checks, before any feature is computed, that every clip suits the method.

    Raises:
        ValueError: a clip shorter than the method's temporal extent, without landmarks
            (MDMO) or without stored motion (Bi-WOOF), naming the clip and the way out.
    """
    spec = method(settings.method)
    fewest = spec.min_frames(settings)
    short = [c for c in info.clips if c["num_frames"] < fewest]
    if short:
        raise ValueError(
            f"experiment {experiment}: clip {short[0]['id']} of {info.path} has "
            f"{short[0]['num_frames']} frames, fewer than the {fewest} that {settings.method} "
            f"needs with these settings ({len(short)} clip(s) in all); convert with `python -m "
            f"data_prep ... --tim {max(fewest, 32)}`")
    if spec.landmarks:
        missing = [c["id"] for c in info.clips if not c.get("landmarks")]
        if missing:
            raise ValueError(
                f"experiment {experiment}: clip {missing[0]} of {info.path} has no landmarks "
                f"({len(missing)} clip(s) in all): {settings.method} places its regions by the "
                f"68 landmarks the converter stores; convert with `python -m data_prep ... "
                f"--crop dlib` (a clip converted with --crop none keeps landmarks only where "
                f"a face was found)")
    if spec.motion:
        missing = [c["id"] for c in info.clips if "flow" not in c]
        if missing:
            raise ValueError(
                f"experiment {experiment}: clip {missing[0]} of {info.path} has no onset -> "
                f"apex motion ({len(missing)} clip(s) in all): it was converted with --flow "
                f"none; convert it again with `python -m data_prep ... --flow tvl1`")


def read_inputs(info: data.DatasetInfo, subjects=None):
    """The clips of `subjects` (all when None) as `ClipInputs`, frames decoded, in shard
    order."""
    dataset = data.read_clips(info, subjects).map(
        lambda clip: {**clip, "frames": data.decode_frames(clip[records.FRAMES])},
        num_parallel_calls=tf.data.AUTOTUNE)
    for clip in dataset.as_numpy_iterator():
        height, width = int(clip["image/height"]), int(clip["image/width"])
        landmarks, uvs = clip["clip/landmarks"], clip["flow/uvs"]
        yield ClipInputs(
            clip_id=clip["clip/id"].decode("utf-8"), frames=clip["frames"],
            landmarks=landmarks.reshape(-1, 2) if landmarks.size else None,
            motion=uvs.reshape(height, width, 3) if uvs.size else None)


def _workers(settings: HandcraftedConfig) -> int:
    return settings.workers or os.cpu_count() or 1


def _map(task, settings: HandcraftedConfig, info: data.DatasetInfo, subjects, what: str,
         learned=None) -> dict:
    """`{clip_id: task(clip, settings)}` over the clips of `subjects` (all when None), in
    `settings.workers` processes (in this one with 1), with a progress bar; `learned` (a
    list) is handed to every process once (`tfmer.handcrafted.methods.set_learned`)."""
    clips = info.clips if subjects is None else info.clips_of(subjects)
    workers = _workers(settings)
    found: dict = {}
    bar = tqdm.tqdm(total=len(clips), desc=f"{settings.method} {what}", unit="clip",
                    leave=False)
    with bar:
        if workers == 1:
            set_learned(learned or [])
            for clip in read_inputs(info, subjects):
                found[clip.clip_id] = task(clip, settings)
                bar.update()
            return found
        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(
                workers, mp_context=context, initializer=set_learned,
                initargs=(learned or [],)) as pool:
            pending = {}
            for clip in read_inputs(info, subjects):
                pending[pool.submit(task, clip, settings)] = clip.clip_id
                if len(pending) >= 2 * workers:  # bounded: frames wait in the reader
                    done, _ = concurrent.futures.wait(
                        pending, return_when=concurrent.futures.FIRST_COMPLETED)
                    for future in done:
                        found[pending.pop(future)] = future.result()
                        bar.update()
            for future in concurrent.futures.as_completed(pending):
                found[pending[future]] = future.result()
                bar.update()
    return found


def compute(settings: HandcraftedConfig, info: data.DatasetInfo, subjects=None,
            log=print) -> Features:
    """The features of the clips of `subjects` (all when None), extracted by
    `settings.workers` processes (in this one with 1), with a progress bar."""
    found = _map(extract, settings, info, subjects, "features")
    clip_ids = tuple(c["id"] for c in (info.clips if subjects is None
                                       else info.clips_of(subjects)))
    variants = {variant: [found[clip_id][variant] for clip_id in clip_ids]
                for variant in found[clip_ids[0]]}
    log(f"  {settings.method} features of {len(clip_ids)} clips ({_workers(settings)} "
        f"worker(s)): " + ", ".join(f"{variant or 'features'} {_size(values)}"
                                    for variant, values in list(variants.items())[:4])
        + (f", ... ({len(variants)} candidate settings)" if len(variants) > 4 else ""))
    return Features(clip_ids, variants)


def compute_learned(settings: HandcraftedConfig, info: data.DatasetInfo, fits,
                    log=print) -> tuple[list, list]:
    """A learning method's features (`tfmer.handcrafted.methods`: STCLQP's codebooks) for
    several fits at once: every clip's `sample` (one pass), each fit's `learn` on the
    samples of its training subjects alone, then every clip's `apply` under all of them
    (a second pass: the clip's codes are computed once for every fit).

    Args:
        fits: `[(training subjects, seed)]`.

    Returns:
        `(features, learned)`: a `Features` (variant `""`, every clip) and the learned part
        per fit, in the order of `fits`.
    """
    spec = method(settings.method)
    samples = _map(sample_task, settings, info, None, "samples")
    learned = []
    for subjects, seed in fits:
        learned.append(spec.learn([samples[c["id"]] for c in info.clips_of(subjects)],
                                  settings, seed))
    log(f"  {settings.method}: what it learns fit on the training clips of {len(fits)} "
        f"fit(s), each alone")
    features = apply_learned(settings, info, learned)
    log(f"  {settings.method} features of {len(info.clips)} clips under {len(fits)} fit(s) "
        f"({_workers(settings)} worker(s)): {_size(features[0].variants[''])}")
    return features, learned


def apply_learned(settings: HandcraftedConfig, info: data.DatasetInfo, learned: list) -> list:
    """Every clip's features under each of a learning method's `learned` parts: a
    `Features` (variant `""`) per part, in their order (one pass over the clips)."""
    found = _map(apply_task, settings, info, None, "features", learned)
    clip_ids = tuple(c["id"] for c in info.clips)
    return [Features(clip_ids, {"": [found[clip_id][k] for clip_id in clip_ids]})
            for k in range(len(learned))]


def _size(values) -> str:
    shapes = {a.shape for a in values}
    return (f"{'x'.join(map(str, shapes.pop()))} values" if len(shapes) == 1
            else "clip-dependent sizes")


def _settings_key(settings: HandcraftedConfig) -> str:
    """The settings the cached features were computed with (workers aside)."""
    return json.dumps({**dataclasses.asdict(settings), "workers": None}, sort_keys=True)


def save(features: Features, settings: HandcraftedConfig, path) -> None:
    """Writes the features to `path` (`.npz`, atomically): each variant's arrays
    concatenated, with their dimensions, and the settings they were computed with."""
    arrays = {"clip_ids": np.array(features.clip_ids), "settings": np.array(
        _settings_key(settings)), "variants": np.array(list(features.variants))}
    for i, values in enumerate(features.variants.values()):
        arrays[f"values{i}"] = np.concatenate([a.ravel() for a in values])
        arrays[f"ndims{i}"] = np.array([a.ndim for a in values], np.int64)
        arrays[f"dims{i}"] = np.array([d for a in values for d in a.shape], np.int64)
    path = pathlib.Path(path)
    with atomic(path) as temporary:
        with open(temporary, "wb") as f:
            np.savez_compressed(f, **arrays)


def load(path, settings: HandcraftedConfig) -> Features | None:
    """The features `save` wrote to `path`, or None when there are none or they were
    computed with other settings."""
    path = pathlib.Path(path)
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as stored:
        if str(stored["settings"]) != _settings_key(settings):
            return None
        variants = {}
        for i, variant in enumerate(stored["variants"]):
            values, dims = stored[f"values{i}"], stored[f"dims{i}"].tolist()
            ends = np.cumsum(stored[f"ndims{i}"])
            shapes = [tuple(dims[end - n:end]) for n, end in zip(stored[f"ndims{i}"], ends)]
            ends = np.cumsum([int(np.prod(shape)) for shape in shapes])
            variants[str(variant)] = [part.reshape(shape) for part, shape in zip(
                np.split(values, ends[:-1]), shapes)]
        return Features(tuple(str(c) for c in stored["clip_ids"]), variants)


def cached(settings: HandcraftedConfig, info: data.DatasetInfo, path, log=print) -> Features:
    """Every clip's features: read from `path` when it holds them for these settings,
    else computed (`compute`) and saved there (under `path`'s lock: jobs of one run
    compute them once, the others wait and read them)."""
    with locked(path):
        features = load(path, settings)
        if features is not None and set(features.clip_ids) == {c["id"] for c in info.clips}:
            log(f"  {settings.method} features of {len(features.clip_ids)} clips read from "
                f"{path}")
            return features
        features = compute(settings, info, log=log)
        save(features, settings, path)
    return features
