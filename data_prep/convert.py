"""Converter core: clip sources -> resized, TIM-normalised, encoded clips in TFRecord shards.

Every reader produces `ClipSource`s; `convert` does the rest the same way for all of them:
read the frames onset..offset (inclusive), resize, interpolate to a fixed length with TIM,
encode, write `tf.train.SequenceExample` shards and `dataset.json`. A clip that fails is
reported with its reason and the others are converted. Files are written under temporary
names and renamed, and `dataset.json` (which lists the shards) is written last, so an
interrupted run never leaves a dataset that looks complete.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import multiprocessing
import os
import pathlib
import sys

import cv2
import numpy as np
import tensorflow as tf
import tqdm

import tfmer
from data_prep import tim
from data_prep.frames import ClipError, read_frames
from tfmer import features
from tfmer.features import NUM_LANDMARKS, UNKNOWN
from tfmer.files import write_json_atomic

ENCODINGS = ("png", "jpeg")


@dataclasses.dataclass(frozen=True)
class ClipSource:
    """Where one clip comes from and what it is labelled, before conversion."""

    clip_id: str
    subject: str
    emotion: str
    path: pathlib.Path
    onset: int = UNKNOWN
    apex: int = UNKNOWN
    offset: int = UNKNOWN
    fps: float = 0.0
    landmarks: pathlib.Path | None = None


def read_landmarks(path: pathlib.Path) -> np.ndarray:
    """Reads a landmarks file: 68 lines `x y` -> float32 `[68, 2]`."""
    try:
        points = np.loadtxt(path, dtype=np.float32, ndmin=2)
    except ValueError as error:
        raise ClipError(f"landmarks file {path}: {error}") from None
    if points.shape != (NUM_LANDMARKS, 2):
        raise ClipError(f"landmarks file {path} holds {points.shape[0]} x {points.shape[1]} "
                        f"values, expected {NUM_LANDMARKS} lines of 'x y'")
    return points


@dataclasses.dataclass(frozen=True)
class ConvertOptions:
    """How clips are converted.

    Attributes:
        num_frames: TIM output length (TLCNN uses 32 or 64); 0 keeps every frame.
        size: frames are resized to `size` x `size` pixels.
        encoding: `png` (lossless, the default: micro-movements are a pixel or two) or `jpeg`.
        jpeg_quality: quality for `jpeg`.
        clips_per_shard: clips per TFRecord shard.
        workers: parallel processes (default: the number of CPUs, at most the clip count).
        progress: show a progress bar.
    """

    num_frames: int = 32
    size: int = 224
    encoding: str = "png"
    jpeg_quality: int = 95
    clips_per_shard: int = 32
    workers: int | None = None
    progress: bool = True

    def __post_init__(self):
        if self.num_frames < 0 or self.num_frames == 1:
            raise ValueError(f"--tim must be 0 (keep all frames) or >= 2, got {self.num_frames}")
        if self.size < 8:
            raise ValueError(f"--size must be at least 8 pixels, got {self.size}")
        if self.encoding not in ENCODINGS:
            raise ValueError(f"encoding {self.encoding!r} is not one of {', '.join(ENCODINGS)}")


def convert_clip(source: ClipSource, dataset: str, classes, options: ConvertOptions):
    """Converts one clip.

    Returns:
        A `tfmer.features.ClipRecord`.

    Raises:
        ClipError: the clip cannot be converted; the message names it and says why.
    """
    if source.emotion not in classes:
        raise ClipError(f"label {source.emotion!r} is not in the class scheme "
                        f"({', '.join(classes)})")
    first = None if source.onset == UNKNOWN else source.onset
    last = None if source.offset == UNKNOWN else source.offset
    frames, video_fps = read_frames(source.path, first, last)
    if len(frames) < 2:
        raise ClipError(f"{source.path} has {len(frames)} frame(s) in "
                        f"{first}..{last}; at least 2 are needed")
    height, width = frames.shape[1:3]
    frames = np.stack([_resize(f, options.size) for f in frames])
    if options.num_frames:
        frames = np.clip(np.rint(tim.interpolate(frames, options.num_frames)), 0, 255)
        frames = frames.astype(np.uint8)
    landmarks = None
    if source.landmarks is not None:
        landmarks = read_landmarks(source.landmarks)
        landmarks = landmarks * np.array([options.size / width, options.size / height],
                                         np.float32)
    return features.ClipRecord(
        clip_id=source.clip_id, dataset=dataset, subject=f"{dataset}/{source.subject}",
        label=classes.index(source.emotion), label_name=source.emotion,
        source_emotion=source.emotion,
        frames=tuple(_encode(f, options) for f in frames),
        height=options.size, width=options.size, channels=3,
        onset=source.onset, apex=source.apex, offset=source.offset,
        fps=source.fps or video_fps, landmarks=landmarks)


def _resize(frame: np.ndarray, size: int) -> np.ndarray:
    shrink = frame.shape[0] > size or frame.shape[1] > size
    return cv2.resize(frame, (size, size),
                      interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def _encode(frame: np.ndarray, options: ConvertOptions) -> bytes:
    bgr = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
    if options.encoding == "png":
        ok, data = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 6])
    else:
        ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, options.jpeg_quality])
    if not ok:
        raise ClipError(f"cannot encode a frame as {options.encoding}")
    return data.tobytes()


def _convert_task(task):
    """Worker: `(source, dataset, classes, options)` -> `(source, serialized or None, info)`."""
    source, dataset, classes, options = task
    try:
        record = convert_clip(source, dataset, classes, options)
    except ClipError as error:
        return source, None, str(error)
    except Exception as error:  # noqa: BLE001 - one broken clip must not sink the rest
        return source, None, f"{type(error).__name__}: {error}"
    info = {"id": record.clip_id, "subject": record.subject, "label": record.label_name,
            "num_frames": len(record.frames), "onset": record.onset, "apex": record.apex,
            "offset": record.offset, "fps": record.fps}
    return source, features.encode(record), info


def convert(name: str, sources, classes, out_dir, options: ConvertOptions = ConvertOptions(),
            errors=(), extra=None) -> dict:
    """Converts clip sources into `out_dir` (shards + `dataset.json`).

    Args:
        name: the dataset name (namespace of subjects, e.g. `synthetic`).
        sources: `ClipSource`s, converted in the order given (sort them for reproducibility).
        classes: the ordered class list.
        out_dir: output folder, created if needed.
        options: `ConvertOptions`.
        errors: `{"clip", "reason"}` of clips the reader already had to skip.
        extra: more keys for `dataset.json` (e.g. the source and converter settings).

    Returns:
        The content of `dataset.json`.
    """
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    classes = tuple(classes)
    sources = list(sources)
    num_shards = max(1, math.ceil(len(sources) / options.clips_per_shard))
    shard_names = [f"{name}-{i:05d}-of-{num_shards:05d}.tfrecord" for i in range(num_shards)]
    tasks = [(s, name, classes, options) for s in sources]
    errors, clips, shards = list(errors), [], []
    workers = min(options.workers or os.cpu_count() or 1, max(1, len(tasks)))
    with _pool(workers) as pool:
        results = pool.imap(_convert_task, tasks) if pool else map(_convert_task, tasks)
        bar = tqdm.tqdm(results, total=len(tasks), desc=f"converting {name}", unit="clip",
                        disable=not options.progress, file=sys.stderr)
        writer, shard_clips = None, 0
        for index, (source, serialized, info) in enumerate(bar):
            shard = index // options.clips_per_shard
            if index % options.clips_per_shard == 0:
                writer = tf.io.TFRecordWriter(str(out_dir / (shard_names[shard] + ".tmp")))
                shard_clips = 0
            if serialized is None:
                errors.append({"clip": source.clip_id, "reason": info})
            else:
                writer.write(serialized)
                clips.append(info)
                shard_clips += 1
            if (index + 1) % options.clips_per_shard == 0 or index + 1 == len(tasks):
                writer.close()
                os.replace(out_dir / (shard_names[shard] + ".tmp"), out_dir / shard_names[shard])
                shards.append({"file": shard_names[shard], "num_clips": shard_clips})
    if not clips:
        raise ValueError(f"no clip of {name} could be converted; first errors: "
                         + "; ".join(f"{e['clip']}: {e['reason']}" for e in errors[:3]))
    info = _dataset_info(name, classes, clips, shards, errors, options)
    info.update(extra or {})
    write_json_atomic(out_dir / "dataset.json", info)
    return info


def _pool(workers: int):
    """A process pool (spawned: TensorFlow does not survive `fork`), or a null context."""
    if workers <= 1:
        return contextlib.nullcontext()
    return multiprocessing.get_context("spawn").Pool(workers)


def _dataset_info(name, classes, clips, shards, errors, options) -> dict:
    counts = {c: sum(1 for clip in clips if clip["label"] == c) for c in classes}
    lengths = {clip["num_frames"] for clip in clips}
    return {
        "name": name,
        "classes": list(classes),
        "num_frames": lengths.pop() if len(lengths) == 1 else None,
        "height": options.size,
        "width": options.size,
        "channels": 3,
        "encoding": options.encoding,
        "num_clips": len(clips),
        "class_counts": counts,
        "subjects": sorted({clip["subject"] for clip in clips}),
        "errors": errors,
        "shards": shards,
        "clips": clips,
        "tim": options.num_frames,
        "tfmer_version": tfmer.__version__,
    }


def summary(info: dict, out_dir) -> str:
    """A one-screen summary of a conversion for the terminal."""
    frames = info["num_frames"] or "all"
    lines = [f"{info['name']}: {info['num_clips']} clips converted to {out_dir} "
             f"({len(info['shards'])} shard(s); {frames} frames of "
             f"{info['height']}x{info['width']} {info['encoding']})",
             f"  subjects: {len(info['subjects'])}",
             "  classes: " + ", ".join(f"{c} {n}" for c, n in info["class_counts"].items())]
    if info["errors"]:
        lines.append(f"  {len(info['errors'])} clip(s) skipped:")
        lines += [f"    {e['clip']}: {e['reason']}" for e in info["errors"]]
    return "\n".join(lines)
