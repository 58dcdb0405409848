"""A motion experiment end to end: `train.py --experiment ststnet --quick` on the small
built-in data, its run folder, and its SavedModel taking `flow`."""

import csv
import json

import numpy as np
import pytest
import tensorflow as tf

import evaluate
from gradcam import compare as gradcam_compare
from gradcam import select as gradcam_select
from tests.helpers import train_quick
from tfmer import data, experiments, features, run_folder


@pytest.fixture(scope="module")
def ststnet_run(builtin_dataset, tmp_path_factory):
    root = tmp_path_factory.mktemp("ststnet_run")
    return train_quick("ststnet", builtin_dataset, root)


def test_every_clip_is_predicted_once_from_its_own_fold(ststnet_run, builtin_dataset):
    run_dir, _ = ststnet_run
    info = data.load_info(builtin_dataset)
    folds = json.loads((run_dir / run_folder.FOLDS).read_text())
    test_fold = {s: f["fold"] for f in folds for s in f["test_subjects"]}
    with open(run_dir / run_folder.PREDICTIONS, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(r["clip_id"] for r in rows) == sorted(c["id"] for c in info.clips)
    assert all(int(r["fold"]) == test_fold[r["subject"]] for r in rows)
    config = json.loads((run_dir / run_folder.CONFIG).read_text())
    assert config["data"]["input"] == "flow" and config["model"]["channels"] == [
        "strain", "u", "v"]


def _stored_flows(info, size):
    """The dataset's motion maps at `size`, computed from the records with numpy-side
    decoding (`features.decode`) and `data.flow_input`: `(ids, flows [n, S, S, 3])`."""
    ids, flows = [], []
    for shard in info.shards:
        for serialized in tf.data.TFRecordDataset(str(shard)):
            record = features.decode(serialized.numpy())
            ids.append(record.clip_id)
            flows.append(data.flow_input(record.motion.uvs.reshape(-1), record.height,
                                         record.width, size).numpy())
    return ids, np.stack(flows)


def test_the_saved_model_takes_flow_and_equals_the_final_weights(ststnet_run, builtin_dataset,
                                                                  tmp_path, capsys):
    run_dir, export_dir = ststnet_run
    metadata = json.loads((export_dir / "assets" / "tfmer.json").read_text())
    assert metadata["input"]["name"] == "flow"
    assert metadata["input"]["channels"] == ["u", "v", "strain"]
    assert metadata["preprocessing"]["input"] == "flow"
    assert metadata["preprocessing"]["flow"]["method"] == "tvl1"
    assert metadata["preprocessing"]["flow"]["apex"] == "middle"
    assert metadata["conversion"]["flow"] == "tvl1"
    serve = tf.saved_model.load(str(export_dir)).signatures["serving_default"]
    assert list(serve.structured_input_signature[1]) == ["flow"]
    size = metadata["preprocessing"]["image_size"]
    info = data.load_info(builtin_dataset)
    _, flows = _stored_flows(info, size)
    served = serve(flow=tf.constant(flows))["probabilities"].numpy()
    model = experiments.build_model("ststnet", quick=True)
    model.load_weights(run_dir / run_folder.FINAL_WEIGHTS)
    np.testing.assert_allclose(served, model.predict(flows, verbose=0), rtol=1e-5, atol=1e-6)
    assert evaluate.main(["--model", str(export_dir), "--data", str(builtin_dataset),
                          "--out", str(tmp_path)]) == 0
    assert "pooled over 16 predictions" in capsys.readouterr().out


def test_gradcam_refuses_motion_models(ststnet_run, builtin_dataset, tmp_path):
    run_dir, _ = ststnet_run
    with pytest.raises(ValueError, match="reads flow, not frames: Grad-CAM compares frame"):
        gradcam_compare.compare(run_dir, tmp_path)
    with pytest.raises(ValueError, match="ststnet reads flow, not frames: Grad-CAM layer"):
        gradcam_select.select("ststnet", builtin_dataset, tmp_path)
