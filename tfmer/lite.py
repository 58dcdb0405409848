"""An export's TFLite model (`lite/model.tflite`), run without TensorFlow by LiteRT.

`tfmer.export.export_saved_model` writes it beside the SavedModel for a frames model
trained on TIM clips (every clip the same length): the same `serving_default` computation
at a fixed input, the clip's stored frames `[1, T, S, S, 3]` (float32 0..255, RGB, at the
converter's size S), with the pipeline's resize to the model's size inside (the area
resize as two constant matrices, `tfmer.export.area_matrix`). `python -m tfmer.predict`
scores with it, which spares it TensorFlow's start-up (most of its time on a CPU:
BENCHMARKS.md). This module is TensorFlow-free.
"""

from __future__ import annotations

import os
import pathlib

import cv2
import numpy as np

from tfmer import cli

LITE = "lite/model.tflite"
"""The TFLite model in an export folder (`assets/tfmer.json` `lite` describes its input)."""


def available() -> bool:
    """Whether the LiteRT runtime (`ai-edge-litert`) is installed."""
    try:
        import ai_edge_litert.interpreter  # noqa: F401
    except ImportError:
        return False
    return True


def stored_frames(record) -> np.ndarray:
    """float32 `[T, H, W, 3]` RGB 0..255: a `tfmer.records.ClipRecord`'s encoded frames
    decoded as the pipeline decodes them (`tfmer.data.decode_frames`)."""
    frames = []
    for number, encoded in enumerate(record.frames):
        bgr = cv2.imdecode(np.frombuffer(encoded, np.uint8), cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError(f"{record.clip_id}: frame {number} cannot be decoded")
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    return np.stack(frames).astype(np.float32)


class LiteModel:
    """The TFLite model of an export, loaded once; `probabilities(record)` scores a clip.

    Args:
        model_dir: the export folder.
        metadata: its `assets/tfmer.json` (`lite` gives the input shape).
        threads: CPU threads of the interpreter (default: all cores).
    """

    def __init__(self, model_dir, metadata: dict, threads: int | None = None):
        from ai_edge_litert.interpreter import Interpreter

        path = pathlib.Path(model_dir) / metadata["lite"]["file"]
        self.shape = tuple(metadata["lite"]["input"]["shape"])
        with cli.native_logs_hidden():  # LiteRT's line on its CPU delegate
            self._interpreter = Interpreter(model_path=str(path),
                                            num_threads=threads or os.cpu_count() or 1)
            self._interpreter.allocate_tensors()
        (self._input,), (self._output,) = (self._interpreter.get_input_details(),
                                           self._interpreter.get_output_details())

    def probabilities(self, record) -> list[float]:
        """The class probabilities of one converted clip.

        Raises:
            ValueError: its frames do not have the shape the model was exported for (a
                conversion with other settings), naming the clip.
        """
        frames = stored_frames(record)
        if frames.shape != self.shape[1:]:
            raise ValueError(f"{record.clip_id}: converted to frames {list(frames.shape)} but "
                             f"the TFLite model reads {list(self.shape[1:])}; use "
                             f"--runtime tensorflow")
        self._interpreter.set_tensor(self._input["index"], frames[None])
        self._interpreter.invoke()
        return self._interpreter.get_tensor(self._output["index"])[0].tolist()
