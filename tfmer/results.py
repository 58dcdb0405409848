"""A run's results: prediction rows -> `metrics.json`, plots and the printed summary.

`train.py` writes them after cross-validation; `evaluate.py RUN_DIR` recomputes them from
`predictions.csv` alone, so the figures can always be checked.
"""

from __future__ import annotations

import numpy as np

from tfmer import metrics, plots
from tfmer.protocols import database_of
from tfmer.run_folder import (
    CONFUSION_MATRIX_PNG,
    CONFIG,
    FOLDS_PNG,
    METRICS,
    PREDICTIONS,
    TRAINING_CURVES_PNG,
    RunFolder,
)

def compute_metrics(rows, classes, *, experiment: str, protocol: str) -> dict:
    """The `metrics.json` content from prediction rows.

    `pooled` and `confusion_matrix` pool the predictions of all folds (and all seeds);
    `folds` pools each fold over seeds, its UF1 and UAR averaged over the classes of the
    pooled predictions (a class the fold lacks counts as F1 0, recall 0); `per_seed` has
    each seed's pooled figures, and with several seeds `mean` and `std` (sample std)
    summarise them. When the clips come from
    more than one database (the namespace of their subjects, `database/subject`),
    `datasets` has each database's figures on its pooled predictions, as composite papers
    report them (MEGC 2019).
    """
    k = len(classes)

    def scores(subset, classes=None):
        return metrics.classification_metrics([r["y_true"] for r in subset],
                                              [r["y_pred"] for r in subset], k, classes)

    pooled_classes = sorted({r["y_true"] for r in rows})

    seeds = sorted({r["seed"] for r in rows})
    folds = sorted({r["fold"] for r in rows})
    per_seed = [{"seed": s, "pooled": scores([r for r in rows if r["seed"] == s])}
                for s in seeds]
    result = {
        "experiment": experiment,
        "protocol": protocol,
        "classes": list(classes),
        "seeds": seeds,
        "pooled": scores(rows),
        "folds": [{"fold": f, **scores([r for r in rows if r["fold"] == f], pooled_classes)}
                  for f in folds],
        "confusion_matrix": metrics.confusion_matrix(
            [r["y_true"] for r in rows], [r["y_pred"] for r in rows], k).tolist(),
        "per_seed": per_seed,
        "chance": metrics.chance_levels(np.bincount(
            [r["y_true"] for r in rows if r["seed"] == seeds[0]], minlength=k).tolist()),
    }
    databases = sorted({database_of(r["subject"]) for r in rows})
    if len(databases) > 1:
        result["datasets"] = {name: scores([r for r in rows
                                            if database_of(r["subject"]) == name])
                              for name in databases}
    if len(seeds) > 1:
        result.update(metrics.summarise_seeds([p["pooled"] for p in per_seed]))
    return result


def write_report(folder: RunFolder, rows, classes, *, experiment: str, protocol: str,
                 histories=None, permutation=None) -> dict:
    """Writes `metrics.json`, `confusion_matrix.png`, `folds.png` (and `training_curves.png`
    when `histories` are given) into the run folder; returns the metrics. `permutation`, a
    label-permutation check (`tfmer.training.cross_validation.permutation_check`), is
    recorded in `metrics.json` as `permutation`."""
    result = compute_metrics(rows, classes, experiment=experiment, protocol=protocol)
    if permutation is not None:
        result["permutation"] = permutation
    folder.write_json(METRICS, result)
    plots.plot_confusion_matrix(np.array(result["confusion_matrix"]), classes,
                                folder.file(CONFUSION_MATRIX_PNG),
                                title=f"{experiment}: pooled confusion matrix ({protocol})")
    plots.plot_fold_bars(result["folds"], folder.file(FOLDS_PNG),
                         chance={m: result["chance"][m] for m in metrics.METRIC_NAMES},
                         pooled=result["pooled"], title=f"{experiment}: results per fold")
    if histories:
        plots.plot_training_curves(histories, folder.file(TRAINING_CURVES_PNG),
                                   title=f"{experiment}: training curves")
    return result


def majority_vote(frame_probabilities) -> int:
    """The class most frames of a clip predict; a tie goes to the tied class with the
    highest summed probability. `frame_probabilities`: `[frames, K]`."""
    frame_probabilities = np.asarray(frame_probabilities)
    votes = np.bincount(frame_probabilities.argmax(axis=1),
                        minlength=frame_probabilities.shape[1])
    tied = np.flatnonzero(votes == votes.max())
    return int(tied[np.argmax(frame_probabilities.sum(axis=0)[tied])])


def frame_metrics(rows, classes, *, eval_stride: int = 1) -> dict:
    """`frame_metrics.json` of a frame model: figures over frames and by majority vote.

    Args:
        rows: prediction rows with `window_probabilities` (`[frames][K]`, the probabilities
            of each scored frame of the clip; every `eval_stride`-th frame and the last).

    Returns:
        `{"frame": accuracy/UF1/UAR/n pooled over all scored test frames of all folds (and
        seeds), each with its clip's label; "majority": the same over clips predicted by
        the majority vote of their frames (`majority_vote`); "classes", "eval_stride"}`.
    """
    k = len(classes)
    frame_true, frame_pred, clip_true, clip_pred = [], [], [], []
    for row in rows:
        frames = np.asarray(row["window_probabilities"])
        frame_true += [row["y_true"]] * len(frames)
        frame_pred += frames.argmax(axis=1).tolist()
        clip_true.append(row["y_true"])
        clip_pred.append(majority_vote(frames))
    return {"classes": list(classes), "eval_stride": eval_stride,
            "frame": metrics.classification_metrics(frame_true, frame_pred, k),
            "majority": metrics.classification_metrics(clip_true, clip_pred, k)}


def frame_summary(result: dict) -> str:
    """The `frame_metrics.json` figures, two lines."""
    return "\n".join(
        f"  {label:<33}" + "  ".join(f"{name.upper()} {result[key][name]:.3f}"
                                     for name in metrics.METRIC_NAMES)
        + f"   (n={result[key]['n']})"
        for key, label in (("frame", "per frame (pooled test frames):"),
                           ("majority", "majority vote of frames:")))


def summary(result: dict) -> str:
    """The figures a researcher reads first, with the chance levels beside them."""
    pooled, chance = result["pooled"], result["chance"]
    lines = [f"{result['experiment']} ({result['protocol']}, seeds {result['seeds']}), "
             f"pooled over {pooled['n']} predictions:"]
    for name in metrics.METRIC_NAMES:
        spread = ""
        if "mean" in result:
            spread = f"   (over seeds {result['mean'][name]:.3f} +- {result['std'][name]:.3f})"
        lines.append(f"  {name.upper():<9}{pooled[name]:.3f}   chance {chance[name]:.3f}{spread}")
    lines.append(f"  (majority-class guess: accuracy {chance['majority_accuracy']:.3f}, "
                 f"UF1 {chance['majority_uf1']:.3f}, UAR {chance['majority_uar']:.3f})")
    lines.append("  per fold: " + "  ".join(
        f"{f['fold']}: UF1 {f['uf1']:.2f} (n={f['n']})" for f in result["folds"]))
    if "permutation" in result:
        check = result["permutation"]
        lines.append(f"  label permutation ({check['n']} repeats, training labels shuffled "
                     f"within each fold): UF1 mean {np.mean(check['uf1']):.3f}, max "
                     f"{max(check['uf1']):.3f}; p = {check['p_value']:.3f} for UF1 "
                     f"{check['real_uf1']:.3f} (seed 0)")
    if "datasets" in result:
        lines.append("  per database: " + "  ".join(
            f"{name}: UF1 {d['uf1']:.3f} UAR {d['uar']:.3f} (n={d['n']})"
            for name, d in result["datasets"].items()))
    return "\n".join(lines)


def recompute(folder: RunFolder) -> dict:
    """Recomputes the metrics of a finished run from its `predictions.csv` and `config.json`."""
    folder.require(PREDICTIONS, CONFIG)
    rows, classes = folder.predictions()
    config = folder.saved_config()
    return compute_metrics(rows, classes, experiment=config["name"],
                           protocol=config["protocol"]["protocol"])
