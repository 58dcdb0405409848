"""An export's description, `assets/tfmer.json` (written by `tfmer.export`), read without
TensorFlow: `python -m tfmer.predict` reads it before TensorFlow loads, so that the clip's
conversion can start first. This module is TensorFlow-free."""

from __future__ import annotations

import json
import pathlib

METADATA = "assets/tfmer.json"
"""The description's path in an export folder."""


def load_metadata(model_dir) -> dict:
    """Reads `assets/tfmer.json` of an exported model.

    Raises:
        FileNotFoundError: the folder is not a tfmer export (names the folder).
    """
    path = pathlib.Path(model_dir) / METADATA
    if not path.is_file():
        raise FileNotFoundError(f"{model_dir} is not a tfmer SavedModel export: no {METADATA}")
    return json.loads(path.read_text(encoding="utf-8"))
