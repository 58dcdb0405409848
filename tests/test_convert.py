import json

import cv2
import numpy as np
import pytest
import tensorflow as tf

from data_prep import __main__ as cli
from data_prep import convert, frames, manifest, tim
from tests.helpers import CLASSES, labelled_frames, write_clip
from tfmer import data, features


def _records(out_dir):
    info = data.load_info(out_dir)
    return [features.decode(r.numpy()) for s in info.shards
            for r in tf.data.TFRecordDataset(str(s))]


def test_dataset_json_describes_the_conversion(tiny_dataset):
    info = json.loads((tiny_dataset / "dataset.json").read_text())
    assert info["classes"] == list(CLASSES)
    assert (info["num_frames"], info["height"], info["width"], info["channels"]) == (8, 32, 32, 3)
    assert info["num_clips"] == 24 and info["errors"] == []
    assert info["class_counts"] == {c: 6 for c in CLASSES}
    assert info["subjects"] == [f"tiny/{s:02d}" for s in range(6)]
    assert [s["num_clips"] for s in info["shards"]] == [5, 5, 5, 5, 4]
    assert not list(tiny_dataset.glob("*.tmp"))


def test_records_hold_tim_of_onset_to_offset(tiny_manifest, tiny_dataset):
    records = {r.clip_id: r for r in _records(tiny_dataset)}
    record = records["sub03/clip_surprise"]
    assert (record.label, record.label_name, record.subject) == (2, "surprise", "tiny/03")
    assert (record.onset, record.apex, record.offset, record.fps) == (6, 9, 14, 200.0)
    # Independent recomputation: files img6..img14 are frames 1..9 of the written clip.
    source = labelled_frames(2, seed=32)[1:10]
    resized = np.stack([cv2.resize(f, (32, 32), interpolation=cv2.INTER_LINEAR) for f in source])
    expected = np.clip(np.rint(tim.interpolate(resized, 8)), 0, 255).astype(np.uint8)
    decoded = np.stack([cv2.cvtColor(cv2.imdecode(np.frombuffer(f, np.uint8), cv2.IMREAD_COLOR),
                                     cv2.COLOR_BGR2RGB) for f in record.frames])
    np.testing.assert_array_equal(decoded, expected)


def test_same_input_gives_byte_identical_output(tiny_manifest, tmp_path):
    options = convert.ConvertOptions(num_frames=8, size=32, clips_per_shard=5, workers=1,
                                     progress=False)
    for name in ("a", "b"):
        manifest.convert_manifest(tiny_manifest, tmp_path / name, classes="tlcnn4",
                                  name="tiny", options=options)
    shards = sorted(p.name for p in (tmp_path / "a").glob("*.tfrecord"))
    assert len(shards) == 5
    for shard in shards:
        assert (tmp_path / "a" / shard).read_bytes() == (tmp_path / "b" / shard).read_bytes()


def test_parallel_workers_give_the_same_bytes(tiny_manifest, tmp_path):
    serial = convert.ConvertOptions(num_frames=8, size=32, workers=1, progress=False)
    parallel = convert.ConvertOptions(num_frames=8, size=32, workers=2, progress=False)
    manifest.convert_manifest(tiny_manifest, tmp_path / "s", classes="tlcnn4", options=serial)
    manifest.convert_manifest(tiny_manifest, tmp_path / "p", classes="tlcnn4", options=parallel)
    name = "manifest-00000-of-00001.tfrecord"
    assert (tmp_path / "s" / name).read_bytes() == (tmp_path / "p" / name).read_bytes()


def test_bad_clips_are_reported_and_the_rest_converted(tmp_path):
    root = tmp_path / "raw"
    write_clip(root / "good", labelled_frames(0, num_frames=5))
    write_clip(root / "odd_label", labelled_frames(1, num_frames=5))
    (root / "empty").mkdir()
    write_clip(root / "broken", labelled_frames(2, num_frames=5))
    (root / "broken" / "img3.png").write_bytes(b"not a png")
    write_clip(root / "short", labelled_frames(3, num_frames=1))
    write_clip(root / "backwards", labelled_frames(0, num_frames=5))
    (root / "m.csv").write_text("\n".join([
        "path,subject,label,onset,apex,offset",
        "good,1,positive,,,",
        "odd_label,1,happiness,,,",
        "empty,2,negative,,,",
        "broken,2,surprise,,,",
        "short,3,others,,,",
        "backwards,3,positive,3,1,4",
        "missing,3,positive,,,",
        "good,4,positive,,,",
        "good,5,positive,0,2,9",
    ]) + "\n")
    info = manifest.convert_manifest(root / "m.csv", tmp_path / "out", classes="tlcnn4",
                                     options=convert.ConvertOptions(num_frames=4, size=16,
                                                                    workers=1, progress=False))
    assert info["num_clips"] == 1
    reasons = {e["clip"]: e["reason"] for e in info["errors"]}
    assert "'happiness' is not in the class scheme" in reasons["odd_label"]
    assert "holds no image files" in reasons["empty"]
    assert "cannot read frame" in reasons["broken"] and "img3.png" in reasons["broken"]
    assert "1 frame(s)" in reasons["short"]
    assert "onset <= apex <= offset" in reasons["backwards"]
    assert "does not exist" in reasons["missing"]
    duplicates = [e["reason"] for e in info["errors"] if e["clip"] == "good"]
    assert duplicates == ["line 9: path good is listed twice",
                          "line 10: path good is listed twice"]
    assert len(info["errors"]) == 8


def test_offset_outside_the_clip_is_named(tmp_path):
    write_clip(tmp_path / "c", labelled_frames(0, num_frames=5), first_number=10)
    with pytest.raises(frames.ClipError, match="offset frame 20 is not in .*10..14"):
        frames.read_frames(tmp_path / "c", 10, 20)


def test_video_clip_reads_frames_by_index(tmp_path):
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (32, 24))
    for i in range(10):
        writer.write(np.full((24, 32, 3), 20 * i, np.uint8))
    writer.release()
    clip, fps = frames.read_frames(video, 2, 5)
    assert clip.shape == (4, 24, 32, 3) and fps == pytest.approx(25.0)
    np.testing.assert_allclose(clip.mean(axis=(1, 2, 3)), [40, 60, 80, 100], atol=3)
    with pytest.raises(frames.ClipError, match="past the end"):
        frames.read_frames(video, 2, 50)


def test_frame_numbers_come_from_file_names(tmp_path):
    write_clip(tmp_path / "c", labelled_frames(0, num_frames=3), first_number=98,
               pattern="reg_img{}.jpg")
    assert [n for n, _ in frames.frame_files(tmp_path / "c")] == [98, 99, 100]


def test_cli_strict_and_fatal_errors(tiny_manifest, tmp_path, capsys):
    assert cli.main(["manifest", "--root", str(tmp_path / "nope.csv"), "--out",
                     str(tmp_path / "o")]) == 2
    assert "nope.csv does not exist" in capsys.readouterr().err
    args = ["manifest", "--root", str(tiny_manifest), "--out", str(tmp_path / "o"),
            "--classes", "positive,negative,surprise", "--tim", "4", "--size", "16",
            "--workers", "1"]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert "18 clips converted" in out and "6 clip(s) skipped" in out
    assert cli.main(args + ["--strict"]) == 1


def test_manifest_without_required_column(tmp_path):
    (tmp_path / "m.csv").write_text("file,subject,label\n")
    with pytest.raises(ValueError, match="lacks column.*path"):
        manifest.read(tmp_path / "m.csv")


def test_landmarks_are_scaled_to_the_stored_size(tmp_path):
    write_clip(tmp_path / "c", labelled_frames(0, num_frames=3, size=40))
    points = np.stack([np.linspace(0, 39, 68), np.linspace(10, 20, 68)], axis=1)
    np.savetxt(tmp_path / "c.txt", points)
    source = convert.ClipSource("c", "1", "positive", tmp_path / "c", landmarks=tmp_path / "c.txt")
    record = convert.convert_clip(source, "d", CLASSES,
                                  convert.ConvertOptions(num_frames=0, size=20))
    np.testing.assert_allclose(record.landmarks, points / 2, rtol=1e-6)
    assert len(record.frames) == 3
