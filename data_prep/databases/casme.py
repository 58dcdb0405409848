"""CASME (Yan et al. 2013): 195 clips of 19 subjects at 60 fps, in two sections.

A release holds a coding spreadsheet (`CASME*coding*.xls*`, not CASME II's) and the frames
of its two sections, recorded with different cameras:

    CASME_A/Section A/sub01/EP01_5/*.jpg ...
    CASME_B/Section B/sub08/<clip>/*.jpg ...

The columns are `Subject, Filename, OnsetFrame, ApexFrame, OffsetFrame, Duration, Action
Units, Emotion` (`Onset` and `OnsetFrame` are both read; the emotion column is the one whose
name holds `emotion`). `Subject` is a number (1 -> `sub01`, the folder name); a clip folder
is looked up by subject folder and `Filename` in either section. Crop `detect`.
"""

from __future__ import annotations

import re

from data_prep import spreadsheet
from data_prep.databases import Release

FPS = 60.0

DATABASE = spreadsheet.Database(
    name="casme", title="CASME", pattern="CASME*coding*.xls*", exclude="CASME2*",
    subject_folder=re.compile(r"sub\d+", re.IGNORECASE),
    subject=lambda sheet, row, key: spreadsheet.subject_number(sheet, row, key, prefix="sub"),
    fps=FPS, sections=True)


def read(root, *, coding=None) -> Release:
    """Reads a CASME release (both sections).

    Args:
        root: the folder the archive unpacks to (spreadsheet and sections anywhere under it).
        coding: the coding spreadsheet, when it is not under `root`.

    Raises:
        FileNotFoundError, ValueError: as `data_prep.spreadsheet.read_release`.
    """
    return spreadsheet.read_release(DATABASE, root, coding=coding)
