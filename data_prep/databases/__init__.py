"""Readers of the public micro-expression databases, as their publishers ship them.

Each reader module (`casme2`, `samm`, `smic`, `casme`, `casme3`, `megc2019`, `expression`)
has a function `read(root, **options) -> Release` that finds the coding spreadsheet and the
frames under `root` and returns one `ClipSource` per coded clip, with the database's
emotion already normalised (`data_prep.classes.normalise`) and every clip it cannot use
(a row without a folder, a folder without a row, an unknown emotion, an apex outside
onset..offset, ...) as an error naming the clip. It raises `FileNotFoundError` or
`ValueError` (with a one-line message) only when nothing can be read: a missing root, no
or an unreadable spreadsheet.

`convert_database` does the rest the same way for every database: class scheme, then the
converter core (`data_prep.convert.convert`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
import importlib
import pathlib

from data_prep import classes as schemes
from data_prep import clip, convert

NAMES = ("casme2", "samm", "smic", "casme", "casme3", "megc2019", "expression")
"""The database readers, in the order `python -m data_prep` lists them."""


@dataclasses.dataclass
class Release:
    """What a reader found under a root.

    Attributes:
        sources: one `ClipSource` per usable clip, `emotion` canonical.
        errors: one `{"clip", "reason"}` per clip that cannot be used.
        crop: the crop this release needs by default: `detect` for raw frames, `none` for a
            release whose frames are already cropped faces.
        details: facts for `dataset.json["source"]` (the spreadsheet read, the release
            found, the part, ...).
        check: a check of the converted dataset against published facts (the `dataset.json`
            content -> what it found, recorded as `dataset.json["check"]` and printed), or
            None.
        protocol: the evaluation protocol the database is published with, recorded as
            `dataset.json["protocol"]` (`train.py` follows it unless given `--protocol`), or
            None.
    """

    sources: list
    errors: list
    crop: str = "detect"
    details: dict = dataclasses.field(default_factory=dict)
    check: Callable[[dict], dict] | None = None
    protocol: str | None = None


def reader(name: str):
    """The reader module of a database.

    Raises:
        ValueError: an unknown name, listing the known ones.
    """
    if name not in NAMES:
        raise ValueError(f"unknown database {name!r}; known: {', '.join(NAMES)}")
    return importlib.import_module(f"data_prep.databases.{name}")


def convert_release(name: str, release: Release, out_dir, *, classes: str,
                    options: clip.ConvertOptions) -> dict:
    """Applies a class scheme to a reader's `Release` and converts the clips it keeps.

    Args:
        name: the dataset name (namespace of subjects, prefix of shard names).
        release: what a reader found.
        out_dir: output folder.
        classes: the class scheme (`data_prep.classes.resolve`).
        options: `ConvertOptions` with `crop` resolved.

    Returns:
        The content of `dataset.json`.
    """
    scheme = schemes.resolve(classes, [s.emotion for s in release.sources])
    sources, dropped, errors = schemes.assign(release.sources, scheme)
    sources = sorted(sources, key=lambda s: (s.database, s.subject, s.clip_id))
    source = dict(release.details, classes=scheme.name, class_reference=scheme.reference,
                  crop=options.crop, align=options.align, margin=options.margin)
    return convert.convert(name, sources, scheme.classes, out_dir, options,
                           errors=release.errors + errors, dropped=dropped,
                           extra={"source": source, **({"protocol": release.protocol}
                                                       if release.protocol else {})},
                           check=release.check)


def convert_database(name: str, root, out_dir, *, classes: str = "source",
                     options: clip.ConvertOptions | None = None, **reader_options) -> dict:
    """Reads a database under `root` and converts it to `out_dir`.

    Args:
        name: one of `NAMES`.
        root: the folder the publisher's archive unpacks to (for `megc2019`, a dict
            `{"casme2": DIR, "samm": DIR, "smic": DIR}`).
        out_dir: output folder.
        classes: the class scheme (`data_prep.classes.resolve`).
        options: `ConvertOptions`; its `crop` None means the release's default.
        **reader_options: passed to the reader (e.g. `part="HS"` for SMIC).

    Returns:
        The content of `dataset.json`.
    """
    options = options or clip.ConvertOptions()
    if not isinstance(root, dict) and not pathlib.Path(root).exists():
        raise FileNotFoundError(f"{name} root {root} does not exist")
    release = reader(name).read(root, **reader_options)
    release.details = {"converter": name, **release.details}
    if options.crop is None:
        options = dataclasses.replace(options, crop=release.crop)
    return convert_release(name, release, out_dir, classes=classes, options=options)
