"""Tests of `python evaluate.py --compare` (tfmer.compare) on hand-written run folders."""

import csv
import math
import os

import matplotlib.image
import numpy as np
import pytest
import scipy.stats
from sklearn.metrics import balanced_accuracy_score, f1_score

import evaluate
from tfmer import compare, results, run_folder
from tfmer.files import write_json_atomic

CLASSES = ("negative", "positive", "surprise")
FOLDS = [{"fold": i, "test_subjects": [f"d/s{2 * i + 1}", f"d/s{2 * i + 2}"]}
         for i in range(3)]
# The test clips' labels per fold (4, 5 and 4 clips), shared by every run.
Y_TRUE = [[0, 1, 2, 0], [0, 1, 2, 1, 2], [2, 0, 1, 0]]
# Predictions per run: one list per seed, one list of y_pred per fold.
PREDICTIONS = {
    "tlcnn": [[[0, 1, 2, 1], [0, 1, 2, 1, 0], [2, 0, 0, 1]]],        # 3/4 4/5 2/4
    "c5_svm": [[[0, 1, 0, 1], [0, 1, 0, 0, 0], [2, 0, 2, 2]]],       # 2/4 2/5 2/4
    "lbp_top": [[[0, 1, 2, 0], [0, 1, 2, 0, 0], [2, 1, 2, 2]],       # 4/4 3/5 1/4
                [[0, 1, 0, 1], [0, 1, 2, 1, 0], [2, 0, 1, 1]]],      # 2/4 4/5 3/4
}
# By hand: correct / clips per fold in %, the two seeds of lbp_top pooled (6/8 7/10 4/8).
FOLD_ACCURACY = {"tlcnn": [75.0, 80.0, 50.0], "c5_svm": [50.0, 40.0, 50.0],
                 "lbp_top": [75.0, 70.0, 50.0]}
MEAN = {"tlcnn": 205 / 3, "c5_svm": 140 / 3, "lbp_top": 65.0}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def write_run(run_dir, experiment, seeds, classes=CLASSES, folds=FOLDS):
    """Writes a finished run folder as `train.py` does (config, folds, predictions, metrics)."""
    rows = []
    for seed, fold_predictions in enumerate(seeds):
        for fold, y_true, y_pred in zip(folds, Y_TRUE, fold_predictions):
            for j, (true, pred) in enumerate(zip(y_true, y_pred)):
                subject = fold["test_subjects"][j % 2]
                probabilities = [0.8 if k == pred else 0.2 / (len(classes) - 1)
                                 for k in range(len(classes))]
                rows.append({"clip_id": f"{subject}/clip{j}", "subject": subject,
                             "fold": fold["fold"], "seed": seed, "y_true": true,
                             "y_pred": pred, "probabilities": probabilities})
    subjects = sorted(s for fold in folds for s in fold["test_subjects"])
    write_json_atomic(run_dir / "config.json",
                      {"name": experiment, "protocol": {"protocol": "kfold3"}})
    write_json_atomic(run_dir / "folds.json", [
        {"fold": f["fold"], "test_subjects": f["test_subjects"],
         "train_subjects": [s for s in subjects if s not in f["test_subjects"]]}
        for f in folds])
    run_folder.write_predictions(run_dir / "predictions.csv", rows, classes)
    write_json_atomic(run_dir / "metrics.json", results.compute_metrics(
        rows, classes, experiment=experiment, protocol="kfold3"))
    return run_dir


@pytest.fixture
def runs(tmp_path):
    """Three runs: tlcnn (the reference), c5_svm, lbp_top (two seeds)."""
    return [str(write_run(tmp_path / "runs" / f"run_{name}", name, seeds))
            for name, seeds in PREDICTIONS.items()]


def pooled_scores(name):
    """UF1 and UAR by scikit-learn, averaged over the run's seeds."""
    uf1, uar = [], []
    for fold_predictions in PREDICTIONS[name]:
        y_true = sum(Y_TRUE, [])
        y_pred = sum(fold_predictions, [])
        uf1.append(f1_score(y_true, y_pred, average="macro", labels=sorted(set(y_true))))
        uar.append(balanced_accuracy_score(y_true, y_pred))
    return np.mean(uf1), np.mean(uar)


def test_fold_accuracies_means_and_pooled_scores(runs):
    comparison = compare.compare(runs)
    assert [m["method"] for m in comparison["methods"]] == ["tlcnn", "c5_svm", "lbp_top"]
    assert comparison["folds"] == [0, 1, 2] and comparison["fold_sizes"] == [4, 5, 4]
    assert comparison["classes"] == list(CLASSES) and comparison["protocol"] == "kfold3"
    for method in comparison["methods"]:
        name = method["method"]
        np.testing.assert_allclose(method["fold_accuracy"], FOLD_ACCURACY[name])
        assert method["mean"] == pytest.approx(MEAN[name])
        assert (method["uf1"], method["uar"]) == pytest.approx(pooled_scores(name))
    assert comparison["methods"][2]["seeds"] == [0, 1]
    # 13 test clips: 5 negative, 4 positive, 4 surprise.
    assert comparison["chance"] == pytest.approx({"uniform": 100 / 3, "majority": 500 / 13})


def test_p_values_equal_scipy_and_the_t_formula(runs):
    comparison = compare.compare(runs)
    reference = FOLD_ACCURACY["tlcnn"]
    assert comparison["methods"][0]["p"] is None
    for method in comparison["methods"][1:]:
        other = FOLD_ACCURACY[method["method"]]
        expected = scipy.stats.ttest_rel(reference, other)
        assert method["p"] == pytest.approx(expected.pvalue)
        assert method["t"] == pytest.approx(expected.statistic)
        d = np.subtract(reference, other)
        t = d.mean() / (d.std(ddof=1) / math.sqrt(d.size))
        assert method["t"] == pytest.approx(t)
        assert method["p"] == pytest.approx(2 * scipy.stats.t.sf(abs(t), d.size - 1))
        assert method["df"] == 2 and method["reason"] is None
    # By hand: c5_svm differences 25, 40, 0 -> t = (65/3) / (35/3) = 13/7;
    # lbp_top differences 0, 10, 0 -> t = (10/3) / (10/3) = 1.
    assert comparison["methods"][1]["t"] == pytest.approx(13 / 7)
    assert comparison["methods"][2]["t"] == pytest.approx(1.0)


def test_undefined_t_tests_are_nan_with_a_reason():
    one_fold = compare.paired_t_test([70.0], [60.0])
    assert math.isnan(one_fold["p"]) and "only 1 fold" in one_fold["reason"]
    # A constant difference: scipy would give p ~ 0 from floating-point noise.
    constant = compare.paired_t_test([75.0, 80.0, 50.0], [65.1, 70.1, 40.1])
    assert math.isnan(constant["p"]) and math.isnan(constant["t"])
    assert "all +9.90 points: zero variance" in constant["reason"]


def test_same_run_twice_is_disambiguated_and_footnoted(tmp_path):
    first = write_run(tmp_path / "a", "tlcnn", PREDICTIONS["tlcnn"])
    second = write_run(tmp_path / "b", "tlcnn", PREDICTIONS["tlcnn"])
    comparison = compare.compare([first, second])
    assert [m["method"] for m in comparison["methods"]] == ["tlcnn (a)", "tlcnn (b)"]
    assert math.isnan(comparison["methods"][1]["p"])
    markdown = compare.to_markdown(comparison)
    assert "| n/a [1] |" in markdown
    assert "[1] p undefined for tlcnn (b): the per-fold differences are all +0.00" in markdown
    assert compare.to_csv(comparison).splitlines()[2].endswith(",nan")
    twice = compare.compare([first, first])
    assert [m["method"] for m in twice["methods"]] == ["tlcnn (#1)", "tlcnn (#2)"]


def test_writes_markdown_csv_and_png(runs, tmp_path):
    out = tmp_path / "report"
    result = compare.write_comparison(runs, out)
    assert sorted(os.listdir(out)) == ["comparison.csv", "comparison.html", "comparison.md",
                                       "comparison.png"]
    assert result["files"] == [str(out / name) for name in compare.OUTPUT_FILES]

    markdown = (out / "comparison.md").read_text()
    assert markdown == result["markdown"]
    assert "Protocol kfold3, 3 folds" in markdown and "negative, positive, surprise" in markdown
    assert "| Method | Fold1 | Fold2 | Fold3 | Mean | UF1 | UAR | p vs tlcnn |" in markdown
    assert "| tlcnn | 75.00 | 80.00 | 50.00 | 68.33 |" in markdown
    assert "| c5_svm | 50.00 | 40.00 | 50.00 | 46.67 |" in markdown
    assert "| lbp_top | 75.00 | 70.00 | 50.00 | 65.00 |" in markdown

    with open(out / "comparison.csv", newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        rows = list(reader)
    assert header == ["method", "run", "fold1", "fold2", "fold3", "mean", "uf1", "uar",
                      "p_value"]
    assert [row[0] for row in rows] == ["tlcnn", "c5_svm", "lbp_top"]
    assert [row[1] for row in rows] == runs
    for row in rows:
        np.testing.assert_allclose([float(v) for v in row[2:5]], FOLD_ACCURACY[row[0]])
        assert float(row[5]) == pytest.approx(MEAN[row[0]])
        assert (float(row[6]), float(row[7])) == pytest.approx(pooled_scores(row[0]))
    assert rows[0][8] == ""
    assert float(rows[1][8]) == pytest.approx(
        scipy.stats.ttest_rel(FOLD_ACCURACY["tlcnn"], FOLD_ACCURACY["c5_svm"]).pvalue)

    with open(out / "comparison.png", "rb") as f:
        assert f.read(8) == PNG_SIGNATURE
    image = matplotlib.image.imread(out / "comparison.png")
    assert image.shape[0] >= 400 and image.shape[1] >= 600
    assert image[..., :3].std() > 0.05  # not a blank canvas
    assert (out / "comparison.png").stat().st_size > 10000


def test_different_folds_or_classes_are_rejected(runs, tmp_path):
    swapped = [dict(f) for f in FOLDS]
    swapped[0] = {"fold": 0, "test_subjects": ["d/s1", "d/s3"]}
    swapped[1] = {"fold": 1, "test_subjects": ["d/s2", "d/s4"]}
    other = str(write_run(tmp_path / "other", "c5_svm", PREDICTIONS["c5_svm"], folds=swapped))
    with pytest.raises(ValueError) as error:
        compare.compare([runs[0], other])
    message = str(error.value)
    assert runs[0] in message and other in message and "\n" not in message
    assert "in fold 1" in message and "['d/s1', 'd/s2'] vs" in message

    renamed = str(write_run(tmp_path / "renamed", "c5_svm", PREDICTIONS["c5_svm"],
                            classes=("neg", "pos", "sur")))
    with pytest.raises(ValueError, match=f"runs {runs[0]} and {renamed} differ in classes"):
        compare.compare([runs[0], renamed])
    with pytest.raises(ValueError, match="at least two run folders; got 1"):
        compare.compare(runs[:1])


def test_cli_prints_the_table_and_writes_the_default_folder(runs, tmp_path, monkeypatch,
                                                            capsys):
    monkeypatch.chdir(tmp_path)
    assert evaluate.main(["--compare", *runs]) == 0
    out = capsys.readouterr().out
    assert "| Method | Fold1 | Fold2 | Fold3 | Mean | UF1 | UAR | p vs tlcnn |" in out
    assert "| c5_svm | 50.00 | 40.00 | 50.00 | 46.67 |" in out
    assert "wrote comparison/comparison.md" in out
    for name in compare.OUTPUT_FILES:
        assert (tmp_path / "comparison" / name).is_file()
    assert evaluate.main(["--compare", *runs, "--out", str(tmp_path / "elsewhere")]) == 0
    assert (tmp_path / "elsewhere" / "comparison.csv").is_file()


def test_cli_errors_name_the_path(runs, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    missing = tmp_path / "missing"
    assert evaluate.main(["--compare", runs[0], str(missing)]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {missing}: no such run folder\n"

    os.remove(os.path.join(runs[1], "predictions.csv"))
    assert evaluate.main(["--compare", runs[0], runs[1]]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {runs[1]} is not a finished run: no predictions.csv\n"

    os.remove(os.path.join(runs[2], "folds.json"))
    assert evaluate.main(["--compare", runs[0], runs[2]]) == 2
    assert "no folds.json" in capsys.readouterr().err

    assert evaluate.main(["--compare", runs[0]]) == 2
    assert "at least two run folders; got 1" in capsys.readouterr().err
    assert not (tmp_path / "comparison").exists()


def test_runs_on_several_databases_get_per_database_figures_in_metrics_and_comparison(
        tmp_path):
    # Fold 0's subjects from database "a", the others from "b": the tlcnn run's a-clips
    # are fold 0 (y_true 0 1 2 0, y_pred 0 1 2 1), its b-clips folds 1 and 2.
    folds = [{"fold": f["fold"], "test_subjects": [s.replace("d/", "a/" if f["fold"] == 0
                                                             else "b/")
                                                   for s in f["test_subjects"]]}
             for f in FOLDS]
    runs = [write_run(tmp_path / name, name, PREDICTIONS[name], folds=folds)
            for name in ("tlcnn", "c5_svm")]
    stored = run_folder.RunFolder(runs[0]).read_json("metrics.json")
    y_true = {"a": Y_TRUE[0], "b": Y_TRUE[1] + Y_TRUE[2]}
    y_pred = {"a": PREDICTIONS["tlcnn"][0][0],
              "b": PREDICTIONS["tlcnn"][0][1] + PREDICTIONS["tlcnn"][0][2]}
    assert sorted(stored["datasets"]) == ["a", "b"]
    for name in ("a", "b"):
        figures = stored["datasets"][name]
        assert figures["n"] == len(y_true[name])
        assert figures["uf1"] == pytest.approx(f1_score(y_true[name], y_pred[name],
                                                        average="macro",
                                                        labels=sorted(set(y_true[name]))))
        assert figures["uar"] == pytest.approx(balanced_accuracy_score(y_true[name],
                                                                       y_pred[name]))
    assert "per database: a: UF1 " in results.summary(stored)
    markdown = compare.to_markdown(compare.compare(runs))
    assert "| Method | a UF1 | a UAR | b UF1 | b UAR |" in markdown
    assert f"| tlcnn | {stored['datasets']['a']['uf1']:.3f} |" in markdown
    single = results.compute_metrics([{"subject": "d/s1", "seed": 0, "fold": 0, "y_true": 0,
                                       "y_pred": 0}], CLASSES, experiment="x", protocol="p")
    assert "datasets" not in single  # one database: no per-database entry


def test_per_fold_figures_count_every_class_of_the_pooled_predictions():
    # Fold 0 tests classes 0 and 1 only, fold 1 class 2 only; pooled, all three are present.
    rows = [{"subject": f"d/s{fold}", "seed": 0, "fold": fold, "y_true": true, "y_pred": pred}
            for fold, true, pred in ((0, 0, 0), (0, 1, 1), (0, 1, 2), (1, 2, 2))]
    folds = results.compute_metrics(rows, CLASSES, experiment="x", protocol="p")["folds"]
    for fold in folds:
        subset = [r for r in rows if r["fold"] == fold["fold"]]
        y_true, y_pred = [r["y_true"] for r in subset], [r["y_pred"] for r in subset]
        assert fold["uf1"] == pytest.approx(f1_score(y_true, y_pred, labels=[0, 1, 2],
                                                     average="macro", zero_division=0))
    # By hand, fold 1: F1 [0, 0, 1] -> 1/3; fold 0: F1 [1, 2/3, 0] -> 5/9.
    assert [f["uf1"] for f in folds] == pytest.approx([5 / 9, 1 / 3])
