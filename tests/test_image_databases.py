"""The SMIC and still-image expression readers on fixtures in their real layouts, and one
conversion of each through `convert_database`."""

import cv2
import numpy as np
import pytest
import tensorflow as tf

from data_prep.clip import ConvertOptions
from data_prep.databases import convert_database, expression, smic
from tests.image_layouts import (EXPRESSION_BROKEN, FER_BROKEN, SMIC_BROKEN, write_expression,
                                 write_fer2013, write_smic)
from tfmer import data, features
from tfmer.features import UNKNOWN

OPTIONS = ConvertOptions(num_frames=0, size=16, crop="none", workers=1, progress=False)


def _by_id(items):
    return {item.clip_id: item for item in items}


def _records(out_dir):
    info = data.load_info(out_dir)
    return _by_id(features.decode(r.numpy()) for s in info.shards
                  for r in tf.data.TFRecordDataset(str(s)))


def _frames(record):
    """RGB uint8 `[T, H, W, 3]` of a decoded record."""
    return np.stack([cv2.cvtColor(cv2.imdecode(np.frombuffer(f, np.uint8), cv2.IMREAD_COLOR),
                                  cv2.COLOR_BGR2RGB) for f in record.frames])


def _assert_errors(errors, expected):
    """Each expected clip is reported once with a reason containing its word."""
    reasons = {e["clip"]: e["reason"] for e in errors}
    assert sorted(reasons) == sorted(expected) and len(errors) == len(expected), errors
    for clip, word in expected.items():
        assert word in reasons[clip], (clip, reasons[clip])


# ----------------------------------------------------------------------------------- SMIC

@pytest.mark.parametrize("nesting", [(), ("SMIC", "SMIC"), ("SMIC_all_raw",)])
def test_smic_reads_every_part_wherever_it_sits(tmp_path, nesting):
    written = write_smic(tmp_path, parts=("HS", "VIS"), nesting=nesting)
    for part, fps in (("HS", 100.0), ("vis", 25.0)):
        release = smic.read(tmp_path, part=part)
        expected = written[part.upper()]
        assert release.errors == []
        assert release.crop == "detect"
        assert release.details == {"part": part.upper(),
                                   "folder": str(tmp_path.joinpath(*nesting, part.upper()))}
        sources = _by_id(release.sources)
        assert sorted(sources) == sorted(c.clip_id for c in expected.clips)
        for clip in expected.clips:
            source = sources[clip.clip_id]
            assert (source.subject, source.emotion, source.path, source.fps) == (
                clip.subject, clip.emotion, clip.path, fps)
            assert (source.onset, source.apex, source.offset) == (UNKNOWN,) * 3


def test_smic_reports_broken_clips_and_keeps_the_rest(tmp_path):
    written = write_smic(tmp_path, parts=("HS",), broken=SMIC_BROKEN)["HS"]
    release = smic.read(tmp_path, part="HS")
    assert sorted(s.clip_id for s in release.sources) == sorted(c.clip_id for c in written.clips)
    _assert_errors(release.errors, written.broken)


def test_smic_missing_part_or_root_is_a_one_line_error(tmp_path):
    write_smic(tmp_path, parts=("HS", "VIS"))
    with pytest.raises(FileNotFoundError, match=r"no SMIC part folder NIR under .*\(parts "
                                                r"found: HS, VIS\)") as error:
        smic.read(tmp_path, part="NIR")
    assert str(tmp_path) in str(error.value) and "\n" not in str(error.value)
    with pytest.raises(FileNotFoundError, match="SMIC root .* is not a folder"):
        smic.read(tmp_path / "missing")
    with pytest.raises(ValueError, match="SMIC part 'IR' is not one of HS, VIS, NIR"):
        smic.read(tmp_path, part="IR")
    write_smic(tmp_path / "SMIC" / "copy", parts=("HS",), nesting=())
    with pytest.raises(ValueError, match=r"SMIC part HS found twice under .*SMIC/SMIC/HS, "
                                         r".*SMIC/copy/HS"):
        smic.read(tmp_path, part="HS")


def test_smic_converts_with_non_micro_clips_for_smic4(tmp_path):
    written = write_smic(tmp_path / "raw", parts=("HS",))["HS"]
    info = convert_database("smic", tmp_path / "raw", tmp_path / "out", classes="smic4",
                            options=OPTIONS, part="HS")
    assert info["errors"] == [] and info["num_clips"] == len(written.clips)
    assert info["subjects"] == ["smic/s1", "smic/s2"]
    assert info["source"]["part"] == "HS" and info["source"]["crop"] == "none"
    records = _records(tmp_path / "out")
    for clip in written.clips:
        record = records[clip.clip_id]
        assert (record.subject, record.label_name, record.source_emotion, record.fps) == (
            f"smic/{clip.subject}", clip.emotion, clip.emotion, 100.0)
        values = _frames(record)[:, 0, 0, 0]
        np.testing.assert_array_equal(values, clip.value + np.arange(clip.num_frames))


# ------------------------------------------------------------------------ expression sets

def test_expression_reads_kdef_rafd_and_emotion_folders(tmp_path):
    written = write_expression(tmp_path)
    release = expression.read(tmp_path)
    assert release.errors == [] and release.crop == "detect"
    assert release.details["layouts"] == {"KDEF": 5, "RaFD": 4, "emotion folder": 4}
    sources = _by_id(release.sources)
    assert sorted(sources) == sorted(c.clip_id for c in written.clips)
    for clip in written.clips:
        source = sources[clip.clip_id]
        assert (source.subject, source.emotion, source.path, source.fps, source.pixels) == (
            clip.subject, clip.emotion, clip.path, 0.0, None)
    assert sources["KDEF/BF01/BF01SUHL.JPG"].subject == sources["KDEF/AF01/AF01ANS.JPG"].subject


def test_expression_reports_images_it_cannot_label(tmp_path):
    written = write_expression(tmp_path, layouts=("kdef",), broken=EXPRESSION_BROKEN)
    release = expression.read(tmp_path)
    assert sorted(s.clip_id for s in release.sources) == sorted(c.clip_id for c in written.clips)
    _assert_errors(release.errors, written.broken)


def test_fer2013_rows_become_one_frame_pixel_clips(tmp_path):
    written = write_fer2013(tmp_path / "fer2013.csv", broken=FER_BROKEN)
    release = expression.read(written.root)
    assert release.crop == "none"
    assert release.details["layout"] == "fer2013"
    assert release.details["usage"] == {"PrivateTest": 1, "PublicTest": 1, "Training": 3}
    sources = _by_id(release.sources)
    assert sorted(sources) == sorted(c.clip_id for c in written.clips)
    for clip in written.clips:
        source = sources[clip.clip_id]
        assert (source.subject, source.emotion, source.path) == ("unknown", clip.emotion,
                                                                 written.root)
        assert source.pixels.dtype == np.uint8
        np.testing.assert_array_equal(source.pixels, clip.pixels[None])
    _assert_errors(release.errors, written.broken)
    assert all(f"{written.root} row " in e["reason"] for e in release.errors)


def test_expression_roots_that_cannot_be_read_are_one_line_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="expression root .*missing does not exist"):
        expression.read(tmp_path / "missing")
    write_fer2013(tmp_path / "kaggle" / "fer2013.csv")
    with pytest.raises(FileNotFoundError, match="for FER2013 pass the CSV itself"):
        expression.read(tmp_path / "kaggle")
    (tmp_path / "other.csv").write_text("label,image\n3,1 2 3\n")
    with pytest.raises(ValueError, match=r"lacks column\(s\) emotion, pixels, Usage; found "
                                         r"label, image"):
        expression.read(tmp_path / "other.csv")


def test_expression_folders_convert_to_one_frame_records(tmp_path):
    written = write_expression(tmp_path / "raw", broken=("unmatched_image",))
    info = convert_database("expression", tmp_path / "raw", tmp_path / "out",
                            classes="expression9", options=OPTIONS)
    assert info["num_clips"] == len(written.clips) and info["num_frames"] == 1
    assert [e["clip"] for e in info["errors"]] == ["random.jpg"]
    assert "expression/F01" in info["subjects"] and "expression/unknown" in info["subjects"]
    records = _records(tmp_path / "out")
    for clip in written.clips:
        record = records[clip.clip_id]
        assert (record.subject, record.label_name, len(record.frames)) == (
            f"expression/{clip.subject}", clip.emotion, 1)
        assert abs(int(_frames(record)[0, 8, 8, 1]) - clip.value) <= 2  # KDEF/RaFD are JPEG


def test_fer2013_converts_to_its_pixels(tmp_path):
    written = write_fer2013(tmp_path / "fer2013.csv", broken=("unknown_code",))
    options = ConvertOptions(num_frames=0, size=48, workers=1, progress=False, crop=None)
    info = convert_database("expression", written.root, tmp_path / "out", classes="source",
                            options=options)
    assert info["source"]["crop"] == "none" and info["num_frames"] == 1
    assert [e["clip"] for e in info["errors"]] == list(written.broken)
    records = _records(tmp_path / "out")
    for clip in written.clips:
        record = records[clip.clip_id]
        assert record.label_name == clip.emotion and record.subject == "expression/unknown"
        np.testing.assert_array_equal(_frames(record)[0], np.repeat(clip.pixels[..., None], 3, -1))
