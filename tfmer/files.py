"""Atomic writes: everything the toolkit writes goes through a temporary name and a rename.

`atomic(path)` is the one mechanism: it hands out a temporary path beside `path` (a hidden
name with the same suffix, so Keras' `.weights.h5` and matplotlib's `.png` checks pass),
renames it onto `path` when the block succeeds and removes it when the block raises, so a
reader sees either the old file or the whole new one, never half of one. It works for
folders too (a SavedModel, a clip's frames). The other helpers are shorthands.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import shutil
from collections.abc import Iterator

TEMPORARY_PREFIX = ".tmp."
"""What a temporary name starts with: `.tmp.<name>` beside the final `<name>`."""


def temporary_path(path) -> pathlib.Path:
    """The temporary name `atomic` writes `path` under: `.tmp.<name>` in the same folder."""
    path = pathlib.Path(path)
    return path.with_name(TEMPORARY_PREFIX + path.name)


@contextlib.contextmanager
def atomic(path) -> Iterator[pathlib.Path]:
    """Yields a temporary path to write a file or folder to; renames it onto `path` when
    the block ends (a folder replaces a folder already there), removes it when the block
    raises. The parent folder is created if needed; a leftover of an interrupted write is
    removed first.

    Example:
        with atomic(run_dir / "final.weights.h5") as temporary:
            model.save_weights(temporary)
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_path(path)
    _remove(temporary)
    try:
        yield temporary
        if temporary.is_dir() and path.is_dir():
            shutil.rmtree(path)
        os.replace(temporary, path)
    except BaseException:
        _remove(temporary)
        raise


def write_text_atomic(path, text: str) -> None:
    """Writes `text` (UTF-8) to `path` atomically."""
    with atomic(path) as temporary:
        temporary.write_text(text, encoding="utf-8")


def write_json_atomic(path, content) -> None:
    """Writes `content` as indented JSON to `path` atomically."""
    write_text_atomic(path, json.dumps(content, indent=2) + "\n")


def _remove(path: pathlib.Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
