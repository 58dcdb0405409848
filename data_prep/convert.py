"""Converter core: clip sources -> resized, TIM-normalised, encoded clips in TFRecord shards.

Every reader produces `ClipSource`s; `convert` does the rest the same way for all of them:
worker processes convert clips (`data_prep.clip.convert_clip`: frames onset..offset, face
crop or resize, TIM, encoding) and this process writes `tf.train.SequenceExample` shards
(`tfmer.records.encode`, `tfmer.tfrecord`) and `dataset.json`. No process of a conversion
loads TensorFlow. A clip that fails is reported with its reason and the others are converted.
Files are written under temporary names and renamed, and `dataset.json` (which lists the
shards) is written last, so an interrupted run never leaves a dataset that looks complete;
a re-run resumes after the last finished shard.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import json
import math
import multiprocessing
import os
import pathlib
import sys

import tqdm

import tfmer
from data_prep import clip
from data_prep.clip import ConvertOptions
from tfmer import records, tfrecord
from tfmer.files import atomic, write_json_atomic


PROGRESS_DIR = ".progress"
"""Sub-folder of the output holding one small JSON per finished shard (for resuming)."""


def convert(name: str, sources, classes, out_dir, options: ConvertOptions = ConvertOptions(),
            errors=(), dropped=(), extra=None, check=None) -> dict:
    """Converts clip sources into `out_dir` (shards + `dataset.json`).

    Resumable: a shard whose file and progress note exist for the same clips, classes and
    settings is kept as it is, so a re-run after an interruption converts only what is
    left. `dataset.json` is removed while shards are being written and written last.

    Args:
        name: the dataset name (namespace of subjects, e.g. `synthetic`).
        sources: labelled `ClipSource`s, converted in the order given (sort them).
        classes: the ordered class list.
        out_dir: output folder, created if needed.
        options: `ConvertOptions` (`crop` must be resolved, not None).
        errors: `{"clip", "reason"}` of clips the reader already had to skip.
        dropped: `{"clip", "emotion"}` of clips the class scheme leaves out.
        extra: more keys for `dataset.json` (e.g. the source and converter settings).
        check: `check(content) -> dict`, a check of the converted dataset against published
            facts, recorded as `dataset.json["check"]` (and printed by `summary`), or None.

    Returns:
        The content of `dataset.json`.
    """
    if options.crop is None:
        raise ValueError("ConvertOptions.crop must be 'detect' or 'none' here")
    out_dir = pathlib.Path(out_dir)
    (out_dir / PROGRESS_DIR).mkdir(parents=True, exist_ok=True)
    classes, sources = tuple(classes), list(sources)
    shards = _plan(name, sources, classes, options)
    done = {s["file"]: note for s in shards if (note := _finished(out_dir, s)) is not None}
    todo = [s for s in shards if s["file"] not in done]
    if todo:
        (out_dir / "dataset.json").unlink(missing_ok=True)
    if done and options.progress:
        print(f"resuming: {len(done)} of {len(shards)} shard(s) already converted",
              file=sys.stderr)
    tasks = [(source, name, classes, options) for shard in todo for source in shard["sources"]]
    workers = min(options.workers or os.cpu_count() or 1, max(1, len(tasks)))
    bar = tqdm.tqdm(total=len(tasks), desc=f"converting {name}", unit="clip",
                    disable=not options.progress, file=sys.stderr)
    with _pool(workers) as pool, bar:
        results = pool.imap(clip.convert_task, tasks) if pool else map(clip.convert_task, tasks)
        for shard in todo:
            done[shard["file"]] = _write_shard(out_dir, shard, results, bar)
    _remove_stale(out_dir, name, {s["file"] for s in shards})
    clips = [c for s in shards for c in done[s["file"]]["clips"]]
    failed = [e for s in shards for e in done[s["file"]]["errors"]]
    errors = list(errors) + failed
    if not clips:
        raise ValueError(f"no clip of {name} could be converted ({len(errors)} skipped); "
                         + "; ".join(f"{e['clip']}: {e['reason']}" for e in (failed or errors)[:3]))
    counts = [{"file": s["file"], "num_clips": len(done[s["file"]]["clips"])} for s in shards]
    info = _dataset_info(name, classes, clips, counts, errors, list(dropped), options)
    info.update(extra or {})
    if check is not None:
        info["check"] = check(info)
    write_json_atomic(out_dir / "dataset.json", info)
    return info


def _plan(name, sources, classes, options) -> list[dict]:
    """Splits sources into shards: `[{"file", "sources", "fingerprint"}]`."""
    per_shard = options.clips_per_shard
    count = max(1, math.ceil(len(sources) / per_shard))
    settings = json.dumps([tfmer.__version__, name, classes, options.settings()])
    shards = []
    for i in range(count):
        chunk = sources[i * per_shard:(i + 1) * per_shard]
        digest = hashlib.sha256(settings.encode())
        for source in chunk:
            digest.update(repr(source).encode())
            if source.pixels is not None:
                digest.update(source.pixels.tobytes())
        shards.append({"file": f"{name}-{i:05d}-of-{count:05d}.tfrecord", "sources": chunk,
                       "fingerprint": digest.hexdigest()})
    return shards


def _finished(out_dir: pathlib.Path, shard: dict) -> dict | None:
    """The progress note of a shard already written for the same clips and settings."""
    note_path = out_dir / PROGRESS_DIR / (shard["file"] + ".json")
    if not (out_dir / shard["file"]).is_file() or not note_path.is_file():
        return None
    try:
        note = json.loads(note_path.read_text())
    except (OSError, ValueError):
        return None
    return note if note.get("fingerprint") == shard["fingerprint"] else None


def _write_shard(out_dir: pathlib.Path, shard: dict, results, bar) -> dict:
    """Writes the next `len(shard["sources"])` results as one shard, then its progress note."""
    note = {"fingerprint": shard["fingerprint"], "clips": [], "errors": []}
    with atomic(out_dir / shard["file"]) as temporary, tfrecord.TFRecordWriter(temporary) as writer:
        for _ in shard["sources"]:
            source, record, reason = next(results)
            bar.update()
            if record is None:
                note["errors"].append({"clip": source.clip_id, "reason": reason})
            else:
                writer.write(records.encode(record))
                note["clips"].append(_clip_info(record))
    write_json_atomic(out_dir / PROGRESS_DIR / (shard["file"] + ".json"), note)
    return note


def _clip_info(record) -> dict:
    """A clip's entry in `dataset.json["clips"]`; with motion, `flow`: the method, the
    source frames it goes `from` and `to` (the apex used) and how the apex was found."""
    info = {"id": record.clip_id, "subject": record.subject, "label": record.label_name,
            "source_emotion": record.source_emotion, "num_frames": len(record.frames),
            "onset": record.onset, "apex": record.apex, "offset": record.offset,
            "fps": record.fps, "landmarks": record.landmarks is not None}
    motion = record.motion
    if motion is not None:
        info["flow"] = {"method": motion.method, "from": motion.source_from,
                        "to": motion.source_to, "apex_source": motion.apex_source}
    return info


def _remove_stale(out_dir: pathlib.Path, name: str, keep: set) -> None:
    """Removes shards (and notes) of this dataset name left by a run with other clips."""
    for path in out_dir.glob(f"{name}-*-of-*.tfrecord"):
        if path.name not in keep:
            path.unlink()
    for path in (out_dir / PROGRESS_DIR).glob(f"{name}-*-of-*.tfrecord.json"):
        if path.name[:-len(".json")] not in keep:
            path.unlink()


def _pool(workers: int):
    """A process pool, or a null context. Spawned, not forked: a caller (a test, a notebook)
    may have loaded TensorFlow, which does not survive `fork`."""
    if workers <= 1:
        return contextlib.nullcontext()
    return multiprocessing.get_context("spawn").Pool(workers, clip.init_worker)


def _dataset_info(name, classes, clips, shards, errors, dropped, options) -> dict:
    counts = {c: sum(1 for entry in clips if entry["label"] == c) for c in classes}
    lengths = {entry["num_frames"] for entry in clips}
    subjects = sorted({entry["subject"] for entry in clips})
    dropped_emotions = {}
    for entry in dropped:
        dropped_emotions[entry["emotion"]] = dropped_emotions.get(entry["emotion"], 0) + 1
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
        "subjects": subjects,
        "subject_counts": {s: sum(1 for c in clips if c["subject"] == s) for s in subjects},
        "dropped_emotions": dict(sorted(dropped_emotions.items())),
        "dropped": dropped,
        "errors": errors,
        "shards": shards,
        "clips": clips,
        "tim": options.num_frames,
        "settings": options.settings(),
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
    flows = [c["flow"] for c in info["clips"] if "flow" in c]
    if flows:
        sources = collections.Counter(entry["apex_source"] for entry in flows)
        lines.append(f"  motion: {flows[0]['method']} flow onset -> apex of {len(flows)} clip(s) "
                     "(apex " + ", ".join(f"{k} {n}" for k, n in sorted(sources.items())) + ")")
    if info["dropped"]:
        lines.append(f"  dropped by the class scheme: {len(info['dropped'])} clip(s): "
                     + ", ".join(f"{e} {n}" for e, n in info["dropped_emotions"].items()))
    if "check" in info:
        lines.append(f"  {info['check']['what']}: " + ("; ".join(info["check"]["differences"])
                                                       or "as published"))
    errors = info["errors"]
    if errors:
        lines.append(f"  {len(errors)} clip(s) skipped (reasons in dataset.json):")
        shown = errors if len(errors) <= 12 else errors[:10]
        lines += [f"    {e['clip']}: {e['reason']}" for e in shown]
        if len(shown) < len(errors):
            lines.append(f"    ... and {len(errors) - len(shown)} more")
    return "\n".join(lines)
