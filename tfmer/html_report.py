"""`report.html`: a finished run on one self-contained page.

`write_report(run_dir)` reads a run folder (`tfmer.run_folder`, the contract's "A finished
run") and writes `report.html` into it: the experiment and its paper, the protocol, folds,
seeds and data set, the pooled, per-database and per-fold figures next to chance, the plots
of the run, the Grad-CAM layer scores, the inner search, the label-permutation check, the
export, the versions the run recorded and its resolved config. The page needs nothing
beside it: images are PNG data URIs, the style is inline, it holds no script and no
address to fetch, so it can be mailed, archived and printed as one file.

The figures are recomputed from `predictions.csv` (`tfmer.results.recompute`), as
`evaluate.py RUN_DIR` does; the page says whether they match the stored `metrics.json`.
A plot the folder lacks is drawn again where that is cheap (confusion matrix, per-fold
bars, training curves, inner search), into a temporary folder: the report writes
`report.html` only. Every text that comes from a file is escaped (`html.escape`).

`python evaluate.py RUN_DIR` regenerates the page; `tfmer.training.cross_validate` writes
it at the end of a run. `tfmer.compare.write_comparison` builds `comparison.html` from the
pieces here (`page`, `table`, `image`).

Free of TensorFlow: the experiment's docstring is read from the registry's source with
`ast` (`experiment_docstring`), not by importing the registry (which imports Keras).
"""

from __future__ import annotations

import ast
import base64
import datetime
import html
import importlib.util
import json
import math
import pathlib
import platform
import tempfile
from importlib import metadata

import numpy as np

from tfmer import metrics as metrics_module
from tfmer import plots, results
from tfmer.files import write_text_atomic
from tfmer.run_folder import (
    CONFIG,
    CONFUSION_MATRIX_PNG,
    EXPORT,
    FOLDS,
    FOLDS_PNG,
    FRAME_METRICS,
    GRADCAM,
    HISTORIES,
    METRICS,
    PREDICTIONS,
    REPORT_HTML,
    SEARCH,
    SEARCH_PNG,
    TRAINING_CURVES_PNG,
    VERSIONS,
    RunFolder,
)

BEFORE_AFTER_DIR = "gradcam_before_after"
"""`python -m gradcam compare RUN_DIR`'s default output folder in the run folder, with
`before_after.png` and `before_after.json` (`gradcam.compare`; not imported: it needs
TensorFlow)."""
BEFORE_AFTER_PNG = f"{BEFORE_AFTER_DIR}/before_after.png"
BEFORE_AFTER_JSON = f"{BEFORE_AFTER_DIR}/before_after.json"
VERSION_PACKAGES = ("tfmer", "tensorflow", "keras", "numpy", "scikit-learn",
                    "opencv-contrib-python-headless")
"""The packages `versions` reports, beside Python."""
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
NOT_RECORDED = "not recorded"
_FIGURES = (("uf1", "UF1"), ("uar", "UAR"), ("accuracy", "Accuracy"))

CSS = """
:root { --ink: #1f2328; --muted: #59636e; --line: #d1d9e0; --soft: #f6f8fa;
        --accent: #0969da; --good: #1a7f37; --mark: #fff8c5; }
* { box-sizing: border-box; }
body { margin: 0; background: #fff; color: var(--ink);
       font: 15px/1.5 -apple-system, "Segoe UI", "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1100px; margin: 0 auto; padding: 24px 32px 48px; }
header { border-bottom: 2px solid var(--line); padding-bottom: 16px; margin-bottom: 8px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 32px 0 8px; padding-bottom: 4px;
     border-bottom: 1px solid var(--line); }
h3 { font-size: 16px; margin: 20px 0 6px; }
p { margin: 6px 0; }
.muted, .note { color: var(--muted); }
.note { font-size: 13px; }
code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
            font-size: 13px; }
code { background: var(--soft); padding: 1px 4px; border-radius: 4px;
       overflow-wrap: anywhere; }
pre { background: var(--soft); border: 1px solid var(--line); border-radius: 6px;
      padding: 12px; overflow-x: auto; white-space: pre-wrap; overflow-wrap: anywhere; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 16px 0 8px; }
.card { flex: 1 1 180px; border: 1px solid var(--line); border-radius: 8px;
        padding: 10px 16px; background: var(--soft); }
.card .label { font-size: 13px; color: var(--muted); text-transform: uppercase;
               letter-spacing: .04em; }
.card .value { font-size: 32px; font-weight: 600; font-variant-numeric: tabular-nums; }
.card .chance { font-size: 13px; color: var(--muted); }
table { border-collapse: collapse; margin: 8px 0 12px; font-size: 14px; }
th, td { border: 1px solid var(--line); padding: 4px 10px; text-align: left;
         vertical-align: top; }
th { background: var(--soft); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums;
                 white-space: nowrap; }
tr.selected td { background: var(--mark); font-weight: 600; }
tr.total td { font-weight: 600; border-top: 2px solid var(--muted); }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px;
           margin: 8px 0; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; }
figure { margin: 12px 0 20px; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line);
             border-radius: 4px; }
figcaption { font-size: 13px; color: var(--muted); }
details { margin: 8px 0; }
summary { cursor: pointer; color: var(--accent); }
.bar { display: inline-block; height: 10px; background: var(--accent);
       vertical-align: middle; border-radius: 2px; }
footer { margin-top: 40px; font-size: 12px; color: var(--muted);
         border-top: 1px solid var(--line); padding-top: 8px; }
@media print {
  main { max-width: none; padding: 0; }
  h2 { break-after: avoid; }
  figure, table { break-inside: avoid; }
  summary { color: var(--muted); }
  .card { background: none; }
}
"""


def versions() -> dict:
    """The versions this Python environment would train with: `{"python", "tfmer",
    "tensorflow", "keras", ...}` (`VERSION_PACKAGES`; None for a package not installed),
    from the installed distributions' metadata: nothing is imported."""
    found = {"python": platform.python_version()}
    for package in VERSION_PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = None
    return found


def write_report(run_dir) -> pathlib.Path:
    """Writes `run_dir/report.html` (atomically) and returns its path.

    Args:
        run_dir: a finished run folder: `config.json` and `predictions.csv` at least; every
            other file (`folds.json`, `metrics.json`, the plots, `gradcam.json`,
            `search.json`, `frame_metrics.json`, `export.json`, `versions.json`,
            `gradcam_before_after/`) is shown when present.

    Raises:
        FileNotFoundError: no such folder, or no `config.json` or `predictions.csv`.
        ValueError: a file of the run that cannot be read (naming it).
    """
    folder = RunFolder(run_dir)
    path = folder.file(REPORT_HTML)
    write_text_atomic(path, render(folder))
    return path


def render(folder: RunFolder) -> str:
    """The whole `report.html` of a run folder, as text (see `write_report`)."""
    result = results.recompute(folder)  # requires config.json and predictions.csv
    config = folder.read_json(CONFIG, {})
    stored = folder.read_json(METRICS)
    if stored is not None and "permutation" in stored:
        result["permutation"] = stored["permutation"]
    rows, classes = folder.predictions()
    folds = folder.read_json(FOLDS) or []
    name = result["experiment"]
    plot_images = _plots(folder, result)
    sections = [
        _header(folder, config, result, stored),
        _section("Experiment", _experiment(config, name)),
        _section("Data", _data(config, rows, classes)),
        _section("Protocol, folds and seeds", _protocol(config, result, folds)),
        _section("Results", _results(result, plot_images)),
        _section("Per fold", _per_fold(result, folds, plot_images)),
        _optional("Per frame and majority vote", _frame_metrics(folder.read_json(FRAME_METRICS))),
        _optional("Training curves", _training_curves(plot_images)),
        _optional("Label permutation check", _permutation(result.get("permutation"))),
        _optional("Inner search", _search(folder.read_json(SEARCH), plot_images)),
        _optional("Grad-CAM layer selection", _gradcam(folder.read_json(GRADCAM))),
        _optional("Grad-CAM before and after training", _before_after(folder)),
        _section("Predictions per clip", _predictions(rows, classes)),
        _section("Export", _export(folder.read_json(EXPORT))),
        _section("Versions", _versions(folder, config)),
        _section("Resolved config", _config(config)),
    ]
    footer = (f"<footer>Written by tfmer.html_report on "
              f"{datetime.datetime.now().strftime('%Y-%m-%d %H:%M')} from "
              f"<code>{esc(folder.path.resolve())}</code>; "
              f"<code>python evaluate.py RUN_DIR</code> writes it again.</footer>")
    return page(f"{name}: tfmer run report", "".join(sections) + footer)


# Building blocks, shared with `tfmer.compare`.


def esc(value) -> str:
    """`value` as text, HTML-escaped (quotes included)."""
    return html.escape(str(value), quote=True)


def page(title: str, body: str) -> str:
    """A whole HTML document: `title` (escaped here), inline `CSS`, `body` (HTML)."""
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{esc(title)}</title>\n<style>{CSS}</style>\n</head>\n"
            f"<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n")


def fmt(value, digits: int = 3) -> str:
    """A number for a table: `digits` decimals; "n/a" for None or NaN; ints as they are."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, (bool, np.bool_)):
        return str(value)
    if isinstance(value, (int, np.integer)):
        return str(value)
    return f"{value:.{digits}f}"


def table(header, rows, numeric=(), selected=(), total=()) -> str:
    """An HTML table; every cell is escaped unless it is a `Markup`.

    Args:
        header: the column names.
        rows: lists of cells (numbers are formatted with `fmt`).
        numeric: indices of the right-aligned (number) columns.
        selected: indices of rows to highlight.
        total: indices of rows drawn as totals.
    """
    numeric = set(numeric)

    def cell(tag, index, value):
        text = value if isinstance(value, Markup) else esc(
            fmt(value) if isinstance(value, (int, float, np.number)) else value)
        css = ' class="num"' if index in numeric else ""
        return f"<{tag}{css}>{text}</{tag}>"

    lines = ["<table>", "<thead><tr>" + "".join(cell("th", i, h) for i, h in enumerate(header))
             + "</tr></thead>", "<tbody>"]
    for index, row in enumerate(rows):
        css = (' class="selected"' if index in selected else
               ' class="total"' if index in total else "")
        lines.append(f"<tr{css}>" + "".join(cell("td", i, v) for i, v in enumerate(row))
                     + "</tr>")
    lines += ["</tbody>", "</table>"]
    return "\n".join(lines)


class Markup(str):
    """Text that is already HTML (a cell `table` does not escape)."""


def data_uri(path) -> str | None:
    """`data:image/png;base64,...` of a PNG file; None when it is missing or not a PNG."""
    path = pathlib.Path(path)
    if not path.is_file():
        return None
    content = path.read_bytes()
    if not content.startswith(PNG_SIGNATURE):
        return None
    return "data:image/png;base64," + base64.b64encode(content).decode("ascii")


def image(path, alt: str, caption: str | None = None) -> str:
    """A `<figure>` with the PNG at `path` embedded as a data URI; "" when there is none."""
    return figure(data_uri(path) if path is not None else None, alt, caption)


def figure(uri: str | None, alt: str, caption: str | None = None) -> str:
    """A `<figure>` of an image data URI (`data_uri`); "" when `uri` is None."""
    if uri is None:
        return ""
    text = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
    return f'<figure><img src="{uri}" alt="{esc(alt)}">{text}</figure>'


def facts(pairs) -> str:
    """A definition list of `(label, value)` pairs; values escaped unless `Markup`;
    pairs whose value is None are left out."""
    items = [f"<dt>{esc(label)}</dt><dd>{value if isinstance(value, Markup) else esc(value)}"
             "</dd>" for label, value in pairs if value is not None]
    return '<dl class="facts">' + "".join(items) + "</dl>"


def _section(title: str, body: str) -> str:
    anchor = title.lower().replace(" ", "-").replace(",", "")
    return f'\n<section id="{esc(anchor)}">\n<h2>{esc(title)}</h2>\n{body}\n</section>'


def _optional(title: str, body: str) -> str:
    """A section only when there is something to show."""
    return _section(title, body) if body else ""


# The sections.


def _header(folder: RunFolder, config: dict, result: dict, stored) -> str:
    pooled, chance = result["pooled"], result["chance"]
    cards = []
    for key, label in _FIGURES:
        spread = ""
        if "mean" in result:
            spread = (f"<div class=\"chance\">over seeds {fmt(result['mean'][key])} &plusmn; "
                      f"{fmt(result['std'][key])}</div>")
        cards.append(f'<div class="card"><div class="label">{label}</div>'
                     f'<div class="value">{fmt(pooled[key])}</div>'
                     f'<div class="chance">chance {fmt(chance[key])} '
                     f'({pooled[key] - chance[key]:+.3f})</div>{spread}</div>')
    seeds = result["seeds"]
    paper = config.get("paper")
    lines = [f"<header><h1>{esc(result['experiment'])}</h1>"]
    if paper or config.get("description"):
        lines.append(f"<p>{esc(paper or '')}{': ' if paper and config.get('description') else ''}"
                     f"{esc(config.get('description') or '')}</p>")
    dataset = config.get("dataset") or {}
    lines.append(
        f"<p class=\"muted\">{esc(result['protocol'])}, {len(result['folds'])} folds, "
        f"{len(seeds)} seed{'s' if len(seeds) != 1 else ''} ({esc(', '.join(map(str, seeds)))})"
        f", pooled over {pooled['n']} predictions"
        + (f" on {esc(dataset['name'])}" if dataset.get("name") else "")
        + (f"; scale {esc(config['scale'])}" if config.get("scale") else "")
        + f"; run <code>{esc(folder.path.name)}</code></p>")
    lines.append('<div class="cards">' + "".join(cards) + "</div>")
    lines.append(f"<p class=\"note\">UF1: macro F1, UAR: balanced accuracy, both over the "
                 f"predictions pooled over all folds{' and seeds' if len(seeds) > 1 else ''} "
                 f"(MEGC definition), over the classes present. Chance: a uniform random "
                 f"guess; a majority-class guess scores accuracy "
                 f"{fmt(chance['majority_accuracy'])}, UF1 {fmt(chance['majority_uf1'])}, UAR "
                 f"{fmt(chance['majority_uar'])}." + _matches(result, stored) + "</p>")
    lines.append("</header>")
    return "\n".join(lines)


def _matches(result: dict, stored) -> str:
    if stored is None:
        return f" Recomputed from {PREDICTIONS}; the run has no {METRICS}."
    same = all(math.isclose(stored["pooled"][k], result["pooled"][k], abs_tol=1e-12)
               for k in metrics_module.METRIC_NAMES)
    return (f" Recomputed from {PREDICTIONS}: "
            + ("they match" if same else "<strong>they DIFFER from</strong>")
            + f" the stored {METRICS}.")



def _experiment(config: dict, name: str) -> str:
    doc = experiment_docstring(name)
    paragraphs = [p.strip() for p in doc[1].split("\n\n")] if doc else []
    reproduces = next((p for p in paragraphs if p.startswith("Reproduces")), None)
    parts = [facts([("experiment", name), ("paper", config.get("paper")),
                    ("description", config.get("description")),
                    ("summary", " ".join(paragraphs[0].split()) if paragraphs else None),
                    ("the paper reports", " ".join(reproduces.split()) if reproduces
                     else None),
                    ("scale", config.get("scale"))])]
    if doc:
        parts.append(f"<details><summary>The experiment's whole docstring (its registered "
                     f"config function in <code>{esc(doc[0])}</code>, current source)"
                     f"</summary><pre>{esc(doc[1])}</pre></details>")
    else:
        parts.append("<p class=\"note\">No docstring found for this experiment in "
                     "<code>tfmer/experiments/</code>; paper and description are those "
                     "recorded in config.json.</p>")
    return "\n".join(parts)


def experiment_docstring(name: str) -> tuple[str, str] | None:
    """`(file, docstring)` of the function registered as experiment `name`, read from the
    source of `tfmer.experiments` with `ast` (no import, so no TensorFlow); None when no
    function there is decorated with `@register("<name>", ...)` (e.g. one registered
    in a loop) or it has no docstring."""
    spec = importlib.util.find_spec("tfmer.experiments")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        for source in sorted(pathlib.Path(location).glob("*.py")):
            try:
                tree = ast.parse(source.read_text(encoding="utf-8"))
            except (OSError, SyntaxError, UnicodeDecodeError):
                continue
            for node in ast.walk(tree):
                if isinstance(node, ast.FunctionDef) and _registers(node, name):
                    doc = ast.get_docstring(node)
                    return (f"tfmer/experiments/{source.name}", doc) if doc else None
    return None


def _registers(node: ast.FunctionDef, name: str) -> bool:
    for decorator in node.decorator_list:
        if (isinstance(decorator, ast.Call) and getattr(decorator.func, "id", None) == "register"
                and decorator.args and isinstance(decorator.args[0], ast.Constant)
                and decorator.args[0].value == name):
            return True
    return False


def _data(config: dict, rows, classes) -> str:
    dataset = config.get("dataset") or {}
    seeds = sorted({r["seed"] for r in rows})
    first = [r for r in rows if r["seed"] == seeds[0]]
    tested = np.bincount([r["y_true"] for r in first], minlength=len(classes))
    subjects = sorted({r["subject"] for r in rows})
    parts = [facts([
        ("name", dataset.get("name")),
        ("path", Markup(f"<code>{esc(dataset['path'])}</code>") if dataset.get("path")
         else None),
        ("clips", dataset.get("num_clips")),
        ("subjects", dataset.get("num_subjects")),
        ("frames per clip", dataset.get("num_frames")),
        ("TIM", dataset.get("tim")),
        ("classes", ", ".join(classes)),
        ("tested", f"{len(first)} clips of {len(subjects)} subjects (predictions.csv, "
                   f"seed {seeds[0]})"),
    ])]
    converted = _dataset_class_counts(dataset.get("path"))
    header = ["class", "test predictions (one seed)", "share"]
    if converted is not None:
        header.append("clips in dataset.json")
    body = []
    for index, name in enumerate(classes):
        line = [name, int(tested[index]), f"{100 * tested[index] / max(1, len(first)):.1f} %"]
        if converted is not None:
            line.append(converted.get(name, 0))
        body.append(line)
    body.append(["all", len(first), "100.0 %"]
                + ([sum(converted.get(n, 0) for n in classes)] if converted else []))
    parts.append("<h3>Class counts</h3>")
    parts.append(table(header, body, numeric=(1, 2, 3), total=(len(body) - 1,)))
    if converted is None and dataset.get("path"):
        parts.append(f"<p class=\"note\">{esc(dataset['path'])} holds no readable "
                     f"dataset.json any more: the counts are those of predictions.csv.</p>")
    return "\n".join(parts)


def _dataset_class_counts(path) -> dict | None:
    """`class_counts` summed over the converted datasets of `config.json`'s `dataset.path`
    (several joined by commas); None when one of them cannot be read.

    Read as plain JSON: `tfmer.data.load_info`, the owner of `dataset.json`, imports
    TensorFlow; only its `class_counts` field is used."""
    if not path:
        return None
    counts: dict = {}
    for part in str(path).split(","):
        meta = pathlib.Path(part) / "dataset.json"
        try:
            content = json.loads(meta.read_text(encoding="utf-8"))
            for name, count in content["class_counts"].items():
                counts[name] = counts.get(name, 0) + int(count)
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None
    return counts


def _protocol(config: dict, result: dict, folds) -> str:
    protocol = config.get("protocol") or {}
    train = config.get("train") or {}
    parts = [facts([
        ("protocol", result["protocol"]),
        ("folds", len(folds) if folds else len(result["folds"])),
        ("seeds", ", ".join(map(str, result["seeds"]))),
        ("fold seed", protocol.get("fold_seed")),
        ("deterministic", protocol.get("deterministic")),
        ("epochs", train.get("epochs") if config.get("handcrafted", {}).get("method") is None
         else None),
        ("early stopping", train.get("early_stopping")
         if config.get("handcrafted", {}).get("method") is None else None),
    ])]
    if folds:
        tested = {f["fold"]: f["n"] // len(result["seeds"]) for f in result["folds"]}
        body = [[f["fold"], len(f.get("train_subjects", [])), len(f["test_subjects"]),
                 tested.get(f["fold"], "")] for f in folds]
        parts.append(table(["fold", "training subjects", "test subjects", "test clips"],
                           body, numeric=(0, 1, 2, 3)))
        parts.append("<p class=\"note\">From folds.json; the test subjects of each fold are "
                     "listed under Per fold (<code>database/subject</code>; with "
                     "<code>kfoldK-clips</code> they are clip ids).</p>")
    else:
        parts.append(f"<p class=\"note\">The run has no {FOLDS}.</p>")
    return "\n".join(parts)


def _results(result: dict, plot_images: dict) -> str:
    pooled, chance = result["pooled"], result["chance"]
    header = ["", "UF1", "UAR", "accuracy", "n"]
    body = [["pooled", pooled["uf1"], pooled["uar"], pooled["accuracy"], pooled["n"]],
            ["chance (uniform guess)", chance["uf1"], chance["uar"], chance["accuracy"], ""],
            ["majority-class guess", chance["majority_uf1"], chance["majority_uar"],
             chance["majority_accuracy"], ""]]
    if "mean" in result:
        body.insert(1, ["mean over seeds", result["mean"]["uf1"], result["mean"]["uar"],
                        result["mean"]["accuracy"], ""])
        body.insert(2, ["std over seeds", result["std"]["uf1"], result["std"]["uar"],
                        result["std"]["accuracy"], ""])
    parts = [table(header, body, numeric=(1, 2, 3, 4), selected=(0,))]
    if len(result["seeds"]) > 1:
        parts.append("<h3>Per seed</h3>")
        parts.append(table(["seed", "UF1", "UAR", "accuracy", "n"],
                           [[s["seed"], s["pooled"]["uf1"], s["pooled"]["uar"],
                             s["pooled"]["accuracy"], s["pooled"]["n"]]
                            for s in result["per_seed"]], numeric=(0, 1, 2, 3, 4)))
    if "datasets" in result:
        parts.append("<h3>Per database</h3>")
        parts.append(table(["database", "UF1", "UAR", "accuracy", "n"],
                           [[name, d["uf1"], d["uar"], d["accuracy"], d["n"]]
                            for name, d in result["datasets"].items()],
                           numeric=(1, 2, 3, 4)))
        parts.append("<p class=\"note\">Each database's predictions pooled over the folds "
                     "(the namespace of the subjects), as composite papers report them.</p>")
    parts.append("<h3>Confusion matrix</h3>")
    parts.append(_confusion_table(result))
    parts.append(figure(plot_images.get(CONFUSION_MATRIX_PNG), "confusion matrix",
                       "Pooled over all folds" + (" and seeds" if len(result["seeds"]) > 1
                                                  else "")
                       + "; cells coloured by the share of the true class."))
    return "\n".join(parts)


def _confusion_table(result: dict) -> str:
    classes, matrix = result["classes"], np.asarray(result["confusion_matrix"])
    header = ["true \\ predicted"] + list(classes) + ["total", "recall"]
    body = []
    for index, name in enumerate(classes):
        total = int(matrix[index].sum())
        recall = matrix[index, index] / total if total else None
        body.append([name] + [int(v) for v in matrix[index]] + [total, recall])
    body.append(["total"] + [int(v) for v in matrix.sum(axis=0)] + [int(matrix.sum()), ""])
    return table(header, body, numeric=range(1, len(classes) + 3), total=(len(body) - 1,))


def _per_fold(result: dict, folds, plot_images: dict) -> str:
    subjects = {f["fold"]: f["test_subjects"] for f in folds}
    body = [[f["fold"], f["n"], f["uf1"], f["uar"], f["accuracy"],
             ", ".join(map(str, subjects.get(f["fold"], [])))] for f in result["folds"]]
    mean = [float(np.mean([f[k] for f in result["folds"]])) for k in ("uf1", "uar", "accuracy")]
    body.append(["mean of folds", sum(f["n"] for f in result["folds"]), *mean, ""])
    parts = [table(["fold", "n", "UF1", "UAR", "accuracy", "test subjects"], body,
                   numeric=(0, 1, 2, 3, 4), total=(len(body) - 1,)),
             "<p class=\"note\">A fold's UF1 and UAR average over the classes of the pooled "
             "predictions (a class the fold lacks counts F1 0 and recall 0), so their mean is not "
             "the pooled figure; n counts the fold's predictions of all seeds.</p>",
             figure(plot_images.get(FOLDS_PNG), "figures per fold",
                   "Accuracy, UF1 and UAR per fold, with chance and the pooled figures.")]
    return "\n".join(parts)


def _frame_metrics(content) -> str:
    if not content:
        return ""
    body = [[label, content[key]["uf1"], content[key]["uar"], content[key]["accuracy"],
             content[key]["n"]]
            for key, label in (("frame", "per frame (pooled test frames)"),
                               ("majority", "majority vote of frames"))]
    return (table(["", "UF1", "UAR", "accuracy", "n"], body, numeric=(1, 2, 3, 4))
            + f"<p class=\"note\">A frame model's figures over its scored test frames "
              f"({_stride_text(content.get('eval_stride', 1))}, each with its clip's label) "
              f"and over clips by the majority vote of their frames (frame_metrics.json).</p>")


def _stride_text(stride) -> str:
    return ("every frame" if stride in (1, None)
            else f"every {esc(stride)}th frame and the last")


def _training_curves(plot_images: dict) -> str:
    return figure(plot_images.get(TRAINING_CURVES_PNG), "training curves",
                 "Loss and accuracy per epoch of every fit (histories.json), validation "
                 "dashed.")


def _permutation(check) -> str:
    if not check:
        return ""
    uf1 = check.get("uf1") or []
    body = [["real UF1 (seed 0)", check.get("real_uf1")],
            ["shuffled: mean UF1", float(np.mean(uf1)) if uf1 else None],
            ["shuffled: max UF1", max(uf1) if uf1 else None],
            ["repeats", check.get("n")],
            ["p-value", check.get("p_value")]]
    return (table(["", "value"], body, numeric=(1,), selected=(4,))
            + "<p class=\"note\">Each repeat reran the cross-validation with every fold's "
              "training labels shuffled among its training clips (test labels untouched); "
              "p = (1 + #{shuffled UF1 &ge; real}) / (repeats + 1).</p>")


def _search(selections, plot_images: dict) -> str:
    if not selections:
        return ""
    body = []
    for selection in selections:
        chosen = selection.get("chosen") or {}
        candidates = selection.get("candidates") or []
        best = next((c for c in candidates
                     if all(c.get(k) == v for k, v in chosen.items())), {})
        body.append([selection.get("fold"), selection.get("seed"),
                     ", ".join(f"{k} {v}" for k, v in chosen.items() if v not in ("", None)),
                     best.get("uf1"), best.get("uar"), len(candidates)])
    parts = [table(["fold", "seed", "chosen", "inner UF1", "inner UAR", "candidates"], body,
                   numeric=(0, 1, 3, 4, 5)),
             "<p class=\"note\">Each fold chose its setting by inner cross-validation on its "
             "training subjects alone (search.json).</p>",
             figure(plot_images.get(SEARCH_PNG), "inner search",
                   "Inner cross-validation UF1 of every candidate, per fold; circled: the "
                   "fold's choice.")]
    return "\n".join(parts)


def _gradcam(selections) -> str:
    """gradcam.json: the layer each fold selected, a layers x folds table of normalised
    scores, and each fold's full scores in a collapsed block."""
    if not selections:
        return ""
    parts = [table(["fold", "seed", "selected layer", "normalised", "share on features",
                    "uniform (area)", "ceiling", "target", "frames"],
                   [[s.get("fold"), s.get("seed"), s.get("selected"),
                     *_layer_figures(s), s.get("class_target", ""), len(s.get("frames") or [])]
                    for s in selections], numeric=(0, 1, 3, 4, 5, 6, 8))]
    layers = []
    for selection in selections:
        for layer in selection.get("layers") or []:
            if layer["name"] not in layers:
                layers.append(layer["name"])
    if layers:
        scores = [{layer["name"]: layer for layer in s.get("layers") or []} for s in selections]
        body = []
        for name in layers:
            line = [name]
            for selection, by_name in zip(selections, scores):
                value = by_name.get(name, {}).get("normalised")
                text = fmt(value, 2)
                line.append(Markup(f"<strong>{esc(text)} &#9664;</strong>"
                                   if name == selection.get("selected") else esc(text)))
            body.append(line)
        parts.append("<h3>Normalised score of every layer, per fold</h3>")
        parts.append(table(["layer"] + [f"fold {s.get('fold')}" for s in selections], body,
                           numeric=range(1, len(selections) + 1)))
        parts.append("<p class=\"note\">Normalised score (share - area) / (ceiling - area): "
                     "the share of Grad-CAM heat on the facial features, corrected for the "
                     "layer's resolution; &#9664; the fold's selected layer (gradcam.json, "
                     "selected on the fold's training subjects).</p>")
    for selection in selections:
        rows = selection.get("layers") or []
        body = [[layer["name"], layer.get("score"), layer.get("area"), layer.get("ceiling"),
                 layer.get("normalised"), _bar(layer.get("normalised"))] for layer in rows]
        chosen = [i for i, layer in enumerate(rows) if layer["name"] == selection.get("selected")]
        parts.append(f"<details><summary>Fold {esc(selection.get('fold'))}, seed "
                     f"{esc(selection.get('seed'))}: every layer's scores</summary>"
                     + table(["layer", "share on features", "uniform (area)", "ceiling",
                              "normalised", ""], body, numeric=(1, 2, 3, 4), selected=chosen)
                     + "</details>")
    return "\n".join(parts)


def _layer_figures(selection) -> list:
    chosen = next((layer for layer in selection.get("layers") or []
                   if layer["name"] == selection.get("selected")), {})
    return [chosen.get("normalised"), chosen.get("score"), chosen.get("area"),
            chosen.get("ceiling")]


def _bar(value) -> Markup:
    """A small horizontal bar for a score in 0..1 (clipped), drawn with CSS."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return Markup("")
    width = int(round(120 * min(1.0, max(0.0, float(value)))))
    return Markup(f'<span class="bar" style="width:{width}px"></span>')


def _before_after(folder: RunFolder) -> str:
    content = folder.read_json(BEFORE_AFTER_JSON)
    figure = image(folder.file(BEFORE_AFTER_PNG), "Grad-CAM before and after training",
                   "Each row a frame: its facial-feature regions, then the Grad-CAM of the "
                   "final model before and after training, at the same layer and for the "
                   "frame's labelled class (python -m gradcam compare).")
    if content is None and not figure:
        return ""
    parts = []
    if content is not None:
        zeros = content.get("zero_maps") or {}
        parts.append(facts([
            ("layer", f"{content.get('layer')} ({content.get('layer_source')})"),
            ("share of heat on the facial features",
             f"before {fmt(content.get('mean_before'))} \u2192 after "
             f"{fmt(content.get('mean_after'))} (uniform heat {fmt(content.get('area'))})"),
            ("regions", content.get("regions")),
            ("frames", f"{len(content.get('frames') or [])} (training frames of all "
                       f"{content.get('num_subjects', '?')} subjects)"),
            ("all-zero heatmaps", f"{zeros.get('before', 0)} before, {zeros.get('after', 0)} "
                                  "after" if zeros else None),
            ("weights", ", ".join(f"{k}: {v}" for k, v in (content.get("weights") or {}).items())
             or None),
        ]))
    parts.append(figure)
    if content is not None and content.get("frames"):
        body = [[f.get("clip_id"), f.get("label"), f.get("before"), f.get("after")]
                for f in content["frames"]]
        parts.append("<details><summary>Share of heat per frame</summary>"
                     + table(["clip", "label", "before", "after"], body, numeric=(2, 3))
                     + "</details>")
    return "\n".join(parts)


def _predictions(rows, classes) -> str:
    wrong = sum(r["y_true"] != r["y_pred"] for r in rows)
    body = [[r["clip_id"], r["subject"], r["fold"], r["seed"], classes[r["y_true"]],
             classes[r["y_pred"]], max(r["probabilities"]) if r["probabilities"] else None]
            for r in rows]
    mistakes = [i for i, r in enumerate(rows) if r["y_true"] != r["y_pred"]]
    return (f"<details><summary>Every test prediction ({len(rows)}, {wrong} wrong, "
            f"highlighted)</summary>"
            + table(["clip", "subject", "fold", "seed", "true", "predicted",
                     "p(predicted)"], body, numeric=(2, 3, 6), selected=mistakes)
            + "</details>")


def _export(recorded) -> str:
    if not recorded:
        return ("<p>The run exported no final model (trained with <code>--no-export</code>, "
                "or stopped before it).</p>")
    path = pathlib.Path(recorded["saved_model"])
    state = "present" if path.exists() else "no longer there"
    return facts([("SavedModel", Markup(f"<code>{esc(path)}</code> ({state})")),
                  ("scored with", Markup("<code>python evaluate.py --model "
                                        f"{esc(path)} --data DIR</code>"))])


def _versions(folder: RunFolder, config: dict) -> str:
    recorded = folder.read_json(VERSIONS) or config.get("versions")
    if not recorded:
        return (f"<p>Versions: {NOT_RECORDED} (the run has no {VERSIONS}; it was trained "
                "by a tfmer that did not record them).</p>")
    order = ["tfmer", "tensorflow", "keras", "python"]
    names = order + [k for k in recorded if k not in order]
    body = [[name, recorded.get(name) or NOT_RECORDED] for name in names]
    return (table(["package", "version at training"], body)
            + f"<p class=\"note\">As the run recorded them ({VERSIONS}).</p>")


def _config(config: dict) -> str:
    text = json.dumps(config, indent=2, sort_keys=False)
    return (f"<details><summary>config.json ({len(text.splitlines())} lines)</summary>"
            f"<pre>{esc(text)}</pre></details>")


def _plots(folder: RunFolder, result: dict) -> dict:
    """The data URI of each plot: the run's own PNG, else one drawn again from the run's
    figures where that is cheap, in a temporary folder (the run folder is left as it is);
    `{file name: data URI}`, without the plots there are none of."""
    found = {}
    name = result["experiment"]
    drawers = (
        (CONFUSION_MATRIX_PNG, lambda path: plots.plot_confusion_matrix(
            np.array(result["confusion_matrix"]), result["classes"], path,
            title=f"{name}: pooled confusion matrix ({result['protocol']})")),
        (FOLDS_PNG, lambda path: plots.plot_fold_bars(
            result["folds"], path,
            chance={m: result["chance"][m] for m in metrics_module.METRIC_NAMES},
            pooled=result["pooled"], title=f"{name}: results per fold")),
        (TRAINING_CURVES_PNG, lambda path: _draw_curves(folder, name, path)),
        (SEARCH_PNG, lambda path: _draw_search(folder, name, path)))
    with tempfile.TemporaryDirectory(prefix="tfmer-report-") as scratch:
        for file_name, draw in drawers:
            uri = data_uri(folder.file(file_name))
            if uri is None:
                path = pathlib.Path(scratch) / file_name
                try:
                    uri = data_uri(path) if draw(path) is not None else None
                except (ValueError, KeyError, TypeError, IndexError):
                    uri = None  # a plot the recorded figures cannot draw is left out
            if uri is not None:
                found[file_name] = uri
    return found


def _draw_curves(folder: RunFolder, name: str, path):
    histories = [h for h in folder.read_json(HISTORIES) or []
                 if (h.get("history") or {}).get("loss")]
    if not histories:
        return None
    return plots.plot_training_curves(histories, path, title=f"{name}: training curves")


def _draw_search(folder: RunFolder, name: str, path):
    selections = folder.read_json(SEARCH)
    if not selections:
        return None
    return plots.plot_search(selections, path, title=f"{name}: inner search")
