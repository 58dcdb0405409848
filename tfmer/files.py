"""Small file helpers: everything the toolkit writes goes through a temporary name and a rename."""

from __future__ import annotations

import json
import os
import pathlib


def write_json_atomic(path, content) -> None:
    """Writes `content` as indented JSON to `path` via a temporary file and a rename."""
    write_text_atomic(path, json.dumps(content, indent=2) + "\n")


def write_text_atomic(path, text: str) -> None:
    """Writes `text` to `path` via a temporary file in the same folder and a rename."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
