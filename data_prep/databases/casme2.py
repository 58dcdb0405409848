"""CASME II (Yan et al. 2014): 255 clips of 26 subjects at 200 fps, coded in a spreadsheet.

A release holds the coding spreadsheet `CASME2-coding-*.xlsx` and one of three frame sets:

    CASME2_RAW/sub01/EP02_01f/img1.jpg ...          raw: whole recordings, faces to find
    CASME2_RAW_selected/sub01/EP02_01f/img46.jpg ...  selected: onset..offset only
    Cropped/sub01/EP02_01f/reg_img46.jpg ...        cropped: onset..offset, faces cropped

Frame numbers are absolute in all three (`img46.jpg` and `reg_img46.jpg` are frame 46). The
spreadsheet's columns are `Subject, Filename, <blank>, OnsetFrame, ApexFrame, OffsetFrame,
<blank>, Action Units, Estimated Emotion[, Objective Classes]`; `Subject` is `01`-style text
that is read as the number 1 (the subject id is the folder name, `sub01`), and `ApexFrame`
is `/` where the apex was not coded. The folder holding the `subNN` folders may sit anywhere
under the root (archives unpack to `CASME2_RAW/CASME2_RAW/`).

The release is told by the frames: `reg_` names are the cropped release (crop `none`),
clip folders holding exactly onset..offset the selected one, anything else the raw one
(crop `detect` for both).
"""

from __future__ import annotations

import dataclasses
import re

from data_prep import spreadsheet
from data_prep.databases import Release
from data_prep.frames import frame_files

FPS = 200.0
CROPPED_PREFIX = "reg_"

DATABASE = spreadsheet.Database(
    name="casme2", title="CASME II", pattern="CASME2-coding-*.xls*",
    subject_folder=re.compile(r"sub\d+", re.IGNORECASE),
    subject=lambda sheet, row, key: spreadsheet.subject_number(sheet, row, key, prefix="sub"),
    fps=FPS)


def read(root, *, coding=None) -> Release:
    """Reads a CASME II release.

    Args:
        root: the folder the archive unpacks to (spreadsheet and frames anywhere under it).
        coding: the coding spreadsheet, when it is not under `root`.

    Returns:
        A `Release` with `details["release"]` `raw`, `selected` or `cropped` (`unknown` when
        no clip is usable) and the crop that release needs.

    Raises:
        FileNotFoundError, ValueError: as `data_prep.spreadsheet.read_release`.
    """
    release = spreadsheet.read_release(DATABASE, root, coding=coding)
    kind = which_release(release.sources)
    return dataclasses.replace(release, crop="none" if kind == "cropped" else "detect",
                               details={**release.details, "release": kind})


def which_release(sources) -> str:
    """`cropped`, `selected` or `raw` from the clips' frame files (`unknown` for none)."""
    if not sources:
        return "unknown"
    listings = [(s, frame_files(s.path)) for s in sources]
    if all(p.name.lower().startswith(CROPPED_PREFIX) for _, files in listings for _, p in files):
        return "cropped"
    if all(files[0][0] == s.onset and files[-1][0] == s.offset for s, files in listings):
        return "selected"
    return "raw"
