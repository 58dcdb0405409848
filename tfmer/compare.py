"""Comparison of several finished runs: the TLCNN paper's Table 3 and Figure 13.

`python evaluate.py --compare RUN_DIR... [--out DIR]` reads two or more run folders (see
the contract's "A finished run"), checks that they were scored on the same classes, folds
and test clips, and writes into DIR (default `comparison/` under the current folder):

- `comparison.md`: a row per method, a column per fold (`Fold1`..`FoldK`, accuracy in %),
  `Mean`, `UF1`, `UAR` and `p vs <first>`, with a header line and notes on the test;
- `comparison.csv`: `method,run,fold1..foldK,mean,uf1,uar,p_value`, a row per method;
- `comparison.png`: the bar chart of mean accuracies (Figure 13), per-fold dots, chance lines;
- `comparison.html`: the same tables and the chart (embedded) on one self-contained page
  (`tfmer.html_report`'s building blocks), linking each run's `report.html`.

Every figure is recomputed from `predictions.csv`:

- Fold accuracy: correct / rows of the fold, in percent. With several seeds the fold's rows
  of all seeds are pooled; every seed predicts the same test clips, so this equals the mean
  over seeds of the fold's accuracy.
- Mean: the mean of the per-fold accuracies, as in the paper's table (it differs from the
  pooled accuracy when folds differ in size).
- UF1 and UAR: over the run's predictions pooled over folds (`tfmer.metrics`, MEGC
  definition); with several seeds, the mean over seeds of each seed's pooled figure.
- p: two-sided paired t-test (`scipy.stats.ttest_rel`) of the first run's per-fold
  accuracies against each other run's, df = K - 1. It is left undefined (NaN, with the
  reason in the notes) with fewer than 2 folds or when the per-fold differences are all
  equal (zero variance: the t statistic is infinite or 0/0).

The method shown is the run's experiment name (`metrics.json` "experiment", else
`config.json` "name"); runs sharing a name get their run folder's name in brackets.
The chart's chance lines are the uniform guesser (100 / K) and the majority-class guesser
(the share of the largest class among the test clips), both from `tfmer.metrics`.
"""

from __future__ import annotations

import csv
import io
import math
import os
import pathlib

import matplotlib
import numpy as np
import scipy.stats
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from tfmer import html_report, metrics, plots, results
from tfmer.files import write_text_atomic
from tfmer.html_report import Markup, esc
from tfmer.run_folder import CONFIG, FOLDS, METRICS, PREDICTIONS, REPORT_HTML, RunFolder

DEFAULT_OUT = "comparison"
OUTPUT_FILES = ("comparison.md", "comparison.csv", "comparison.png", "comparison.html")
# Per-fold differences closer than this (percentage points) count as equal: the t-test
# would otherwise turn floating-point noise into p ~ 1e-30.
_EQUAL_TOLERANCE = 1e-9


def load_run(run_dir) -> dict:
    """Reads a finished run and recomputes the figures a comparison needs.

    Args:
        run_dir: a run folder with `predictions.csv` and `folds.json` (`metrics.json` and
            `config.json` are read for the name and protocol when present).

    Returns:
        `{"path": str, "experiment", "protocol", "classes": tuple, "seeds": [...],
        "folds": [{"fold", "test_subjects"}] (from folds.json, in order),
        "fold_clips": [sorted clip ids per fold], "fold_sizes": [rows per fold and seed],
        "fold_accuracy": [% per fold], "mean": % (mean over folds), "uf1", "uar",
        "class_counts": [K] (test clips per class, first seed)}`.

    Raises:
        FileNotFoundError: the folder or one of its required files is missing.
        ValueError: an unreadable `folds.json`, an empty `predictions.csv`, or predictions
            for folds `folds.json` does not list (or none for a fold it lists).
    """
    folder = RunFolder(run_dir)
    rows, classes = folder.predictions()
    if not rows:
        raise ValueError(f"{folder.file(PREDICTIONS)} has no predictions")
    folds = folder.folds()
    stored = folder.read_json(METRICS, {})
    config = folder.read_json(CONFIG, {})
    predictions_file = folder.file(PREDICTIONS)

    fold_ids = [fold["fold"] for fold in folds]
    unknown = sorted({r["fold"] for r in rows} - set(fold_ids))
    if unknown:
        raise ValueError(f"{predictions_file} has fold {unknown[0]}, which "
                         f"{folder.file(FOLDS)} does not list (folds {fold_ids})")
    seeds = sorted({r["seed"] for r in rows})
    fold_rows = [[r for r in rows if r["fold"] == f] for f in fold_ids]
    for fold_id, subset in zip(fold_ids, fold_rows):
        if not subset:
            raise ValueError(f"{predictions_file} has no predictions for fold {fold_id}")
    fold_accuracy = [100.0 * sum(r["y_pred"] == r["y_true"] for r in subset) / len(subset)
                     for subset in fold_rows]
    pooled = results.compute_metrics(rows, classes, experiment="", protocol="")
    summary = pooled.get("mean", pooled["pooled"])  # `mean` only with several seeds
    first_seed = [r["y_true"] for r in rows if r["seed"] == seeds[0]]
    return {
        "path": str(folder.path),
        "experiment": stored.get("experiment") or config.get("name") or folder.path.name,
        "protocol": stored.get("protocol") or config.get("protocol", {}).get("protocol", "?"),
        "classes": tuple(classes),
        "seeds": seeds,
        "folds": [{"fold": f["fold"], "test_subjects": sorted(f["test_subjects"])}
                  for f in folds],
        "fold_clips": [sorted({r["clip_id"] for r in subset}) for subset in fold_rows],
        "fold_sizes": [len(subset) // len(seeds) for subset in fold_rows],
        "fold_accuracy": fold_accuracy,
        "mean": float(np.mean(fold_accuracy)),
        "uf1": summary["uf1"],
        "uar": summary["uar"],
        "datasets": pooled.get("datasets", {}),
        "class_counts": np.bincount(first_seed, minlength=len(classes)).tolist(),
    }


def check_comparable(runs) -> None:
    """Checks that every run was scored on the reference run's classes, folds and clips.

    Args:
        runs: `load_run` results; the first is the reference.

    Raises:
        ValueError: fewer than two runs, or a one-line message naming the two runs and
            their first difference (classes, number of folds, a fold's test subjects or
            test clips).
    """
    if len(runs) < 2:
        raise ValueError(f"a comparison needs at least two run folders; got {len(runs)}: "
                         f"{', '.join(run['path'] for run in runs) or 'none'}")
    reference = runs[0]
    for run in runs[1:]:
        pair = f"runs {reference['path']} and {run['path']} differ"
        if run["classes"] != reference["classes"]:
            raise ValueError(f"{pair} in classes: {list(reference['classes'])} vs "
                             f"{list(run['classes'])}")
        if len(run["folds"]) != len(reference["folds"]):
            raise ValueError(f"{pair} in the number of folds: {len(reference['folds'])} vs "
                             f"{len(run['folds'])}")
        for index, (ours, theirs) in enumerate(zip(reference["folds"], run["folds"])):
            if ours != theirs:
                raise ValueError(
                    f"{pair} in fold {index + 1} (folds.json entry {index}): fold "
                    f"{ours['fold']} tests {ours['test_subjects']} vs fold {theirs['fold']} "
                    f"tests {theirs['test_subjects']}")
        for index, (ours, theirs) in enumerate(zip(reference["fold_clips"],
                                                    run["fold_clips"])):
            if ours != theirs:
                extra = sorted(set(ours) ^ set(theirs))
                raise ValueError(
                    f"{pair} in the test clips of fold {index + 1}: {len(ours)} vs "
                    f"{len(theirs)} clips, first clip in only one of them: {extra[0]}")


def paired_t_test(reference, other) -> dict:
    """Two-sided paired t-test of per-fold accuracies (`scipy.stats.ttest_rel`).

    Args:
        reference: `[K]` per-fold accuracies of the reference method.
        other: `[K]` per-fold accuracies of the other method, same folds.

    Returns:
        `{"t", "p", "df", "reason"}`: t > 0 when the reference is higher; `t` and `p` are
        NaN and `reason` says why when the test is undefined (fewer than 2 folds, or all
        per-fold differences equal), else `reason` is None.
    """
    reference = np.asarray(reference, dtype=np.float64)
    other = np.asarray(other, dtype=np.float64)
    if reference.shape != other.shape or reference.ndim != 1:
        raise ValueError(f"per-fold accuracies differ in shape: {reference.shape} vs "
                         f"{other.shape}")
    differences = reference - other
    count = differences.size
    if count < 2:
        reason = f"only {count} fold: a paired t-test needs at least 2"
    elif np.ptp(differences) <= _EQUAL_TOLERANCE:
        reason = (f"the per-fold differences are all {differences[0]:+.2f} points: zero "
                  f"variance, the t statistic is undefined")
    else:
        test = scipy.stats.ttest_rel(reference, other)
        return {"t": float(test.statistic), "p": float(test.pvalue), "df": count - 1,
                "reason": None}
    return {"t": math.nan, "p": math.nan, "df": count - 1, "reason": reason}


def compare(run_dirs) -> dict:
    """Loads and checks the runs, and computes the comparison.

    Args:
        run_dirs: two or more run folders; the first is the reference method.

    Returns:
        `{"reference": name, "protocol", "classes": [...], "folds": [fold ids],
        "fold_sizes": [...], "chance": {"uniform", "majority"} (accuracy in %),
        "methods": [{"method", "run", "seeds", "fold_accuracy", "mean", "uf1", "uar",
        "datasets", "t", "p", "df", "reason"}]}` (for the reference `t`, `p` are None;
        `datasets` as `metrics.json`'s, empty for a run on one database).

    Raises:
        FileNotFoundError, ValueError: as `load_run` and `check_comparable`.
    """
    if len(run_dirs) < 2:
        raise ValueError(f"a comparison needs at least two run folders; got {len(run_dirs)}: "
                         f"{', '.join(str(d) for d in run_dirs) or 'none'}")
    runs = [load_run(run_dir) for run_dir in run_dirs]
    check_comparable(runs)
    names = _method_names(runs)
    reference = runs[0]
    methods = []
    for index, (run, name) in enumerate(zip(runs, names)):
        if index == 0:
            test = {"t": None, "p": None, "df": None, "reason": None}
        else:
            test = paired_t_test(reference["fold_accuracy"], run["fold_accuracy"])
        methods.append({"method": name, "run": run["path"], "seeds": run["seeds"],
                        "fold_accuracy": run["fold_accuracy"], "mean": run["mean"],
                        "uf1": run["uf1"], "uar": run["uar"], "datasets": run["datasets"],
                        **test})
    chance = metrics.chance_levels(reference["class_counts"])
    return {
        "reference": names[0],
        "protocol": reference["protocol"],
        "classes": list(reference["classes"]),
        "folds": [fold["fold"] for fold in reference["folds"]],
        "fold_sizes": reference["fold_sizes"],
        "chance": {"uniform": 100.0 * chance["accuracy"],
                   "majority": 100.0 * chance["majority_accuracy"]},
        "methods": methods,
    }


def to_markdown(comparison: dict) -> str:
    """`comparison.md`: a header line, the Table 3 layout and notes on the figures."""
    reference = comparison["reference"]
    num_folds = len(comparison["folds"])
    several_seeds = any(len(m["seeds"]) > 1 for m in comparison["methods"])
    runs = "; ".join(f"{m['method']} = `{m['run']}` ({len(m['seeds'])} seed"
                     f"{'s' if len(m['seeds']) > 1 else ''})" for m in comparison["methods"])
    lines = [
        f"# Comparison against {reference}",
        "",
        f"Runs: {runs}. "
        f"Protocol {comparison['protocol']}, {num_folds} folds with the same test subjects "
        f"and clips in every run (clips per fold: "
        f"{', '.join(str(n) for n in comparison['fold_sizes'])}). "
        f"Classes: {', '.join(comparison['classes'])}. "
        f"Accuracy in % per fold; p: two-sided paired t-test of the per-fold accuracies of "
        f"{reference} against each method (scipy.stats.ttest_rel, df = {num_folds - 1}).",
        "",
    ]
    header, body, reasons = _table(comparison, reference_cell="")
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" + "---:|" * (len(header) - 1))
    lines += ["| " + " | ".join(cells) + " |" for cells in body]
    lines += [
        "",
        "Mean is the mean of the per-fold accuracies (as in the TLCNN paper's Table 3). "
        "UF1 and UAR pool the predictions of all folds (MEGC definition)"
        + ("; for a run with several seeds, each seed's figure averaged over seeds, and "
           "a fold's accuracy pools its predictions of all seeds (the mean over seeds)."
           if several_seeds else ".")
        + f" Chance accuracy: {comparison['chance']['uniform']:.2f} (uniform guess), "
        f"{comparison['chance']['majority']:.2f} (majority class).",
    ]
    if reasons:
        lines.append("")
        lines += [f"[{i + 1}] p undefined for {reason}." for i, reason in enumerate(reasons)]
    lines += _database_table(comparison["methods"])
    return "\n".join(lines) + "\n"


def _table(comparison: dict, reference_cell: str) -> tuple[list, list, list]:
    """The Table 3 layout as text cells, for `to_markdown` and `to_html`: `(header, rows,
    reasons)`, a row per method (accuracy per fold, mean, UF1, UAR, p against the first;
    `reference_cell` in the first's p column), and the reasons of the p values left
    undefined, which the rows cite as `n/a [i]`."""
    header = (["Method"] + [f"Fold{i + 1}" for i in range(len(comparison["folds"]))]
              + ["Mean", "UF1", "UAR", f"p vs {comparison['reference']}"])
    rows, reasons = [], []
    for index, method in enumerate(comparison["methods"]):
        if index == 0:
            p_text = reference_cell
        elif method["reason"] is not None:
            reasons.append(f"{method['method']}: {method['reason']}")
            p_text = f"n/a [{len(reasons)}]"
        else:
            p_text = "< 0.001" if method["p"] < 0.001 else f"{method['p']:.3f}"
        rows.append([method["method"]] + [f"{a:.2f}" for a in method["fold_accuracy"]]
                    + [f"{method['mean']:.2f}", f"{method['uf1']:.3f}",
                       f"{method['uar']:.3f}", p_text])
    return header, rows, reasons


def _database_table(methods) -> list[str]:
    """Markdown lines: UF1 and UAR of each database per method (pooled over its folds),
    when the clips come from several databases; none otherwise."""
    databases = sorted({name for m in methods for name in m["datasets"]})
    if not databases:
        return []
    header = ["Method"] + [f"{name} {figure}" for name in databases for figure in ("UF1", "UAR")]
    lines = ["", "Per database (each database's predictions pooled over the folds):", "",
             "| " + " | ".join(header) + " |", "|" + "---|" + "---:|" * (len(header) - 1)]
    for method in methods:
        cells = [method["method"]]
        for name in databases:
            figures = method["datasets"].get(name)
            cells += ([f"{figures['uf1']:.3f}", f"{figures['uar']:.3f}"] if figures
                      else ["", ""])
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def to_csv(comparison: dict) -> str:
    """`comparison.csv`: `method,run,fold1..foldK,mean,uf1,uar,p_value`, a row per method.

    Accuracies are in %, UF1 and UAR in 0..1; `p_value` is empty for the reference and
    `nan` when the test is undefined.
    """
    num_folds = len(comparison["folds"])
    stream = io.StringIO()
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(["method", "run"] + [f"fold{i + 1}" for i in range(num_folds)]
                    + ["mean", "uf1", "uar", "p_value"])
    for method in comparison["methods"]:
        p_value = "" if method["p"] is None else repr(method["p"])
        writer.writerow([method["method"], method["run"]]
                        + [repr(a) for a in method["fold_accuracy"]]
                        + [repr(method["mean"]), repr(method["uf1"]), repr(method["uar"]),
                           p_value])
    return stream.getvalue()


def plot_comparison(comparison: dict, path) -> str:
    """Figure 13: a bar of mean accuracy per method, its per-fold accuracies as dots, value
    labels, the p-value under each name and the uniform and majority chance lines.

    Returns:
        `path` as a str (written atomically by `tfmer.plots.save_png`).
    """
    methods = comparison["methods"]
    count = len(methods)
    x = np.arange(count)
    fig = Figure(figsize=(max(6.5, 1.3 * count + 3.5), 5.0), dpi=120, layout="constrained")
    ax = fig.add_subplot()
    colours = [matplotlib.colormaps["tab10"](i % 10) for i in range(count)]
    ax.bar(x, [m["mean"] for m in methods], 0.6, color=colours, alpha=0.85)
    num_folds = len(comparison["folds"])
    jitter = np.linspace(-0.18, 0.18, num_folds) if num_folds > 1 else np.zeros(1)
    for position, method in zip(x, methods):
        ax.scatter(position + jitter, method["fold_accuracy"], s=16, color="black", zorder=3)
        top = max([method["mean"]] + list(method["fold_accuracy"]))
        ax.text(position, top + 2.5, f"{method['mean']:.2f}", ha="center", va="bottom",
                fontsize=9, fontweight="bold")
    chance = comparison["chance"]
    ax.axhline(chance["uniform"], color="grey", linestyle=":", linewidth=1.5)
    ax.axhline(chance["majority"], color="grey", linestyle="--", linewidth=1.5)
    labels = []
    for index, method in enumerate(methods):
        if index == 0:
            note = "(reference)"
        elif method["reason"] is not None:
            note = "p n/a"
        else:
            note = "p < 0.001" if method["p"] < 0.001 else f"p = {method['p']:.3f}"
        labels.append(f"{method['method']}\n{note}")
    ax.set_xticks(x, labels, fontsize=9 if count <= 6 else 7,
                  rotation=20 if count > 6 else 0, ha="right" if count > 6 else "center")
    ax.set_xlim(-0.6, count - 0.4)
    ax.set_ylim(0, 110)
    ax.set_yticks(range(0, 101, 10))
    ax.set_ylabel("accuracy (%)")
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    ax.set_title(f"Mean accuracy over {num_folds} folds ({comparison['protocol']}); "
                 f"p: paired t-test against {comparison['reference']}", fontsize=10)
    handles = [
        Line2D([], [], color="black", marker="o", linestyle="", markersize=4,
               label="per-fold accuracy"),
        Line2D([], [], color="grey", linestyle=":", label=f"uniform chance "
               f"{chance['uniform']:.1f}"),
        Line2D([], [], color="grey", linestyle="--", label=f"majority class "
               f"{chance['majority']:.1f}"),
    ]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8,
              frameon=False)
    return plots.save_png(fig, path)


def to_html(comparison: dict, png_path, out_dir=None) -> str:
    """`comparison.html`: the runs, the Table 3 layout, the per-database table and the chart
    (`png_path`, embedded as a data URI) on one self-contained page.

    Args:
        comparison: a `compare` result.
        png_path: `comparison.png` (left out when missing).
        out_dir: the folder the page is written to: each run's `report.html`, when it has
            one, is linked relative to it (absolute without it).
    """
    reference = comparison["reference"]
    methods = comparison["methods"]
    num_folds = len(comparison["folds"])
    several_seeds = any(len(m["seeds"]) > 1 for m in methods)
    runs = []
    for method in methods:
        report = pathlib.Path(method["run"]) / REPORT_HTML
        link = ""
        if report.is_file():
            target = (os.path.relpath(report.resolve(), pathlib.Path(out_dir).resolve())
                      if out_dir is not None else report.resolve().as_uri())
            link = f' (<a href="{esc(pathlib.PurePath(target).as_posix())}">report</a>)'
        seeds = len(method["seeds"])
        runs.append(f"<li><strong>{esc(method['method'])}</strong>: <code>{esc(method['run'])}"
                    f"</code>, {seeds} seed{'s' if seeds > 1 else ''}{link}</li>")
    header, body, reasons = _table(comparison, reference_cell="(reference)")
    numeric = range(1, len(header))
    parts = [
        f"<header><h1>Comparison against {esc(reference)}</h1>",
        f"<p class=\"muted\">Protocol {esc(comparison['protocol'])}, {num_folds} folds with "
        f"the same test subjects and clips in every run (clips per fold: "
        f"{esc(', '.join(str(n) for n in comparison['fold_sizes']))}); classes "
        f"{esc(', '.join(comparison['classes']))}.</p></header>",
        "<h2>Runs</h2>", "<ul>" + "".join(runs) + "</ul>",
        "<h2>Accuracy per fold (%), mean, UF1, UAR</h2>",
        html_report.table(header, body, numeric=numeric, selected=(0,)),
        "<p class=\"note\">Mean is the mean of the per-fold accuracies (as in the TLCNN "
        "paper's Table 3). UF1 and UAR pool the predictions of all folds (MEGC definition)"
        + ("; for a run with several seeds, each seed's figure averaged over seeds, and a "
           "fold's accuracy pools its predictions of all seeds." if several_seeds else ".")
        + f" p: two-sided paired t-test of the per-fold accuracies of {esc(reference)} "
        f"against each method (scipy.stats.ttest_rel, df = {num_folds - 1}). Chance "
        f"accuracy: {comparison['chance']['uniform']:.2f} (uniform guess), "
        f"{comparison['chance']['majority']:.2f} (majority class).</p>",
    ]
    parts += [f"<p class=\"note\">[{i + 1}] p undefined for {esc(reason)}.</p>"
              for i, reason in enumerate(reasons)]
    databases = sorted({name for m in methods for name in m["datasets"]})
    if databases:
        rows = []
        for method in methods:
            cells = [method["method"]]
            for name in databases:
                figures = method["datasets"].get(name)
                cells += ([f"{figures['uf1']:.3f}", f"{figures['uar']:.3f}"] if figures
                          else ["", ""])
            rows.append(cells)
        parts += ["<h2>Per database</h2>",
                  html_report.table(["Method"] + [f"{name} {figure}" for name in databases
                                                  for figure in ("UF1", "UAR")], rows,
                                    numeric=range(1, 2 * len(databases) + 1)),
                  "<p class=\"note\">Each database's predictions pooled over the folds.</p>"]
    chart = html_report.image(png_path, "mean accuracy per method",
                              "Mean accuracy over the folds (bars), each fold's accuracy "
                              "(dots), the uniform and majority-class chance lines.")
    if chart:
        parts += ["<h2>Chart</h2>", chart]
    parts.append(Markup("<footer>Written by <code>python evaluate.py --compare</code> "
                        "(tfmer.compare); comparison.md and comparison.csv hold the same "
                        "figures.</footer>"))
    return html_report.page(f"Comparison against {reference}", "\n".join(parts))


def write_comparison(run_dirs, out_dir=DEFAULT_OUT) -> dict:
    """Compares the runs and writes `comparison.md`, `comparison.csv`, `comparison.png` and
    `comparison.html` into `out_dir` (created if needed; each file written atomically).

    Returns:
        the `compare` result with `"markdown"` (the text of `comparison.md`) and `"files"`
        (the four paths, `OUTPUT_FILES`) added.
    """
    comparison = compare(run_dirs)
    out_dir = pathlib.Path(out_dir)
    markdown = to_markdown(comparison)
    write_text_atomic(out_dir / "comparison.md", markdown)
    write_text_atomic(out_dir / "comparison.csv", to_csv(comparison))
    plot_comparison(comparison, out_dir / "comparison.png")
    write_text_atomic(out_dir / "comparison.html",
                      to_html(comparison, out_dir / "comparison.png", out_dir))
    return {**comparison, "markdown": markdown,
            "files": [str(out_dir / name) for name in OUTPUT_FILES]}


def _method_names(runs) -> list[str]:
    """Experiment names; runs sharing one get their folder name added (else their path,
    else their position when the same folder is given twice)."""
    experiments = [run["experiment"] for run in runs]
    names = []
    for index, run in enumerate(runs):
        name = run["experiment"]
        if experiments.count(name) > 1:
            paths = [r["path"] for r in runs if r["experiment"] == name]
            folders = [pathlib.Path(path).name for path in paths]
            folder = pathlib.Path(run["path"]).name
            if folders.count(folder) == 1:
                name = f"{name} ({folder})"
            elif paths.count(run["path"]) == 1:
                name = f"{name} ({run['path']})"
            else:
                name = f"{name} (#{index + 1})"
        names.append(name)
    return names
