"""`python -m tfmer.predict INPUT --model SAVED_MODEL_DIR`: an exported model on new video.

INPUT is a video file, a folder of frame images (one clip) or a folder of videos (one clip
each). Every clip goes through the converter's own code with the settings the model was
trained on, read from the export's `assets/tfmer.json` (`conversion`: face crop, margin,
alignment, size, TIM length, flow method and apex rule): a `data_prep.clip.ClipSource` is
converted by `data_prep.clip.convert_clip` into a `tfmer.records.ClipRecord`, which
`tfmer.export.score_records` scores with the readers of `evaluate.py --model` (frames,
flow, an appearance model's mask, an SVM baseline's handcrafted features). So a clip gets
the probabilities its conversion by `python -m data_prep` and `evaluate.py --model` give.

* Without `--onset`/`--offset` a clip is the whole input, its apex found by the trained
  apex rule (`middle` or `detect`); `--apex` gives it.
* `--spot` slides windows over a long input: `--window` frames (default: 0.5 s at the
  video's frame rate, the longest a micro-expression lasts; a frame folder, whose rate is
  unknown, the model's TIM length), every `--stride` frames (default: half a window); each
  window is converted and scored as a clip of its own, its first frame numbered and timed.
  It writes the windows' probabilities (`--out`) and a plot of them over time (PNG beside
  `--out`, or `<input>_spot.png` in the current folder).
* `--crop` replaces the face crop the model was trained with (a warning says so).

Prints JSON: `{"clip", "probabilities": {class: p}, "predicted"}` for one clip, a list of
them for a folder of videos or `--spot` (windows also carry `start_frame`, `end_frame`,
`start_s`, `end_s`); `--out FILE.csv|FILE.json` writes the same atomically. Input that
cannot be used ends with one line `error: ...` and exit status 2, nothing written.

A frames model trained on TIM clips is scored by its export's TFLite model (`tfmer.lite`,
the same endpoint, run by LiteRT without TensorFlow, which takes most of the time on a
CPU: BENCHMARKS.md); `--runtime tensorflow` scores with the SavedModel, as `evaluate.py
--model` does (the two agree to float rounding, about 1e-6).

The frames models of the motion-free experiments (exp1-3, TLCNN, C3D) and STRCN-A read no
flow: for them the conversion skips the onset -> apex flow (it changes no frame). The
clips are converted in spawned worker processes (the converter's `clip.convert_task`)
while this process loads TensorFlow and the model, which takes longer on a CPU.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import csv
import dataclasses
import io
import json
import multiprocessing
import os
import pathlib
import sys
import time

# TensorFlow-free at the top (`tfmer.cli`, the converter): it loads in `_predict`.
from data_prep import clip as conversion
from data_prep.clip import ClipSource, ConvertOptions
from data_prep.frames import IMAGE_SUFFIXES, VIDEO_SUFFIXES, ClipError, frame_files, open_frames
from tfmer import cli, lite
from tfmer.assets import load_metadata
from tfmer.files import write_json_atomic, write_text_atomic
from tfmer.records import UNKNOWN

SPOT_SECONDS = 0.5
"""`--spot`'s default window: the longest a micro-expression lasts (Yan et al. 2013)."""
RUNTIMES = ("auto", "lite", "tensorflow")
SUBJECT = "predict"
"""The subject and dataset name of an input clip (records need them; nothing reads them)."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0].strip("`"))
    parser.add_argument("input", help="a video file, a folder of frame images (one clip) or "
                                      "a folder of videos (one clip each)")
    parser.add_argument("--model", required=True,
                        help="an export folder (saved_models/EXP/N) with assets/tfmer.json")
    for name in ("onset", "apex", "offset"):
        parser.add_argument(f"--{name}", type=int, default=None, metavar="N",
                            help=f"the clip's {name} frame (a frame file's number, the 0-based "
                                 f"index in a video)")
    parser.add_argument("--out", help="also write the results to FILE.csv or FILE.json")
    parser.add_argument("--spot", action="store_true",
                        help="slide windows over a long input and score each (with a plot)")
    parser.add_argument("--window", type=int, metavar="N",
                        help=f"--spot: frames per window (default {SPOT_SECONDS} s at the "
                             f"video's frame rate; a frame folder: the TIM length)")
    parser.add_argument("--stride", type=int, metavar="N",
                        help="--spot: frames between window starts (default half a window)")
    parser.add_argument("--crop", choices=conversion.CROPS,
                        help="replace the trained face crop: detect (find the face on the "
                             "clip's first frame) or none (input already cropped to the face)")
    parser.add_argument("--runtime", choices=RUNTIMES, default="auto",
                        help="lite: the export's TFLite model, without TensorFlow; tensorflow: "
                             "the SavedModel; auto (default): lite where the export has one")
    parser.add_argument("--timings", action="store_true",
                        help="print the time of each stage to stderr")
    return parser


class Timings:
    """Wall time per stage, printed to stderr with `--timings`."""

    def __init__(self, enabled: bool):
        self.enabled, self.stages = enabled, []
        self._start = self._last = time.perf_counter()

    def lap(self, stage: str) -> None:
        """Closes `stage`: the time since the previous lap."""
        now = time.perf_counter()
        self.stages.append((stage, now - self._last))
        self._last = now

    def report(self) -> None:
        if self.enabled:
            for stage, seconds in self.stages:
                print(f"timing: {stage:<34} {seconds:6.2f} s", file=sys.stderr)
            print(f"timing: {'total':<34} {time.perf_counter() - self._start:6.2f} s",
                  file=sys.stderr)


def input_clips(path) -> list[pathlib.Path]:
    """The clips of INPUT: `[path]` for a video file, an image or a folder of frame images;
    the videos of a folder of videos, in name order.

    Raises:
        ValueError: the path does not exist, or is no video, image or folder of either.
    """
    path = pathlib.Path(path)
    if path.is_file():
        if path.suffix.lower() not in VIDEO_SUFFIXES | IMAGE_SUFFIXES:
            raise ValueError(f"{path} is neither a video ({', '.join(sorted(VIDEO_SUFFIXES))}) "
                             f"nor an image")
        return [path]
    if not path.is_dir():
        raise ValueError(f"input {path} does not exist")
    files = sorted(p for p in path.iterdir() if p.is_file())
    if any(p.suffix.lower() in IMAGE_SUFFIXES for p in files):
        return [path]
    videos = [p for p in files if p.suffix.lower() in VIDEO_SUFFIXES]
    if not videos:
        raise ValueError(f"folder {path} holds no frame images "
                         f"({', '.join(sorted(IMAGE_SUFFIXES))}) and no videos "
                         f"({', '.join(sorted(VIDEO_SUFFIXES))})")
    return videos


def conversion_options(metadata: dict, model_dir, crop: str | None = None) -> ConvertOptions:
    """The converter's settings an export was trained on (`assets/tfmer.json`
    `conversion`), for one clip at a time in this process; `crop` replaces the trained crop
    (alignment needs `detect`). A model that reads no flow gets `flow: none`.

    Raises:
        ValueError: the export records no conversion settings.
    """
    settings = metadata.get("conversion")
    if not settings:
        raise ValueError(f"{model_dir}/assets/tfmer.json records no conversion settings "
                         f"(`conversion`): export it with train.py, which records them")
    known = {field.name for field in dataclasses.fields(ConvertOptions)}
    options = ConvertOptions(**{k: v for k, v in settings.items() if k in known},
                             workers=1, progress=False)
    if crop is not None and crop != options.crop:
        print(f"warning: --crop {crop} replaces the crop the model was trained with "
              f"({options.crop}); its predictions may differ from its cross-validated figures",
              file=sys.stderr)
        options = dataclasses.replace(options, crop=crop, align=options.align and crop == "detect")
    if metadata["preprocessing"].get("input") in ("frames", "appearance"):
        options = dataclasses.replace(options, flow="none")
    return options


def spot_windows(path: pathlib.Path, options: ConvertOptions, window: int | None,
                 stride: int | None) -> tuple[list[tuple[int, int]], float]:
    """`--spot`'s windows over a clip: `([(first frame number, last frame number)], fps)`.

    The frames are counted by reading them (`data_prep.frames.open_frames`; a video's
    header count can be wrong). Windows that would run past the end are left out; a clip
    shorter than one window is one window.
    """
    if path.is_dir():
        numbers, fps = [number for number, _ in frame_files(path)], 0.0
    else:
        frames, fps = open_frames(path)
        numbers = [number for number, _ in frames]
    if window is None:
        window = round(SPOT_SECONDS * fps) if fps > 0 else options.num_frames or 2
    window = max(2, window)
    stride = stride or max(1, window // 2)
    if window >= len(numbers):
        return [(numbers[0], numbers[-1])], fps
    return ([(numbers[start], numbers[start + window - 1])
             for start in range(0, len(numbers) - window + 1, stride)], fps)


def _check_args(args, clips: list[pathlib.Path]) -> None:
    """Argument combinations that cannot work, before any work is done."""
    if args.out and pathlib.Path(args.out).suffix.lower() not in (".csv", ".json"):
        raise ValueError(f"--out {args.out}: give a .csv or .json file")
    given = {name: getattr(args, name) for name in ("onset", "apex", "offset")
             if getattr(args, name) is not None}
    for name, value in given.items():
        if value < 0:
            raise ValueError(f"--{name} {value}: frame numbers are >= 0")
    if given and (args.spot or clips != [pathlib.Path(args.input)]):
        raise ValueError("--onset/--apex/--offset cut one clip: give a video or a frame "
                         "folder, without --spot")
    onset, apex, offset = args.onset, args.apex, args.offset
    if onset is not None and offset is not None and onset > offset:
        raise ValueError(f"--onset {onset} is after --offset {offset}")
    if apex is not None and (onset is not None and apex < onset
                             or offset is not None and apex > offset):
        raise ValueError(f"--apex {apex} is outside --onset {onset} .. --offset {offset}")
    for name in ("window", "stride"):
        value = getattr(args, name)
        if value is not None and (not args.spot or value < 1):
            raise ValueError(f"--{name} {value}: a number >= 1, with --spot")


def choose_runtime(requested: str, metadata: dict, model_dir) -> str:
    """`lite` or `tensorflow`: what scores the clips for `--runtime requested`.

    Raises:
        ValueError: `lite` asked for, and the export has no TFLite model or LiteRT is
            not installed.
    """
    exported = bool(metadata.get("lite"))
    if requested == "lite" and not exported:
        raise ValueError(f"--runtime lite: {model_dir} has no TFLite model ({lite.LITE}; "
                         f"exported for frames models trained on TIM clips); use --runtime "
                         f"tensorflow")
    if requested == "lite" and not lite.available():
        raise ValueError("--runtime lite needs the LiteRT runtime: pip install ai-edge-litert")
    if requested == "tensorflow":
        return requested
    return "lite" if exported and lite.available() else "tensorflow"


def start_conversion(sources, classes, options: ConvertOptions, threads: bool = False):
    """Starts converting `[(name, source, extra)]` in spawned worker processes (one per
    core, at most one per clip), which run while this process loads TensorFlow:
    `(pool, futures)`. Spawned, not forked: this process is about to load TensorFlow.
    When it is loaded already (a caller of `main`), or with `threads` (one clip and
    nothing slow to load beside it: the TFLite runtime), one thread converts instead,
    without the processes' start-up."""
    if "tensorflow" in sys.modules or threads:
        pool = concurrent.futures.ThreadPoolExecutor(1)
    else:
        pool = concurrent.futures.ProcessPoolExecutor(
            min(len(sources), os.cpu_count() or 1),
            mp_context=multiprocessing.get_context("spawn"), initializer=conversion.init_worker)
    return pool, [pool.submit(conversion.convert_clip, source, SUBJECT, classes, options)
                  for _, source, _ in sources]


def converted(sources, futures, options: ConvertOptions) -> list:
    """The `tfmer.records.ClipRecord`s of `start_conversion`; the first `ClipError` becomes
    a ValueError naming the input (for a face not found, the frame and `--crop none`)."""
    records = []
    for (name, source, _), future in zip(sources, futures):
        try:
            records.append(future.result())
        except ClipError as error:
            message = f"{name}: {error}"
            if options.crop == "detect" and "no face found" in str(error):
                first = "its first" if source.onset == UNKNOWN else f"frame {source.onset}"
                message += (f" (the face is looked for on the clip's first frame, {first}); "
                            f"for input already cropped to the face, pass --crop none")
            raise ValueError(message) from None
    return records


def _result(name: str, probabilities, classes) -> dict:
    values = [float(p) for p in probabilities]
    return {"clip": name, "probabilities": dict(zip(classes, values)),
            "predicted": classes[max(range(len(values)), key=values.__getitem__)]}


def _csv(results: list[dict], classes) -> str:
    extra = [k for k in ("start_frame", "end_frame", "start_s", "end_s") if k in results[0]]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["clip", *extra, "predicted", *(f"p_{c}" for c in classes)])
    for row in results:
        writer.writerow([row["clip"], *(row[k] for k in extra), row["predicted"],
                         *(row["probabilities"][c] for c in classes)])
    return buffer.getvalue()


def plot_spot(results: list[dict], classes, path, title: str) -> str:
    """Each class's probability over the `--spot` windows (at their middle frame's time,
    or frame number when the frame rate is unknown), written as a PNG."""
    from matplotlib.figure import Figure

    from tfmer import plots

    timed = results[0]["start_s"] is not None
    x = [(r["start_s"] + r["end_s"]) / 2 if timed else (r["start_frame"] + r["end_frame"]) / 2
         for r in results]
    fig = Figure(figsize=(8, 3.5))
    ax = fig.add_subplot()
    for name in classes:
        ax.plot(x, [r["probabilities"][name] for r in results], marker=".", label=name)
    ax.set_xlabel("time (s), window middle" if timed else "frame, window middle")
    ax.set_ylabel("probability")
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.legend(loc="upper right", fontsize="small")
    fig.tight_layout()
    return plots.save_png(fig, path)


def _sources(args, clips, classes, options) -> list[tuple[str, ClipSource, dict]]:
    """`(name, source, extra output fields)` of every clip (every window with `--spot`)."""
    label = classes[0]  # a placeholder: convert_clip labels records, predict reads no label
    if not args.spot:
        def source(path):
            return ClipSource(path.name, SUBJECT, "", path, label=label,
                              onset=UNKNOWN if args.onset is None else args.onset,
                              apex=UNKNOWN if args.apex is None else args.apex,
                              offset=UNKNOWN if args.offset is None else args.offset)
        return [(path.name, source(path), {}) for path in clips]
    found = []
    for path in clips:
        try:
            windows, fps = spot_windows(path, options, args.window, args.stride)
        except ClipError as error:
            raise ValueError(f"{path.name}: {error}") from None
        for first, last in windows:
            timing = {"start_frame": first, "end_frame": last,
                      "start_s": round(first / fps, 4) if fps > 0 else None,
                      "end_s": round(last / fps, 4) if fps > 0 else None}
            found.append((f"{path.name}@{first}-{last}",
                          ClipSource(f"{path.name}@{first}-{last}", SUBJECT, "", path,
                                     label=label, onset=first, offset=last), timing))
    return found


def _predict(args) -> int:
    timings = Timings(args.timings)
    clips = input_clips(args.input)
    _check_args(args, clips)
    metadata = load_metadata(args.model)
    classes = metadata["classes"]
    options = conversion_options(metadata, args.model, args.crop)
    sources = _sources(args, clips, classes, options)
    runtime = choose_runtime(args.runtime, metadata, args.model)
    pool, futures = start_conversion(sources, classes, options,
                                     threads=runtime == "lite" and len(sources) == 1)
    try:
        timings.lap("list the input, start the converters")
        if runtime == "lite":
            model = lite.LiteModel(args.model, metadata)
            timings.lap("load the TFLite model")
        else:
            cli.import_tensorflow()
            from tfmer import export

            timings.lap("import TensorFlow and tfmer")
            svm = metadata["preprocessing"].get("input") == "features"
            serve = None if svm else export.load_serving(args.model)
            timings.lap("load the model")
        records = converted(sources, futures, options)
        timings.lap(f"wait for the conversion of {len(records)} clip(s)")
    finally:
        pool.shutdown(cancel_futures=True)
    if runtime == "lite":
        probabilities = [model.probabilities(record) for record in records]
    else:
        probabilities = [row["probabilities"] for row in export.score_records(
            args.model, records, serve=serve, workers=1 if len(records) < 4 else None,
            log=lambda line: print(line, file=sys.stderr))]
    timings.lap(f"score ({runtime}: decode, model call)")
    results = [{**_result(name, p, classes), **extra}
               for (name, _, extra), p in zip(sources, probabilities)]
    one_clip = not args.spot and clips == [pathlib.Path(args.input)]
    shown = results[0] if one_clip else results
    if args.out:
        out = pathlib.Path(args.out)
        if out.suffix.lower() == ".csv":
            write_text_atomic(out, _csv(results, classes))
        else:
            write_json_atomic(out, shown)
    if args.spot:
        plot = (pathlib.Path(args.out).with_suffix(".png") if args.out
                else pathlib.Path(f"{pathlib.Path(args.input).stem}_spot.png"))
        plot_spot(results, classes, plot, f"{metadata['experiment']} on "
                                          f"{pathlib.Path(args.input).name}")
        print(f"wrote {plot}", file=sys.stderr)
    print(json.dumps(shown, indent=2))
    timings.lap("write")
    timings.report()
    return 0


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    return cli.run(_predict, args)


if __name__ == "__main__":
    status = main()
    # Everything is written; skip the interpreter's teardown of TensorFlow and the loaded
    # model, over a second on a CPU (BENCHMARKS.md, benchmarks/predict_speed.py).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
