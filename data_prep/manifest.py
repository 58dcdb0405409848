"""The `manifest` source: a CSV listing clips (video files or frame folders).

Header `path,subject,label` and optionally `onset,apex,offset,fps,landmarks,id`:

* `path`: a video file or a folder of frame images, relative to the CSV's folder; one video
  may be listed several times, one row per clip cut from it (its onset and offset);
* `onset`, `apex`, `offset`: frame numbers (the number in a frame file's name, e.g.
  `img46.jpg` is frame 46; the 0-based frame index for videos); empty when unknown;
* `fps`: the recording's frame rate (for videos, read from the file when empty);
* `landmarks`: a text file of 68 lines `x y`, the first stored frame's landmarks in its
  pixel coordinates (iBUG 300-W order), relative to the CSV's folder;
* `id`: the clip's id; empty: the path, or, for a path listed more than once, the path and
  the segment, `path@onset-offset` (`start` / `end` where unknown).

Two rows of one clip id are refused, naming both lines: an exact repeat of a row, or two
rows of one path and segment without distinct ids.
"""

from __future__ import annotations

import csv
import pathlib

from data_prep import clip, databases
from data_prep.clip import ClipSource
from data_prep.frames import ClipError
from tfmer.records import UNKNOWN

REQUIRED = ("path", "subject", "label")
OPTIONAL = ("onset", "apex", "offset", "fps", "landmarks", "id")


def read(csv_path) -> tuple[list[ClipSource], list[dict]]:
    """Reads a manifest CSV.

    Returns:
        `(sources, errors)`: the usable rows as `ClipSource`s and one `{"clip", "reason"}`
        per row that cannot be used (missing path, bad frame numbers, a clip id listed
        twice).

    Raises:
        FileNotFoundError: the CSV does not exist.
        ValueError: a required column is missing (naming the file and the columns found).
    """
    csv_path = pathlib.Path(csv_path)
    if not csv_path.is_file():
        raise FileNotFoundError(f"manifest {csv_path} does not exist")
    with open(csv_path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        columns = [c.strip() for c in reader.fieldnames or []]
        missing = [c for c in REQUIRED if c not in columns]
        if missing:
            raise ValueError(f"manifest {csv_path} lacks column(s) {', '.join(missing)}; "
                             f"found {', '.join(columns) or 'no header'}; "
                             f"expected {','.join(REQUIRED)}[,{','.join(OPTIONAL)}]")
        rows = [{k.strip(): (v or "").strip() for k, v in row.items() if k} for row in reader]
    listings = {}
    for row in rows:
        listings[row["path"]] = listings.get(row["path"], 0) + 1
    sources, errors, seen = [], [], {}
    for line, row in enumerate(rows, start=2):
        clip_id = row["path"] or f"line {line}"
        try:
            source = _source(csv_path.parent, row, line, segmented=listings[row["path"]] > 1)
            if source.clip_id in seen:
                first, first_row = seen[source.clip_id]
                if first_row == row:
                    raise ClipError(f"line {line} repeats line {first}")
                raise ClipError(f"line {line}: clip {source.clip_id} is already listed on line "
                                f"{first}; give the rows distinct ids (an `id` column) or "
                                f"different onset/offset")
            seen[source.clip_id] = (line, row)
            sources.append(source)
        except ClipError as error:
            errors.append({"clip": clip_id, "reason": str(error)})
    return sources, errors


def _clip_id(row: dict, onset: int, offset: int, segmented: bool) -> str:
    """The row's `id`, else its path, with the segment when the path is listed twice."""
    if row.get("id"):
        return row["id"]
    path = row["path"].strip("/")
    if not segmented:
        return path
    start = "start" if onset == UNKNOWN else onset
    end = "end" if offset == UNKNOWN else offset
    return f"{path}@{start}-{end}"


def _source(folder: pathlib.Path, row: dict, line: int, segmented: bool) -> ClipSource:
    for column in REQUIRED:
        if not row.get(column):
            raise ClipError(f"line {line}: column {column} is empty")
    path = folder / row["path"]
    if not path.exists():
        raise ClipError(f"line {line}: path {path} does not exist")
    onset, apex, offset = (_int(row, c, line) for c in ("onset", "apex", "offset"))
    known = [v for v in (onset, apex, offset) if v != UNKNOWN]
    if known != sorted(known):
        raise ClipError(f"line {line}: frames must satisfy onset <= apex <= offset, got "
                        f"onset {onset}, apex {apex}, offset {offset}")
    landmarks = folder / row["landmarks"] if row.get("landmarks") else None
    if landmarks is not None and not landmarks.is_file():
        raise ClipError(f"line {line}: landmarks file {landmarks} does not exist")
    try:
        fps = float(row["fps"]) if row.get("fps") else 0.0
    except ValueError:
        raise ClipError(f"line {line}: fps {row['fps']!r} is not a number") from None
    return ClipSource(clip_id=_clip_id(row, onset, offset, segmented), subject=row["subject"],
                      emotion=row["label"], path=path, onset=onset, apex=apex,
                      offset=offset, fps=fps, landmarks=landmarks)


def _int(row: dict, column: str, line: int) -> int:
    text = row.get(column, "")
    if not text:
        return UNKNOWN
    try:
        return int(float(text))
    except ValueError:
        raise ClipError(f"line {line}: {column} {text!r} is not a frame number") from None


def convert_manifest(csv_path, out_dir, *, classes="source", name="manifest", options=None):
    """Converts the clips of a manifest CSV to `out_dir`; returns the `dataset.json` content.

    Args:
        csv_path: the manifest CSV.
        out_dir: output folder.
        classes: a class scheme for `data_prep.classes.resolve` (`source`, `tlcnn4`, `a,b,c`).
        name: dataset name, the namespace of subject ids.
        options: `data_prep.clip.ConvertOptions`.
    """
    sources, errors = read(csv_path)
    release = databases.Release(sources, errors, crop="none", details={
        "converter": "manifest", "root": str(pathlib.Path(csv_path).resolve())})
    return databases.convert_release(name, release, out_dir, classes=classes,
                                     options=options or clip.ConvertOptions())
