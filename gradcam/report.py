"""The Grad-CAM layer-selection report: `report.json`, PNG figures and `report.html`.

Figures are drawn with `matplotlib.figure.Figure` on the Agg canvas (no `pyplot`, no GUI
backend), as `tfmer.plots` does. Every file is written under a temporary name in its folder
and renamed into place; `report.json` is written last, so its presence means the report is
complete.
"""

from __future__ import annotations

import html
import math
import pathlib
import re

import cv2
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from gradcam import regions
from gradcam.core import overlay
from gradcam.scoring import PROBE
from tfmer import plots
from tfmer.files import write_json_atomic, write_text_atomic

OVERVIEW_FRAMES = 6
"""Sample frames (columns) of `overview.png`."""
_DPI = 100
_CELL_PIXELS = 144  # side of an image cell in the grids
_TEXT_LINE = 14  # px per line of text (8 pt at 100 dpi, with leading)
_MIN_WIDTH = 620  # px: room for the titles above a grid of few cells
_SELECTED = "tab:red"
_SELECTED_RGB = (214, 39, 40)  # tab:red
_OTHER = "tab:blue"
_OUTLINE = (255, 255, 255)


def write_report(out_dir, content: dict, frames, masks, heatmaps: dict) -> pathlib.Path:
    """Writes the report of one layer selection into `out_dir`.

    Files: `scores.png` (per layer, network order, the selected one highlighted: the raw
    share with the uniform-heat baseline and the resolution's ceiling, and the normalised
    score it is chosen by), `overview.png` (rows layers, columns up to `OVERVIEW_FRAMES`
    frames), `layers/<layer>.png` (every frame of one layer), `report.html` (summary,
    scores table and the figures), then `report.json` (`content`).

    Args:
        out_dir: output folder, created if needed.
        content: the report dict (`gradcam.select.select`): `layers` (`[{"name", "score",
            "area", "ceiling", "normalised"}]` in network order), `selected`, `frozen`,
            `trainable`, `experiment`, `frames` (clip ids), `class_target`, `probe`, ...
        frames: uint8 `[N, S, S, 3]` RGB sample frames.
        masks: bool `[N, S, S]` facial-feature regions of the frames.
        heatmaps: `{layer: [N, h, w]}` Grad-CAM maps in 0..1.

    Returns:
        The path of `report.html`.
    """
    out = pathlib.Path(out_dir)
    plot_scores(content["layers"], content["selected"], out / "scores.png")
    plot_overview(frames, masks, heatmaps, content, out / "overview.png")
    layer_files = {}
    for entry in content["layers"]:
        name = entry["name"]
        layer_files[name] = f"layers/{_file_name(name)}.png"
        plot_layer(frames, masks, heatmaps[name], entry, content["frames"],
                   out / layer_files[name], selected=name == content["selected"])
    write_text_atomic(out / "report.html", render_html(content, layer_files))
    write_json_atomic(out / "report.json", content)
    return out / "report.html"


def plot_scores(scores: list[dict], selected: str, path) -> str:
    """Bar charts of each layer's scores, in network order, the selected layer in red.

    Top: the raw share of heat on the facial features, with the uniform-heat baseline
    (the region area) and each layer's ceiling (the best share its resolution allows).
    Bottom: the normalised score `(score - area) / (ceiling - area)` the layer is chosen by.

    Args:
        scores: `[{"name", "score", "area", "ceiling", "normalised"}]`.
        selected: the chosen layer, drawn in red.
        path: output PNG.

    Returns:
        `path` as a str.
    """
    names = [s["name"] for s in scores]
    raw = np.array([s["score"] for s in scores])
    ceilings = np.array([s["ceiling"] for s in scores])
    normalised = np.array([s["normalised"] for s in scores])
    area = float(np.mean([s["area"] for s in scores]))
    positions = np.arange(len(names))
    colours = [_SELECTED if name == selected else _OTHER for name in names]
    fig = Figure(figsize=(max(6.0, 0.32 * len(names) + 2.0), 7.2), dpi=_DPI * 1.2,
                 layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True)
    top.bar(positions, raw, color=colours)
    top.axhline(area, color="black", linestyle="--", linewidth=1,
                label=f"uniform heat (region area {area:.2f})")
    top.scatter(positions, ceilings, marker="_", s=200, color="black", linewidths=1.5,
                label="ceiling at the layer's resolution")
    top.set_ylim(0, min(1.0, max(ceilings.max(initial=0), area) * 1.1 + 0.05))
    top.set_ylabel("share of heat on facial features")
    top.set_title(f"Grad-CAM heat on the facial features ({regions.REGION_NAMES})\n"
                  f"selected layer: {selected} (highest normalised score)", fontsize=10)
    handles, _ = top.get_legend_handles_labels()
    handles.append(Patch(color=_SELECTED, label=f"selected ({selected})"))
    top.legend(handles=handles, loc="center left", fontsize=8)
    bottom.bar(positions, normalised, color=colours)
    bottom.axhline(0, color="black", linewidth=0.8)
    bottom.set_ylabel("normalised score\n(share - area) / (ceiling - area)")
    bottom.set_xlabel("layer (network order)")
    for ax, values in ((top, raw), (bottom, normalised)):
        if len(names) <= 24:
            for i, value in enumerate(values):
                ax.text(i, value, f"{value:.2f}", ha="center",
                        va="bottom" if value >= 0 else "top", fontsize=7)
    bottom.set_xticks(positions, names, rotation=60, ha="right",
                      fontsize=8 if len(names) <= 30 else 6)
    bottom.get_xticklabels()[names.index(selected)].set_color(_SELECTED)
    return plots.save_png(fig, path)


def plot_overview(frames, masks, heatmaps: dict, content: dict, path) -> str:
    """Grid of overlays: a row per layer (network order), a column per sample frame (up to
    `OVERVIEW_FRAMES`), the facial-feature regions outlined in white, the selected layer's
    row framed in red.

    Returns:
        `path` as a str.
    """
    scores = content["layers"]
    columns = min(OVERVIEW_FRAMES, len(frames))
    cells = [[_cell(frames[i], masks[i], heatmaps[entry["name"]][i]) for i in range(columns)]
             for entry in scores]
    titles = [[_short(clip_id) for clip_id in content["frames"][:columns]]]
    labels = [f"{entry['name']}\nnorm. {entry['normalised']:.2f}, raw {entry['score']:.3f}"
              for entry in scores]
    selected = [entry["name"] == content["selected"] for entry in scores]
    title = (f"Grad-CAM of {content['experiment']} ({content['class_target']} target), a row "
             f"per layer: normalised score and mean share of heat on the outlined facial "
             f"features\n(uniform heat {scores[0]['area']:.3f}); selected "
             f"{content['selected']} (red)")
    figure = _mosaic_figure(cells, title, titles=titles, labels=labels, selected=selected)
    return plots.save_png(figure, path)


def plot_layer(frames, masks, heatmaps, entry: dict, clip_ids, path,
               selected: bool = False) -> str:
    """Every sample frame's overlay at one layer, titled with its own heat share.

    Args:
        heatmaps: `[N, h, w]` of the layer.
        entry: the layer's `{"name", "score", "area", "ceiling", "normalised"}`.

    Returns:
        `path` as a str.
    """
    count = len(frames)
    columns = min(count, max(4, math.ceil(math.sqrt(count))))
    cells, titles = [], []
    for start in range(0, count, columns):
        indices = range(start, min(start + columns, count))
        cells.append([_cell(frames[i], masks[i], heatmaps[i]) for i in indices])
        titles.append([f"{_short(clip_ids[i])}\n"
                       f"{regions.heat_in_regions(heatmaps[i], masks[i]):.3f}" for i in indices])
    title = (f"{entry['name']}{' (selected)' if selected else ''}\nmean share of heat on the "
             f"outlined facial features {entry['score']:.3f} (uniform {entry['area']:.3f}, "
             f"ceiling {entry['ceiling']:.3f}): normalised {entry['normalised']:.2f}")
    figure = _mosaic_figure(cells, title, titles=titles, selected=[selected] * len(cells))
    return plots.save_png(figure, path)


def plot_before_after(frames, masks, before, after, content: dict, path) -> str:
    """Grad-CAM of the same frames before and after training (Bai & Goecke 2020, Figure 4).

    A row per frame (labelled with its clip and class): the frame with its facial-feature
    regions outlined, the overlay before training, the overlay after, each overlay titled
    with its share of heat on the regions ("no heat" for an all-zero map).

    Args:
        frames: uint8 `[N, S, S, 3]` RGB.
        masks: bool `[N, S, S]` facial-feature regions of the frames.
        before, after: `[N, h, w]` Grad-CAM maps in 0..1 of one layer.
        content: the comparison (`gradcam.compare.compare`): `layer`, `layer_source`,
            `experiment`, `num_subjects`, `frames` (`[{"clip_id", "label", "before",
            "after"}]`), `mean_before`, `mean_after`, `area`.
        path: output PNG.

    Returns:
        `path` as a str.
    """
    entries = content["frames"]
    cells = [[_cell(frames[i], masks[i]), _cell(frames[i], masks[i], before[i]),
              _cell(frames[i], masks[i], after[i])] for i in range(len(entries))]
    titles = [["facial features", f"before training: {_share_text(entry['before'], before[i])}",
               f"after training: {_share_text(entry['after'], after[i])}"]
              for i, entry in enumerate(entries)]
    labels = [f"{_short(entry['clip_id'])}\n{entry['label']}" for entry in entries]
    title = (f"Grad-CAM of {content['experiment']}'s final model at {content['layer']} "
             f"({content['layer_source']})\nbefore and after training, on frames of all "
             f"{content['num_subjects']} subjects (its training data), for each clip's label\n"
             f"mean share of heat on the outlined facial features: before "
             f"{content['mean_before']:.3f} -> after {content['mean_after']:.3f} "
             f"(uniform {content['area']:.3f})")
    return plots.save_png(_mosaic_figure(cells, title, titles=titles, labels=labels), path)


def render_html(content: dict, layer_files: dict) -> str:
    """The self-contained `report.html` (figures by relative path)."""
    selected = content["selected"]
    best = next(s for s in content["layers"] if s["name"] == selected)
    rows = []
    for i, entry in enumerate(content["layers"], 1):
        style = ' class="selected"' if entry["name"] == selected else ""
        link = html.escape(layer_files[entry["name"]])
        rows.append(f"<tr{style}><td>{i}</td><td><a href=\"{link}\">"
                    f"{html.escape(entry['name'])}</a></td><td>{entry['normalised']:.3f}</td>"
                    f"<td>{entry['score']:.3f}</td><td>{entry['area']:.3f}</td>"
                    f"<td>{entry['ceiling']:.3f}</td></tr>")
    grids = "\n".join(
        f"<h3>{html.escape(name)}</h3>\n"
        f"<img src=\"{html.escape(file)}\" alt=\"{html.escape(name)}\">"
        for name, file in layer_files.items())
    title = f"Grad-CAM layer selection: {content['experiment']}"
    weights = (f"<code>{html.escape(content['weights'])}</code>" if content.get("weights")
               else f"random initial weights (seed {content.get('seed')})")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{html.escape(title)}</title>
<style>
body {{ font-family: sans-serif; max-width: 1100px; margin: 2em auto; line-height: 1.4; }}
table {{ border-collapse: collapse; }}
th, td {{ border: 1px solid #ccc; padding: 2px 8px; text-align: right; }}
td:nth-child(2) {{ text-align: left; }}
tr.selected {{ background: #fdd; font-weight: bold; }}
img {{ max-width: 100%; }}
</style>
</head>
<body>
<h1>{html.escape(title)}</h1>
<p>On {len(content['frames'])} frames of <code>{html.escape(str(content['data']))}</code>
(one per clip, the apex when known), the Grad-CAM heat of layer
<b>{html.escape(selected)}</b> is the most concentrated on the
{html.escape(content['regions'])} for its resolution: normalised score
{best['normalised']:.2f}, {best['score']:.2f} of its heat on them, where a uniform heatmap
would put {best['area']:.2f} and a map of its resolution at most {best['ceiling']:.2f}.
Retraining from it (Bai &amp; Goecke 2020, Section 4.3) freezes {len(content['frozen'])}
backbone layers and trains {len(content['trainable'])}. The backbone's weights:
{weights}. Heatmaps explain {html.escape(_target_text(content))}.</p>
<p>A layer's map is upsampled bilinearly to the frame before scoring, which blurs a coarse
map: its ceiling is the highest share any map of its resolution reaches (a single hot
cell). Layers are ranked by normalised = (share - uniform) / (ceiling - uniform): 0 is no
better than uniform heat, 1 as concentrated as the resolution allows. The paper ranks by
the raw share, which favours high-resolution layers.</p>
<h2>Scores</h2>
<table>
<tr><th>#</th><th>layer (network order)</th><th>normalised</th><th>heat share</th>
<th>uniform</th><th>ceiling</th></tr>
{chr(10).join(rows)}
</table>
<p><img src="scores.png" alt="scores per layer"></p>
<h2>Overview</h2>
<p>Rows are layers, columns sample frames; the facial-feature regions are outlined in white.</p>
<p><img src="overview.png" alt="overview"></p>
<h2>Every frame, per layer</h2>
{grids}
</body>
</html>
"""


def summary(content: dict, top: int = 5) -> str:
    """A few lines for the terminal: the selection, the target and the `top` layers by
    normalised score (with their raw shares)."""
    ranked = sorted(content["layers"], key=lambda s: -s["normalised"])[:top]
    lines = [f"selected layer: {content['selected']} (freezes {len(content['frozen'])} "
             f"backbone layers, trains {len(content['trainable'])})",
             f"heatmaps explain {_target_text(content)}",
             f"top {len(ranked)} of {len(content['layers'])} layers by normalised score "
             f"(raw heat share on {content['regions']}; uniform heat "
             f"{ranked[0]['area']:.3f}; ceiling at the layer's resolution):"]
    lines += [f"  {s['name']:<24} {s['normalised']:6.3f}  (raw {s['score']:.3f}, "
              f"ceiling {s['ceiling']:.3f})" for s in ranked]
    if not content.get("weights"):
        lines.append("(random initial weights; --set model.weights=PATH for pretrained ones)")
    return "\n".join(lines)


def _target_text(content: dict) -> str:
    """What the heatmaps of a report explain, in words (`class_target`, `probe`)."""
    probe = content.get("probe")
    if content["class_target"] == PROBE and probe:
        return (f"each frame's labelled class (a linear probe fitted on the backbone's "
                f"features of these frames, training accuracy {probe['accuracy']:.2f})")
    return "each frame's predicted class (the model's own head)"


def _cell(frame, mask, heatmap=None) -> np.ndarray:
    """The overlay of one frame at `_CELL_PIXELS` (the frame alone without `heatmap`), its
    regions outlined: uint8 `[C, C, 3]`."""
    size = _CELL_PIXELS
    shrink = frame.shape[0] > size
    frame = cv2.resize(frame, (size, size),
                       interpolation=cv2.INTER_AREA if shrink else cv2.INTER_NEAREST)
    image = frame.copy() if heatmap is None else overlay(frame, heatmap)
    outline = cv2.resize(mask.astype(np.float32), (size, size), interpolation=cv2.INTER_LINEAR)
    contours, _ = cv2.findContours((outline >= 0.5).astype(np.uint8), cv2.RETR_LIST,
                                   cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(image, contours, -1, _OUTLINE, 1)
    return image


def _mosaic_figure(cells, title: str, *, titles=(), labels=None, selected=()) -> Figure:
    """Image cells on one canvas, drawn pixel for pixel, with text around them.

    A grid of cells is cheap to draw this way; one matplotlib axes per cell costs ~30 ms,
    most of a minute for the report of every conv layer (69 rows in the overview alone).

    Args:
        cells: rows of uint8 `[C, C, 3]` images (the last row may be shorter).
        title: text above the grid.
        titles: per row, titles above its cells (rows without: none).
        labels: a label left of each row, or None.
        selected: per row, whether to frame its cells in red.
    """
    size, gap = _CELL_PIXELS, 8
    rows, columns = len(cells), max(map(len, cells))
    title_heights = [_TEXT_LINE * (1 + titles[r][0].count("\n")) + 4
                     if r < len(titles) and titles[r] else 0 for r in range(rows)]
    left = 170 if labels else gap
    top = _TEXT_LINE * (2 + title.count("\n"))
    tops = top + np.cumsum([0] + [h + size + gap for h in title_heights[:-1]]) + title_heights
    width = max(left + columns * (size + gap), _MIN_WIDTH)
    height = int(tops[-1]) + size + gap
    canvas = np.full((height, width, 3), 255, np.uint8)
    for r, row in enumerate(cells):
        for c, cell in enumerate(row):
            y, x = int(tops[r]), left + c * (size + gap)
            if r < len(selected) and selected[r]:
                canvas[y - 3:y + size + 3, x - 3:x + size + 3] = _SELECTED_RGB
            canvas[y:y + size, x:x + size] = cell
    fig = Figure(figsize=(width / _DPI, height / _DPI), dpi=_DPI)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.imshow(canvas, interpolation="none")
    ax.set_axis_off()
    ax.text(width / 2, 6, title, ha="center", va="top", fontsize=9)
    for r in range(rows):
        if r < len(titles):
            for c, text in enumerate(titles[r]):
                ax.text(left + c * (size + gap) + size / 2, tops[r] - 4, text, ha="center",
                        va="bottom", fontsize=7)
        if labels:
            chosen = r < len(selected) and selected[r]
            ax.text(left - 10, tops[r] + size / 2, labels[r], ha="right", va="center",
                    fontsize=8, color=_SELECTED if chosen else "black",
                    fontweight="bold" if chosen else "normal")
    return fig


def _share_text(share: float, heatmap) -> str:
    """A heat share for a title, "no heat" for an all-zero heatmap."""
    return f"{share:.3f}" if np.any(np.asarray(heatmap) > 0) else "no heat"


def _short(clip_id: str, length: int = 22) -> str:
    return clip_id if len(clip_id) <= length else "…" + clip_id[-(length - 1):]


def _file_name(layer: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", layer)
