"""SMIC (Li et al. 2013): labels from folder names, no coding spreadsheet.

A release holds one folder per camera, `HS` (100 fps), `VIS` and `NIR` (25 fps), laid out as

    HS/s1/micro/negative/s1_ne_01/image000101.bmp ...
    HS/s1/micro/positive/s1_po_01/...
    HS/s1/micro/surprise/s1_sur_01/...
    HS/s1/non_micro/s1_no_01/...

The subject is the folder under the part (`s1`), the clip id `s1/s1_ne_01`, the emotion the
folder under `micro/` (or `non_micro`, kept as `non-micro` for the `smic4` scheme). Nothing
is coded inside a clip: the whole folder is converted and onset, apex and offset are
`UNKNOWN`. The part folder may sit anywhere under the root (archives unpack to `SMIC/SMIC/HS`
or `SMIC_all_raw/HS`).
"""

from __future__ import annotations

import pathlib

from data_prep import classes
from data_prep.clip import ClipSource
from data_prep.databases import Release
from data_prep.frames import IMAGE_SUFFIXES, ClipError, frame_files

FPS = {"HS": 100.0, "VIS": 25.0, "NIR": 25.0}
"""The parts (cameras) of SMIC and their frame rates."""

MICRO, NON_MICRO = "micro", "non_micro"
SEARCH_DEPTH = 4
"""How many folder levels under the root are searched for the part folder."""


def read(root, *, part: str = "HS") -> Release:
    """Reads one part of a SMIC release.

    Args:
        root: a folder holding the part folder at any depth up to `SEARCH_DEPTH`.
        part: `HS`, `VIS` or `NIR` (any case).

    Returns:
        A `Release`: one source per clip folder with at least 2 frames, and one error per
        folder that is not a usable clip (an emotion SMIC does not use, a clip folder outside
        an emotion folder, fewer than 2 frames, frames outside a clip folder), naming it.

    Raises:
        ValueError: an unknown part, or the part folder found twice at the same depth.
        FileNotFoundError: no part folder under `root` (lists the parts that are there).
    """
    part = part.upper()
    if part not in FPS:
        raise ValueError(f"SMIC part {part!r} is not one of {', '.join(FPS)}")
    folder = find_part(pathlib.Path(root), part)
    sources, errors = [], []
    for subject in _entries(folder):
        _read_subject(folder, subject, FPS[part], sources, errors)
    return Release(sources, errors, crop="detect",
                   details={"part": part, "folder": str(folder)})


def find_part(root: pathlib.Path, part: str) -> pathlib.Path:
    """The shallowest folder named `part` under `root` (or `root` itself).

    Raises:
        FileNotFoundError: `root` is missing or holds no `part` folder; the message lists the
            SMIC parts that are there.
        ValueError: two `part` folders at the same depth (names both).
    """
    if not root.is_dir():
        raise FileNotFoundError(f"SMIC root {root} is not a folder")
    if root.name.upper() == part:
        return root
    level, found = [root], {}
    for _ in range(SEARCH_DEPTH):
        children = [c for f in level for c in _entries(f) if c.is_dir()]
        for child in children:
            if child.name.upper() in FPS:
                found.setdefault(child.name.upper(), []).append(child)
        if part in found:
            if len(found[part]) > 1:
                raise ValueError(f"SMIC part {part} found twice under {root}: "
                                 f"{', '.join(str(p) for p in found[part])}; pass the folder "
                                 f"of one release as the root")
            return found[part][0]
        level = [c for c in children if c.name.upper() not in FPS]
    parts = sorted(p.name for paths in found.values() for p in paths)
    raise FileNotFoundError(f"no SMIC part folder {part} under {root} (parts found: "
                            f"{', '.join(parts) or 'none'})")


def _read_subject(part: pathlib.Path, subject: pathlib.Path, fps: float, sources, errors):
    if not subject.is_dir():
        _check_not_image(part, subject, errors)
        return
    for kind in _entries(subject):
        if kind.name == MICRO and kind.is_dir():
            for emotion in _entries(kind):
                _read_emotion(part, subject.name, emotion, fps, sources, errors)
        elif kind.name == NON_MICRO and kind.is_dir():
            for clip in _entries(kind):
                _add_clip(part, subject.name, NON_MICRO, clip, fps, sources, errors)
        elif kind.is_dir():
            what = "a clip folder outside" if _images(kind) else "not one of"
            _error(part, kind, errors, f"{kind} is {what} {MICRO}/<emotion>/ and {NON_MICRO}/ "
                                       f"of subject {subject.name}")
        else:
            _check_not_image(part, kind, errors)


def _read_emotion(part, subject: str, folder: pathlib.Path, fps, sources, errors):
    if not folder.is_dir():
        _check_not_image(part, folder, errors)
        return
    try:
        classes.normalise("smic", folder.name)
    except ValueError as error:
        what = "a clip folder outside an emotion folder" if _images(folder) else "not usable"
        _error(part, folder, errors, f"{folder} is {what}: {error}")
        return
    for clip in _entries(folder):
        _add_clip(part, subject, folder.name, clip, fps, sources, errors)


def _add_clip(part, subject: str, emotion: str, clip: pathlib.Path, fps, sources, errors):
    if not clip.is_dir():
        _check_not_image(part, clip, errors)
        return
    clip_id = f"{subject}/{clip.name}"
    try:
        count = len(frame_files(clip))
    except ClipError as error:
        errors.append({"clip": clip_id, "reason": str(error)})
        return
    if count < 2:
        errors.append({"clip": clip_id, "reason": f"clip folder {clip} holds {count} frame; "
                                                  f"at least 2 are needed"})
    elif any(s.clip_id == clip_id for s in sources):
        errors.append({"clip": clip_id, "reason": f"clip {clip.name} of subject {subject} is "
                                                  f"in two emotion folders (second: {clip})"})
    else:
        sources.append(ClipSource(clip_id=clip_id, subject=subject,
                                  emotion=classes.normalise("smic", emotion), path=clip, fps=fps))


def _entries(folder: pathlib.Path) -> list[pathlib.Path]:
    """A folder's entries in name order, without hidden files and macOS archive debris."""
    return sorted(p for p in folder.iterdir()
                  if not p.name.startswith(".") and p.name != "__MACOSX")


def _images(folder: pathlib.Path) -> list[pathlib.Path]:
    return [p for p in _entries(folder) if p.suffix.lower() in IMAGE_SUFFIXES]


def _check_not_image(part: pathlib.Path, path: pathlib.Path, errors) -> None:
    """Reports an image file outside a clip folder (other stray files are left alone)."""
    if path.suffix.lower() in IMAGE_SUFFIXES:
        _error(part, path, errors, f"image {path} is not inside a clip folder "
                                   f"(<subject>/{MICRO}/<emotion>/<clip>/)")


def _error(part: pathlib.Path, path: pathlib.Path, errors, reason: str) -> None:
    errors.append({"clip": path.relative_to(part).as_posix(), "reason": reason})
