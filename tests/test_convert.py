import dataclasses
import json
import os
import pathlib
import subprocess
import sys

import cv2
import matplotlib.cbook
import numpy as np
import pytest
import tensorflow as tf

from data_prep import __main__ as cli
from data_prep import clip, convert, face, frames, manifest, tim
from tests.helpers import CLASSES, labelled_frames, write_clip
from tfmer import data, features

REPO = pathlib.Path(__file__).resolve().parents[1]

# A `sitecustomize` module: every process started with it on its path logs TensorFlow imports.
LOG_TENSORFLOW_IMPORTS = '''
import os
import sys


class LogTensorFlowImports:
    """Appends the process id to $TENSORFLOW_IMPORT_LOG when a process imports TensorFlow."""

    def find_spec(self, name, path=None, target=None):
        if name == "tensorflow":
            with open(os.environ["TENSORFLOW_IMPORT_LOG"], "a") as log:
                log.write(f"process {os.getpid()} imported tensorflow: {sys.argv}\\n")
        return None


sys.meta_path.insert(0, LogTensorFlowImports())
'''


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
    assert not list(tiny_dataset.glob(".tmp.*"))


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
    options = clip.ConvertOptions(num_frames=8, size=32, clips_per_shard=5, workers=1,
                                     progress=False)
    for name in ("a", "b"):
        manifest.convert_manifest(tiny_manifest, tmp_path / name, classes="tlcnn4",
                                  name="tiny", options=options)
    shards = sorted(p.name for p in (tmp_path / "a").glob("*.tfrecord"))
    assert len(shards) == 5
    for shard in shards:
        assert (tmp_path / "a" / shard).read_bytes() == (tmp_path / "b" / shard).read_bytes()


def test_parallel_workers_give_the_same_bytes(tiny_manifest, tmp_path):
    serial = clip.ConvertOptions(num_frames=8, size=32, workers=1, progress=False)
    parallel = clip.ConvertOptions(num_frames=8, size=32, workers=2, progress=False)
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
        "odd_label,1,joy,,,",
        "empty,2,negative,,,",
        "broken,2,surprise,,,",
        "short,3,others,,,",
        "backwards,3,positive,3,1,4",
        "missing,3,positive,,,",
        "good,4,positive,,,",
        "good,5,positive,0,2,9",
    ]) + "\n")
    info = manifest.convert_manifest(root / "m.csv", tmp_path / "out", classes="tlcnn4",
                                     options=clip.ConvertOptions(num_frames=4, size=16,
                                                                    workers=1, progress=False))
    assert info["num_clips"] == 1
    reasons = {e["clip"]: e["reason"] for e in info["errors"]}
    assert "tlcnn4 has no rule for emotion 'joy'" in reasons["odd_label"]
    assert "holds no image files" in reasons["empty"]
    assert "cannot read frame" in reasons["broken"] and "img3.png" in reasons["broken"]
    assert "1 frame(s)" in reasons["short"]
    assert "onset <= apex <= offset" in reasons["backwards"]
    assert "does not exist" in reasons["missing"]
    # "good" is listed three times: line 9 is its whole clip again (another subject), line
    # 10 a segment of it, whose offset lies beyond its 5 frames.
    assert [e["id"] for e in info["clips"]] == ["good@start-end"]
    assert reasons["good"] == ("line 9: clip good@start-end is already listed on line 2; give "
                               "the rows distinct ids (an `id` column) or different "
                               "onset/offset")
    assert "offset frame 9" in reasons["good@0-9"]
    assert len(info["errors"]) == 8


def test_a_video_listed_several_times_gives_one_clip_per_segment(tmp_path):
    write_clip(tmp_path / "long", labelled_frames(0, num_frames=9))
    (tmp_path / "m.csv").write_text("\n".join([
        "path,subject,label,onset,apex,offset,id",
        "long,1,positive,0,1,3,",
        "long,1,negative,4,6,8,",
        "long,1,negative,4,6,8,",
        "long,2,surprise,0,2,8,whole",
    ]) + "\n")
    sources, errors = manifest.read(tmp_path / "m.csv")
    assert [(s.clip_id, s.emotion, s.onset, s.offset) for s in sources] == [
        ("long@0-3", "positive", 0, 3), ("long@4-8", "negative", 4, 8),
        ("whole", "surprise", 0, 8)]
    assert errors == [{"clip": "long", "reason": "line 4 repeats line 3"}]


def test_offset_outside_the_clip_is_named(tmp_path):
    write_clip(tmp_path / "c", labelled_frames(0, num_frames=5), first_number=10)
    with pytest.raises(frames.ClipError, match="offset frame 20 is not in .*10..14"):
        frames.open_frames(tmp_path / "c", 10, 20)


def test_video_clip_reads_frames_by_index(tmp_path):
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (32, 24))
    for i in range(10):
        writer.write(np.full((24, 32, 3), 20 * i, np.uint8))
    writer.release()
    read, fps = frames.open_frames(video, 2, 5)
    numbers, images = zip(*read)
    clip = np.stack(images)
    assert numbers == (2, 3, 4, 5)
    assert clip.shape == (4, 24, 32, 3) and fps == pytest.approx(25.0)
    np.testing.assert_allclose(clip.mean(axis=(1, 2, 3)), [40, 60, 80, 100], atol=3)
    with pytest.raises(frames.ClipError, match="past the end"):
        list(frames.open_frames(video, 2, 50)[0])


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
    assert cli.main(args + ["--strict"]) == 0  # clips a scheme drops are not failures
    out = capsys.readouterr().out
    assert "18 clips converted" in out
    assert "dropped by the class scheme: 6 clip(s): others 6" in out
    broken = tiny_manifest.with_name("broken.csv")  # beside it: paths are relative to it
    broken.write_text(tiny_manifest.read_text() + "nowhere,9,positive,,,,\n")
    args[args.index(str(tiny_manifest))] = str(broken)
    assert cli.main(args) == 0
    assert "1 clip(s) skipped" in capsys.readouterr().out
    assert cli.main(args + ["--strict"]) == 1
    assert "--strict: 1 clip(s) skipped" in capsys.readouterr().err


def test_manifest_without_required_column(tmp_path):
    (tmp_path / "m.csv").write_text("file,subject,label\n")
    with pytest.raises(ValueError, match="lacks column.*path"):
        manifest.read(tmp_path / "m.csv")


def test_landmarks_are_scaled_to_the_stored_size(tmp_path):
    write_clip(tmp_path / "c", labelled_frames(0, num_frames=3, size=40))
    points = np.stack([np.linspace(0, 39, 68), np.linspace(10, 20, 68)], axis=1)
    np.savetxt(tmp_path / "c.txt", points)
    source = clip.ClipSource("c", "1", "positive", tmp_path / "c", landmarks=tmp_path / "c.txt",
                                label="positive")
    record = clip.convert_clip(source, "d", CLASSES,
                                  clip.ConvertOptions(num_frames=0, size=20))
    np.testing.assert_allclose(record.landmarks, points / 2, rtol=1e-6)
    assert len(record.frames) == 3


def _shard_bytes(out_dir):
    return {p.name: p.read_bytes() for p in sorted(out_dir.glob("*.tfrecord"))}


def test_interrupted_conversion_resumes_where_it_stopped(tiny_manifest, tmp_path, monkeypatch):
    options = clip.ConvertOptions(num_frames=4, size=16, clips_per_shard=5, workers=1,
                                     progress=False)
    manifest.convert_manifest(tiny_manifest, tmp_path / "clean", classes="tlcnn4", options=options)
    real = clip.convert_clip
    calls = []

    def crash_on_the_twelfth_clip(*args):
        calls.append(args[0].clip_id)
        if len(calls) == 12:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(clip, "convert_clip", crash_on_the_twelfth_clip)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        manifest.convert_manifest(tiny_manifest, out, classes="tlcnn4", options=options)
    # Two whole shards; no part of the third, not even a temporary file; nothing complete.
    assert sorted(p.name for p in out.glob("*.tfrecord")) == [
        "manifest-00000-of-00005.tfrecord", "manifest-00001-of-00005.tfrecord"]
    assert not list(out.glob(".tmp.*"))
    assert not (out / "dataset.json").exists()
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("*.tfrecord")}
    calls.clear()
    monkeypatch.setattr(clip, "convert_clip", lambda *args: calls.append(1) or real(*args))
    info = manifest.convert_manifest(tiny_manifest, out, classes="tlcnn4", options=options)
    assert len(calls) == 14  # 24 clips, the first two shards (10 clips) kept
    assert {p: out.joinpath(p).stat().st_mtime_ns for p in before} == before
    assert _shard_bytes(out) == _shard_bytes(tmp_path / "clean")
    assert info["num_clips"] == 24 and not list(out.glob(".tmp.*"))
    assert (out / "dataset.json").read_bytes() == (tmp_path / "clean" / "dataset.json").read_bytes()


def test_rerun_with_other_settings_reconverts_and_removes_stale_shards(tiny_manifest, tmp_path):
    out = tmp_path / "out"
    small = clip.ConvertOptions(num_frames=4, size=16, clips_per_shard=5, workers=1,
                                   progress=False)
    manifest.convert_manifest(tiny_manifest, out, classes="tlcnn4", options=small)
    first = _shard_bytes(out)
    manifest.convert_manifest(tiny_manifest, out, classes="tlcnn4", options=small)
    assert _shard_bytes(out) == first  # nothing to redo
    bigger = clip.ConvertOptions(num_frames=4, size=24, clips_per_shard=10, workers=1,
                                    progress=False)
    info = manifest.convert_manifest(tiny_manifest, out, classes="tlcnn4", options=bigger)
    assert sorted(_shard_bytes(out)) == [f"manifest-0000{i}-of-00003.tfrecord" for i in range(3)]
    assert sorted(p.name for p in (out / convert.PROGRESS_DIR).iterdir()) == [
        f"manifest-0000{i}-of-00003.tfrecord.json" for i in range(3)]
    record = _records(out)[0]
    assert (record.height, info["height"]) == (24, 24)


def test_dropped_emotions_are_reported_not_failed(tmp_path):
    root = tmp_path / "raw"
    lines = ["path,subject,label"]
    for i, label in enumerate(["happiness", "disgust", "others", "tense", "surprise"]):
        write_clip(root / f"c{i}", labelled_frames(i % 4, num_frames=3))
        lines.append(f"c{i},{i},{label}")
    (root / "m.csv").write_text("\n".join(lines) + "\n")
    info = manifest.convert_manifest(root / "m.csv", tmp_path / "out", classes="megc3",
                                     options=clip.ConvertOptions(num_frames=0, size=16,
                                                                    workers=1, progress=False))
    assert info["classes"] == ["negative", "positive", "surprise"]
    assert info["class_counts"] == {"negative": 1, "positive": 1, "surprise": 1}
    assert info["dropped"] == [{"clip": "c2", "emotion": "others"},
                               {"clip": "c3", "emotion": "tense"}]
    assert info["dropped_emotions"] == {"others": 1, "tense": 1} and info["errors"] == []
    records = {r.clip_id: r for r in _records(tmp_path / "out")}
    assert (records["c0"].label_name, records["c0"].source_emotion) == ("positive", "happiness")
    assert (records["c1"].label_name, records["c1"].source_emotion) == ("negative", "disgust")


def _portrait_video(path, frames=12, canvas=(480, 640)):
    """A real face (matplotlib's Grace Hopper photo) moving across a larger frame, as AVI."""
    photo = cv2.imread(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    photo = cv2.resize(photo, (300, 352), interpolation=cv2.INTER_AREA)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0,
                             (canvas[1], canvas[0]))
    for f in range(frames):
        image = np.full(canvas + (3,), 70, np.uint8)
        image[60:412, 200 + 4 * f:500 + 4 * f] = photo
        writer.write(image)
    writer.release()


def test_real_face_video_is_cropped_to_the_face(tmp_path):
    _portrait_video(tmp_path / "face.avi")
    (tmp_path / "m.csv").write_text("path,subject,label\nface.avi,1,happiness\n")
    options = clip.ConvertOptions(num_frames=8, size=64, crop="detect", workers=1,
                                     progress=False)
    info = manifest.convert_manifest(tmp_path / "m.csv", tmp_path / "out", options=options)
    assert info["errors"] == [] and info["source"]["crop"] == "detect"
    record = _records(tmp_path / "out")[0]
    assert len(record.frames) == 8 and record.fps == pytest.approx(30.0)
    # The stored landmarks are the face's, in crop coordinates: the face fills the crop.
    low, high = record.landmarks.min(axis=0), record.landmarks.max(axis=0)
    assert np.all(low >= 0) and np.all(high <= 64)
    assert (high - low)[0] >= 0.75 * 64
    # Independent check: the detector finds the face again in the stored first frame, where
    # the stored landmarks say it is.
    first = cv2.cvtColor(cv2.imdecode(np.frombuffer(record.frames[0], np.uint8),
                                      cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    again = face.locate(cv2.resize(first, (256, 256))) / 4
    assert np.median(np.abs(again - record.landmarks)) < 2.0


def test_no_face_is_a_clip_error_naming_the_frame(tmp_path):
    write_clip(tmp_path / "blank", [np.full((48, 64, 3), 128, np.uint8)] * 3)
    source = clip.ClipSource("blank", "1", "positive", tmp_path / "blank", label="positive")
    with pytest.raises(frames.ClipError, match="first frame of .*blank: no face"):
        clip.convert_clip(source, "d", CLASSES,
                             clip.ConvertOptions(num_frames=0, size=16, crop="detect"))


def test_one_frame_sources_make_one_frame_records(tmp_path):
    image = labelled_frames(1, num_frames=1, size=40)[0]
    cv2.imwrite(str(tmp_path / "still.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    options = clip.ConvertOptions(num_frames=32, size=20)
    still = clip.ClipSource("still", "1", "happiness", tmp_path / "still.png",
                               label="positive")
    record = clip.convert_clip(still, "d", CLASSES, options)
    assert len(record.frames) == 1
    grey = np.arange(48 * 48, dtype=np.uint8).reshape(1, 48, 48)
    table = clip.ClipSource("row2", "1", "fear", tmp_path / "t.csv", label="negative",
                               pixels=grey)
    record = clip.convert_clip(table, "d", CLASSES, dataclasses.replace(options, size=48))
    decoded = cv2.imdecode(np.frombuffer(record.frames[0], np.uint8), cv2.IMREAD_COLOR)
    np.testing.assert_array_equal(decoded, np.repeat(grey[0][..., None], 3, axis=-1))


def test_conversion_loads_no_tensorflow(tiny_manifest, tmp_path):
    # The conversion runs in a fresh interpreter; it and its spawned workers (which inherit
    # the environment) start with the logging `sitecustomize` on their path.
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(LOG_TENSORFLOW_IMPORTS)
    log = tmp_path / "tensorflow_imports.log"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path / "site"), str(REPO)]),
               TENSORFLOW_IMPORT_LOG=str(log))
    argv = ["manifest", "--root", str(tiny_manifest), "--out", str(tmp_path / "out"),
            "--workers", "2", "--tim", "4", "--size", "16", "--strict"]
    script = ("import sys\n"
              "from data_prep.__main__ import main\n"
              f"assert main({argv!r}) == 0\n"
              "print('tensorflow' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "False", result.stdout
    assert not log.exists(), log.read_text()
    assert json.loads((tmp_path / "out" / "dataset.json").read_text())["num_clips"] == 24


def test_converter_modules_load_no_tensorflow():
    script = ("import importlib, pkgutil, sys\n"
              "import data_prep\n"
              "for module in pkgutil.walk_packages(data_prep.__path__, 'data_prep.'):\n"
              "    importlib.import_module(module.name)\n"
              "print(sorted(m for m in sys.modules if m.split('.')[0] == 'tensorflow'))\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "[]", result.stdout
