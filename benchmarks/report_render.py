"""A run's `report.html` rendered in headless Chromium: the time it takes and a screenshot.

Writes the report of RUN_DIR again (`tfmer.html_report.write_report`, timed), then has
Chromium (`--headless`, no network, a throw-away profile) load it from its file and
(1) dump the DOM it built, (2) take a screenshot of the window. Prints the page's size, the
number of `<img>` elements Chromium parsed, the render times, and checks on the screenshot
that the page drew and its images loaded without any script: the screenshot is not blank
(share of non-white pixels), has the window's size, and holds enough saturated colour (the
plots: a page whose images failed to load is grey text on white, the broken-image icons
tiny).

    python benchmarks/report_render.py RUN_DIR [--out report.png] [--width 1280]
        [--height 4000] [--chromium /usr/bin/chromium]

Exit status 1 when a check fails. `tests/test_html_report.py` (marked slow) calls
`screenshot` and `check_screenshot`.
"""

from __future__ import annotations

import argparse
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import time

import matplotlib.image
import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tfmer import html_report  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--disable-extensions", "--mute-audio")
MIN_INK = 0.02
"""The least share of non-white pixels of a page that drew."""
MIN_COLOUR = 0.01
"""The least share of saturated pixels (the plots') of a page whose images loaded."""


def find_chromium(path: str | None = None) -> str | None:
    """`path`, else /usr/bin/chromium, else a chromium on PATH; None when there is none."""
    for candidate in (path, CHROMIUM, shutil.which("chromium"),
                      shutil.which("chromium-browser")):
        if candidate and pathlib.Path(candidate).is_file():
            return candidate
    return None


def _chromium(chromium: str, profile: pathlib.Path, *args, timeout: float = 120.0):
    command = [chromium, *FLAGS, f"--user-data-dir={profile}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                          check=False)


def dump_dom(html_path, chromium: str = CHROMIUM) -> str:
    """The DOM Chromium builds from `html_path` (`--dump-dom`), serialised."""
    with tempfile.TemporaryDirectory(prefix="tfmer-chromium-") as profile:
        done = _chromium(chromium, pathlib.Path(profile), "--dump-dom",
                         pathlib.Path(html_path).resolve().as_uri())
    if done.returncode != 0 or "<html" not in done.stdout:
        raise RuntimeError(f"chromium --dump-dom failed (status {done.returncode}): "
                           f"{done.stderr.strip()[-500:]}")
    return done.stdout


def screenshot(html_path, png_path, *, width: int = 1280, height: int = 4000,
               chromium: str = CHROMIUM) -> pathlib.Path:
    """A `width` x `height` screenshot of `html_path` in headless Chromium, to `png_path`.

    Raises:
        RuntimeError: Chromium failed or wrote no PNG (with the end of its stderr).
    """
    png_path = pathlib.Path(png_path).resolve()
    png_path.parent.mkdir(parents=True, exist_ok=True)
    if png_path.exists():
        png_path.unlink()
    with tempfile.TemporaryDirectory(prefix="tfmer-chromium-") as profile:
        done = _chromium(chromium, pathlib.Path(profile), f"--screenshot={png_path}",
                         f"--window-size={width},{height}",
                         pathlib.Path(html_path).resolve().as_uri())
    if not png_path.is_file():
        raise RuntimeError(f"chromium wrote no screenshot (status {done.returncode}): "
                           f"{done.stderr.strip()[-500:]}")
    return png_path


def check_screenshot(png_path, width: int, height: int) -> dict:
    """Figures of a screenshot and whether it shows a page that drew with its images.

    Returns:
        `{"width", "height", "ink": share of non-white pixels, "colour": share of saturated
        pixels, "colours": distinct colours (6 bits a channel), "content_height": rows down
        to the last non-white one, "failures": [reasons]}` (no failure: it passed).
    """
    image = matplotlib.image.imread(png_path)[..., :3]
    if image.dtype != np.float32:
        image = image.astype(np.float32) / 255.0
    rows, columns = image.shape[:2]
    ink = image.min(axis=2) < 0.94
    saturation = image.max(axis=2) - image.min(axis=2)
    quantised = (image * 63).astype(np.int32)
    colours = len(np.unique(quantised[..., 0] * 4096 + quantised[..., 1] * 64
                            + quantised[..., 2]))
    inked_rows = np.flatnonzero(ink.any(axis=1))
    found = {"width": columns, "height": rows, "ink": float(ink.mean()),
             "colour": float((saturation > 0.25).mean()), "colours": colours,
             "content_height": int(inked_rows[-1] + 1) if inked_rows.size else 0}
    failures = []
    if (columns, rows) != (width, height):
        failures.append(f"screenshot is {columns}x{rows}, not the window's {width}x{height}")
    if found["ink"] < MIN_INK:
        failures.append(f"blank: {100 * found['ink']:.2f} % of pixels not white")
    if found["colour"] < MIN_COLOUR:
        failures.append(f"no plots drawn: {100 * found['colour']:.2f} % saturated pixels "
                        f"(< {100 * MIN_COLOUR:.0f} %)")
    if colours < 64:
        failures.append(f"only {colours} distinct colours")
    return {**found, "failures": failures}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_dir", help="a finished run folder")
    parser.add_argument("--out", default="report.png", help="the screenshot (PNG)")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=4000)
    parser.add_argument("--chromium", help=f"the browser (default {CHROMIUM})")
    args = parser.parse_args(argv)
    chromium = find_chromium(args.chromium)
    if chromium is None:
        print("error: no chromium found (apt-get install -y chromium)", file=sys.stderr)
        return 2

    started = time.perf_counter()
    path = html_report.write_report(args.run_dir)
    written = time.perf_counter() - started
    source = path.read_text(encoding="utf-8")
    started = time.perf_counter()
    dom = dump_dom(path, chromium)
    dom_seconds = time.perf_counter() - started
    started = time.perf_counter()
    png = screenshot(path, args.out, width=args.width, height=args.height, chromium=chromium)
    shot_seconds = time.perf_counter() - started
    found = check_screenshot(png, args.width, args.height)

    images = len(re.findall(r"<img\b", source))
    parsed = len(re.findall(r"<img\b", dom))
    external = re.findall(r"""(?:src|href)=["']?(?:https?:)?//""", source)
    print(f"{path}: {len(source) / 1024:.0f} KiB, {images} embedded images, written in "
          f"{written:.2f} s")
    print(f"chromium --dump-dom: {parsed} <img> parsed, {dom_seconds:.1f} s; --screenshot "
          f"{args.width}x{args.height}: {shot_seconds:.1f} s -> {png}")
    print(f"screenshot: {found['width']}x{found['height']}, content down to row "
          f"{found['content_height']}, {100 * found['ink']:.1f} % ink, "
          f"{100 * found['colour']:.1f} % saturated, {found['colours']} colours")
    failures = list(found["failures"])
    if parsed != images:
        failures.append(f"chromium parsed {parsed} <img>, the page has {images}")
    if external:
        failures.append(f"external references: {external[:3]}")
    for failure in failures:
        print(f"FAIL: {failure}")
    print("ok" if not failures else f"{len(failures)} check(s) failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
