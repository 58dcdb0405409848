"""Reading a clip's frames from a folder of images or a video file."""

from __future__ import annotations

import pathlib
import re

import cv2
import numpy as np

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".pgm", ".ppm"}
VIDEO_SUFFIXES = {".avi", ".mp4", ".mov", ".mkv", ".mpg", ".mpeg", ".wmv", ".m4v"}
_LAST_NUMBER = re.compile(r"(\d+)(?!.*\d)")


class ClipError(Exception):
    """A clip that cannot be converted; the message says why and names the file or value."""


def frame_files(folder: pathlib.Path) -> list[tuple[int, pathlib.Path]]:
    """Lists a frame folder as `(frame_number, path)` in temporal order.

    The frame number is the last number in the file name (`img46.jpg` -> 46,
    `reg_img46.jpg` -> 46, `006_05562.jpg` -> 5562). When some name has no number, or two
    names share one, frames are numbered 0, 1, ... in natural name order instead.

    Raises:
        ClipError: the folder does not exist or holds no image files.
    """
    if not folder.is_dir():
        raise ClipError(f"frame folder {folder} does not exist")
    files = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES]
    if not files:
        raise ClipError(f"frame folder {folder} holds no image files "
                        f"({', '.join(sorted(IMAGE_SUFFIXES))})")
    numbers = [_LAST_NUMBER.search(p.stem) for p in files]
    if all(numbers) and len({int(m.group(1)) for m in numbers}) == len(files):
        return sorted((int(m.group(1)), p) for m, p in zip(numbers, files))
    natural = sorted(files, key=lambda p: [int(t) if t.isdigit() else t
                                           for t in re.split(r"(\d+)", p.name)])
    return list(enumerate(natural))


def read_image(path: pathlib.Path) -> np.ndarray:
    """Reads one frame as RGB uint8 `[H, W, 3]` (grey images are replicated to 3 channels)."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ClipError(f"cannot read frame {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def open_frames(path: pathlib.Path, first: int | None = None, last: int | None = None):
    """Opens the frames numbered `first..last` (inclusive) of a clip for reading one by one.

    What can be checked before reading (the folder listing, `first` and `last` being in
    it, a video opening) is checked here; a frame that turns out unreadable raises while
    iterating. Only one frame is in memory at a time.

    Args:
        path: a folder of frame images, a video file, or a single image (a one-frame clip).
        first, last: frame numbers (see `frame_files`; 0-based frame index for videos);
            None reads from the first or up to the last frame. Ignored for a single image.

    Returns:
        `(frames, fps)`: an iterator of `(frame number, RGB uint8 [H, W, 3] frame)` in
        temporal order (the number as in `frame_files`, the 0-based index in a video, 0 for
        a single image) and the video's frame rate (0.0 for folders and images).

    Raises:
        ClipError: missing path, `first`/`last` not in the clip, a video that cannot be opened.
    """
    if path.is_dir():
        listing = frame_files(path)
        numbers = [n for n, _ in listing]
        for name, value in (("onset", first), ("offset", last)):
            if value is not None and value not in numbers:
                raise ClipError(f"{name} frame {value} is not in {path} "
                                f"(frames {numbers[0]}..{numbers[-1]})")
        chosen = [(n, p) for n, p in listing
                  if (first is None or n >= first) and (last is None or n <= last)]
        return ((n, read_image(p)) for n, p in chosen), 0.0
    if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
        return iter([(0, read_image(path))]), 0.0
    if path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES:
        capture = cv2.VideoCapture(str(path))
        if not capture.isOpened():
            raise ClipError(f"cannot open video {path}")
        return _video_frames(capture, path, first, last), float(capture.get(cv2.CAP_PROP_FPS) or 0)
    if not path.exists():
        raise ClipError(f"{path} does not exist")
    raise ClipError(f"{path} is neither a frame folder, a video file "
                    f"({', '.join(sorted(VIDEO_SUFFIXES))}) nor an image")


def _video_frames(capture, path: pathlib.Path, first, last):
    index, read = 0, 0
    try:
        while last is None or index <= last:
            ok, image = capture.read()
            if not ok:
                break
            if first is None or index >= first:
                read += 1
                yield index, cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
            index += 1
    finally:
        capture.release()
    if not read:
        raise ClipError(f"video {path} has no readable frames"
                        + (f" from frame {first}" if first is not None else ""))
    if last is not None and index <= last:
        raise ClipError(f"offset frame {last} is past the end of video {path} "
                        f"({index} frames)")
