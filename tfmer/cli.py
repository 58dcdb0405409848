"""What every command-line entry point shares: the error convention and a quiet TensorFlow.

Free of TensorFlow itself, so that entry points can import it at their top level (the
converter's spawned workers re-import a script's top level, and need no TensorFlow).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable

SHOW_TENSORFLOW_LOGS = "TFMER_TF_LOGS"
"""Set this environment variable to 1 to see TensorFlow's start-up lines (absl, oneDNN,
CUDA); by default the commands hide them."""
USAGE_ERROR = 2
"""The exit status of a command stopped by unusable input (the contract's non-zero exit)."""


def run(command: Callable[..., int], *args) -> int:
    """Calls `command(*args)` and returns its exit status; an `OSError` or `ValueError`
    (a missing file, an unusable argument, an unreadable spreadsheet, ...) becomes one line
    `error: <message>` on stderr and exit status `USAGE_ERROR`."""
    try:
        return command(*args)
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return USAGE_ERROR


def fold_list(text: str) -> list[int]:
    """`--folds`: `0-16`, `3`, `0,2,5-7` -> the sorted fold indices.

    Raises:
        ValueError: anything else (argparse reports it as an invalid value).
    """
    folds = set()
    for part in text.split(","):
        first, dash, last = part.strip().partition("-")
        last = last if dash else first
        if not (first.isdigit() and last.isdigit() and int(first) <= int(last)):
            raise ValueError(f"not a fold list (0-16, 3, 0,2,5-7): {text!r}")
        folds.update(range(int(first), int(last) + 1))
    return sorted(folds)


def import_tensorflow() -> None:
    """Imports TensorFlow without its start-up lines, unless `TFMER_TF_LOGS=1`.

    TensorFlow's native libraries log at load time (absl's "All log messages before
    absl::InitializeLog()", oneDNN, "Could not find cuda drivers"), before any setting
    such as `TF_CPP_MIN_LOG_LEVEL` is read, and the CUDA platform logs an error when it
    first looks for GPUs ("failed call to cuInit" on a machine without one). So the file
    descriptor of stderr points at /dev/null while TensorFlow loads and lists its devices;
    later C++ lines below fatal ones are filtered by the `TF_CPP_MIN_LOG_LEVEL` of 3 that
    `import tfmer` sets (a user's own setting wins). An import that fails still raises its
    exception, shown as usual.
    """
    if "tensorflow" in sys.modules:
        return
    with native_logs_hidden():
        import tensorflow

        tensorflow.config.list_physical_devices()


@contextlib.contextmanager
def native_logs_hidden():
    """Points the file descriptor of stderr at /dev/null for the block (native libraries'
    start-up lines: TensorFlow's, LiteRT's "Created TensorFlow Lite XNNPACK delegate"),
    unless `TFMER_TF_LOGS=1`. Python exceptions raised in the block are shown as usual."""
    if os.environ.get(SHOW_TENSORFLOW_LOGS, "0") not in ("", "0"):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
