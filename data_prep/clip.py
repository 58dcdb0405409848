"""One clip from its source to encoded frames: the work of a converter worker process.

`convert_clip` reads the frames onset..offset (inclusive) one at a time, crops the face
found on the first frame (`--crop detect`) or resizes the frames as they are, computes the
onset -> apex optical flow and strain on those frames (`--flow`, `data_prep.flow`),
interpolates to a fixed length with TIM and encodes the frames. This module imports no
TensorFlow, so worker processes start in a second and hold little memory;
`data_prep.convert` writes the shards.
"""

from __future__ import annotations

import dataclasses
import pathlib

import cv2
import numpy as np

from data_prep import face, flow, tim
from data_prep.frames import VIDEO_SUFFIXES, ClipError, open_frames
from tfmer.records import NUM_LANDMARKS, UNKNOWN, ClipRecord, Motion

ENCODINGS = ("png", "jpeg")
CROPS = ("detect", "none")


@dataclasses.dataclass(frozen=True)
class ClipSource:
    """Where one clip comes from and what it is labelled, before conversion.

    Attributes:
        clip_id: unique within the dataset, e.g. `sub01/EP02_01f`.
        subject: the subject id as the database writes it (zero-padded text, `sub01`, `006`);
            records namespace it as `<database>/<subject>`.
        emotion: the canonical source emotion (`data_prep.classes.EMOTIONS`; free text for
            a manifest).
        path: a frame folder, a video file or a single image file (a one-frame clip).
        onset, apex, offset: source frame numbers (`UNKNOWN` when not coded); frames
            onset..offset are converted.
        fps: the recording's frame rate (0.0 when unknown; read from videos).
        landmarks: a text file of the first frame's 68 landmarks (manifest only).
        label: the class, set by `data_prep.classes.assign`.
        database: the clip's own database when it differs from the dataset name (the
            MEGC 2019 composite); records use it for `clip/dataset` and the subject namespace.
        pixels: the frames themselves, uint8 `[T, H, W]` or `[T, H, W, 3]`, for sources that
            hold images in a table (FER2013); `path` then names the table.
    """

    clip_id: str
    subject: str
    emotion: str
    path: pathlib.Path
    onset: int = UNKNOWN
    apex: int = UNKNOWN
    offset: int = UNKNOWN
    fps: float = 0.0
    landmarks: pathlib.Path | None = None
    label: str = ""
    database: str = ""
    pixels: np.ndarray | None = dataclasses.field(default=None, compare=False, repr=False)


def read_landmarks(path: pathlib.Path) -> np.ndarray:
    """Reads a landmarks file: 68 lines `x y` -> float32 `[68, 2]`."""
    try:
        points = np.loadtxt(path, dtype=np.float32, ndmin=2)
    except ValueError as error:
        raise ClipError(f"landmarks file {path}: {error}") from None
    if points.shape != (NUM_LANDMARKS, 2):
        raise ClipError(f"landmarks file {path} holds {points.shape[0]} x {points.shape[1]} "
                        f"values, expected {NUM_LANDMARKS} lines of 'x y'")
    return points


@dataclasses.dataclass(frozen=True)
class ConvertOptions:
    """How clips are converted.

    Attributes:
        num_frames: TIM output length (TLCNN uses 32 or 64); 0 keeps every frame. One-frame
            clips (still images) are kept as one frame.
        size: frames are resized to `size` x `size` pixels.
        encoding: `png` (lossless, the default: micro-movements are a pixel or two) or `jpeg`.
        jpeg_quality: quality for `jpeg`.
        crop: `detect` (find the face and its 68 landmarks on the first frame, crop every
            frame to the landmarks' box plus `margin`), `none` (frames are already faces;
            landmarks are still looked for on the first frame and stored when found), or
            None (the reader's default for its release).
        align: with `detect`, rotate so the eyes are level.
        margin: with `detect`, the margin around the landmarks (`data_prep.face.MARGIN`).
        flow: the onset -> apex optical flow stored with each clip, one of
            `data_prep.flow.METHODS` (`tvl1`, the flow the motion methods use), or `none`.
        apex: for clips whose release codes no apex, how to find it:
            `data_prep.flow.APEX_RULES` (`middle` or `detect`).
        clips_per_shard: clips per TFRecord shard.
        workers: parallel processes (default: the number of CPUs, at most the clip count).
        progress: show a progress bar.
    """

    num_frames: int = 32
    size: int = 224
    encoding: str = "png"
    jpeg_quality: int = 95
    crop: str | None = "none"
    align: bool = False
    margin: float = face.MARGIN
    flow: str = "tvl1"
    apex: str = "middle"
    clips_per_shard: int = 32
    workers: int | None = None
    progress: bool = True

    def __post_init__(self):
        if self.num_frames < 0 or self.num_frames == 1:
            raise ValueError(f"--tim must be 0 (keep all frames) or >= 2, got {self.num_frames}")
        if self.size < 8:
            raise ValueError(f"--size must be at least 8 pixels, got {self.size}")
        if self.encoding not in ENCODINGS:
            raise ValueError(f"encoding {self.encoding!r} is not one of {', '.join(ENCODINGS)}")
        if self.crop not in CROPS + (None,):
            raise ValueError(f"--crop {self.crop!r} is not one of {', '.join(CROPS)}")
        if self.align and self.crop == "none":
            raise ValueError("--align needs --crop detect (it rotates the detected face)")
        if not 0 <= self.margin <= 1:
            raise ValueError(f"--margin must be in 0..1 (a fraction of the face), "
                             f"got {self.margin}")
        if self.clips_per_shard < 1:
            raise ValueError(f"clips per shard must be >= 1, got {self.clips_per_shard}")
        if self.flow not in flow.METHODS + ("none",):
            raise ValueError(f"--flow {self.flow!r} is not one of "
                             f"{', '.join(flow.METHODS + ('none',))}")
        if self.apex not in flow.APEX_RULES:
            raise ValueError(f"--apex {self.apex!r} is not one of {', '.join(flow.APEX_RULES)}")

    def settings(self) -> dict:
        """The settings that change the output bytes (not workers or progress)."""
        return {k: v for k, v in dataclasses.asdict(self).items()
                if k not in ("workers", "progress")}



def convert_clip(source: ClipSource, dataset: str, classes, options: ConvertOptions):
    """Converts one clip, holding one source frame at a time.

    Returns:
        A `tfmer.records.ClipRecord`.

    Raises:
        ClipError: the clip cannot be converted; the message names it and says why.
    """
    if source.label not in classes:
        raise ClipError(f"label {source.label!r} is not in the class scheme "
                        f"({', '.join(classes)})")
    frames, video_fps = _open(source)
    number, first = next(frames, (None, None))
    if first is None:
        raise ClipError(f"{source.path} has no frames")
    prepare, landmarks = _framing(first, source, options)
    stored, numbers = [prepare(first)], [number]
    for number, frame in frames:
        if frame.shape != first.shape:
            raise ClipError(f"frames of {source.path} differ in size: {first.shape[:2]} "
                            f"and {frame.shape[:2]} (frame {len(stored)})")
        stored.append(prepare(frame))
        numbers.append(number)
    still = source.pixels is not None or source.path.is_file() and not _is_video(source.path)
    if len(stored) < 2 and not still:
        frames_range = f"{source.onset}..{source.offset}" if source.onset != UNKNOWN else "all"
        raise ClipError(f"{source.path} has {len(stored)} frame(s) in {frames_range}; "
                        f"at least 2 are needed")
    motion = None
    if options.flow != "none" and not still:
        motion = _motion(stored, numbers, source, options)
    if options.num_frames and len(stored) > 1:
        stored = np.clip(np.rint(tim.interpolate(np.stack(stored), options.num_frames)), 0, 255)
        stored = stored.astype(np.uint8)
    database = source.database or dataset
    return ClipRecord(
        clip_id=source.clip_id, dataset=database, subject=f"{database}/{source.subject}",
        label=classes.index(source.label), label_name=source.label,
        source_emotion=source.emotion,
        frames=tuple(_encode(f, options) for f in stored),
        height=options.size, width=options.size, channels=3,
        onset=source.onset, apex=source.apex, offset=source.offset,
        fps=source.fps or video_fps, landmarks=landmarks, motion=motion)


def _motion(stored, numbers, source: ClipSource, options: ConvertOptions) -> Motion:
    """The onset -> apex flow and strain of the clip's prepared frames (before TIM)."""
    try:
        index, apex_source = flow.apex_index(stored, numbers, source.apex, options.apex)
    except ClipError as error:
        raise ClipError(f"{source.path}: {error}") from None
    return Motion(uvs=flow.motion(stored[0], stored[index], options.flow),
                  method=options.flow, source_from=numbers[0], source_to=numbers[index],
                  apex_source=apex_source)


def _open(source: ClipSource):
    """`(iterator of (frame number, RGB uint8 frame), fps)` of a clip source."""
    if source.pixels is None:
        first = None if source.onset == UNKNOWN else source.onset
        last = None if source.offset == UNKNOWN else source.offset
        return open_frames(source.path, first, last)
    pixels = source.pixels if source.pixels.ndim == 4 else source.pixels[..., None]
    return enumerate(np.repeat(p, 3 // p.shape[-1], axis=-1) for p in pixels), 0.0


def _is_video(path: pathlib.Path) -> bool:
    return path.suffix.lower() in VIDEO_SUFFIXES


def _framing(first: np.ndarray, source: ClipSource, options: ConvertOptions):
    """How every frame of a clip is cut and resized, from its first frame.

    Returns:
        `(prepare, landmarks)`: a function RGB `[H, W, 3]` -> `[size, size, 3]`, and the
        first frame's 68 landmarks in output coordinates (None when not known).
    """
    size = options.size
    given = read_landmarks(source.landmarks) if source.landmarks is not None else None
    if options.crop == "detect":
        try:
            points = face.locate(first) if given is None else given
            box = face.face_crop(points, margin=options.margin, align=options.align)
        except ClipError as error:
            raise ClipError(f"first frame of {source.path}: {error}") from None
        return (lambda frame: box.apply(frame, size)), box.points(points, size)
    height, width = first.shape[:2]
    scale = np.array([size / width, size / height], np.float32)
    landmarks = given * scale if given is not None else _maybe_landmarks(first, scale)
    return (lambda frame: _resize(frame, size)), landmarks


def _maybe_landmarks(first: np.ndarray, scale: np.ndarray):
    """The landmarks of an already cropped face, when a face is found (else None)."""
    try:
        return face.locate(first) * scale
    except ClipError:
        return None


def _resize(frame: np.ndarray, size: int) -> np.ndarray:
    shrink = frame.shape[0] > size or frame.shape[1] > size
    return cv2.resize(frame, (size, size),
                      interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def _encode(frame: np.ndarray, options: ConvertOptions) -> bytes:
    bgr = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
    if options.encoding == "png":  # level 1: half the time of 6 for 2 % larger files
        ok, data = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    else:
        ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, options.jpeg_quality])
    if not ok:
        raise ClipError(f"cannot encode a frame as {options.encoding}")
    return data.tobytes()


def init_worker() -> None:
    """One OpenCV thread per worker process: the processes already fill the cores."""
    cv2.setNumThreads(1)


def convert_task(task):
    """Worker: `(source, dataset, classes, options)` -> `(source, ClipRecord or None, reason)`."""
    source, dataset, classes, options = task
    try:
        return source, convert_clip(source, dataset, classes, options), ""
    except ClipError as error:
        return source, None, str(error)
    except Exception as error:  # noqa: BLE001 - one broken clip must not sink the rest
        return source, None, f"{type(error).__name__}: {error}"
