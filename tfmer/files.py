"""Atomic writes: everything the toolkit writes goes through a temporary name and a rename.

`atomic(path)` is the one mechanism: it hands out a temporary path beside `path` (a hidden
name with the same suffix, so Keras' `.weights.h5` and matplotlib's `.png` checks pass),
renames it onto `path` when the block succeeds and removes it when the block raises, so a
reader sees either the old file or the whole new one, never half of one. It works for
folders too (a SavedModel, a clip's frames). The other helpers are shorthands.

Where several processes write into one folder (jobs training the folds of one run), a
file they share is written under its lock (`locked`: the second process waits, then finds
the first one's file), and what one process owns it holds with `try_lock`; both are
`flock`s on a hidden `.lock.<name>` beside the file, released by the kernel when the
process ends, however it ends.
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


LOCK_PREFIX = ".lock."
"""What a lock file's name starts with: `.lock.<name>` beside the `<name>` it guards."""


def lock_path(path) -> pathlib.Path:
    """The lock file that guards `path`: `.lock.<name>` in the same folder."""
    path = pathlib.Path(path)
    return path.with_name(LOCK_PREFIX + path.name)


@contextlib.contextmanager
def locked(path) -> Iterator[None]:
    """Holds the exclusive lock of `path` (`lock_path`, an `flock` on it) for the block,
    waiting for another process that holds it. The kernel releases it when the holder ends
    in any way, so no lock outlives its process. For files several processes write (jobs
    training the folds of one run): the second waits, then finds the first one's file."""
    import fcntl  # POSIX; tfmer's jobs run on Linux and macOS

    target = lock_path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def try_lock(path):
    """Takes the exclusive lock of `path` (`lock_path`) without waiting: the open lock
    file, which holds it until closed (or the process ends), or None when another
    process (or another `try_lock` of this one) holds it."""
    import fcntl

    target = lock_path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle = open(target, "a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


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
