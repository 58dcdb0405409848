"""Motion at conversion: the apex frame, the onset -> apex optical flow and its strain.

Every flow-based method of micro-expression recognition (STSTNet, OFF-ApexNet, the RCN
family, STRCN-G, Bi-WOOF) reads the dense optical flow between the onset frame and the
apex frame of the cropped face, and the optical strain derived from it. The converter
computes them once per clip (`data_prep.clip.convert_clip`), on the cropped, resized frames
before TIM, and stores them in the record (`flow/uvs`, `tfmer.records`).

* Flow and strain: `tfmer.optical_flow` (`tvl1`, `farneback`, `dis`; the strain
  magnitude), shared with the handcrafted features that compute flow of their own.
* Apex: the annotated apex where the release codes one; otherwise (`--apex`) the middle
  frame, or `detect`: the frame whose difference from the onset frame has the largest
  standard deviation over the face crop (Xia et al.'s released `detect_apex_frame.m`).

Free of TensorFlow (converter workers import it).
"""

from __future__ import annotations

import cv2
import numpy as np

from data_prep.frames import ClipError
from tfmer.config import FLOW_METHODS
from tfmer.optical_flow import motion, optical_flow, optical_strain  # noqa: F401

METHODS = FLOW_METHODS
"""The flow methods of `--flow` (`none` stores no flow)."""
APEX_RULES = ("middle", "detect")
"""How `--apex` finds the apex of a clip whose release codes none."""
ANNOTATED = "annotated"
"""`flow/apex_source` of a clip whose apex the release codes."""


def apex_index(frames, numbers, apex: int, rule: str = "middle") -> tuple[int, str]:
    """Which of a clip's frames is its apex, and how that was found.

    Args:
        frames: the clip's frames onset..offset, uint8 `[H, W, 3]` each (face crops).
        numbers: their source frame numbers.
        apex: the annotated apex frame number, or `tfmer.records.UNKNOWN` (-1).
        rule: for clips without an annotated apex, one of `APEX_RULES`: `middle` (index
            `T // 2`: the later of two middle frames, so never the onset of a clip of two
            or more frames) or `detect` (the largest standard deviation of the grey
            difference from the first frame).

    Returns:
        `(index into frames, source)`, source `annotated`, `middle` or `detect`.

    Raises:
        ClipError: the annotated apex is not among the frames, or the apex is the onset
            frame itself (flow needs two different frames).
    """
    if apex >= 0:
        if apex not in numbers:
            raise ClipError(f"apex frame {apex} is not among the frames {numbers[0]}.."
                            f"{numbers[-1]}")
        index, source = list(numbers).index(apex), ANNOTATED
    elif rule == "middle":
        index, source = len(frames) // 2, "middle"
    elif rule == "detect":
        onset = _grey(frames[0])
        spread = [float(np.std(_grey(frame) - onset)) for frame in frames]
        index, source = int(np.argmax(spread)), "detect"
    else:
        raise ValueError(f"unknown apex rule {rule!r}; known: {', '.join(APEX_RULES)}")
    if index == 0:
        raise ClipError(f"the apex ({source}, frame {numbers[0]}) is the onset frame: the "
                        "onset -> apex flow needs two different frames")
    return index, source


def _grey(frame: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY).astype(np.float32)
