"""`python -m tfmer.predict`: an export on new videos, frame folders and folders of videos.

Small exports of every input kind (frames with windows, a single-frame model, flow,
appearance, an SVM baseline) are made here from tiny Keras models and the conversion
settings of a real conversion, so the file runs in seconds; each prediction is checked
against the export's own output on the same clip converted by the real converter
(`data_prep.manifest.convert_manifest`, as `python -m data_prep manifest` runs it) and
decoded independently.
"""

from __future__ import annotations

import csv
import json
import pathlib
import re
import subprocess
import sys

import cv2
import keras
import numpy as np
import pytest
import tensorflow as tf

from data_prep import clip, manifest
from tests import face_frames
from tfmer import appearance, clip_features, data, export, features, predict, svm
from tfmer.config import DataConfig, ExperimentConfig, HandcraftedConfig

FPS = 30.0
SIZE, TIM = 32, 8


def write_video(path: pathlib.Path, frames_bgr) -> pathlib.Path:
    """Writes BGR uint8 frames as an MJPG AVI at `FPS`."""
    height, width = frames_bgr[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (width, height))
    for frame in frames_bgr:
        writer.write(frame)
    writer.release()
    return path


def face_clip(label: str, variant: int, count: int = 12):
    """Grace Hopper's face with `label`'s change rising to the middle frame and falling."""
    apex = count // 2
    return [face_frames.frame(label, face_frames.intensity(i, 0, apex, count - 1), variant)
            for i in range(count)]


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> pathlib.Path:
    """A folder of two 12-frame face videos (160x192, MJPG)."""
    root = tmp_path_factory.mktemp("videos")
    write_video(root / "a_happy.avi", face_clip("happiness", 0))
    write_video(root / "b_surprise.avi", face_clip("surprise", 7))
    return root


@pytest.fixture(scope="module")
def converted(videos, tmp_path_factory) -> pathlib.Path:
    """Both videos converted by the manifest converter: face detected, TIM 8, 32 px, TV-L1."""
    csv_path = videos / "manifest.csv"
    csv_path.write_text("path,subject,label\na_happy.avi,01,happiness\n"
                        "b_surprise.avi,02,surprise\n")
    out = tmp_path_factory.mktemp("converted")
    options = clip.ConvertOptions(num_frames=TIM, size=SIZE, crop="detect", workers=1,
                                  progress=False)
    manifest.convert_manifest(csv_path, out, classes="tlcnn4", name="faces", options=options)
    csv_path.unlink()  # the folder holds videos only
    return out


def stored_clips(data_dir) -> dict:
    """`{clip id: ClipRecord}` of a converted dataset, decoded without the pipeline."""
    info = data.load_info(data_dir)
    found = {}
    for shard in info.shards:
        for serialized in tf.data.TFRecordDataset(str(shard)):
            record = features.decode(serialized.numpy())
            found[record.clip_id] = record
    return found


def frames_of(record) -> np.ndarray:
    """float32 `[T, H, W, 3]` RGB frames of a record."""
    return np.stack([cv2.cvtColor(cv2.imdecode(np.frombuffer(f, np.uint8), cv2.IMREAD_COLOR),
                                  cv2.COLOR_BGR2RGB) for f in record.frames]).astype(np.float32)


def tiny_export(root, name, model, data_config, conversion, extra=None) -> pathlib.Path:
    config = ExperimentConfig(name=name, paper="test", description="test", data=data_config)
    return export.export_saved_model(model, config, list(data.load_info(conversion).classes),
                                     root, extra={"conversion": data.load_info(
                                         conversion).raw["settings"], "tim": TIM,
                                         **(extra or {})})


def dense_model(shape, seed):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape)
    x = keras.layers.Flatten()(keras.layers.Rescaling(1 / 64)(inputs))
    return keras.Model(inputs, keras.layers.Dense(4, activation="softmax")(x))


@pytest.fixture(scope="module")
def exports(converted, tmp_path_factory) -> dict:
    """Exports of the frames (windows of 4), single-frame, flow and appearance kinds."""
    root = tmp_path_factory.mktemp("exports")
    mask = np.zeros(appearance.MASK_SIZE, bool)
    mask[20:40, 10:30] = True
    return {
        "frames": tiny_export(root, "frames", dense_model((4, SIZE, SIZE, 3), 0),
                              DataConfig(image_size=SIZE, window=4, eval_stride=2), converted),
        "single": tiny_export(root, "single", dense_model((1, SIZE, SIZE, 3), 1),
                              DataConfig(image_size=SIZE, window=1), converted),
        "resized": tiny_export(root, "resized", dense_model((4, 12, 12, 3), 4),
                               DataConfig(image_size=12, window=4, eval_stride=3), converted),
        "flow": tiny_export(root, "flow", dense_model((SIZE, SIZE, 3), 2),
                            DataConfig(image_size=SIZE, input="flow"), converted),
        "appearance": tiny_export(root, "appearance", dense_model((int(mask.sum()), 6, 1), 3),
                                  DataConfig(image_size=SIZE, input="appearance", columns=6),
                                  converted, extra={"appearance": {
                                      "mask_size": list(mask.shape),
                                      "mask": np.flatnonzero(mask).tolist()}}),
        "mask": mask,
    }


def run(capsys, *argv) -> tuple[int, object, str]:
    """`python -m tfmer.predict ARGV`: `(status, stdout JSON or None, stderr)`."""
    capsys.readouterr()  # what the test printed before
    status = predict.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, (json.loads(out) if status == 0 else out), err


def expected(serve_input, model_dir, name) -> dict:
    serve = export.load_serving(model_dir)
    p = serve(**{name: tf.constant(serve_input[None])})["probabilities"].numpy()[0]
    return dict(zip(export.load_metadata(model_dir)["classes"], p.tolist()))


def assert_probabilities(result, wanted: dict, clip_name: str):
    assert result["clip"] == clip_name
    assert list(result["probabilities"]) == list(wanted)
    np.testing.assert_allclose(list(result["probabilities"].values()), list(wanted.values()),
                               rtol=1e-5, atol=1e-6)
    assert sum(result["probabilities"].values()) == pytest.approx(1, abs=1e-5)
    assert result["predicted"] == max(wanted, key=wanted.get)


def test_a_video_gets_the_probabilities_of_its_conversion_for_every_network_kind(
        videos, converted, exports, capsys):
    record = stored_clips(converted)["a_happy.avi"]
    frames = frames_of(record)
    flow = data.flow_input(record.motion.uvs.ravel(), record.height, record.width,
                           SIZE).numpy()
    grey = appearance.grey_small(tf.constant(frames))
    matrix = appearance.appearance_matrix(grey, exports["mask"], 6).numpy()[..., None]
    for kind, serve_input, name in (("frames", frames, "frames"), ("single", frames, "frames"),
                                    ("resized", data.resize_frames(frames, 12).numpy(),
                                     "frames"), ("flow", flow, "flow"),
                                    ("appearance", matrix, "appearance")):
        status, result, err = run(capsys, videos / "a_happy.avi", "--model", exports[kind])
        assert status == 0, err
        assert_probabilities(result, expected(serve_input, exports[kind], name), "a_happy.avi")


def test_the_same_input_gives_the_same_output_and_out_files(videos, exports, capsys,
                                                            tmp_path):
    argv = (videos / "b_surprise.avi", "--model", exports["frames"])
    _, first, _ = run(capsys, *argv, "--out", tmp_path / "p.json")
    _, again, _ = run(capsys, *argv, "--out", tmp_path / "p.csv")
    assert first == again
    assert json.loads((tmp_path / "p.json").read_text()) == first
    (row,) = list(csv.DictReader(open(tmp_path / "p.csv")))
    assert row["clip"] == "b_surprise.avi" and row["predicted"] == first["predicted"]
    assert [float(row[f"p_{c}"]) for c in first["probabilities"]] == pytest.approx(
        list(first["probabilities"].values()))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp.")]


def test_the_command_line_converts_in_worker_processes_with_the_same_result(
        videos, exports, capsys):
    """`python -m tfmer.predict` itself on the SavedModel: its conversion runs in spawned
    processes while TensorFlow loads, and it ends without the interpreter's teardown."""
    argv = [videos / "a_happy.avi", "--model", exports["frames"], "--timings",
            "--runtime", "tensorflow"]
    done = subprocess.run([sys.executable, "-m", "tfmer.predict", *map(str, argv)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "timing: import TensorFlow" in done.stderr
    _, in_process, _ = run(capsys, *argv)
    assert json.loads(done.stdout) == in_process


def test_the_tflite_model_scores_without_tensorflow_as_the_saved_model_does(videos, exports,
                                                                            capsys):
    """A frames model on TIM clips: the export holds `lite/model.tflite`, which the command
    line runs without importing TensorFlow (`-X importtime` lists every import), giving
    the SavedModel's probabilities."""
    for kind in ("frames", "resized"):
        metadata = export.load_metadata(exports[kind])
        assert metadata["lite"]["input"]["shape"] == [1, TIM, SIZE, SIZE, 3]
        assert (exports[kind] / metadata["lite"]["file"]).is_file()
        argv = [videos / "b_surprise.avi", "--model", exports[kind]]
        done = subprocess.run([sys.executable, "-X", "importtime", "-m", "tfmer.predict",
                               *map(str, argv), "--timings"],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()
                    if line.startswith("import time:")}
        assert "ai_edge_litert" in imported and "tensorflow" not in imported
        assert "timing: load the TFLite model" in done.stderr
        _, saved_model, _ = run(capsys, *argv, "--runtime", "tensorflow")
        assert_probabilities(json.loads(done.stdout), saved_model["probabilities"],
                             "b_surprise.avi")
    assert "lite" not in export.load_metadata(exports["flow"])


@pytest.mark.parametrize("stored, size", [(32, 16), (32, 12), (20, 20)])
def test_the_area_matrix_is_the_pipelines_resize(stored, size):
    frames = np.random.default_rng(stored + size).integers(0, 256, (2, stored, stored, 3),
                                                           dtype=np.uint8)
    matrix = export.area_matrix(stored, size)
    mine = np.einsum("ah,thwc,gw->tagc", matrix, frames.astype(np.float64), matrix)
    np.testing.assert_allclose(mine, data.resize_frames(tf.constant(frames), size).numpy(),
                               atol=1e-3)


def test_a_folder_of_videos_gives_a_row_per_video_and_a_frame_folder_one_clip(
        videos, exports, capsys, tmp_path):
    status, rows, _ = run(capsys, videos, "--model", exports["frames"])
    assert status == 0 and [r["clip"] for r in rows] == ["a_happy.avi", "b_surprise.avi"]
    for row in rows:
        _, alone, _ = run(capsys, videos / row["clip"], "--model", exports["frames"])
        assert row == alone
    # The frames of a video, as PNG images: the same clip.
    folder = tmp_path / "frames_of_a"
    folder.mkdir()
    capture = cv2.VideoCapture(str(videos / "a_happy.avi"))
    count = 0
    while (read := capture.read())[0]:
        cv2.imwrite(str(folder / f"img{count:03d}.png"), read[1])
        count += 1
    _, from_frames, _ = run(capsys, folder, "--model", exports["frames"])
    np.testing.assert_allclose(list(from_frames["probabilities"].values()),
                               list(rows[0]["probabilities"].values()), rtol=1e-5, atol=1e-6)


def test_onset_apex_offset_cut_the_clip(videos, exports, capsys):
    status, result, _ = run(capsys, videos / "a_happy.avi", "--model", exports["flow"],
                            "--onset", 2, "--apex", 5, "--offset", 9)
    assert status == 0
    source = clip.ClipSource("cut", "01", "", videos / "a_happy.avi", onset=2, apex=5,
                             offset=9, label="positive")
    options = predict.conversion_options(export.load_metadata(exports["flow"]), exports["flow"])
    record = clip.convert_clip(source, "faces", ("positive", "negative", "surprise", "others"),
                               options)
    assert (record.motion.source_from, record.motion.source_to) == (2, 5)
    flow = data.flow_input(record.motion.uvs.ravel(), SIZE, SIZE, SIZE).numpy()
    assert_probabilities(result, expected(flow, exports["flow"], "flow"), "a_happy.avi")


def test_spot_scores_windows_with_frames_times_and_a_plot(videos, exports, capsys, tmp_path):
    out = tmp_path / "spot.csv"
    status, windows, _ = run(capsys, videos / "a_happy.avi", "--model", exports["frames"],
                             "--spot", "--window", 6, "--stride", 3, "--out", out)
    assert status == 0
    assert [(w["start_frame"], w["end_frame"]) for w in windows] == [(0, 5), (3, 8), (6, 11)]
    assert windows[1]["start_s"] == pytest.approx(3 / FPS, abs=1e-3)
    assert windows[1]["end_s"] == pytest.approx(8 / FPS, abs=1e-3)
    _, cut, _ = run(capsys, videos / "a_happy.avi", "--model", exports["frames"], "--onset", 3,
                    "--offset", 8)
    assert windows[1]["probabilities"] == pytest.approx(cut["probabilities"], abs=1e-6)
    rows = list(csv.DictReader(open(out)))
    assert [int(r["start_frame"]) for r in rows] == [0, 3, 6]
    assert (tmp_path / "spot.png").stat().st_size > 1000


def test_an_svm_export_scores_a_frame_folder_as_evaluate_does(tiny_manifest, tiny_dataset,
                                                              tmp_path, capsys):
    info = data.load_info(tiny_dataset)
    settings = HandcraftedConfig(method="lbptop", grid=(2, 2), radii=(1, 1, 1), workers=1)
    found = clip_features.compute(settings, info, log=lambda line: None)
    chosen = svm.candidates(settings, list(found.variants))[0]
    labels = [info.classes.index(c["label"]) for c in info.clips]
    estimator = svm.fit(settings, chosen, found.select(chosen["variant"], found.clip_ids),
                        labels)
    config = ExperimentConfig(name="lbptop_svm", paper="test", description="test",
                              data=DataConfig(window=None, flip=False), handcrafted=settings)
    model_dir = export.export_svm(estimator, config, info.classes, tmp_path, extra={
        "chosen": chosen, "conversion": info.raw["settings"], "tim": info.raw["tim"]})
    scored = export.evaluate_export(model_dir, tiny_dataset, out_dir=tmp_path / "scored")
    wanted = next(r for r in csv.DictReader(open(tmp_path / "scored" / "predictions.csv"))
                  if r["clip_id"] == "sub02/clip_surprise")
    assert scored["pooled"]["accuracy"] >= 0
    status, result, _ = run(capsys, tiny_manifest.parent / "sub02" / "clip_surprise",
                            "--model", model_dir, "--onset", 6, "--apex", 9, "--offset", 14)
    assert status == 0
    assert_probabilities(result, {c: float(wanted[f"p_{c}"]) for c in info.classes},
                         "clip_surprise")


def test_crop_override_warns(videos, exports, capsys):
    status, result, err = run(capsys, videos / "a_happy.avi", "--model", exports["frames"],
                              "--crop", "none")
    assert status == 0 and "warning: --crop none replaces the crop" in err
    assert sum(result["probabilities"].values()) == pytest.approx(1, abs=1e-5)


@pytest.mark.parametrize("case, message", [
    ("broken", r"broken\.avi: (cannot open video|video .* has no readable frames)"),
    ("empty", r"holds no frame images .* and no videos"),
    ("noface", r"blank\.avi: first frame of .*no face found.*--crop none"),
    ("nomodel", r"is not a tfmer SavedModel export: no assets/tfmer\.json"),
    ("order", r"--onset 8 is after --offset 3"),
    ("range", r"a_happy\.avi: offset frame 40 is past the end of video"),
    ("suffix", r"--out .*: give a \.csv or \.json file"),
    ("nolite", r"--runtime lite: .* has no TFLite model .*--runtime tensorflow"),
])
def test_bad_input_is_one_error_line_exit_2_and_no_file(case, message, videos, exports,
                                                        tmp_path, capsys):
    video, model, more = videos / "a_happy.avi", exports["frames"], []
    if case == "broken":
        video = tmp_path / "broken.avi"
        video.write_bytes(b"not a video" * 100)
    elif case == "empty":
        video = tmp_path / "empty"
        video.mkdir()
    elif case == "noface":
        video = write_video(tmp_path / "blank.avi", [np.full((96, 96, 3), 128, np.uint8)] * 4)
    elif case == "nomodel":
        model = tmp_path
    elif case == "order":
        more = ["--onset", 8, "--offset", 3]
    elif case == "range":
        more = ["--offset", 40]
    elif case == "nolite":
        model, more = exports["flow"], ["--runtime", "lite"]
    out = tmp_path / ("out.txt" if case == "suffix" else "out.csv")
    status, stdout, err = run(capsys, video, "--model", model, "--out", out, *more)
    assert status == 2 and stdout == ""
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: "), err
    assert re.search(message, err), err
    assert not out.exists() and not list(tmp_path.glob(".tmp.*"))
