"""Building the synthetic data sets: frame folders and manifest, converted datasets, once.

`generate` writes the clips as folders of PNG frames with a manifest CSV (see its
docstring); `build` converts them with the real `manifest` converter and `ensure` builds
the built-in dataset into a folder on first use. `generate_expressions`, `build_expression`
and `ensure_expression` do the same for the still expression images of TLCNN's first stage
(converted with the `expression` converter). Every file is written atomically
(`tfmer.files.atomic`).
"""

from __future__ import annotations

import csv
import json
import multiprocessing
import os
import pathlib
import shutil

import cv2
import numpy as np
from tqdm import tqdm

from data_prep.clip import ConvertOptions
from data_prep.databases import convert_database
from data_prep.manifest import convert_manifest
from data_prep.synthetic.rendering import render_clip
from data_prep.synthetic.specs import (EXPRESSION_SEED, ClipSpec, make_expression_specs,
                                       make_specs)
from tfmer.files import atomic, locked

MANIFEST_COLUMNS = ("path", "subject", "label", "onset", "apex", "offset", "fps", "landmarks")


def generate(out_dir: str | os.PathLike, *, seed: int = 0, num_subjects: int = 12,
             clips_per_class: int = 2, size: int = 128, fps: int = 200,
             workers: int | None = None, progress: bool = True) -> pathlib.Path:
    """Writes the synthetic data set as frame folders and a manifest.

    Layout::

        out_dir/manifest.csv                        header: the MANIFEST_COLUMNS
        out_dir/<subject>/<clip_id>/000000.png ...  8-bit colour PNG frames, numbered from 0
        out_dir/<subject>/<clip_id>/landmarks.txt   68 lines "x y": the landmarks of frame 0

    `path` and `landmarks` are relative to the manifest's folder; `onset`, `apex` and
    `offset` are frame numbers as in the file names. The PNGs hold the frames of
    `render_clip` losslessly (`cv2.imread` gives them back in BGR order). Each clip folder
    is written under a temporary name and renamed into place (replacing an older one), the
    manifest likewise. The same arguments give byte-identical files whatever `workers` is.

    Args:
        out_dir: output folder, created if needed.
        seed: data set seed, a non-negative integer.
        num_subjects: number of subjects.
        clips_per_class: clips per class and subject.
        size: image side, px.
        fps: frame rate.
        workers: processes rendering clips; default `min(2, os.cpu_count())`.
        progress: show a progress bar over clips.

    Returns:
        The path of `manifest.csv`.

    Raises:
        ValueError: an argument is out of range.
    """
    specs = make_specs(seed, num_subjects, clips_per_class, size, fps)
    workers = min(2, os.cpu_count() or 1) if workers is None else workers
    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"synthetic data: workers must be an integer >= 1, got {workers!r}")
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(spec, out) for spec in specs]
    bar = dict(total=len(jobs), disable=not progress, unit="clip", desc="synthetic clips")
    if workers == 1:
        rows = [_write_clip(job) for job in tqdm(jobs, **bar)]
    else:
        # spawn, not fork: a forked child hangs in OpenCV when the parent has already run
        # OpenCV's thread pool (e.g. after a face crop); workers import this package only
        # (numpy, cv2 and the TensorFlow-free converter).
        with multiprocessing.get_context("spawn").Pool(workers, _init_worker) as pool:
            rows = list(tqdm(pool.imap(_write_clip, jobs), **bar))
    manifest = out / "manifest.csv"
    with atomic(manifest) as temporary, open(temporary, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(MANIFEST_COLUMNS)
        writer.writerows(rows)
    return manifest


def _init_worker() -> None:
    """One OpenCV thread per worker process: the processes already fill the cores."""
    cv2.setNumThreads(1)


def _write_clip(job: tuple[ClipSpec, pathlib.Path]) -> list:
    """Renders and writes one clip; returns its manifest row."""
    spec, out = job
    images, landmarks = render_clip(spec)
    relative = pathlib.PurePosixPath(spec.subject, spec.clip_id)
    with atomic(out / spec.subject / spec.clip_id) as temporary:
        temporary.mkdir()
        for t, image in enumerate(images):
            path = str(temporary / f"{t:06d}.png")
            if not cv2.imwrite(path, np.ascontiguousarray(image[..., ::-1])):
                raise OSError(f"synthetic data: could not write {path}")
        np.savetxt(temporary / "landmarks.txt", landmarks[0], fmt="%.4f")
    m = spec.movement
    return [str(relative), spec.subject, m.label, m.onset, m.apex, m.offset, spec.fps,
            str(relative / "landmarks.txt")]


def build(out_dir, *, seed: int = 0, num_subjects: int = 12, clips_per_class: int = 2,
          options=None, keep_raw: bool = False) -> dict:
    """Generates the synthetic clips and converts them with the real `manifest` converter.

    `out_dir` ends up holding a converted dataset (`dataset.json` and shards, `tlcnn4`
    classes, subjects namespaced `synthetic/sNN`); the frame folders go to `out_dir/raw` and
    are deleted afterwards unless `keep_raw`.

    Args:
        options: `data_prep.clip.ConvertOptions`; default TIM to 32 frames of 128 px.

    Returns:
        The content of `dataset.json`.
    """
    options = options or clip_options()
    out = pathlib.Path(out_dir)
    raw = out / "raw"
    csv_path = generate(raw, seed=seed, num_subjects=num_subjects,
                        clips_per_class=clips_per_class, size=options.size,
                        progress=options.progress)
    info = convert_manifest(csv_path, out, classes="tlcnn4", name="synthetic", options=options)
    if not keep_raw:
        shutil.rmtree(raw)
    return info


def ensure(out_dir, num_frames: int = 32) -> pathlib.Path:
    """The built-in dataset at `out_dir`, built on first use (seed 0, default size, TIM to
    `num_frames` frames).

    It is built in a temporary folder beside `out_dir` and renamed when complete, so an
    interrupted build is redone rather than used.

    Returns:
        `out_dir` as a path.

    Raises:
        ValueError: `out_dir` holds a dataset of another length (names both), or other files.
    """
    out = pathlib.Path(out_dir)
    info = _ensure(out, "synthetic dataset", lambda building: build(
        building, options=clip_options(num_frames)))
    if info["num_frames"] != num_frames:
        raise ValueError(f"{out} holds {info['num_frames']}-frame clips, not {num_frames}; "
                         f"remove it to rebuild the built-in data")
    return out


def clip_options(num_frames: int = 32) -> ConvertOptions:
    """The built-in data's `ConvertOptions`: TIM to `num_frames` frames of 128 px."""
    return ConvertOptions(num_frames=num_frames, size=128)


def _ensure(out: pathlib.Path, what: str, build_into) -> dict:
    """Builds a dataset with `build_into(folder)` unless `out` holds one; returns its
    `dataset.json` content. Builds in a temporary folder beside `out`
    (`tfmer.files.atomic`), renamed onto `out` when complete, under `out`'s lock: of
    several processes starting at once (jobs of one run, `train.py --folds`), the first
    builds and the others wait for its dataset."""
    meta = out / "dataset.json"
    with locked(out):
        if not meta.is_file():
            if out.exists() and any(out.iterdir()):
                raise ValueError(f"{out} exists but holds no dataset.json; remove it to "
                                 f"rebuild the built-in {what}")
            print(f"building the built-in {what} in {out} (once)")
            with atomic(out) as building:
                build_into(building)
    return json.loads(meta.read_text(encoding="utf-8"))


def generate_expressions(out_dir, *, seed: int = EXPRESSION_SEED, num_subjects: int = 12,
                         images_per_emotion: int = 3, size: int = 128) -> pathlib.Path:
    """Writes the still expression images in the folder-per-emotion layout of the
    `expression` converter: `out_dir/<emotion>/<image id>.png` (8-bit RGB PNG).

    Returns:
        `out_dir` as a path.
    """
    out = pathlib.Path(out_dir)
    for spec in make_expression_specs(seed, num_subjects, images_per_emotion, size):
        images, _ = render_clip(spec, [spec.movement.apex])
        folder = out / spec.movement.label
        folder.mkdir(parents=True, exist_ok=True)
        path = str(folder / f"{spec.clip_id}.png")
        if not cv2.imwrite(path, np.ascontiguousarray(images[0][..., ::-1])):
            raise OSError(f"synthetic data: could not write {path}")
    return out


def build_expression(out_dir, *, seed: int = EXPRESSION_SEED, num_subjects: int = 12,
                     images_per_emotion: int = 3, size: int = 128, keep_raw: bool = False,
                     progress: bool = True) -> dict:
    """Generates the still expression images and converts them with the real `expression`
    converter (`--classes expression9 --crop none`): one-frame records of 9 classes, the
    ones without a synthetic movement empty. The images go to `out_dir/raw` and are deleted
    afterwards unless `keep_raw`.

    Returns:
        The content of `dataset.json`.
    """
    out = pathlib.Path(out_dir)
    raw = generate_expressions(out / "raw", seed=seed, num_subjects=num_subjects,
                               images_per_emotion=images_per_emotion, size=size)
    options = ConvertOptions(size=size, crop="none", clips_per_shard=1024, workers=1,
                             progress=progress)
    info = convert_database("expression", raw, out, classes="expression9", options=options)
    if not keep_raw:
        shutil.rmtree(raw)
    return info


def ensure_expression(out_dir) -> pathlib.Path:
    """The built-in expression set at `out_dir`, built on first use (`build_expression` with
    its defaults), like `ensure`.

    Returns:
        `out_dir` as a path.
    """
    out = pathlib.Path(out_dir)
    _ensure(out, "synthetic expression set", build_expression)
    return out
