"""SAMM (Davison et al. 2018): 159 micro-movements of 32 subjects at 200 fps, grey frames.

A release holds `SAMM_Micro_FACS_Codes_v2.xlsx` (sheet `MICRO_ONLY`; notes fill the rows
above the header, row 14 in one release, other rows in others) and the frames

    SAMM/006/006_1_2/006_05562.jpg ...

with the absolute frame number in the last 5 digits. The columns are `Subject, Filename,
Inducement Code, Onset Frame, Apex Frame, Offset Frame, Duration, Micro, Action Units,
Estimated Emotion, Objective Classes, Notes`; `Subject` is read as a number (6 -> `006`, the
folder name) and an apex of -1 is not coded. The frames are whole faces: crop `detect`.
"""

from __future__ import annotations

import re

from data_prep import spreadsheet
from data_prep.databases import Release

FPS = 200.0

DATABASE = spreadsheet.Database(
    name="samm", title="SAMM", pattern="SAMM_Micro_FACS_Codes*.xls*",
    subject_folder=re.compile(r"\d{3}"),
    subject=lambda sheet, row, key: spreadsheet.subject_number(sheet, row, key, width=3),
    fps=FPS, sheet="MICRO_ONLY")


def read(root, *, coding=None) -> Release:
    """Reads a SAMM release.

    Args:
        root: the folder the archive unpacks to (spreadsheet and frames anywhere under it).
        coding: the FACS codes spreadsheet, when it is not under `root`.

    Raises:
        FileNotFoundError, ValueError: as `data_prep.spreadsheet.read_release`.
    """
    return spreadsheet.read_release(DATABASE, root, coding=coding)
