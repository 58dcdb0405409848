"""Tiny copies of the coded micro-expression databases, written in their real layouts.

Each builder (`casme2`, `samm`, `casme`, `casme3`) writes frames and a coding spreadsheet
under a folder, with the quirks of the real release (see `data_prep/databases/`), and returns
a `Layout`: the clips a reader should return and the broken clips it should report. Frames
are 24x32 JPEGs of one grey level that encodes the frame number (`frame_value`), so a test
can tell which frames were read. With `face=True` a builder writes instead frames of a real
face (`tests/face_frames.py`, 160x192): the clip's emotion changes a facial region
(`face_frames.region_of`) from nothing at the onset to full at the apex and back at the
offset (frames outside onset..offset unchanged), each clip shifted and brightened a little
(`face_frames.variant_of` of `subject/Filename/onset`), so `--crop detect` finds a face and a
classifier has something to learn.

Clips are given as `(subject folder, Filename, emotion as the spreadsheet writes it)`; clip
`i` is coded onset `first + 10 i`, apex onset + 2, offset onset + 4 (5 frames), and releases
whose folders hold whole recordings get 2 more frames on each side. `broken=` adds, for the
first subject, one clip per named case (`BROKEN`).
"""

from __future__ import annotations

import dataclasses
import pathlib

import cv2
import numpy as np
import openpyxl

from data_prep import classes
from tests import face_frames
from tfmer.features import UNKNOWN

HEIGHT, WIDTH = 24, 32
CLIP_LENGTH = 5

BROKEN = {
    "no_folder": "a row whose clip folder is missing",
    "no_row": "a clip folder that no row names",
    "unknown_emotion": "a row whose emotion the database does not use ('joy')",
    "apex_outside": "a row whose apex is after its offset",
    "missing_onset": "a folder that lacks the onset frame",
    "one_frame": "a clip of one frame (onset = apex = offset)",
    "bad_frame": "an onset cell that is not a number ('<onset>a')",
    "duplicate": "the first clip's row written twice",
}
"""The broken cases the builders can add, and what each writes."""

UNKNOWN_EMOTION = "joy"


def frame_value(number: int) -> int:
    """The grey level of frame `number`: 20, 24, ..., 216, repeating every 50 frames."""
    return 20 + 4 * (number % 50)


@dataclasses.dataclass(frozen=True)
class Clip:
    """A clip a reader should return."""

    clip_id: str
    subject: str
    emotion: str
    folder: pathlib.Path
    onset: int
    apex: int
    offset: int

    @property
    def num_frames(self) -> int:
        """Frames onset..offset, inclusive."""
        return self.offset - self.onset + 1


@dataclasses.dataclass(frozen=True)
class Layout:
    """What a builder wrote.

    Attributes:
        root: the folder to give the reader.
        spreadsheet: the coding spreadsheet written.
        clips: the usable clips, sorted by (subject, clip id).
        broken: clip id -> broken case (a key of `BROKEN`) for each clip to be reported.
        release: the release written (`raw`, `selected`, `cropped`).
        crop: the crop the release needs.
        fps: the database's frame rate.
    """

    root: pathlib.Path
    spreadsheet: pathlib.Path
    clips: tuple
    broken: dict
    release: str
    crop: str
    fps: float


@dataclasses.dataclass(frozen=True)
class _Entry:
    """One planned clip: its spreadsheet row and its frame folder."""

    subject: str
    name: str
    label: str
    onset: int
    apex: int
    offset: int
    frames: range
    row: bool = True
    onset_cell: object = None
    case: str = ""

    @property
    def onset_written(self):
        return self.onset if self.onset_cell is None else self.onset_cell


def _plan(clips, broken, *, first: int, context: int, new_name, unknown_apex=()) -> list:
    """The entries of the clips and of one extra clip of the first subject per broken case."""
    unknown = set(broken) - set(BROKEN)
    if unknown:
        raise ValueError(f"unknown broken case(s) {sorted(unknown)}; known: {', '.join(BROKEN)}")
    entries = []
    for i, (subject, name, label) in enumerate(clips):
        onset = first + 10 * i
        apex = UNKNOWN if f"{subject}/{name}" in unknown_apex else onset + 2
        entries.append(_Entry(subject, name, label, onset, apex, onset + CLIP_LENGTH - 1,
                              range(onset - context, onset + CLIP_LENGTH + context)))
    template = entries[0]
    for k, case in enumerate(broken):
        onset = first + 10 * (len(clips) + k)
        entry = dataclasses.replace(
            template, name=new_name(template.subject, k), onset=onset, apex=onset + 2,
            offset=onset + CLIP_LENGTH - 1,
            frames=range(onset - context, onset + CLIP_LENGTH + context), case=case)
        entries.append(_broken(entry, template, context))
    return entries


def _broken(entry: _Entry, template: _Entry, context: int) -> _Entry:
    if entry.case == "duplicate":
        return dataclasses.replace(template, frames=range(0), case="duplicate")
    onset, offset = entry.onset, entry.offset
    changes = {
        "no_folder": dict(frames=range(0)),
        "no_row": dict(row=False),
        "unknown_emotion": dict(label=UNKNOWN_EMOTION),
        "apex_outside": dict(apex=offset + 1),
        "missing_onset": dict(frames=range(onset + 1, offset + 1 + context)),
        "one_frame": dict(apex=onset, offset=onset, frames=range(onset - context,
                                                                 onset + 1 + context)),
        "bad_frame": dict(onset_cell=f"{onset}a"),
    }
    return dataclasses.replace(entry, **changes[entry.case])


def _write_frames(folder: pathlib.Path, numbers, name, *, grey: bool, entry=None) -> None:
    """Writes frames `numbers` named `name(number)`; no folder for no numbers. With an
    `entry`, frames of a real face changed as its label says (`_face_frame`), else flat
    `frame_value` images."""
    for number in numbers:
        folder.mkdir(parents=True, exist_ok=True)
        if entry is not None:
            image = _face_frame(entry, number, grey=grey)
        else:
            image = np.full((HEIGHT, WIDTH), frame_value(number), np.uint8)
            image = image if grey else np.dstack([image] * 3)
        cv2.imwrite(str(folder / name(number)), image)


def _face_frame(entry: _Entry, number: int, *, grey: bool) -> np.ndarray:
    """Frame `number` of an entry's clip with `face=True` (the module docstring); an apex
    that is unknown or outside onset..offset peaks at the middle frame instead."""
    apex = entry.apex
    if not entry.onset <= apex <= entry.offset:
        apex = (entry.onset + entry.offset) // 2
    strength = face_frames.intensity(number, entry.onset, apex, entry.offset)
    variant = face_frames.variant_of(f"{entry.subject}/{entry.name}/{entry.onset}")
    return face_frames.frame(entry.label, strength, variant, grey=grey)


def _write_workbook(path: pathlib.Path, sheets: dict) -> None:
    """Writes `{sheet name: {row number: [cells]}}` (None cells stay blank)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    for title, rows in sheets.items():
        sheet = workbook.create_sheet(title)
        for number, cells in rows.items():
            for column, value in enumerate(cells, start=1):
                if value is not None:
                    sheet.cell(row=number, column=column, value=value)
    workbook.save(path)


def _layout(root, spreadsheet, database, entries, folder, clip_id, *, release, crop, fps):
    """The `Layout` of written entries (`folder(entry)` -> frame folder, `clip_id(entry)`)."""
    clips = [Clip(clip_id(e), e.subject, classes.normalise(database, e.label), folder(e),
                  e.onset, e.apex, e.offset) for e in entries if not e.case]
    broken = {clip_id(e): e.case for e in entries if e.case}
    return Layout(root, spreadsheet, tuple(sorted(clips, key=lambda c: (c.subject, c.clip_id))),
                  broken, release, crop, fps)


def _table(header: list, entries, row) -> dict:
    """`{1: header, 2: row(entry), ...}` for the entries that have a row."""
    rows = [row(e) for e in entries if e.row]
    return {number: cells for number, cells in enumerate([header] + rows, start=1)}


# --- CASME II ------------------------------------------------------------------------------

CASME2_CLIPS = (("sub01", "EP02_01f", "happiness"), ("sub01", "EP19_05f", "repression"),
                ("sub02", "EP01_11f", "disgust"), ("sub02", "EP09_01", "others"))
CASME2_RELEASES = {"raw": "CASME2_RAW", "selected": "CASME2_RAW_selected", "cropped": "Cropped"}


def casme2(root, *, clips=CASME2_CLIPS, release: str = "raw", broken=(),
           unknown_apex=("sub01/EP19_05f",), doubled: bool = True,
           face: bool = False) -> Layout:
    """Writes a CASME II release.

    Quirks: the frames sit in `CASME2_RAW/CASME2_RAW/` (`doubled`); `Subject` is written as
    the number 1 for `sub01`; blank columns after `Filename` and `OffsetFrame`; `ApexFrame`
    `/` for the clips in `unknown_apex`; frame numbers absolute (`img46.jpg`); the cropped
    release names frames `reg_img46.jpg`; the raw release has frames around onset..offset.

    Args:
        root: the folder to write into.
        clips: `(subject folder, Filename, Estimated Emotion)` per clip.
        release: `raw`, `selected` or `cropped`.
        broken: cases of `BROKEN` to add.
        unknown_apex: clip ids (`sub01/EP19_05f`) whose apex is written `/`.
        doubled: nest the frame folder in a folder of the same name.
        face: write frames of a real face (the module docstring), not flat ones.
    """
    root = pathlib.Path(root)
    top = root / CASME2_RELEASES[release]
    base = top / top.name if doubled else top
    prefix = "reg_" if release == "cropped" else ""
    entries = _plan(clips, broken, first=46, context=2 if release == "raw" else 0,
                    new_name=lambda subject, k: f"EP{90 + k}_01f", unknown_apex=unknown_apex)
    for e in entries:
        _write_frames(base / e.subject / e.name, e.frames, lambda n: f"{prefix}img{n}.jpg",
                      grey=False, entry=e if face else None)
    header = ["Subject", "Filename", None, "OnsetFrame", "ApexFrame", "OffsetFrame", None,
              "Action Units", "Estimated Emotion"]
    path = top / "CASME2-coding-20140508.xlsx"
    _write_workbook(path, {"Sheet1": _table(header, entries, lambda e: [
        int(e.subject[len("sub"):]), e.name, None, e.onset_written,
        "/" if e.apex == UNKNOWN else e.apex, e.offset, None, "4+7", e.label])})
    return _layout(root, path, "casme2", entries, lambda e: base / e.subject / e.name,
                   lambda e: f"{e.subject}/{e.name}", release=release,
                   crop="none" if release == "cropped" else "detect", fps=200.0)


# --- SAMM ----------------------------------------------------------------------------------

SAMM_CLIPS = (("006", "006_1_2", "Happiness"), ("006", "006_5_9", "Other"),
              ("007", "007_3_1", "Anger"), ("007", "007_6_4", "Surprise"))
SAMM_HEADER = ["Subject", "Filename", "Inducement Code", "Onset Frame", "Apex Frame",
               "Offset Frame", "Duration", "Micro", "Action Units", "Estimated Emotion",
               "Objective Classes", "Notes"]


def samm(root, *, clips=SAMM_CLIPS, broken=(), unknown_apex=("007/007_3_1",),
         header_row: int = 14, face: bool = False) -> Layout:
    """Writes a SAMM release.

    Quirks: the workbook's first sheet is not `MICRO_ONLY` (a decoy with other clips);
    `MICRO_ONLY` has notes above its header in row `header_row`; `Subject` is the number 6
    for folder `006`; `Apex Frame` -1 for the clips in `unknown_apex`; grey frames named
    `006_05562.jpg` (5 digits, absolute numbers), 2 frames around onset..offset.

    Args:
        root: the folder to write into.
        clips: `(subject folder, Filename, Estimated Emotion)` per clip.
        broken: cases of `BROKEN` to add.
        unknown_apex: clip ids whose apex is written -1.
        header_row: the row of the header in `MICRO_ONLY`.
        face: write frames of a real face (the module docstring; grey), not flat ones.
    """
    root = pathlib.Path(root)
    base = root / "SAMM"
    entries = _plan(clips, broken, first=5562, context=2,
                    new_name=lambda subject, k: f"{subject}_9_{k + 1}", unknown_apex=unknown_apex)
    for e in entries:
        _write_frames(base / e.subject / e.name, e.frames,
                      lambda n, s=e.subject: f"{s}_{n:05d}.jpg", grey=True,
                      entry=e if face else None)

    def row(e):
        return [int(e.subject), e.name, 1, e.onset_written, e.apex, e.offset,
                e.offset - e.onset + 1, "Micro - 1/2", "R12", e.label, 2, None]

    notes = {1: ["SAMM Micro-Expression Database: FACS codes"],
             3: ["Notes: frame numbers are those of the image files; -1 = not coded"]}
    table = {number + header_row - 1: cells
             for number, cells in _table(SAMM_HEADER, entries, row).items()}
    decoy = _table(SAMM_HEADER, [dataclasses.replace(entries[0], name="999_9_9")], row)
    path = root / "SAMM_Micro_FACS_Codes_v2.xlsx"
    _write_workbook(path, {"MICRO_AND_MACRO": decoy, "MICRO_ONLY": {**notes, **table}})
    return _layout(root, path, "samm", entries, lambda e: base / e.subject / e.name,
                   lambda e: f"{e.subject}/{e.name}", release="raw", crop="detect", fps=200.0)


# --- CASME ---------------------------------------------------------------------------------

CASME_CLIPS = (("sub01", "EP01_5", "amusement"), ("sub01", "EP03_2", "tense"),
               ("sub08", "EP01_12", "disgust"), ("sub09", "EP05", "repression"))
CASME_SECTION_B = 8
"""The first subject of section B."""


def casme(root, *, clips=CASME_CLIPS, broken=(), unknown_apex=(),
          face: bool = False) -> Layout:
    """Writes a CASME release.

    Quirks: two sections, `CASME_A/Section A/sub01/...` for subjects 1-7 and
    `CASME_B/Section B/sub08/...` after; frames named `EP01_5-46.jpg`; `Subject` the number
    1 for `sub01`; beside the CASME coding file, a CASME II coding file the reader must not
    take.

    Args:
        root: the folder to write into.
        clips: `(subject folder, Filename, Emotion)` per clip.
        broken: cases of `BROKEN` to add.
        unknown_apex: clip ids whose apex is written `/`.
        face: write frames of a real face (the module docstring), not flat ones.
    """
    root = pathlib.Path(root)

    def folder(e):
        section = "B" if int(e.subject[len("sub"):]) >= CASME_SECTION_B else "A"
        return root / f"CASME_{section}" / f"Section {section}" / e.subject / e.name

    entries = _plan(clips, broken, first=30, context=2,
                    new_name=lambda subject, k: f"EP{90 + k}_1", unknown_apex=unknown_apex)
    for e in entries:
        _write_frames(folder(e), e.frames, lambda n, name=e.name: f"{name}-{n}.jpg", grey=False,
                      entry=e if face else None)
    header = ["Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "Duration",
              "Action Units", "Emotion"]
    path = root / "CASME-coding-20130410.xlsx"
    _write_workbook(path, {"Sheet1": _table(header, entries, lambda e: [
        int(e.subject[len("sub"):]), e.name, e.onset_written,
        "/" if e.apex == UNKNOWN else e.apex, e.offset, e.offset - e.onset + 1, "12",
        e.label])})
    _write_workbook(root / "CASME2-coding-20140508.xlsx",
                    {"Sheet1": {1: ["Subject", "Filename", "OnsetFrame"], 2: [1, "EP02_01f", 1]}})
    return _layout(root, path, "casme", entries, folder, lambda e: f"{e.subject}/{e.name}",
                   release="raw", crop="detect", fps=60.0)


# --- CAS(ME)^3 part A ----------------------------------------------------------------------

CASME3_CLIPS = (("spNO.1", "a", "happy"), ("spNO.1", "a", "disgust"),
                ("spNO.2", "b", "surprise"), ("spNO.2", "c", "others"))
"""The first two rows cut two samples from one video."""


def casme3(root, *, clips=CASME3_CLIPS, broken=(), unknown_apex=(),
           face: bool = False) -> Layout:
    """Writes CAS(ME)^3 part A.

    Quirks: several rows per video (the default's first two); frames of a video in
    `part_A/data/part_A/spNO.1/a/color/123.jpg`, with a `depth/` folder beside; the label
    spreadsheet in `part_A/annotation/`, sheet `label`, lower-case `emotion` column.

    Args:
        root: the folder to write into.
        clips: `(subject, Filename, emotion)` per sample; repeat a subject and Filename for
            several samples of one video.
        broken: cases of `BROKEN` to add, but `no_row` (a video without samples is no clip).
        unknown_apex: `subject/Filename` whose apex is written `/`.
        face: write colour frames of a real face (the module docstring), not flat ones
            (the depth frames stay flat).
    """
    if "no_row" in broken:
        raise ValueError("CAS(ME)^3 videos without rows are not clips: no_row does not apply")
    root = pathlib.Path(root)
    base = root / "part_A" / "data" / "part_A"
    entries = _plan(clips, broken, first=120, context=2,
                    new_name=lambda subject, k: chr(ord("p") + k), unknown_apex=unknown_apex)
    for e in entries:
        _write_frames(base / e.subject / e.name / "color", e.frames, lambda n: f"{n}.jpg",
                      grey=False, entry=e if face else None)
        _write_frames(base / e.subject / e.name / "depth", e.frames[:1], lambda n: f"{n}.png",
                      grey=True)
    header = ["Subject", "Filename", "Onset", "Apex", "Offset", "AU", "Objective class",
              "emotion"]
    path = root / "part_A" / "annotation" / "cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx"
    _write_workbook(path, {"label": _table(header, entries, lambda e: [
        e.subject, e.name, e.onset_written, "/" if e.apex == UNKNOWN else e.apex, e.offset,
        "AU12", "I", e.label])})
    return _layout(root, path, "casme3", entries, lambda e: base / e.subject / e.name / "color",
                   lambda e: f"{e.subject}/{e.name}/{e.onset_written}", release="raw",
                   crop="detect", fps=30.0)
