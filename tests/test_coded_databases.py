"""The readers of the coded databases (CASME II, SAMM, CASME, CAS(ME)^3) on tiny copies
written in each database's real layout (`tests/layouts.py`), and one conversion each."""

import math
import pathlib

import cv2
import numpy as np
import pytest
import tensorflow as tf

from data_prep import spreadsheet
from data_prep.clip import ConvertOptions
from data_prep.databases import casme, casme2, casme3, convert_database, samm
from data_prep.frames import ClipError
from tests import layouts
from tfmer import data, features
from tfmer.features import UNKNOWN

READERS = {
    "casme2": (casme2, layouts.casme2),
    "samm": (samm, layouts.samm),
    "casme": (casme, layouts.casme),
    "casme3": (casme3, layouts.casme3),
}

CAUSES = {
    "no_folder": "no clip folder",
    "no_row": "has no row",
    "unknown_emotion": f"unknown emotion '{layouts.UNKNOWN_EMOTION}'",
    "apex_outside": "is outside onset..offset",
    "missing_onset": "onset frame",
    "one_frame": "has 1 frame",
    "bad_frame": "is not a frame number",
    "duplicate": "coded twice",
}
"""What the reason of each broken case of `layouts.BROKEN` must say."""


def _found(sources) -> list:
    return [(s.clip_id, s.subject, s.emotion, s.path, s.onset, s.apex, s.offset, s.fps)
            for s in sources]


def _expected(layout: layouts.Layout) -> list:
    return [(c.clip_id, c.subject, c.emotion, c.folder, c.onset, c.apex, c.offset, layout.fps)
            for c in layout.clips]


def _broken_cases(name: str) -> list:
    return [c for c in layouts.BROKEN if not (name == "casme3" and c == "no_row")]


def _one_line(error) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


# --- What a reader returns -----------------------------------------------------------------

@pytest.mark.parametrize("name", READERS)
def test_release_matches_the_layout(name, tmp_path):
    module, build = READERS[name]
    layout = build(tmp_path)
    release = module.read(tmp_path)
    assert _found(release.sources) == _expected(layout)
    assert release.errors == []
    assert release.crop == layout.crop
    assert release.details["spreadsheet"] == str(layout.spreadsheet)


@pytest.mark.parametrize("kind", ["raw", "selected", "cropped"])
def test_casme2_release_is_told_by_its_frames(kind, tmp_path):
    layout = layouts.casme2(tmp_path, release=kind)
    release = casme2.read(tmp_path)
    assert (release.details["release"], release.crop) == (kind, layout.crop)
    assert _found(release.sources) == _expected(layout)


def test_casme2_quirks_are_read(tmp_path):
    layouts.casme2(tmp_path)
    sources = {s.clip_id: s for s in casme2.read(tmp_path).sources}
    assert sources["sub01/EP19_05f"].apex == UNKNOWN          # ApexFrame "/"
    assert sources["sub02/EP01_11f"].subject == "sub02"        # Subject read as the number 2
    assert sources["sub01/EP02_01f"].path == tmp_path / "CASME2_RAW/CASME2_RAW/sub01/EP02_01f"


def test_casme2_builder_takes_other_clips(tmp_path):
    clips = (("sub05", "EP03_01", "fear"), ("sub26", "EP18_50", "sadness"))
    layout = layouts.casme2(tmp_path, clips=clips, release="cropped", unknown_apex=(),
                            doubled=False)
    assert [c.clip_id for c in layout.clips] == ["sub05/EP03_01", "sub26/EP18_50"]
    assert _found(casme2.read(tmp_path).sources) == _expected(layout)


@pytest.mark.parametrize("header_row", [1, 5, 14])
def test_samm_header_is_found_under_the_notes(header_row, tmp_path):
    layout = layouts.samm(tmp_path, header_row=header_row)
    release = samm.read(tmp_path)
    assert (release.details["sheet"], release.details["header_row"]) == ("MICRO_ONLY", header_row)
    assert _found(release.sources) == _expected(layout)
    assert {s.apex for s in release.sources if s.clip_id == "007/007_3_1"} == {UNKNOWN}


def test_casme_reads_both_sections_and_not_the_casme2_sheet(tmp_path):
    layouts.casme(tmp_path)
    release = casme.read(tmp_path)
    assert len(release.details["folders"]) == 2
    assert release.details["spreadsheet"].endswith("CASME-coding-20130410.xlsx")
    assert {s.path.parent.parent.name for s in release.sources} == {"Section A", "Section B"}


def test_casme3_cuts_several_samples_from_one_video(tmp_path):
    layouts.casme3(tmp_path)
    samples = [s for s in casme3.read(tmp_path).sources if s.path.parent.name == "a"]
    assert [(s.clip_id, s.subject) for s in samples] == [("spNO.1/a/120", "spNO.1"),
                                                         ("spNO.1/a/130", "spNO.1")]
    assert samples[0].path == samples[1].path


# --- Broken clips --------------------------------------------------------------------------

@pytest.mark.parametrize("name", READERS)
def test_broken_clips_are_reported_and_the_rest_returned(name, tmp_path):
    module, build = READERS[name]
    layout = build(tmp_path, broken=_broken_cases(name))
    release = module.read(tmp_path)
    assert _found(release.sources) == _expected(layout)
    reasons = {e["clip"]: e["reason"] for e in release.errors}
    assert sorted(reasons) == sorted(layout.broken)
    for clip_id, case in layout.broken.items():
        assert CAUSES[case] in reasons[clip_id], (case, reasons[clip_id])
        assert layout.spreadsheet.name in reasons[clip_id]


def test_casme3_has_no_no_row_case(tmp_path):
    with pytest.raises(ValueError, match="no_row"):
        layouts.casme3(tmp_path, broken=["no_row"])


# --- Nothing to read -----------------------------------------------------------------------

@pytest.mark.parametrize("name", READERS)
def test_missing_root_raises(name, tmp_path):
    module, _ = READERS[name]
    with pytest.raises(FileNotFoundError) as error:
        module.read(tmp_path / "missing")
    assert str(tmp_path / "missing") in _one_line(error)


@pytest.mark.parametrize("name", READERS)
def test_missing_spreadsheet_raises_naming_root_and_pattern(name, tmp_path):
    module, build = READERS[name]
    build(tmp_path).spreadsheet.unlink()
    with pytest.raises(FileNotFoundError) as error:
        module.read(tmp_path)
    message = _one_line(error)
    assert str(tmp_path) in message and module.DATABASE.pattern in message


@pytest.mark.parametrize("name", READERS)
def test_unreadable_spreadsheet_raises_naming_it(name, tmp_path):
    module, build = READERS[name]
    layout = build(tmp_path)
    layout.spreadsheet.write_bytes(b"not a workbook")
    with pytest.raises(ValueError) as error:
        module.read(tmp_path)
    assert str(layout.spreadsheet) in _one_line(error)


def test_coding_option_points_at_the_spreadsheet(tmp_path):
    layout = layouts.samm(tmp_path / "root")
    moved = layout.spreadsheet.rename(tmp_path / "codes.xlsx")
    release = samm.read(tmp_path / "root", coding=moved)
    assert release.details["spreadsheet"] == str(moved)
    assert _found(release.sources) == _expected(layout)
    with pytest.raises(FileNotFoundError, match="nowhere.xlsx"):
        samm.read(tmp_path / "root", coding=tmp_path / "nowhere.xlsx")


def test_two_different_spreadsheets_are_ambiguous(tmp_path):
    layouts.casme2(tmp_path / "root")
    other = layouts.casme2(tmp_path / "other", clips=layouts.CASME2_CLIPS[:1]).spreadsheet
    other.rename(tmp_path / "root" / "CASME2-coding-20190701.xlsx")
    with pytest.raises(ValueError, match="several coding spreadsheets") as error:
        casme2.read(tmp_path / "root")
    assert "--coding" in _one_line(error)


def test_copies_of_the_spreadsheet_count_as_one(tmp_path):
    layout = layouts.casme2(tmp_path)
    copy = tmp_path / "CASME2_RAW" / "CASME2_RAW" / "backup" / layout.spreadsheet.name
    copy.parent.mkdir()
    copy.write_bytes(layout.spreadsheet.read_bytes())
    assert casme2.read(tmp_path).details["spreadsheet"] == str(layout.spreadsheet)


def test_no_subject_folders_raises(tmp_path):
    layout = layouts.samm(tmp_path)
    for clip in layout.clips:
        for frame in clip.folder.iterdir():
            frame.unlink()
        clip.folder.rmdir()
    for subject in {c.folder.parent for c in layout.clips}:
        subject.rename(subject.with_name(f"s{subject.name}"))
    with pytest.raises(FileNotFoundError, match="no SAMM subject folders"):
        samm.read(tmp_path)


def test_two_releases_under_one_root_are_ambiguous(tmp_path):
    layouts.casme2(tmp_path / "a", release="raw")
    layouts.casme2(tmp_path / "b", release="cropped")
    with pytest.raises(ValueError, match="pass one release folder") as error:
        casme2.read(tmp_path, coding=tmp_path / "a" / "CASME2_RAW" /
                    "CASME2-coding-20140508.xlsx")
    assert str(tmp_path / "a") in _one_line(error) and str(tmp_path / "b") in str(error.value)


# --- Spreadsheets --------------------------------------------------------------------------

def test_read_sheet_finds_the_header_and_keeps_row_numbers(tmp_path):
    path = tmp_path / "codes.csv"
    path.write_text("Notes,,\n\nSubject,Filename,,Onset Frame,Estimated Emotion\n"
                    "1,EP01,,46.0,happiness\n\n2,EP02,,/,others\n")
    sheet = spreadsheet.read_sheet(path)
    assert sheet.header_row == 3
    assert sheet.columns == {"subject": "Subject", "filename": "Filename",
                             "onset": "Onset Frame", "estimatedemotion": "Estimated Emotion"}
    assert [r.number for r in sheet.rows] == [4, 6]
    assert sheet.column("emotion") == "estimatedemotion"
    assert [spreadsheet.frame_number(sheet, r, "onset") for r in sheet.rows] == [46, UNKNOWN]
    with pytest.raises(ValueError, match="'apex'"):
        sheet.column("apex")


@pytest.mark.parametrize("header", ["OnsetFrame", "Onset Frame", "onset", "Onset_frame"])
def test_column_spellings_share_a_key(header):
    assert spreadsheet.column_key(header) == "onset"


def test_a_sheet_without_header_row_raises(tmp_path):
    path = tmp_path / "codes.csv"
    path.write_text("Subject: see the paper\n1,EP01,46\n")
    with pytest.raises(ValueError, match="no header row") as error:
        spreadsheet.read_sheet(path)
    assert str(path) in _one_line(error)


def _one_cell(value, title="ApexFrame"):
    """A sheet and its row 7 holding one cell, column key `cell`."""
    sheet = spreadsheet.Sheet(pathlib.Path("codes.xlsx"), "", 1, {"cell": title}, ())
    return sheet, spreadsheet.Row(7, {"cell": value})


@pytest.mark.parametrize("value, number", [
    (46, 46), (46.0, 46), ("46", 46), (" 46.0 ", 46), ("/", UNKNOWN), (None, UNKNOWN),
    (-1, UNKNOWN), ("-1", UNKNOWN), (0, 0)])
def test_frame_numbers_are_read(value, number):
    assert spreadsheet.frame_number(*_one_cell(value), "cell") == number


@pytest.mark.parametrize("value", ["46a", 46.5, "4 6", True])
def test_a_bad_frame_number_names_row_column_and_value(value):
    with pytest.raises(ClipError) as error:
        spreadsheet.frame_number(*_one_cell(value), "cell")
    assert str(error.value) == f"codes.xlsx row 7: ApexFrame {value!r} is not a frame number"


def test_apex_must_lie_in_onset_to_offset():
    sheet = spreadsheet.Sheet(pathlib.Path("codes.xlsx"), "", 1,
                              {"on": "Onset", "ap": "Apex", "off": "Offset"}, ())
    assert spreadsheet.frame_numbers(sheet, spreadsheet.Row(2, {"on": 5, "ap": "/", "off": 9}),
                                     "on", "ap", "off") == (5, UNKNOWN, 9)
    for cells, cause in (({"on": 5, "ap": 10, "off": 9}, "apex frame 10"),
                         ({"on": 9, "ap": None, "off": 5}, "onset frame 9 is after")):
        with pytest.raises(ClipError, match=f"codes.xlsx row 3: {cause}"):
            spreadsheet.frame_numbers(sheet, spreadsheet.Row(3, cells), "on", "ap", "off")


@pytest.mark.parametrize("value", [1, "01", 1.0, "sub01", " 1 "])
def test_subject_numbers_are_zero_padded(value):
    assert spreadsheet.subject_number(*_one_cell(value), "cell", prefix="sub") == "sub01"


@pytest.mark.parametrize("value", [6, "006", 6.0])
def test_samm_subjects_have_three_digits(value):
    assert spreadsheet.subject_number(*_one_cell(value), "cell", width=3) == "006"


def test_a_bad_subject_names_row_column_and_value():
    with pytest.raises(ClipError, match=r"codes.xlsx row 7: Subject 'x1' is not a subject"):
        spreadsheet.subject_number(*_one_cell("x1", "Subject"), "cell", prefix="sub")


# --- End to end ----------------------------------------------------------------------------

def _records(out_dir) -> dict:
    info = data.load_info(out_dir)
    records = [features.decode(r.numpy()) for shard in info.shards
               for r in tf.data.TFRecordDataset(str(shard))]
    return {r.clip_id: r for r in records}


def _grey_levels(record) -> list:
    return [float(cv2.imdecode(np.frombuffer(f, np.uint8), cv2.IMREAD_COLOR).mean())
            for f in record.frames]


@pytest.mark.parametrize("name, num_frames", [("casme2", 0), ("samm", 4), ("casme", 0),
                                              ("casme3", 0)])
def test_conversion_end_to_end(name, num_frames, tmp_path):
    _, build = READERS[name]
    layout = build(tmp_path / "raw", broken=["no_folder"])
    options = ConvertOptions(num_frames=num_frames, size=16, crop="none", workers=1,
                                     progress=False)
    info = convert_database(name, tmp_path / "raw", tmp_path / "out", classes="source",
                            options=options)
    assert info["classes"] == sorted({c.emotion for c in layout.clips})
    assert [e["clip"] for e in info["errors"]] == list(layout.broken)
    assert info["source"]["spreadsheet"] == str(layout.spreadsheet)
    records = _records(tmp_path / "out")
    assert sorted(records) == sorted(c.clip_id for c in layout.clips)
    for clip in layout.clips:
        record = records[clip.clip_id]
        assert (record.subject, record.label_name) == (f"{name}/{clip.subject}", clip.emotion)
        assert (record.onset, record.apex, record.offset) == (clip.onset, clip.apex, clip.offset)
        assert math.isclose(record.fps, layout.fps)
        assert len(record.frames) == (num_frames or clip.num_frames)
        if not num_frames:
            expected = [layouts.frame_value(n) for n in range(clip.onset, clip.offset + 1)]
            np.testing.assert_allclose(_grey_levels(record), expected, atol=1.5)
