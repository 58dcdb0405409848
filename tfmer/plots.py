"""PNG plots of a cross-validated run: confusion matrix, per-fold figures, training curves.

Figures are drawn with `matplotlib.figure.Figure` on the Agg canvas, never through
`pyplot`, so no GUI backend is loaded and no global figure state is kept. Every function
writes its PNG atomically (`tfmer.files.atomic`), creates the parent folder if needed and
returns the path.
"""

import os

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from tfmer.files import atomic

_METRICS = (("accuracy", "accuracy"), ("uf1", "UF1"), ("uar", "UAR"))
_METRIC_COLOURS = {"accuracy": "tab:blue", "uf1": "tab:orange", "uar": "tab:green"}
_DPI = 120


def plot_confusion_matrix(matrix, class_names, path, title="Confusion matrix"):
    """Confusion matrix with counts and row-normalised percentages in each cell.

    Cells are coloured by the row percentage (the recall of the true class for the
    diagonal), so rare classes are as readable as frequent ones.

    Args:
        matrix: `[K, K]` non-negative counts, rows true classes, columns predicted.
        class_names: K names, in the order of the rows.
        path: output PNG path.
        title: figure title.

    Returns:
        `path` as a str.

    Raises:
        ValueError: if `matrix` is not square, or its size differs from `class_names`.
    """
    matrix = np.asarray(matrix)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"matrix must be square [K, K]; got shape {matrix.shape}")
    if matrix.shape[0] != len(class_names):
        raise ValueError(
            f"matrix is {matrix.shape[0]}x{matrix.shape[1]} but there are "
            f"{len(class_names)} class names: {list(class_names)}")
    k = matrix.shape[0]
    row_totals = matrix.sum(axis=1, keepdims=True)
    percent = np.divide(100.0 * matrix, row_totals, out=np.zeros(matrix.shape),
                        where=row_totals > 0)

    size = max(4.5, 0.75 * k + 2.5)
    fig = Figure(figsize=(size + 1.2, size), dpi=_DPI, layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(percent, cmap="Blues", vmin=0, vmax=100)
    colourbar = fig.colorbar(image, ax=ax, shrink=0.8)
    colourbar.set_label("% of true class")
    fontsize = 10 if k <= 10 else 8
    for i in range(k):
        for j in range(k):
            text = f"{matrix[i, j]:g}\n{percent[i, j]:.0f}%" if row_totals[i, 0] else "0"
            colour = "white" if percent[i, j] > 55 else "black"
            ax.text(j, i, text, ha="center", va="center", color=colour, fontsize=fontsize)
    ax.set_xticks(range(k), [str(name) for name in class_names],
                  rotation=30 if k > 4 else 0, ha="right" if k > 4 else "center")
    ax.set_yticks(range(k), [f"{name} ({row_totals[i, 0]:g})"
                             for i, name in enumerate(class_names)])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true (number of samples)")
    ax.set_title(title)
    return save_png(fig, path)


def plot_fold_bars(folds, path, chance=None, pooled=None, title="Results per fold"):
    """Grouped bars of accuracy, UF1 and UAR per fold, with chance and pooled lines.

    Args:
        folds: list of dicts `{"fold", "n", "accuracy", "uf1", "uar"}`, one per fold.
        path: output PNG path.
        chance: optional chance level: a float (one grey line), or a dict with some of
            `accuracy`, `uf1`, `uar` (one dotted line per figure in its bar colour), e.g.
            `tfmer.metrics.chance_levels(...)`.
        pooled: optional dict with some of `accuracy`, `uf1`, `uar` over the pooled
            predictions (one dashed line per figure in its bar colour).
        title: figure title.

    Returns:
        `path` as a str.

    Raises:
        ValueError: if `folds` is empty or a fold lacks one of its keys.
    """
    if not folds:
        raise ValueError("plot_fold_bars needs at least one fold; got none")
    for index, fold in enumerate(folds):
        missing = [key for key in ("fold", "n", "accuracy", "uf1", "uar") if key not in fold]
        if missing:
            raise ValueError(f"fold entry {index} lacks {missing}; it has {sorted(fold)}")
    num_folds = len(folds)
    width = 0.27
    x = np.arange(num_folds)

    fig = Figure(figsize=(max(7.0, 0.5 * num_folds + 3.5), 4.8), dpi=_DPI,
                 layout="constrained")
    ax = fig.add_subplot()
    handles = []
    for offset, (key, label) in zip((-width, 0.0, width), _METRICS):
        handles.append(ax.bar(x + offset, [fold[key] for fold in folds], width, label=label,
                              color=_METRIC_COLOURS[key]))
    for values, style, name in ((pooled, "--", "pooled"), (chance, ":", "chance")):
        if values is None:
            continue
        if isinstance(values, dict):
            for key, label in _METRICS:
                if key in values:
                    handles.append(ax.axhline(
                        values[key], color=_METRIC_COLOURS[key], linestyle=style,
                        linewidth=1.5, label=f"{name} {label} {values[key]:.3f}"))
        else:
            handles.append(ax.axhline(values, color="grey", linestyle=style, linewidth=1.5,
                                      label=f"{name} {values:.3f}"))
    ax.set_xticks(x, [f"{fold['fold']}\nn={fold['n']}" for fold in folds],
                  fontsize=9 if num_folds <= 20 else 7)
    ax.set_xlim(-0.6, num_folds - 0.4)
    ax.set_ylim(0, 1.0)
    ax.set_xlabel("fold")
    ax.set_ylabel("score")
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    ax.set_title(title)
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8,
              frameon=False)
    return save_png(fig, path)


def plot_training_curves(histories, path, title="Training curves"):
    """Loss and accuracy per epoch, one colour per history, validation dashed.

    Args:
        histories: list of dicts `{"label": str, "history": {...}}`, the history a Keras
            `History.history`-like dict of per-epoch lists: `loss` required, `val_loss`,
            `accuracy` and `val_accuracy` drawn when present.
        path: output PNG path.
        title: figure title.

    Returns:
        `path` as a str.

    Raises:
        ValueError: if `histories` is empty or an entry lacks `label`, `history` or
            `history["loss"]`.
    """
    if not histories:
        raise ValueError("plot_training_curves needs at least one history; got none")
    for index, entry in enumerate(histories):
        if "label" not in entry or "history" not in entry:
            raise ValueError(
                f"history entry {index} needs 'label' and 'history'; it has {sorted(entry)}")
        if "loss" not in entry["history"]:
            raise ValueError(
                f"history {entry['label']!r} has no 'loss'; it has {sorted(entry['history'])}")

    fig = Figure(figsize=(11.0, 4.5), dpi=_DPI, layout="constrained")
    loss_ax, accuracy_ax = fig.subplots(1, 2)
    colours = _colours(len(histories))
    for entry, colour in zip(histories, colours):
        history = entry["history"]
        for ax, key in ((loss_ax, "loss"), (accuracy_ax, "accuracy")):
            for name, style in ((key, "-"), (f"val_{key}", "--")):
                if name in history:
                    values = history[name]
                    ax.plot(np.arange(1, len(values) + 1), values, style, color=colour,
                            linewidth=1.2, marker="o", markersize=3)
    loss_ax.set_title("loss")
    accuracy_ax.set_title("accuracy")
    accuracy_ax.set_ylim(0, 1.0)
    epochs = max(len(entry["history"]["loss"]) for entry in histories)
    for ax in (loss_ax, accuracy_ax):
        ax.set_xlabel("epoch")
        ax.set_xlim(0.5, epochs + 0.5)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        ax.grid(alpha=0.3)
    handles = [Line2D([], [], color=colour, label=str(entry["label"]))
               for entry, colour in zip(histories, colours)]
    handles += [Line2D([], [], color="black", linestyle="-", label="train"),
                Line2D([], [], color="black", linestyle="--", label="validation")]
    fig.legend(handles=handles, loc="outside right upper", frameon=False,
               fontsize=8 if len(handles) <= 20 else 6, ncols=1 + len(handles) // 30)
    fig.suptitle(title)
    return save_png(fig, path)


def _colours(count):
    """`count` distinct colours: tab10 up to 10, else evenly spaced on turbo."""
    if count <= 10:
        return [matplotlib.colormaps["tab10"](i) for i in range(count)]
    return [matplotlib.colormaps["turbo"](i / (count - 1)) for i in range(count)]


def save_png(fig, path):
    """Writes `fig` as a PNG to `path` atomically and returns `path`."""
    path = os.fspath(path)
    FigureCanvasAgg(fig)
    with atomic(path) as temporary:
        # zlib level 1: a quarter of the default's encoding time, ~20 % larger files.
        fig.savefig(temporary, format="png", pil_kwargs={"compress_level": 1})
    return path


def plot_search(selections, path, title="Inner search"):
    """The inner cross-validation UF1 of every candidate setting, one line per fold, the
    chosen candidate of each fold circled.

    Args:
        selections: `[{"fold", "seed", "chosen": {...}, "candidates": [{..., "uf1"}]}]`,
            the same candidates in the same order for every fold (`tfmer.svm.search`).
        path: output PNG path.
        title: figure title.

    Returns:
        `path` as a str.

    Raises:
        ValueError: no selection, or one without candidates.
    """
    if not selections or not all(s["candidates"] for s in selections):
        raise ValueError("plot_search needs every fold's candidates; got none")
    names = [", ".join(str(v) if k == "variant" else f"{k} {v:g}"
                       for k, v in c.items() if k not in ("uf1", "uar") and v not in ("", None))
             for c in selections[0]["candidates"]]
    fig = Figure(figsize=(min(max(7.0, 3.0 + 0.25 * len(names)), 18.0), 5.0), dpi=_DPI,
                 layout="constrained")
    ax = fig.subplots()
    for selection, colour in zip(selections, _colours(len(selections))):
        scores = [c["uf1"] for c in selection["candidates"]]
        ax.plot(np.arange(len(scores)), scores, "-", color=colour, linewidth=1.0,
                label=f"fold {selection['fold']}, seed {selection['seed']}")
        chosen = next(i for i, c in enumerate(selection["candidates"])
                      if all(c[k] == v for k, v in selection["chosen"].items()))
        ax.plot([chosen], [scores[chosen]], "o", markersize=9, markerfacecolor="none",
                color=colour)
    ax.set_xticks(np.arange(len(names)), names, rotation=90, fontsize=6 if len(names) > 30 else 8)
    ax.set_ylabel("inner cross-validation UF1")
    ax.set_ylim(0, 1.0)
    ax.grid(alpha=0.3)
    fig.legend(loc="outside right upper", fontsize=8, frameon=False)
    fig.suptitle(f"{title}\ncircled: each fold's choice, made on its training subjects only",
                 fontsize=10)
    return save_png(fig, path)
