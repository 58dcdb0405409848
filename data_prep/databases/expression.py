"""Still-image facial expression sets (TLCNN's first stage): every image is a one-frame clip.

Three layouts are recognised, the first two file by file (they may be mixed in one folder
tree, at any depth):

* KDEF and RaFD file names, which code the subject and the emotion:
  `AF01ANS.JPG` (session A/B, sex F/M, person 01, emotion AF AN DI HA NE SA SU, view S HL HR
  FL FR; subject `F01`; KDEF nests them in per-person folders `KDEF/AF01/`) and
  `Rafd090_01_Caucasian_female_angry_frontal.jpg` (camera angle, subject `01`, ethnicity,
  sex, emotion word, gaze frontal/left/right);
* one folder per emotion, `root/happy/*.jpg` (MMI, TFEID and exports of FER2013 to images;
  the image's own folder names the emotion, subject `unknown`; a folder named 0..6 is a
  FER2013 code);
* the FER2013 CSV (`fer2013.csv`, passed as the root itself): columns `emotion` (0..6 =
  angry, disgust, fear, happy, sad, surprise, neutral), `pixels` (2304 grey values of a
  48 x 48 face) and `Usage`; clip ids `fer2013/<row>`, row counted from 0 (file line row + 2).

Emotion codes, words and folder names all go through `classes.normalise("expression", ...)`.
"""

from __future__ import annotations

import collections
import csv
import os
import pathlib
import re

import numpy as np

from data_prep import classes
from data_prep.clip import ClipSource
from data_prep.databases import Release
from data_prep.frames import IMAGE_SUFFIXES, ClipError

UNKNOWN_SUBJECT = "unknown"
KDEF = re.compile(r"(?P<session>[AB])(?P<sex>[FM])(?P<person>\d{2})(?P<emotion>[A-Z]{2})"
                  r"(?P<view>S|HL|HR|FL|FR)", re.IGNORECASE)
RAFD = re.compile(r"Rafd(?P<angle>\d{3})_(?P<person>\d+)_(?P<ethnicity>[A-Za-z]+)_"
                  r"(?P<sex>[A-Za-z]+)_(?P<emotion>[A-Za-z]+)_(?P<gaze>frontal|left|right)",
                  re.IGNORECASE)
FER_SIZE = 48
FER_COLUMNS = ("emotion", "pixels", "Usage")
FER_CODES = ("0", "1", "2", "3", "4", "5", "6")
"""FER2013's emotion codes: angry, disgust, fear, happy, sad, surprise, neutral."""


def read(root) -> Release:
    """Reads an expression set: a folder of images (KDEF, RaFD, emotion folders) or the
    FER2013 CSV.

    Args:
        root: a folder, searched recursively, or a FER2013 CSV file.

    Returns:
        A `Release` of one-frame clips: `crop` is `detect` for image folders and `none` for
        FER2013 (already cropped faces). Images that match no layout, codes or folder names
        that are not emotions, a file name and a folder that disagree, and FER2013 rows
        that are not 48 x 48 values in 0..255 with a known emotion code are errors naming
        the file or row.

    Raises:
        FileNotFoundError: `root` is missing, or a folder holds no image files.
        ValueError: a file that is not a CSV, or a CSV without the FER2013 columns.
    """
    root = pathlib.Path(root)
    if root.is_file():
        return read_fer2013(root)
    if not root.is_dir():
        raise FileNotFoundError(f"expression root {root} does not exist")
    return read_images(root)


def read_images(root: pathlib.Path) -> Release:
    """Reads every image under a folder (layouts KDEF, RaFD and emotion folders).

    Raises:
        FileNotFoundError: no image file under `root` (names any CSV found, for FER2013).
    """
    images = _image_files(root)
    if not images:
        tables = sorted(str(p) for p in root.rglob("*.csv"))
        hint = (f"; for FER2013 pass the CSV itself as the root ({', '.join(tables)})"
                if tables else "")
        raise FileNotFoundError(f"no image files ({', '.join(sorted(IMAGE_SUFFIXES))}) under "
                                f"{root}{hint}")
    sources, errors, layouts = [], [], collections.Counter()
    for path in images:
        clip_id = path.relative_to(root).as_posix()
        try:
            layout, subject, emotion = image_label(path)
        except ClipError as error:
            errors.append({"clip": clip_id, "reason": str(error)})
            continue
        layouts[layout] += 1
        sources.append(ClipSource(clip_id=clip_id, subject=subject, emotion=emotion, path=path))
    return Release(sources, errors, crop="detect",
                   details={"layout": "images", "folder": str(root),
                            "layouts": dict(sorted(layouts.items()))})


def image_label(path: pathlib.Path) -> tuple[str, str, str]:
    """The layout, subject and canonical emotion of one image.

    The file name is tried first (KDEF, then RaFD), then the image's folder as an emotion
    folder. When both name an emotion they must agree.

    Returns:
        `(layout, subject, emotion)`, layout one of `KDEF`, `RaFD`, `emotion folder`.

    Raises:
        ClipError: nothing names an emotion, an unknown code, or name and folder disagree.
    """
    try:
        folder_emotion, folder_error = classes.normalise("expression", path.parent.name), None
    except ValueError as error:
        folder_emotion, folder_error = None, error
    coded = _coded(path)
    if coded is None:
        if folder_emotion is None:
            raise ClipError(f"image {path} matches no layout: its name is neither KDEF "
                            f"(AF01ANS.JPG) nor RaFD (Rafd090_01_Caucasian_female_angry_"
                            f"frontal.jpg) and its folder is not an emotion: {folder_error}")
        return "emotion folder", UNKNOWN_SUBJECT, folder_emotion
    layout, subject, emotion = coded
    if folder_emotion is not None and folder_emotion != emotion:
        raise ClipError(f"image {path}: its {layout} name says {emotion} but its folder "
                        f"{path.parent.name!r} says {folder_emotion}")
    return coded


def _coded(path: pathlib.Path) -> tuple[str, str, str] | None:
    """`(layout, subject, emotion)` from a KDEF or RaFD file name; None for other names."""
    for layout, pattern in (("KDEF", KDEF), ("RaFD", RAFD)):
        match = pattern.fullmatch(path.stem)
        if match is None:
            continue
        try:
            emotion = classes.normalise("expression", match["emotion"])
        except ValueError as error:
            raise ClipError(f"image {path} is named like {layout} but {error}") from None
        subject = (match["sex"] + match["person"]).upper() if layout == "KDEF" else match["person"]
        return layout, subject, emotion
    return None


def _image_files(root: pathlib.Path) -> list[pathlib.Path]:
    """Every image file under `root`, in path order, skipping hidden and macOS debris."""
    found = []
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = [d for d in subfolders if not d.startswith(".") and d != "__MACOSX"]
        found += [pathlib.Path(folder, f) for f in files
                  if not f.startswith(".") and pathlib.Path(f).suffix.lower() in IMAGE_SUFFIXES]
    return sorted(found)


def read_fer2013(csv_path: pathlib.Path) -> Release:
    """Reads the FER2013 CSV: one-frame clips whose `pixels` are uint8 `[1, 48, 48]`.

    Raises:
        ValueError: not a `.csv` file, no `emotion`, `pixels` and `Usage` columns (names the
            columns found), or no rows.
    """
    if csv_path.suffix.lower() != ".csv":
        raise ValueError(f"expression root {csv_path} is a file but not a CSV; pass a folder "
                         f"of images or the FER2013 CSV")
    sources, errors, usage = [], [], collections.Counter()
    with open(csv_path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header = [c.strip() for c in next(reader, [])]
        missing = [c for c in FER_COLUMNS if c not in header]
        if missing:
            raise ValueError(f"FER2013 CSV {csv_path} lacks column(s) {', '.join(missing)}; "
                             f"found {', '.join(header) or 'no header'}; expected "
                             f"emotion,pixels,Usage")
        emotion_at, pixels_at, usage_at = (header.index(c) for c in FER_COLUMNS)
        for row_number, row in enumerate(reader):
            if not row:  # a blank line (one often ends the file)
                continue
            clip_id = f"fer2013/{row_number}"
            try:
                emotion, pixels = _fer_row(row, emotion_at, pixels_at, usage_at)
            except ClipError as error:
                errors.append({"clip": clip_id, "reason": f"{csv_path} row {row_number} (line "
                                                          f"{row_number + 2}): {error}"})
                continue
            usage[row[usage_at].strip()] += 1
            sources.append(ClipSource(clip_id=clip_id, subject=UNKNOWN_SUBJECT, emotion=emotion,
                                      path=csv_path, pixels=pixels))
    if not sources and not errors:
        raise ValueError(f"FER2013 CSV {csv_path} has a header but no rows")
    return Release(sources, errors, crop="none",
                   details={"layout": "fer2013", "file": str(csv_path),
                            "usage": dict(sorted(usage.items()))})


def _fer_row(row: list, emotion_at: int, pixels_at: int, usage_at: int):
    """`(canonical emotion, uint8 [1, 48, 48])` of one FER2013 row.

    Raises:
        ClipError: a short row, an emotion code not in 0..6, or pixels that are not 2304
            integers in 0..255.
    """
    if len(row) <= max(emotion_at, pixels_at, usage_at):
        raise ClipError(f"{len(row)} field(s), expected {len(FER_COLUMNS)} "
                        f"({','.join(FER_COLUMNS)})")
    code = row[emotion_at].strip()
    if code not in FER_CODES:
        raise ClipError(f"emotion code {code!r} is not one of {', '.join(FER_CODES)}")
    try:
        # fromstring's text mode (sep=" ") parses in C, 5x faster than split(); it raises
        # on any token that is not an integer.
        values = np.fromstring(row[pixels_at], dtype=np.int64, sep=" ")
    except ValueError:
        raise ClipError(f"pixels hold a value that is not an integer: "
                        f"{row[pixels_at][:40]!r}...") from None
    if values.size != FER_SIZE * FER_SIZE:
        raise ClipError(f"{values.size} pixel values, expected {FER_SIZE * FER_SIZE} "
                        f"({FER_SIZE} x {FER_SIZE})")
    if values.min() < 0 or values.max() > 255:
        raise ClipError(f"pixel values {values.min()}..{values.max()} are outside 0..255")
    emotion = classes.normalise("expression", code)
    return emotion, values.astype(np.uint8).reshape(1, FER_SIZE, FER_SIZE)
