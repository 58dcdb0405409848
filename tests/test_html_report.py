"""Tests of `report.html` (tfmer.html_report) on hand-written run folders: the figures it
shows against scikit-learn, its embedded images, escaping, `evaluate.py RUN_DIR` and
`evaluate.py --compare` writing the pages; one slow test renders it in headless Chromium."""

import base64
import importlib.util
import json
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest
from matplotlib.figure import Figure
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

import evaluate
from tfmer import html_report, plots, results, run_folder
from tfmer.files import write_json_atomic

ROOT = pathlib.Path(__file__).resolve().parents[1]
CLASSES = ("negative", "positive", "surprise")
# Two databases, so that the page has per-database figures; one subject per fold.
SUBJECTS = ("casme2/01", "casme2/02", "samm/006", "samm/007")
EVIL_CLIP = "casme2/01/<script>alert(1)</script>"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
LAYERS = ("conv2_block3_out", "conv3_block4_out", "conv4_block6_out", "conv5_block3_out")


def make_rows(seeds=2, clips_per_subject=6, seed=0):
    """Prediction rows of a 4-fold run, a fold per subject, about 60 % correct."""
    rng = np.random.default_rng(seed)
    rows = []
    for training_seed in range(seeds):
        for fold, subject in enumerate(SUBJECTS):
            for j in range(clips_per_subject):
                true = (j + fold) % len(CLASSES)
                pred = true if rng.random() < 0.6 else int(rng.integers(len(CLASSES)))
                probabilities = [0.7 if k == pred else 0.15 for k in range(len(CLASSES))]
                clip = EVIL_CLIP if (fold, j) == (0, 0) else f"{subject}/clip{j}"
                rows.append({"clip_id": clip, "subject": subject, "fold": fold,
                             "seed": training_seed, "y_true": true, "y_pred": pred,
                             "probabilities": probabilities})
    return rows


def write_run(run_dir, *, experiment="mdmo_svm", rows=None, extras=True):
    """A finished run folder as `train.py` writes it: config (with its dataset), folds,
    predictions, metrics and plots; with `extras` also histories, gradcam.json,
    search.json, frame_metrics.json, export.json, versions.json, a permutation check and
    a Grad-CAM before/after folder."""
    run_dir = pathlib.Path(run_dir)
    rows = make_rows() if rows is None else rows
    data_dir = run_dir.parent / "data"
    write_json_atomic(data_dir / "dataset.json", {
        "name": "tiny", "classes": list(CLASSES), "num_clips": 30,
        "class_counts": {"negative": 12, "positive": 10, "surprise": 8},
        "subjects": list(SUBJECTS)})
    folder = run_folder.RunFolder(run_dir)
    folder.path.mkdir(parents=True, exist_ok=True)
    write_json_atomic(folder.file(run_folder.CONFIG), {
        "name": experiment, "paper": "Wang et al. 2018, Table 3",
        "description": "MDMO & friends <b>bold</b>", "scale": "quick",
        "protocol": {"protocol": "kfold4", "seeds": 2, "fold_seed": 0,
                     "deterministic": True},
        "train": {"epochs": 3, "early_stopping": False}, "handcrafted": {"method": None},
        "dataset": {"path": str(data_dir), "name": "tiny", "num_clips": 30,
                    "num_subjects": 4, "num_frames": 8, "tim": 8}})
    folder.write_json(run_folder.FOLDS, [
        {"fold": f, "train_subjects": [s for s in SUBJECTS if s != subject],
         "test_subjects": [subject]} for f, subject in enumerate(SUBJECTS)])
    folder.write_predictions(rows, CLASSES)
    histories = None
    permutation = None
    if extras:
        histories = [{"label": f"fold {f} seed 0",
                      "history": {"loss": [1.2, 0.9, 0.7], "accuracy": [0.3, 0.5, 0.6],
                                  "val_loss": [1.1, 1.0, 0.95]}} for f in range(4)]
        folder.write_json(run_folder.HISTORIES, histories)
        permutation = {"n": 9, "uf1": [0.31, 0.28, 0.35, 0.22, 0.4, 0.3, 0.27, 0.33, 0.29],
                       "p_value": 0.1, "real_uf1": 0.55}
    results.write_report(folder, rows, CLASSES, experiment=experiment, protocol="kfold4",
                         histories=histories, permutation=permutation)
    if extras:
        folder.write_json(run_folder.GRADCAM, [
            {"fold": f, "seed": 0, "selected": LAYERS[1 + f % 2], "class_target": "probe",
             "frames": ["a", "b"], "probe": None,
             "layers": [{"name": name, "score": 0.3 + 0.1 * i, "area": 0.25, "ceiling": 0.8,
                         "normalised": 0.1 * i + 0.01 * f} for i, name in enumerate(LAYERS)]}
            for f in range(4)])
        folder.write_json(run_folder.SEARCH, [
            {"fold": f, "seed": 0, "chosen": {"variant": "", "c": 1.0},
             "candidates": [{"variant": "", "c": 0.1, "uf1": 0.4, "uar": 0.41},
                            {"variant": "", "c": 1.0, "uf1": 0.52 + 0.01 * f, "uar": 0.5}]}
            for f in range(4)])  # no search.png: the report draws it again
        folder.write_json(run_folder.FRAME_METRICS, {
            "classes": list(CLASSES), "eval_stride": 1,
            "frame": {"accuracy": 0.41, "uf1": 0.4321, "uar": 0.43, "n": 480},
            "majority": {"accuracy": 0.5, "uf1": 0.4876, "uar": 0.49, "n": 48}})
        folder.write_json(run_folder.EXPORT, {"saved_model": str(run_dir / "saved" / "1")})
        folder.write_json(run_folder.VERSIONS, {"python": "3.11.7", "tfmer": "0.1.0",
                                                "tensorflow": "2.99.1", "keras": "3.98.7"})
        figure = Figure(figsize=(3, 2), dpi=50)
        figure.add_subplot().imshow(np.arange(64).reshape(8, 8), cmap="inferno")
        plots.save_png(figure, run_dir / html_report.BEFORE_AFTER_PNG)
        write_json_atomic(run_dir / html_report.BEFORE_AFTER_JSON, {
            "layer": "conv4_block6_out", "layer_source": "the backbone's last block output",
            "frames": [{"clip_id": "samm/006/clip1", "label": "surprise", "before": 0.2,
                        "after": 0.6}],
            "mean_before": 0.2345, "mean_after": 0.6789, "area": 0.25,
            "zero_maps": {"before": 0, "after": 1}, "regions": "eyes, brows, mouth",
            "num_subjects": 4, "weights": {"before": "drawn again from seed 0",
                                           "after": "final.weights.h5"}})
    return run_dir


def images(page: str) -> list[bytes]:
    """The decoded bytes of every `<img>` of the page; fails unless each is a base64 PNG
    data URI."""
    sources = re.findall(r"<img\b[^>]*\bsrc=\"([^\"]*)\"", page)
    assert len(sources) == len(re.findall(r"<img\b", page))
    decoded = []
    for source in sources:
        assert source.startswith("data:image/png;base64,"), source[:60]
        content = base64.b64decode(source.split(",", 1)[1], validate=True)
        assert content.startswith(PNG_SIGNATURE)
        decoded.append(content)
    return decoded


def assert_self_contained(page: str) -> None:
    assert not re.search(r"""(?:src|href|action)\s*=\s*["']?\s*(?:https?:)?//""", page)
    assert "<script" not in page.lower() and "@import" not in page and "url(" not in page
    assert "<link" not in page.lower()


@pytest.fixture
def run(tmp_path):
    return write_run(tmp_path / "runs" / "mdmo_svm" / "20260101-000000")


def test_the_page_shows_the_figures_scikit_learn_computes(run):
    path = html_report.write_report(run)
    assert path == run / run_folder.REPORT_HTML and path.is_file()
    page = path.read_text(encoding="utf-8")
    rows, _ = run_folder.read_predictions(run / run_folder.PREDICTIONS)
    y_true = [r["y_true"] for r in rows]
    y_pred = [r["y_pred"] for r in rows]
    uf1 = f1_score(y_true, y_pred, average="macro")
    uar = balanced_accuracy_score(y_true, y_pred)
    accuracy = accuracy_score(y_true, y_pred)
    for value in (uf1, uar, accuracy):
        assert f'<div class="value">{value:.3f}</div>' in page
    assert "chance 0.333" in page  # three classes, uniform guess
    for fold in range(4):  # per fold: averaged over the pooled classes
        subset = [r for r in rows if r["fold"] == fold]
        fold_uf1 = f1_score([r["y_true"] for r in subset], [r["y_pred"] for r in subset],
                            labels=[0, 1, 2], average="macro", zero_division=0)
        assert f'<td class="num">{fold_uf1:.3f}</td>' in page
    for database in ("casme2", "samm"):
        subset = [r for r in rows if r["subject"].startswith(database + "/")]
        figure = f1_score([r["y_true"] for r in subset], [r["y_pred"] for r in subset],
                          average="macro", labels=sorted({r["y_true"] for r in subset}))
        assert re.search(rf"<td>{database}</td>\s*<td class=\"num\">{figure:.3f}</td>", page)
    for seed in (0, 1):
        subset = [r for r in rows if r["seed"] == seed]
        seed_uf1 = f1_score([r["y_true"] for r in subset], [r["y_pred"] for r in subset],
                            average="macro")
        assert f'<td class="num">{seed_uf1:.3f}</td>' in page
    assert "they match the stored metrics.json" in page
    # What the run folder records.
    assert "kfold4" in page and "Wang et al. 2018, Table 3" in page
    assert "Reproduces: Table 3, MDMO" in page  # mdmo_svm's docstring, read without TF
    assert "<td>negative</td>" in page and '<td class="num">12</td>' in page  # dataset.json
    assert "2.99.1" in page and "3.98.7" in page  # versions.json
    assert str(run / "saved" / "1") in page and "no longer there" in page  # export.json
    assert "0.100" in page and "repeats" in page  # the permutation check's p-value
    for fold in range(4):  # gradcam.json: each fold's selected layer, marked in the table
        assert re.search(rf'<td class="num">{fold}</td>\s*<td class="num">0</td>\s*'
                         rf"<td>{LAYERS[1 + fold % 2]}</td>", page)
    assert page.count("&#9664;</strong>") == 4
    assert "0.432" in page and "0.488" in page  # frame_metrics.json
    assert "0.234" in page and "0.679" in page  # before_after.json
    assert "c 1.0" in page and "0.550" in page  # search.json: fold 3 chose c 1.0, UF1 0.55
    assert "&quot;deterministic&quot;: true" in page  # the config, pretty-printed
    assert len(images(page)) == 5  # confusion, folds, curves, search (drawn), before/after
    assert_self_contained(page)


def test_images_are_png_data_uris_and_missing_plots_are_drawn_again(run):
    for name in (run_folder.CONFUSION_MATRIX_PNG, run_folder.FOLDS_PNG,
                 run_folder.TRAINING_CURVES_PNG):
        (run / name).unlink()
    before = sorted(p.name for p in run.iterdir())
    page = html_report.write_report(run).read_text(encoding="utf-8")
    decoded = images(page)
    assert len(decoded) == 5  # confusion, folds, curves, search drawn again; before/after
    assert all(len(content) > 2000 for content in decoded)
    assert sorted(p.name for p in run.iterdir()) == sorted(before + [run_folder.REPORT_HTML])
    assert_self_contained(page)


def test_text_from_the_files_is_escaped(run):
    page = html_report.write_report(run).read_text(encoding="utf-8")
    assert "casme2/01/&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>" not in page
    assert "MDMO &amp; friends &lt;b&gt;bold&lt;/b&gt;" in page and "<b>bold" not in page


def test_a_bare_run_gets_a_page_saying_what_it_lacks(tmp_path):
    run = write_run(tmp_path / "bare", experiment="not_registered", extras=False)
    for name in (run_folder.METRICS, run_folder.FOLDS, run_folder.CONFUSION_MATRIX_PNG):
        (run / name).unlink()
    page = html_report.write_report(run).read_text(encoding="utf-8")
    assert "Versions: not recorded" in page and "exported no final model" in page
    assert "the run has no metrics.json" in page and "No docstring found" in page
    assert len(images(page)) == 2  # confusion matrix drawn again, folds.png
    for absent in ("Grad-CAM layer selection", "Inner search", "Label permutation"):
        assert absent not in page


def test_evaluate_run_dir_writes_the_report_again(run, capsys):
    report = run / run_folder.REPORT_HTML
    assert not report.exists()
    assert evaluate.main([str(run)]) == 0
    out = capsys.readouterr().out
    assert f"report {report}" in out and report.is_file()
    assert "matches" in out


def test_evaluate_compare_writes_comparison_html(run, tmp_path, capsys):
    rows = make_rows(seed=1)
    other = write_run(tmp_path / "runs" / "fdm_svm" / "20260101-000001", experiment="fdm_svm",
                      rows=rows, extras=False)
    html_report.write_report(run)
    out = tmp_path / "comparison"
    assert evaluate.main(["--compare", str(run), str(other), "--out", str(out)]) == 0
    assert str(out / "comparison.html") in capsys.readouterr().out
    page = (out / "comparison.html").read_text(encoding="utf-8")
    assert "<h1>Comparison against mdmo_svm</h1>" in page
    fold_accuracy = [100 * np.mean([r["y_true"] == r["y_pred"] for r in rows if r["fold"] == f])
                     for f in range(4)]
    for value in fold_accuracy + [np.mean(fold_accuracy)]:
        assert f'<td class="num">{value:.2f}</td>' in page
    assert "casme2 UF1" in page and "samm UAR" in page  # per database
    (chart,) = images(page)
    assert chart == (out / "comparison.png").read_bytes()
    relative = "../runs/mdmo_svm/20260101-000000/report.html"
    assert f'<a href="{relative}">report</a>' in page
    assert (out / relative).resolve() == (run / run_folder.REPORT_HTML).resolve()
    assert_self_contained(page)


def test_versions_and_the_module_need_no_tensorflow():
    found = html_report.versions()
    assert {"tfmer", "tensorflow", "keras", "python"} <= set(found)
    assert found["python"] == ".".join(map(str, sys.version_info[:3]))
    code = ("import sys, tfmer.html_report, tfmer.compare; "
            "sys.exit(int('tensorflow' in sys.modules or 'keras' in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0


def _report_render():
    spec = importlib.util.spec_from_file_location(
        "report_render", ROOT / "benchmarks" / "report_render.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_chromium_renders_the_page_with_its_images(run, tmp_path):
    render = _report_render()
    chromium = render.find_chromium()
    if chromium is None:
        pytest.skip("no chromium (apt-get install -y chromium)")
    path = html_report.write_report(run)
    dom = render.dump_dom(path, chromium)
    assert len(re.findall(r"<img\b", dom)) == 5 and "Grad-CAM layer selection" in dom
    shot = render.screenshot(path, tmp_path / "report.png", width=1280, height=4000,
                             chromium=chromium)
    found = render.check_screenshot(shot, 1280, 4000)
    assert found["failures"] == [], found
    assert found["content_height"] > 3000  # the page is long: header, tables and plots
    assert json.dumps(found)  # plain figures
