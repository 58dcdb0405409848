"""STRCN-A end to end: the appearance pipeline, the mask taken from training clips only,
`train.py --experiment strcn_a --quick`, and its SavedModel taking `appearance`."""

import json

import numpy as np
import pytest
import tensorflow as tf

import evaluate
from tests.helpers import train_quick
from tfmer import appearance, data, experiments, run_folder


@pytest.fixture(scope="module")
def strcn_a_run(builtin_dataset, tmp_path_factory):
    root = tmp_path_factory.mktemp("strcn_a_run")
    return train_quick("strcn_a", builtin_dataset, root)


def test_appearance_batches_are_the_clips_matrices(builtin_dataset):
    info = data.load_info(builtin_dataset)
    subjects = info.subjects[:2]
    mask = appearance.appearance_mask(data.clip_energies(info, subjects))
    rows = int(mask.sum())
    evaluation = list(data.appearance_eval_dataset(info, subjects, mask, columns=64,
                                                   batch_size=3))
    matrices = np.concatenate([m.numpy() for m, _, _ in evaluation])
    assert matrices.shape == (8, rows, 64, 1)
    # Each matrix is the clip's frames, grey, masked, resampled: the same as computing it
    # from the decoded frames of the record.
    for (matrix, label, clip_id), clip in zip(
            [(m, label, i) for b in evaluation for m, label, i in zip(*b)],
            data.read_clips(info, subjects)):
        grey = appearance.grey_small(data.decode_frames(clip["image/encoded"]))
        expected = appearance.appearance_matrix(grey, mask, 64).numpy()
        np.testing.assert_allclose(matrix.numpy()[..., 0], expected, atol=1e-3)
        assert clip_id == clip["clip/id"] and int(label) == int(clip["clip/label"])
    training = data.appearance_train_dataset(info, subjects, mask, columns=64, batch_size=4,
                                             copies=3, seed=0)
    labels = np.concatenate([labels.numpy() for _, labels in training])
    # Every clip 3 times per pass, each copy with its own clip's label.
    expected = sorted(3 * [info.classes.index(c["label"]) for c in info.clips_of(subjects)])
    assert sorted(labels.tolist()) == expected


def test_the_mask_comes_from_the_training_clips_only(builtin_dataset):
    info = data.load_info(builtin_dataset)
    config = experiments.get("strcn_a", "quick")
    trainer = experiments.trainer(config, len(info.classes))
    training_subjects = info.subjects[:3]
    trainer.fit(info, training_subjects, seed=0, log=lambda line: None)
    own = appearance.appearance_mask(data.clip_energies(info, training_subjects))
    np.testing.assert_array_equal(trainer.mask, own)
    everyone = appearance.appearance_mask(data.clip_energies(info, info.subjects))
    assert not np.array_equal(own, everyone)  # the test subject's clips would change it
    rows = trainer.predict(info, info.subjects[3:])
    assert len(rows) == 4 and all(np.isclose(sum(r["probabilities"]), 1) for r in rows)
    # The held-out split an early-stopping fit chooses its epoch on: matrices, not frames.
    [(matrices, labels)] = list(trainer.validation_batches(info, info.subjects[3:]))
    assert matrices.shape == (4, own.sum(), config.data.columns, 1) and labels.shape == (4,)


def test_the_saved_model_takes_appearance_with_its_mask(strcn_a_run, builtin_dataset, tmp_path,
                                                        capsys):
    run_dir, export_dir = strcn_a_run
    metadata = json.loads((export_dir / "assets" / "tfmer.json").read_text())
    assert metadata["input"]["name"] == "appearance"
    recorded = metadata["preprocessing"]["appearance"]
    info = data.load_info(builtin_dataset)
    # The final model's mask: the energy of every clip (all subjects train it).
    mask = appearance.appearance_mask(data.clip_energies(info, info.subjects))
    assert recorded["mask"] == np.flatnonzero(mask).tolist()
    serve = tf.saved_model.load(str(export_dir)).signatures["serving_default"]
    matrices = np.concatenate([m.numpy() for m, _, _ in data.appearance_eval_dataset(
        info, None, mask, columns=metadata["input"]["shape"][2], batch_size=16)])
    model = experiments.build_model("strcn_a", quick=True)
    model.load_weights(run_dir / run_folder.FINAL_WEIGHTS)
    np.testing.assert_allclose(serve(appearance=tf.constant(matrices))["probabilities"],
                               model.predict(matrices, verbose=0), rtol=1e-4, atol=1e-5)
    assert evaluate.main(["--model", str(export_dir), "--data", str(builtin_dataset),
                          "--out", str(tmp_path)]) == 0
    assert "pooled over 16 predictions" in capsys.readouterr().out
