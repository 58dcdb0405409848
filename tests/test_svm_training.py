"""The SVM baselines' engine: the feature cache, the SVM's probabilities and inner search,
the run folder and export of a trained baseline, and the checks before training."""

import dataclasses
import json

import numpy as np
import pytest
from sklearn.svm import SVC

import evaluate
import train
from tfmer import clip_features, data, experiments, export, protocols, svm
from tfmer.config import HandcraftedConfig
from tfmer.run_folder import FEATURES, RunFolder
from tfmer.training import SVMTrainer
from tfmer.training.cross_validation import permuted_labels
from tests.helpers import train_quick

SETTINGS = HandcraftedConfig(method="lbptop", grid=(2, 2), radii=(1, 1, 1), kernel="linear")


def test_features_round_trip_through_the_cache_and_reject_other_settings(tmp_path):
    ragged = [np.arange(6, dtype=np.float32).reshape(2, 3), np.ones(4, np.float32)]
    features = clip_features.Features(("a", "b"), {"": ragged, "tau3": [np.zeros(2)] * 2})
    path = tmp_path / FEATURES
    clip_features.save(features, SETTINGS, path)
    loaded = clip_features.load(path, dataclasses.replace(SETTINGS, workers=3))  # same maths
    assert loaded.clip_ids == ("a", "b") and list(loaded.variants) == ["", "tau3"]
    for stored, read in zip(ragged, loaded.variants[""]):
        np.testing.assert_array_equal(stored, read)
    assert isinstance(loaded.select("", ["b", "a"]), list)  # ragged: one array per clip
    np.testing.assert_array_equal(loaded.select("tau3", ["b"]), [[0, 0]])
    assert clip_features.load(path, dataclasses.replace(SETTINGS, radii=(2, 2, 2))) is None
    assert clip_features.load(tmp_path / "none.npz", SETTINGS) is None


def test_probabilities_are_the_softmax_of_decision_values_with_absent_classes_zero():
    class Fixed:  # decision values of classes 0 and 2 of 4 (classes 1 and 3 unseen)
        classes_ = np.array([0, 2])

        def decision_function(self, features):
            return np.array([0.0, np.log(3.0)])[None].repeat(len(features), axis=0)

    np.testing.assert_allclose(svm.probabilities(Fixed(), np.zeros((2, 1)), 4),
                               [[0.25, 0, 0.75, 0]] * 2)

    class Binary:  # one value d for classes_[1]: logits -d/2, d/2
        classes_ = np.array([1, 3])

        def decision_function(self, features):
            return np.array([np.log(4.0)] * len(features))

    np.testing.assert_allclose(svm.probabilities(Binary(), np.zeros((1, 1)), 4),
                               [[0, 0.2, 0, 0.8]])


def test_chi2_svm_equals_libsvm_on_the_chi2_kernel_computed_by_hand():
    rng = np.random.default_rng(0)
    train, test = rng.random((30, 5)), rng.random((7, 5))
    labels = np.arange(30) % 3

    def chi2(a, b):  # exp(-gamma * sum((x - y)^2 / (x + y))), gamma 1 / mean training distance
        return np.array([[np.sum((x - y) ** 2 / (x + y)) for y in b] for x in a])

    gamma = 1 / chi2(train, train).mean()
    reference = SVC(C=2.0, kernel="precomputed").fit(np.exp(-gamma * chi2(train, train)),
                                                      labels)
    model = svm.Chi2SVC(C=2.0).fit(train, labels)
    assert model.gamma_ == pytest.approx(gamma)
    np.testing.assert_array_equal(model.predict(test),
                                  reference.predict(np.exp(-gamma * chi2(test, train))))
    np.testing.assert_allclose(model.decision_function(test),
                               reference.decision_function(np.exp(-gamma * chi2(test, train))))


def test_search_scores_candidates_on_inner_subject_folds_and_keeps_the_best():
    rng = np.random.default_rng(1)
    subjects = np.repeat([f"s{i}" for i in range(6)], 8)
    labels = np.tile(np.arange(4), 12)
    informative = np.eye(4)[labels] + rng.normal(0, 0.3, (48, 4))  # the class, plus noise
    noise = rng.normal(0, 1, (48, 4))
    settings = dataclasses.replace(SETTINGS, c=(1.0,), inner_folds=3)
    best, table = svm.search(settings, {"noise": noise, "informative": informative}, labels,
                             subjects, 4, seed=0)
    assert best["variant"] == "informative"
    # The informative variant's UF1, recomputed: 3 folds of 2 subjects, each predicted by
    # an SVM fit on the other 4.
    folds = [f["test_subjects"]
             for f in protocols.make_folds(sorted(set(subjects)), "kfold3", 3, fold_seed=0)]
    predicted = np.empty(48, int)
    for test in folds:
        inside = np.isin(subjects, test)
        model = SVC(kernel="linear", C=1.0).fit(informative[~inside], labels[~inside])
        predicted[inside] = model.predict(informative[inside])
    f1 = [2 * np.sum((predicted == k) & (labels == k))
          / (np.sum(predicted == k) + np.sum(labels == k)) for k in range(4)]
    assert table[1]["uf1"] == pytest.approx(np.mean(f1))
    assert table[0]["uf1"] < table[1]["uf1"]
    assert svm.search(settings, {"": noise}, labels, subjects, 4) == (
        {"variant": "", "C": 1.0, "gamma": None}, [])  # one candidate: nothing to search


def test_a_baseline_trains_exports_and_its_export_scores_the_data_as_the_final_model(
        builtin_dataset, tmp_path):
    run_dir, model_dir = train_quick("lbptop_svm", builtin_dataset, tmp_path)
    folder = RunFolder(run_dir)
    rows, classes = folder.predictions()
    assert len(rows) == 16 and classes == ("positive", "negative", "surprise", "others")
    assert (run_dir / FEATURES).is_file()
    assert json.loads((run_dir / "export.json").read_text())["saved_model"] == str(
        model_dir.resolve())
    metadata = export.load_metadata(model_dir)
    assert metadata["preprocessing"]["input"] == "features"
    assert metadata["preprocessing"]["handcrafted"]["grid"] == [2, 2]
    # The export scores every clip as the final model does on the cached features.
    info = data.load_info(builtin_dataset)
    estimator, settings, chosen, learned = export.load_svm(model_dir)
    assert learned is None  # LBP-TOP learns nothing before its SVM
    cached = clip_features.load(run_dir / FEATURES, settings)
    expected = clip_features.predict(estimator, cached, chosen["variant"], info, info.clips)
    out = tmp_path / "scored"
    assert evaluate.main(["--model", str(model_dir), "--data", str(builtin_dataset),
                          "--out", str(out)]) == 0
    scored, _ = RunFolder(out).predictions()
    assert [r["y_pred"] for r in scored] == [r["y_pred"] for r in expected]
    np.testing.assert_allclose([r["probabilities"] for r in scored],
                               [r["probabilities"] for r in expected], atol=1e-6)


def test_clips_unfit_for_a_method_stop_the_run_naming_the_clip_and_the_way_out(
        builtin_dataset):
    info = data.load_info(builtin_dataset)
    short = dataclasses.replace(SETTINGS, radii=(1, 1, 4))  # needs 9 frames, clips have 8
    with pytest.raises(ValueError, match=r"clip .* has 8 frames, fewer than the 9 .* --tim"):
        clip_features.check_clips(short, info, "lbptop_svm")
    stripped = dataclasses.replace(info, clips=tuple(
        {k: v for k, v in c.items() if k not in ("landmarks", "flow")} for c in info.clips))
    with pytest.raises(ValueError, match=r"no onset -> apex motion .* --flow tvl1"):
        clip_features.check_clips(experiments.get("biwoof_svm", "quick").handcrafted,
                                  stripped, "biwoof_svm")


@pytest.mark.parametrize("name", ["stlbpip_svm", "mdmo_svm", "fdm_svm", "biwoof_svm",
                                  "stclqp_svm"])
def test_every_baseline_runs_quick_with_finite_probabilities(name, builtin_dataset, tmp_path):
    run_dir, model_dir = train_quick(name, builtin_dataset, tmp_path)
    rows, _ = RunFolder(run_dir).predictions()
    probabilities = np.array([r["probabilities"] for r in rows])
    assert probabilities.shape == (16, 4) and np.all(np.isfinite(probabilities))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, atol=1e-5)
    assert export.load_metadata(model_dir)["config"]["handcrafted"]["method"] == name[:-4]


def test_a_baseline_has_no_keras_model_and_says_so():
    with pytest.raises(ValueError, match="lbptop_svm classifies handcrafted features .* no "
                                         "Keras model"):
        experiments.build(experiments.get("lbptop_svm"), 4)


def test_a_learning_baseline_exports_what_it_learnt_and_scores_new_data_as_in_training(
        builtin_dataset, tmp_path):
    """STCLQP learns its codebooks from the training clips: the export carries the final
    fit's, and `evaluate.py --model` recomputes the features with them."""
    info = data.load_info(builtin_dataset)
    config = dataclasses.replace(experiments.get("stclqp_svm", "quick"),
                                 data=dataclasses.replace(
                                     experiments.get("stclqp_svm", "quick").data,
                                     classes=info.classes))
    trainer = SVMTrainer(config, len(info.classes))
    trainer.plan(info, [(list(info.subjects[:2]), 5), (list(info.subjects), 0)])
    trainer.fit(info, info.subjects[:2], seed=5)
    fold_books = trainer.learned
    trainer.fit(info, info.subjects, seed=0, final=True)
    assert not np.array_equal(fold_books["sign_XY_words"], trainer.learned["sign_XY_words"])
    expected = trainer.predict(info, info.subjects)
    model_dir, _ = trainer.export(info.classes, tmp_path / "saved", extra={"tim": 8})
    assert (model_dir / export.LEARNED).is_file()
    scored = export.evaluate_export(model_dir, builtin_dataset)
    assert scored["pooled"]["accuracy"] == pytest.approx(
        np.mean([r["y_pred"] == r["y_true"] for r in expected]))


def test_mdmo_on_clips_without_landmarks_stops_before_any_feature(builtin_dataset, tmp_path):
    info = data.load_info(builtin_dataset)
    stripped = dataclasses.replace(info, clips=tuple(
        {**c, "landmarks": c["id"] != info.clips[3]["id"]} for c in info.clips))
    with pytest.raises(ValueError, match=f"clip {info.clips[3]['id']} .* has no landmarks "
                                         r"\(1 clip\(s\) in all\).*--crop dlib"):
        clip_features.check_clips(experiments.get("mdmo_svm").handcrafted, stripped,
                                  "mdmo_svm")


def test_two_datasets_read_as_one_run_cross_database_with_per_database_figures(
        builtin_dataset, tiny_dataset, tmp_path):
    both = f"{builtin_dataset},{tiny_dataset}"
    info = data.load_info(both)
    assert info.name == "synthetic+tiny" and len(info.clips) == 16 + 24
    assert {protocols.database_of(s) for s in info.subjects} == {"synthetic", "tiny"}
    for protocol, folds in (("lodo", 2), ("train=tiny,test=synthetic", 1)):
        assert train.main(["--experiment", "biwoof_svm", "--data", both, "--quick",
                           "--protocol", protocol, "--out", str(tmp_path / protocol),
                           "--no-export"]) == 0
        (run_dir,) = (tmp_path / protocol / "biwoof_svm").iterdir()
        metrics = RunFolder(run_dir).read_json("metrics.json")
        assert len(metrics["folds"]) == folds
        tested = {"synthetic": 16, "tiny": 24} if protocol == "lodo" else {"synthetic": 16}
        assert {name: d["n"] for name, d in metrics.get("datasets", {}).items()} == (
            tested if len(tested) > 1 else {})
        assert metrics["pooled"]["n"] == sum(tested.values())


def test_datasets_read_as_one_must_match(builtin_dataset, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    raw = json.loads((builtin_dataset / "dataset.json").read_text())
    (other / "dataset.json").write_text(json.dumps({**raw, "name": "other", "height": 64,
                                                    "shards": []}))
    with pytest.raises(ValueError, match=r"cannot be read as one: height 32 and 64"):
        data.load_info(f"{builtin_dataset},{other}")
    with pytest.raises(ValueError, match="database synthetic appears twice"):
        data.load_info(f"{builtin_dataset},{builtin_dataset}")


def test_the_label_permutation_check_shuffles_training_labels_and_reports_a_p_value(
        builtin_dataset, tmp_path, capsys):
    info = data.load_info(builtin_dataset)
    subjects = info.subjects[:2]
    shuffled = permuted_labels(info, subjects, seed=3)
    clips = info.clips_of(subjects)
    assert set(shuffled) == {c["id"] for c in clips}  # the training clips, only them
    assert sorted(shuffled.values()) == sorted(info.classes.index(c["label"]) for c in clips)
    assert shuffled != {c["id"]: info.classes.index(c["label"]) for c in clips}
    assert train.main(["--experiment", "mdmo_svm", "--data", str(builtin_dataset), "--quick",
                       "--protocol", "kfold2", "--out", str(tmp_path), "--no-export",
                       "--permute-labels", "4"]) == 0
    (run_dir,) = (tmp_path / "mdmo_svm").iterdir()
    stored = RunFolder(run_dir).read_json("metrics.json")
    check = stored["permutation"]
    assert check["n"] == 4 and len(check["uf1"]) == 4
    assert check["real_uf1"] == pytest.approx(stored["pooled"]["uf1"])
    assert check["p_value"] == pytest.approx(
        (1 + sum(u >= check["real_uf1"] for u in check["uf1"])) / 5)
    assert "label permutation (4 repeats" in capsys.readouterr().out


def test_relabelled_clips_reach_every_pipeline_and_a_network_runs_the_check(
        builtin_dataset, tmp_path):
    info = data.load_info(builtin_dataset)
    shuffled = permuted_labels(info, info.subjects[:2], seed=1)
    view = info.relabelled(shuffled)
    parsed = {c["clip/id"].numpy().decode(): int(c["clip/label"])
              for c in data.read_clips(view, frames=False)}
    stored = {c["id"]: info.classes.index(c["label"]) for c in info.clips}
    assert parsed == {**stored, **shuffled}  # the named clips relabelled, the rest kept
    assert {c["id"]: view.classes.index(c["label"]) for c in view.clips} == parsed
    with pytest.raises(ValueError, match="relabel nosuch -> 0: not a clip"):
        info.relabelled({"nosuch": 0})
    assert train.main(["--experiment", "ststnet", "--data", str(builtin_dataset), "--quick",
                       "--protocol", "kfold2", "--out", str(tmp_path), "--no-export",
                       "--permute-labels", "1"]) == 0
    (run_dir,) = (tmp_path / "ststnet").iterdir()
    check = RunFolder(run_dir).read_json("metrics.json")["permutation"]
    assert check["n"] == 1 and check["p_value"] in (0.5, 1.0)


def test_clip_folds_split_clips_across_subjects_and_warn_of_the_leak(builtin_dataset, tmp_path,
                                                                     capsys):
    info = data.load_info(builtin_dataset)
    view = info.by_clip()
    assert view.subjects == tuple(sorted(c["id"] for c in info.clips))
    assert [c["id"] for c in view.clips_of(view.subjects[:3])] == list(view.subjects[:3])
    read = [c["clip/id"].numpy().decode() for c in data.read_clips(view, view.subjects[:3],
                                                                    frames=False)]
    assert sorted(read) == list(view.subjects[:3])
    assert train.main(["--experiment", "biwoof_svm", "--data", str(builtin_dataset), "--quick",
                       "--protocol", "kfold4-clips", "--out", str(tmp_path),
                       "--no-export"]) == 0
    assert "splits clips, not subjects" in capsys.readouterr().out
    (run_dir,) = (tmp_path / "biwoof_svm").iterdir()
    folder = RunFolder(run_dir)
    folds = folder.folds()
    tested = [clip for fold in folds for clip in fold["test_subjects"]]
    assert sorted(tested) == sorted(view.subjects)  # every clip tested once
    subject_of = {c["id"]: c["subject"] for c in info.clips}
    # A subject's clips on both sides of some fold: the leak the warning names.
    assert any({subject_of[c] for c in fold["test_subjects"]}
               & {subject_of[c] for c in fold["train_subjects"]} for fold in folds)
    rows, _ = folder.predictions()
    assert {(r["clip_id"], r["subject"]) for r in rows} == set(subject_of.items())
    assert {r["fold"] for r in rows if r["clip_id"] in folds[1]["test_subjects"]} == {1}
