"""Fixture builders: tiny copies of SMIC and the still-image expression sets, in the folder
and file layouts their publishers ship, each returning what it wrote.

Every image is a flat grey square whose value encodes the clip (`Clip.value`) and, in a
SMIC clip, the frame (`value + frame index`), so a converted record can be traced back.
`write_smic(..., face=True)` writes instead frames of a real face (`tests/face_frames.py`),
its emotion changing a facial region from the first frame to the middle one and back.
"""

from __future__ import annotations

import dataclasses
import pathlib

import cv2
import numpy as np

from tests import face_frames

SIZE = 16
"""Side of every fixture image (pixels)."""


@dataclasses.dataclass(frozen=True)
class Clip:
    """A clip a builder wrote, as a reader should report it.

    Attributes:
        clip_id: the id the reader gives it.
        subject: the subject id (not namespaced).
        emotion: the canonical emotion.
        num_frames: frames written.
        value: grey value of the first frame (frame t is `value + t`); FER2013: pixel 0, 0.
        path: the clip folder or image file (the CSV for FER2013).
        pixels: FER2013 only: uint8 `[48, 48]`, the row's image.
    """

    clip_id: str
    subject: str
    emotion: str
    num_frames: int
    value: int
    path: pathlib.Path
    pixels: np.ndarray | None = dataclasses.field(default=None, compare=False, repr=False)


@dataclasses.dataclass(frozen=True)
class Written:
    """What a builder wrote: `root` to read, the usable `clips`, and `broken`: clip id (as
    the reader reports it) -> a word its error reason must contain."""

    root: pathlib.Path
    clips: list
    broken: dict = dataclasses.field(default_factory=dict)


def write_image(path: pathlib.Path, value: int, size: int = SIZE) -> None:
    """Writes a flat grey `size` x `size` image of `value` (format from the suffix)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), np.full((size, size, 3), value, np.uint8)):
        raise OSError(f"cannot write {path}")


# ----------------------------------------------------------------------------------- SMIC

SMIC_CLIPS = (
    # (subject, folder under micro/ or "non_micro", clip folder, frames)
    ("s1", "negative", "s1_ne_01", 3),
    ("s1", "positive", "s1_po_01", 4),
    ("s1", "non_micro", "s1_no_01", 2),
    ("s2", "surprise", "s2_sur_01", 3),
    ("s2", "negative", "s2_ne_02", 2),
)
SMIC_EMOTIONS = {"negative": "negative", "positive": "positive", "surprise": "surprise",
                 "non_micro": "non-micro"}
SMIC_BROKEN = ("unknown_emotion", "empty_clip", "one_frame", "clip_outside_emotion")


def write_smic(root: pathlib.Path, parts=("HS", "VIS"), clips=SMIC_CLIPS, *,
               nesting=("SMIC", "SMIC"), broken=(), first_frame: int = 101,
               face: bool = False) -> dict:
    """Writes a SMIC release: `root/<nesting...>/<part>/<subject>/micro/<emotion>/<clip>/`.

    Args:
        root: where the archive "unpacks".
        parts: the part folders to write (each gets the same clips).
        clips: `(subject, emotion folder, clip folder, frames)`; emotion folder `non_micro`
            puts the clip in `<subject>/non_micro/`.
        nesting: folders between `root` and the parts (`("SMIC", "SMIC")`: a doubled unzip).
        broken: any of `SMIC_BROKEN`, written into subject `s9` of every part: a clip in an
            emotion folder SMIC does not use, an empty clip folder, a one-frame clip, a clip
            folder directly under the subject.
        first_frame: number of the first frame file (`image000101.bmp`).
        face: write the clips' frames as a real face (160x192; the module docstring), the
            emotion's region (`face_frames.region_of`) changed from nothing at the first
            frame to full at the middle one (SMIC's `--apex middle`) and back at the last;
            each clip shifted and brightened a little (`face_frames.variant_of` of
            `part/clip`). `Clip.value` then means nothing; the broken cases stay flat.

    Returns:
        `{part: Written}` with `root` the given root; clip values differ across parts (up
        to 20 clips in all).
    """
    written, count = {}, 0
    for part in parts:
        folder = root.joinpath(*nesting, part)
        expected = []
        for subject, emotion, name, num_frames in clips:
            clip = _smic_folder(folder, subject, emotion) / name
            value, count = 20 + (10 * count) % 200, count + 1
            for t in range(num_frames):
                path = clip / f"image{first_frame + t:06d}.bmp"
                if face:
                    _write_face(path, emotion, t, num_frames, f"{part}/{name}")
                else:
                    write_image(path, value + t)
            expected.append(Clip(f"{subject}/{name}", subject, SMIC_EMOTIONS[emotion],
                                 num_frames, value, clip))
        written[part] = Written(root, expected, _write_smic_broken(folder, broken))
    return written


def _write_face(path: pathlib.Path, emotion: str, t: int, num_frames: int, key: str) -> None:
    """Frame `t` of a SMIC clip with `face=True` (`write_smic`)."""
    strength = face_frames.intensity(t, 0, (num_frames - 1) // 2, num_frames - 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    image = face_frames.frame(emotion, strength, face_frames.variant_of(key))
    if not cv2.imwrite(str(path), image):
        raise OSError(f"cannot write {path}")


def _smic_folder(part: pathlib.Path, subject: str, emotion: str) -> pathlib.Path:
    if emotion == "non_micro":
        return part / subject / "non_micro"
    return part / subject / "micro" / emotion


def _write_smic_broken(part: pathlib.Path, broken) -> dict:
    unknown = [b for b in broken if b not in SMIC_BROKEN]
    if unknown:
        raise ValueError(f"unknown broken SMIC case(s) {unknown}; known: {SMIC_BROKEN}")
    expected = {}
    if "unknown_emotion" in broken:
        write_image(part / "s9/micro/happiness/s9_ha_01/image000001.bmp", 9)
        write_image(part / "s9/micro/happiness/s9_ha_01/image000002.bmp", 9)
        expected["s9/micro/happiness"] = "happiness"
    if "empty_clip" in broken:
        (part / "s9/micro/negative/s9_ne_01").mkdir(parents=True)
        expected["s9/s9_ne_01"] = "no image files"
    if "one_frame" in broken:
        write_image(part / "s9/micro/surprise/s9_sur_01/image000001.bmp", 9)
        expected["s9/s9_sur_01"] = "1 frame"
    if "clip_outside_emotion" in broken:
        write_image(part / "s9/micro/s9_po_01/image000001.bmp", 9)
        write_image(part / "s9/micro/s9_po_01/image000002.bmp", 9)
        expected["s9/micro/s9_po_01"] = "outside an emotion folder"
    return expected


# ------------------------------------------------------------------------ expression sets

KDEF_FILES = (
    # (person folder, file, subject, emotion)
    ("AF01", "AF01ANS.JPG", "F01", "anger"),
    ("AF01", "AF01HAS.JPG", "F01", "happiness"),
    ("BF01", "BF01SUHL.JPG", "F01", "surprise"),
    ("AM02", "AM02AFS.JPG", "M02", "fear"),
    ("AM02", "AM02NEFR.JPG", "M02", "neutral"),
)
RAFD_FILES = (
    ("Rafd090_01_Caucasian_female_angry_frontal.jpg", "01", "anger"),
    ("Rafd090_01_Caucasian_female_contemptuous_left.jpg", "01", "contempt"),
    ("Rafd045_02_Moroccan_male_surprised_right.jpg", "02", "surprise"),
    ("Rafd180_02_Moroccan_male_disgusted_frontal.jpg", "02", "disgust"),
)
FOLDER_FILES = (
    ("angry", "0001.png", "anger"),
    ("happy", "0002.png", "happiness"),
    ("Surprise", "0003.png", "surprise"),
    ("sad", "0004.png", "sadness"),
)
EXPRESSION_BROKEN = ("unmatched_image", "unknown_emotion_folder", "unknown_kdef_code",
                     "disagreeing_folder")


def write_expression(root: pathlib.Path, layouts=("kdef", "rafd", "folders"), *,
                     broken=()) -> Written:
    """Writes still-image expression sets side by side under `root`.

    Args:
        root: the folder to read.
        layouts: any of `kdef` (`KDEF/AF01/AF01ANS.JPG`), `rafd` (`RaFD/Rafd090_...jpg`) and
            `folders` (`folders/<emotion>/<n>.png`).
        broken: any of `EXPRESSION_BROKEN`: `random.jpg` at the root, an image in a folder
            `bored/`, a KDEF name with emotion code XX, a KDEF happy image in an `angry/`
            folder.

    Returns:
        `Written`: one one-frame `Clip` per image (clip id = path relative to root).
    """
    files = []  # (relative path, subject, emotion)
    if "kdef" in layouts:
        files += [(f"KDEF/{d}/{f}", s, e) for d, f, s, e in KDEF_FILES]
    if "rafd" in layouts:
        files += [(f"RaFD/{f}", s, e) for f, s, e in RAFD_FILES]
    if "folders" in layouts:
        files += [(f"folders/{d}/{f}", "unknown", e) for d, f, e in FOLDER_FILES]
    clips = []
    for i, (relative, subject, emotion) in enumerate(files):
        value = 30 + 12 * i
        write_image(root / relative, value)
        clips.append(Clip(relative, subject, emotion, 1, value, root / relative))
    return Written(root, clips, _write_expression_broken(root, broken))


def _write_expression_broken(root: pathlib.Path, broken) -> dict:
    unknown = [b for b in broken if b not in EXPRESSION_BROKEN]
    if unknown:
        raise ValueError(f"unknown broken expression case(s) {unknown}; "
                         f"known: {EXPRESSION_BROKEN}")
    cases = {"unmatched_image": ("random.jpg", "matches no layout"),
             "unknown_emotion_folder": ("bored/0001.png", "'bored'"),
             "unknown_kdef_code": ("KDEF/AF03/AF03XXS.JPG", "named like KDEF"),
             "disagreeing_folder": ("angry/AM04HAS.JPG", "says happiness")}
    expected = {}
    for case in broken:
        relative, reason = cases[case]
        write_image(root / relative, 5)
        expected[relative] = reason
    return expected


FER_ROWS = (
    # (emotion code, Usage, canonical emotion)
    ("0", "Training", "anger"), ("3", "Training", "happiness"), ("5", "Training", "surprise"),
    ("6", "PublicTest", "neutral"), ("1", "PrivateTest", "disgust"),
)
FER_BROKEN = ("short_pixels", "not_a_number", "unknown_code")


def write_fer2013(path: pathlib.Path, rows=FER_ROWS, *, broken=(), seed: int = 0) -> Written:
    """Writes a FER2013 CSV (`emotion,pixels,Usage`) of random 48 x 48 faces.

    Args:
        path: the CSV to write.
        rows: `(emotion code, Usage, canonical emotion)`.
        broken: any of `FER_BROKEN`, appended after `rows`: 2303 pixel values, a value `x`,
            emotion code 7.

    Returns:
        `Written` with `root` the CSV; clip ids `fer2013/<row>` counted from 0.
    """
    unknown = [b for b in broken if b not in FER_BROKEN]
    if unknown:
        raise ValueError(f"unknown broken FER2013 case(s) {unknown}; known: {FER_BROKEN}")
    rng = np.random.default_rng(seed)
    lines, clips, expected = ["emotion,pixels,Usage"], [], {}
    for code, usage, emotion in rows:
        pixels = rng.integers(0, 256, size=(48, 48), dtype=np.uint8)
        clips.append(Clip(f"fer2013/{len(lines) - 1}", "unknown", emotion, 1,
                          int(pixels[0, 0]), path, pixels))
        lines.append(f"{code},{' '.join(map(str, pixels.ravel()))},{usage}")
    bad = {"short_pixels": ("3", " ".join(["7"] * 2303), "2303 pixel values"),
           "not_a_number": ("3", " ".join(["7"] * 2303 + ["x"]), "not an integer"),
           "unknown_code": ("7", " ".join(["7"] * 2304), "emotion code '7'")}
    for case in broken:
        code, pixels, reason = bad[case]
        expected[f"fer2013/{len(lines) - 1}"] = reason
        lines.append(f"{code},{pixels},Training")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return Written(path, clips, expected)
