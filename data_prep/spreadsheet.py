"""Coding spreadsheets of the micro-expression databases and the clips they code.

CASME, CASME II, SAMM and CAS(ME)^3 ship their frames in `<subject>/<clip>/` folders and a
spreadsheet (`.xlsx`, `.xls` or `.csv`) with one row per coded clip: subject, clip folder
name, onset, apex and offset frame numbers, emotion. The spreadsheets differ in small ways
that this module absorbs once for all of them:

* notes above the header (SAMM): the header is the first row with a `Subject` cell;
* column spellings (`OnsetFrame`, `Onset Frame`, `Onset`): `column_key` gives one key;
* blank columns (CASME II): dropped;
* numbers read as text or floats (`46.0`), `/`, blank or negative for a frame that is not
  coded: `frame_number`.

`read_release` turns the rows into `ClipSource`s the same way for every database, given its
`Database` description: a row becomes a clip when its subject, frame numbers and emotion
parse, its clip folder exists once under the root and holds the onset and offset frames and
at least 2 frames between them. Every other row, and every clip folder no row names, is an
error naming the clip and the cause.
"""

from __future__ import annotations

import csv
import dataclasses
import fnmatch
import math
import numbers
import os
import pathlib
import re
from typing import Callable

import pandas as pd

from data_prep import classes
from data_prep.clip import ClipSource
from data_prep.databases import Release
from data_prep.frames import ClipError, frame_files
from tfmer.records import UNKNOWN

HEADER = "subject"
"""The header row is the first row with a cell that reads this (any case)."""

CLIP_COLUMNS = ("subject", "filename", "onset", "apex", "offset", "emotion")
"""The columns `read_release` reads (keys of `column_key`; `emotion` may be a longer name
that contains it, e.g. `Estimated Emotion`)."""

_NOT_CODED = "/"
_IGNORED = ("__MACOSX",)


# --- Reading a sheet -----------------------------------------------------------------------

def column_key(name) -> str:
    """A header cell -> the key the readers use: lower case letters and digits only, and
    no trailing `frame` (`OnsetFrame`, `Onset Frame` and `onset` all give `onset`)."""
    key = re.sub(r"[^a-z0-9]", "", str(name).lower())
    return key[:-len("frame")] if key.endswith("frame") and key != "frame" else key


@dataclasses.dataclass(frozen=True)
class Row:
    """One row under the header.

    Attributes:
        number: the row number a spreadsheet program shows (1-based; the CSV line number).
        cells: column key -> the value as read (None for a blank cell).
    """

    number: int
    cells: dict


@dataclasses.dataclass(frozen=True)
class Sheet:
    """The table of a coding spreadsheet.

    Attributes:
        path: the file.
        name: the sheet read (empty for a CSV).
        header_row: the header's row number.
        columns: column key -> the header as written, for messages; blank columns dropped.
        rows: the rows under the header that are not blank, in order.
    """

    path: pathlib.Path
    name: str
    header_row: int
    columns: dict
    rows: tuple

    def where(self, row: Row) -> str:
        """`CASME2-coding-20140508.xlsx row 17`, the prefix of every message about a row."""
        return f"{self.path.name} row {row.number}"

    def column(self, key: str) -> str:
        """The key of the column named `key`, or else of the one column whose key holds it.

        Raises:
            ValueError: no such column, or several that hold `key` (names the file, the
                sheet and the columns found).
        """
        if key in self.columns:
            return key
        found = [k for k in self.columns if key in k]
        if len(found) == 1:
            return found[0]
        what = ("several columns match " + ", ".join(self.columns[k] for k in found)) if found \
            else "no such column"
        raise ValueError(f"{self._describe()} has no single column {key!r} ({what}); "
                         f"columns: {', '.join(map(str, self.columns.values()))}")

    def _describe(self) -> str:
        sheet = f" sheet {self.name!r}" if self.name else ""
        return f"coding spreadsheet {self.path}{sheet} (header in row {self.header_row})"


def read_sheet(path, *, sheet: str | None = None) -> Sheet:
    """Reads the table of a coding spreadsheet.

    Args:
        path: an `.xlsx`, `.xlsm`, `.xls` or `.csv` file (for `.xls`, pandas needs the
            `python-calamine` or `xlrd` package, and names it when it is missing).
        sheet: the sheet to read when the workbook has one of that name (any case); the
            first sheet otherwise.

    Returns:
        A `Sheet` whose header is the first row with a `Subject` cell.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a file that cannot be read, or no header row (one line, naming the file).
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"coding spreadsheet {path} does not exist")
    try:
        name, table = _read_table(path, sheet)
    except Exception as error:  # noqa: BLE001 - pandas, openpyxl and xlrd raise many types
        reason = (str(error).strip().splitlines() or [""])[0]
        raise ValueError(f"cannot read coding spreadsheet {path}: "
                         f"{type(error).__name__}: {reason}") from None
    cells = [[None if _blank(v) else v for v in row] for row in table]
    header = next((i for i, row in enumerate(cells)
                   if any(isinstance(v, str) and v.strip().lower() == HEADER for v in row)),
                  None)
    if header is None:
        where = f" sheet {name!r}" if name else ""
        raise ValueError(f"coding spreadsheet {path}{where} has no header row (a row with a "
                         f"'Subject' cell)")
    columns, positions = {}, {}
    for position, title in enumerate(cells[header]):
        if title is None or str(title).startswith("Unnamed:"):  # pandas' name for a blank
            continue
        key = column_key(title)
        if key in columns:
            raise ValueError(f"coding spreadsheet {path}: columns {columns[key]!r} and "
                             f"{title!r} in row {header + 1} mean the same")
        columns[key], positions[key] = str(title).strip(), position
    rows = tuple(Row(i + 1, {k: _cell(cells[i], p) for k, p in positions.items()})
                 for i in range(header + 1, len(cells))
                 if any(v is not None for v in cells[i]))
    return Sheet(path, name, header + 1, columns, rows)


def _read_table(path: pathlib.Path, sheet: str | None):
    """`(sheet name, rows of raw cells)` of a spreadsheet, every row from row 1 on."""
    if path.suffix.lower() == ".csv":
        with open(path, newline="", encoding="utf-8-sig") as f:
            return "", list(csv.reader(f))
    with pd.ExcelFile(path) as workbook:
        names = [str(n) for n in workbook.sheet_names]
        wanted = [n for n in names if sheet is not None and n.lower() == sheet.lower()]
        name = (wanted or names)[0]
        table = pd.read_excel(workbook, sheet_name=name, header=None, dtype=object)
    return name, table.values.tolist()


def _blank(value) -> bool:
    return (value is None or isinstance(value, float) and math.isnan(value)
            or isinstance(value, str) and not value.strip())


def _cell(row: list, position: int):
    return row[position] if position < len(row) else None


# --- Cells ---------------------------------------------------------------------------------

def _whole_number(value) -> int | None:
    """`46`, `46.0`, `'46'`, `' 46.0 '` -> 46; None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return int(value) if float(value).is_integer() else None
    if isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"[+-]?\d+", text):
            return int(text)
        if re.fullmatch(r"[+-]?\d+\.0*", text):
            return int(text.split(".")[0])
    return None


def text(sheet: Sheet, row: Row, key: str) -> str:
    """A cell as text: stripped; whole numbers without `.0` (`3.0` -> `3`).

    Raises:
        ClipError: a blank cell (names the row and the column).
    """
    value = row.cells.get(key)
    if value is None:
        raise ClipError(f"{sheet.where(row)}: {sheet.columns[key]} is empty")
    number = None if isinstance(value, str) else _whole_number(value)
    return str(number if number is not None else value).strip()


def subject_number(sheet: Sheet, row: Row, key: str, *, prefix: str = "", width: int = 2) -> str:
    """A numbered subject id: `1`, `'01'`, `1.0` or `'sub01'` -> `sub01` (prefix `sub`,
    width 2); `6` -> `006` (width 3).

    Raises:
        ClipError: a cell that is not a subject number (names the row, column and value).
    """
    value = row.cells.get(key)
    cell = value.strip() if isinstance(value, str) else value
    if isinstance(cell, str) and prefix and cell.lower().startswith(prefix):
        cell = cell[len(prefix):]
    number = _whole_number(cell)
    if number is None or number < 0:
        raise ClipError(f"{sheet.where(row)}: {sheet.columns[key]} {value!r} is not a "
                        f"subject number")
    return f"{prefix}{number:0{width}d}"


def frame_number(sheet: Sheet, row: Row, key: str) -> int:
    """A frame number cell -> int; `UNKNOWN` for a frame that is not coded.

    Whole numbers may be read as floats or text (`46.0`, `'46'`); `/`, a blank cell or a
    negative number (SAMM writes -1) mean not coded.

    Raises:
        ClipError: anything else (names the row, the column and the value).
    """
    value = row.cells.get(key)
    if value is None or isinstance(value, str) and value.strip() == _NOT_CODED:
        return UNKNOWN
    number = _whole_number(value)
    if number is None:
        raise ClipError(f"{sheet.where(row)}: {sheet.columns[key]} {value!r} is not a "
                        f"frame number")
    return number if number >= 0 else UNKNOWN


def frame_numbers(sheet: Sheet, row: Row, onset: str, apex: str, offset: str):
    """`(onset, apex, offset)` of a row, each `UNKNOWN` when not coded.

    Raises:
        ClipError: a cell that is not a frame number, or known frames out of order
            (onset after offset, apex outside onset..offset), naming the row.
    """
    values = tuple(frame_number(sheet, row, k) for k in (onset, apex, offset))
    first, peak, last = values
    if first != UNKNOWN and last != UNKNOWN and first > last:
        raise ClipError(f"{sheet.where(row)}: onset frame {first} is after offset frame {last}")
    if peak != UNKNOWN and (first != UNKNOWN and peak < first or last != UNKNOWN and peak > last):
        raise ClipError(f"{sheet.where(row)}: apex frame {peak} is outside onset..offset "
                        f"{_range(first, last)}")
    return values


def _range(first: int, last: int) -> str:
    return f"{'?' if first == UNKNOWN else first}..{'?' if last == UNKNOWN else last}"


# --- Finding files under a root ------------------------------------------------------------

def _walk(root: pathlib.Path, stop: re.Pattern):
    """`(folder, subfolder names, file names)` under `root`, top down, without hidden
    entries and macOS archive debris, not descending into folders named like `stop`."""
    for folder, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d not in _IGNORED)
        here = pathlib.Path(folder)
        yield here, dirnames, sorted(f for f in filenames if not f.startswith((".", "~$")))
        if here != root and stop.fullmatch(here.name):
            dirnames[:] = []


def locate(root, pattern: str, *, coding=None, exclude: str | None = None,
           stop: re.Pattern = re.compile(r"(?!)")) -> pathlib.Path:
    """Finds a coding spreadsheet under a root.

    Args:
        root: searched recursively (archives sometimes unpack to `X/X/`).
        pattern: a glob of the file name, matched in any case (`CASME2-coding-*.xlsx`).
        coding: a spreadsheet given by the user; used as it is when set.
        exclude: a glob of file names to leave out even when they match `pattern`.
        stop: folder names not searched (the frame folders).

    Returns:
        The spreadsheet: `coding`, or the single file found (several byte-identical copies
        count as one; the shallowest is returned).

    Raises:
        FileNotFoundError: `coding` does not exist, or nothing matches under `root` (names
            the root and the pattern).
        ValueError: several different files match (names them).
    """
    if coding is not None:
        coding = pathlib.Path(coding)
        if not coding.is_file():
            raise FileNotFoundError(f"coding spreadsheet {coding} does not exist")
        return coding
    root = pathlib.Path(root)
    found = sorted((p for folder, _, files in _walk(root, stop) for p in
                    (folder / f for f in files)
                    if fnmatch.fnmatch(p.name.lower(), pattern.lower())
                    and not (exclude and fnmatch.fnmatch(p.name.lower(), exclude.lower()))),
                   key=lambda p: (len(p.parts), str(p)))
    if not found:
        raise FileNotFoundError(f"no coding spreadsheet {pattern} under {root}; pass it with "
                                f"--coding")
    different = [p for p in found[1:] if p.read_bytes() != found[0].read_bytes()]
    if different:
        raise ValueError(f"several coding spreadsheets {pattern} under {root}: "
                         f"{', '.join(str(p) for p in [found[0]] + different)}; pass one with "
                         f"--coding")
    return found[0]


def clip_folders(root: pathlib.Path, subject: re.Pattern):
    """The clip folders under every subject folder anywhere under `root`.

    Args:
        root: the folder searched.
        subject: the names of subject folders (`sub01`, `006`), matched in full.

    Returns:
        `(folders, holders)`: `{(subject, clip) in lower case: [clip folders]}` and the
        folders that hold subject folders.
    """
    folders, holders = {}, []
    for folder, dirnames, _ in _walk(root, subject):
        if folder != root and subject.fullmatch(folder.name):
            for name in dirnames:
                folders.setdefault((folder.name.lower(), name.lower()), []).append(folder / name)
            if folder.parent not in holders:
                holders.append(folder.parent)
    return folders, holders


# --- Rows -> clips -------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Database:
    """How a coded database lays out its spreadsheet and its frames.

    Attributes:
        name: the reader's name, the key of `data_prep.classes.DATABASE_EMOTIONS`.
        title: the name in messages (`CASME II`).
        pattern: a glob of the spreadsheet's file name.
        subject_folder: the names of subject folders (matched in full, any case).
        subject: `(sheet, row, column key) -> subject id` as the folders are named.
        fps: the recording's frame rate.
        sheet: the sheet to read when present (else the first).
        exclude: a glob of spreadsheet names `pattern` must not pick (another database's).
        frames: the folder under a clip folder that holds its frames (`color`), if any.
        per_sample: a folder holds a whole video from which several rows cut samples: clip
            ids end with the onset, and folders that no row names are not reported.
        sections: subject folders may sit in several folders (CASME's sections A and B).
    """

    name: str
    title: str
    pattern: str
    subject_folder: re.Pattern
    subject: Callable
    fps: float
    sheet: str | None = None
    exclude: str | None = None
    frames: str = ""
    per_sample: bool = False
    sections: bool = False


def read_release(database: Database, root, *, coding=None) -> Release:
    """Reads a coded database: its spreadsheet's rows -> `ClipSource`s and errors.

    Args:
        database: the `Database` description.
        root: the folder the publisher's archive unpacks to.
        coding: the spreadsheet, when it is not under `root` or not found there.

    Returns:
        A `Release` (crop `detect`): sources sorted by (subject, clip id), one error per row
        that cannot be used and per clip folder no row names, and `details` naming the
        spreadsheet, the sheet and the folders holding the subject folders.

    Raises:
        FileNotFoundError: a missing root, no spreadsheet, no subject folders.
        ValueError: an unreadable spreadsheet, a missing column, several spreadsheets or
            (unless `sections`) several folders of subject folders under `root`.
    """
    root = pathlib.Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{database.title} root {root} is not a folder")
    path = locate(root, database.pattern, coding=coding, exclude=database.exclude,
                  stop=database.subject_folder)
    sheet = read_sheet(path, sheet=database.sheet)
    columns = {key: sheet.column(key) for key in CLIP_COLUMNS}
    folders, holders = _subject_folders(database, root)
    sources, errors, named, seen, listings = [], [], set(), {}, {}
    for row in sheet.rows:
        clip_id = sheet.where(row)
        try:
            subject = database.subject(sheet, row, columns["subject"])
            filename = text(sheet, row, columns["filename"])
            named.add((subject.lower(), filename.lower()))
            clip_id = f"{subject}/{filename}"
            if database.per_sample:
                clip_id += f"/{text(sheet, row, columns['onset'])}"
            if clip_id in seen:
                raise ClipError(f"{sheet.where(row)}: coded twice (first in row "
                                f"{seen[clip_id]})")
            seen[clip_id] = row.number
            source = _source(database, sheet, row, columns, clip_id, subject,
                             _folder(sheet, row, folders, subject, filename, root), listings)
            sources.append(source)
        except ClipError as error:
            errors.append({"clip": clip_id, "reason": str(error)})
    if not database.per_sample:
        errors += _unnamed(folders, named, sheet)
    sources.sort(key=lambda s: (s.subject, s.clip_id))
    return Release(sources, errors, crop="detect", details={
        "spreadsheet": str(path), "sheet": sheet.name, "header_row": sheet.header_row,
        "folders": [str(h) for h in holders]})


def _subject_folders(database: Database, root: pathlib.Path):
    folders, holders = clip_folders(root, database.subject_folder)
    if not holders:
        raise FileNotFoundError(f"no {database.title} subject folders (named like "
                                f"{database.subject_folder.pattern}) under {root}")
    if len(holders) > 1 and not database.sections:
        raise ValueError(f"{database.title} subject folders found in {len(holders)} places "
                         f"under {root}: {', '.join(map(str, holders))}; pass one release "
                         f"folder as --root and the spreadsheet with --coding")
    return folders, holders


def _folder(sheet: Sheet, row: Row, folders: dict, subject: str, filename: str,
            root: pathlib.Path) -> pathlib.Path:
    found = folders.get((subject.lower(), filename.lower()), [])
    if not found:
        raise ClipError(f"{sheet.where(row)}: no clip folder {subject}/{filename} under {root}")
    if len(found) > 1:
        raise ClipError(f"{sheet.where(row)}: clip folder {subject}/{filename} is found "
                        f"{len(found)} times: {', '.join(map(str, found))}")
    return found[0]


def _source(database: Database, sheet: Sheet, row: Row, columns: dict, clip_id: str,
            subject: str, folder: pathlib.Path, listings: dict) -> ClipSource:
    onset, apex, offset = frame_numbers(sheet, row, columns["onset"], columns["apex"],
                                        columns["offset"])
    for name, value in (("onset", onset), ("offset", offset)):
        if value == UNKNOWN:
            raise ClipError(f"{sheet.where(row)}: the {name} frame is not coded "
                            f"({sheet.columns[columns[name]]} {row.cells[columns[name]]!r})")
    try:
        emotion = classes.normalise(database.name, text(sheet, row, columns["emotion"]))
    except ValueError as error:
        raise ClipError(f"{sheet.where(row)}: {error}") from None
    frames = folder / database.frames if database.frames else folder
    if frames not in listings:
        try:
            listings[frames] = frame_files(frames)
        except ClipError as error:
            raise ClipError(f"{sheet.where(row)}: {error}") from None
    found = [n for n, _ in listings[frames]]
    for name, value in (("onset", onset), ("offset", offset)):
        if value not in found:
            raise ClipError(f"{sheet.where(row)}: {name} frame {value} is not in {frames} "
                            f"({len(found)} frames, {found[0]}..{found[-1]})")
    count = sum(onset <= n <= offset for n in found)
    if count < 2:
        raise ClipError(f"{sheet.where(row)}: {frames} has {count} frame in "
                        f"{onset}..{offset}; at least 2 are needed")
    return ClipSource(clip_id=clip_id, subject=subject, emotion=emotion, path=frames,
                      onset=onset, apex=apex, offset=offset, fps=database.fps)


def _unnamed(folders: dict, named: set, sheet: Sheet) -> list[dict]:
    """One error per clip folder that no row of the sheet names."""
    return [{"clip": f"{path.parent.name}/{path.name}",
             "reason": f"clip folder {path} has no row in {sheet.path.name}"}
            for key, paths in sorted(folders.items()) if key not in named for path in paths]
