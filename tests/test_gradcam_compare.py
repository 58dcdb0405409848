"""`python -m gradcam compare`: Grad-CAM of a run's final model before and after training."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import shutil

import keras
import numpy as np
import pytest
from PIL import Image

from gradcam import compare, grad_cams, regions, scoring
from gradcam.__main__ import main
from tfmer import data, experiments, run_folder
from tfmer.config import GRADCAM
from tfmer.run_folder import RunFolder

LAYER = "conv2_3_out"  # 8 x 8 at 32 px: room for before and after to differ
COUNT = 4


@pytest.fixture(scope="module")
def finished_run(exp3_run):
    """A quick exp3 run (2 folds, final model exported) on synthetic clips with landmarks."""
    return exp3_run[0]


@pytest.fixture(scope="module")
def compared(finished_run):
    """`python -m gradcam compare` at `LAYER` on `COUNT` frames: (out folder, stdout)."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        status = main(["compare", str(finished_run), "--layer", LAYER,
                       "--count", str(COUNT)])
    assert status == 0
    return finished_run / compare.OUT_DIR, printed.getvalue()


@pytest.fixture(scope="module")
def models(finished_run):
    """The final model's initial state (a fresh seed-0 build, as training starts from) and
    its trained state (`final.weights.h5`), built independently of `gradcam.compare`."""
    config = experiments.get("exp3", "quick")
    keras.utils.set_random_seed(0)
    before = experiments.build(config, 4)
    after = experiments.build(config, 4)
    after.load_weights(finished_run / run_folder.FINAL_WEIGHTS)
    return before, after


def _fake_run(source, target, *, unfreeze_from=None, dataset=None):
    """A run folder with `source`'s config.json (edited) and empty weight files."""
    target.mkdir()
    saved = json.loads((source / "config.json").read_text())
    saved["model"]["unfreeze_from"] = unfreeze_from
    if dataset is not None:
        saved["dataset"]["path"] = str(dataset)
    (target / "config.json").write_text(json.dumps(saved))
    for name in (run_folder.INITIAL_WEIGHTS, run_folder.FINAL_WEIGHTS):
        (target / name).touch()
    return target


def test_compare_writes_the_figure_and_the_shares(compared):
    out, printed = compared
    content = json.loads((out / compare.RESULT).read_text())
    assert content["layer"] == LAYER and content["layer_source"] == compare.CHOSEN
    assert content["experiment"] == "exp3" and content["class_target"] == "label"
    assert content["num_subjects"] == 4 and len(content["frames"]) == COUNT
    labels = [entry["label"] for entry in content["frames"]]
    assert sorted(labels) == ["negative", "others", "positive", "surprise"]  # one per class
    for entry in content["frames"]:
        assert 0 <= entry["before"] <= 1 and 0 <= entry["after"] <= 1
        assert f"_{entry['label']}_" in entry["clip_id"]  # synthetic ids name their class
    for key in ("before", "after"):
        assert content[f"mean_{key}"] == pytest.approx(
            np.mean([entry[key] for entry in content["frames"]]))
    assert 0 < content["area"] < 1
    width, height = Image.open(out / compare.FIGURE).size
    assert width >= 3 * 144 and height >= COUNT * 144
    assert f"{content['mean_before']:.3f} -> after {content['mean_after']:.3f}" in printed
    assert f"uniform heat {content['area']:.3f}" in printed and compare.FIGURE in printed
    assert not list(out.glob(".tmp.*"))


def test_heatmaps_equal_an_independent_grad_cam_before_and_after(finished_run, compared,
                                                                  models):
    out, _ = compared
    content = json.loads((out / compare.RESULT).read_text())
    saved = json.loads((finished_run / "config.json").read_text())
    info = data.load_info(saved["dataset"]["path"])
    frames, landmarks, clip_ids, sampled_classes, _ = scoring.sample_frames(
        info, image_size=32, count=COUNT)
    assert clip_ids == [entry["clip_id"] for entry in content["frames"]]
    labels = {clip["id"]: info.classes.index(clip["label"]) for clip in info.clips}
    classes = [labels[clip_id] for clip_id in clip_ids]
    assert sampled_classes.tolist() == classes
    independent = []
    for model in models:  # one frame at a time, as a one-frame clip, for its labelled class
        independent.append(np.stack([
            grad_cams(model, frame[None, None].astype(np.float32), [LAYER],
                      class_index=label)[LAYER][0, 0]
            for frame, label in zip(frames, classes)]))
    before, after = independent
    for key, maps in (("before", before), ("after", after)):
        for entry, heatmap, points in zip(content["frames"], maps, landmarks):
            share = regions.heat_in_regions(heatmap, regions.region_mask(points, 32))
            assert entry[key] == pytest.approx(share, abs=1e-5), (key, entry["clip_id"])
    run = compare.load_run(finished_run)
    found = compare.before_after_heatmaps(run, models[1], frames, LAYER, classes)  # ends trained
    # One batch of all frames there, one frame per call here: float32 rounding of the
    # batched ResNet-50 differs by ~2e-5 on 0..1 maps.
    np.testing.assert_allclose(found[0], before, atol=1e-4)
    np.testing.assert_allclose(found[1], after, atol=1e-4)
    assert not np.allclose(before, after, atol=1e-3)
    assert content["zero_maps"] == {"before": int(sum(not m.any() for m in before)),
                                    "after": int(sum(not m.any() for m in after))}


def test_the_run_folder_gives_back_the_config_it_ran(finished_run, tmp_path):
    saved = json.loads((finished_run / "config.json").read_text())
    config = experiments.get("exp3", "quick")
    expected = dataclasses.replace(
        config, data=dataclasses.replace(config.data, classes=tuple(saved["data"]["classes"])),
        protocol=dataclasses.replace(config.protocol, protocol="kfold2"))
    assert RunFolder(finished_run).config() == expected
    saved["model"]["nope"] = 1
    (tmp_path / "config.json").write_text(json.dumps(saved))
    with pytest.raises(ValueError, match="config.json: model has no field.*nope"):
        RunFolder(tmp_path).config()


def test_default_layer_is_the_final_selection_else_the_last_block_output(
        finished_run, models, tmp_path):
    model = models[0]
    run = compare.load_run(finished_run)
    assert compare.choose_layer(run, model) == ("conv5_3_out", compare.LAST_BLOCK)
    assert compare.choose_layer(run, model, "conv3_1_out") == ("conv3_1_out", compare.CHOSEN)
    selecting = _fake_run(finished_run, tmp_path / "run", unfreeze_from=GRADCAM)
    with pytest.raises(ValueError, match="pass --layer"):  # no export.json
        compare.choose_layer(compare.load_run(selecting), model)
    exported = tmp_path / "saved"
    (exported / "assets").mkdir(parents=True)
    (exported / "assets" / "tfmer.json").write_text(
        json.dumps({"gradcam_selection": {"selected": "conv3_2_out", "layers": []}}))
    (selecting / "export.json").write_text(json.dumps({"saved_model": str(exported)}))
    assert compare.choose_layer(compare.load_run(selecting), model) == (
        "conv3_2_out", compare.SELECTED)


def test_compare_errors_are_one_line(finished_run, tiny_dataset, tmp_path, capsys):
    def error(argv):
        assert main(["compare", *argv]) == 2
        message = capsys.readouterr().err
        assert len(message.strip().splitlines()) == 1, message
        return message

    assert "not a run folder" in error([str(tmp_path)])
    unexported = tmp_path / "unexported"
    unexported.mkdir()
    shutil.copy(finished_run / "config.json", unexported)
    message = error([str(unexported)])
    assert "--no-export" in message and run_folder.FINAL_WEIGHTS in message
    message = error([str(finished_run), "--layer", "nope", "--out", str(tmp_path / "out")])
    assert "unknown layer(s) nope" in message and "conv5_3_out" in message
    no_landmarks = _fake_run(finished_run, tmp_path / "tiny", dataset=tiny_dataset)
    message = error([str(no_landmarks)])
    assert "no facial landmarks" in message and "--canonical-landmarks" in message
    moved = _fake_run(finished_run, tmp_path / "moved", dataset=tmp_path / "gone")
    assert "holds no dataset.json any more" in error([str(moved)])
    assert "count must be >= 1" in error([str(finished_run), "--count", "0"])
    assert not (tmp_path / "out").exists()
    assert not (no_landmarks / compare.OUT_DIR).exists()
