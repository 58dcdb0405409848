"""CAS(ME)^3 part A (Li et al. 2022): micro-expressions cut from 30 fps videos.

A release holds the label spreadsheet `cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx` (sheet
`label`; columns `Subject, Filename, Onset, Apex, Offset, AU, Objective class, emotion`) and
one frame folder per video:

    part_A/data/part_A/spNO.1/a/color/123.jpg ...   (and depth/ beside color/)

Several rows cut samples from one video (same `Subject` and `Filename`, other onset and
offset), so a clip id is `<subject>/<video>/<onset>` (`spNO.1/a/123`) and the subject the
`Subject` cell (`spNO.1`). Most videos hold no micro-expression: a video folder no row
names is not a clip and is not reported. Crop `detect`.
"""

from __future__ import annotations

import re

from data_prep import spreadsheet
from data_prep.databases import Release

FPS = 30.0

DATABASE = spreadsheet.Database(
    name="casme3", title="CAS(ME)^3 part A", pattern="*part_A*label*.xls*",
    subject_folder=re.compile(r"spNO\.\d+", re.IGNORECASE), subject=spreadsheet.text,
    fps=FPS, sheet="label", frames="color", per_sample=True)


def read(root, *, coding=None) -> Release:
    """Reads CAS(ME)^3 part A.

    Args:
        root: the folder the archive unpacks to (spreadsheet and frames anywhere under it).
        coding: the label spreadsheet, when it is not under `root`.

    Raises:
        FileNotFoundError, ValueError: as `data_prep.spreadsheet.read_release`.
    """
    return spreadsheet.read_release(DATABASE, root, coding=coding)
