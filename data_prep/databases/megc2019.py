"""The MEGC 2019 composite database: the official 442 clips of SMIC-HS, CASME II and SAMM.

Each source database is read from its own root with its own reader; exactly the clips of
the official list (`megc2019_clips.csv`, shipped with the package: SMIC 164, CASME II 145,
SAMM 133 clips of 68 subjects, See et al. 2019) are kept. Lists derived from the emotion
rule differ from the official one by a few clips, hence the explicit list. Labels follow the
`megc3` scheme by default. A listed clip that is missing from its root, or that its reader
had to skip, is reported with the reason.

Clip ids are `<database>/<clip id in the database>` and subjects are namespaced by their own
database (`casme2/sub01`, `samm/006`, `smic/s1`), so leave-one-subject-out gives 68 folds
and a run reports each database's figures beside the composite's. The converted clips per
class and database are checked against the published counts (`check_counts`: printed, and
recorded in `dataset.json["check"]`). The composite is published with leave-one-subject-out
(`PROTOCOL`, recorded as `dataset.json["protocol"]`), which `train.py` then runs unless
given `--protocol`.
"""

from __future__ import annotations

import csv
import dataclasses
import pathlib
import re

from data_prep.databases import Release, reader

DATABASES = ("casme2", "samm", "smic")
CLIP_LIST = pathlib.Path(__file__).with_name("megc2019_clips.csv")
PROTOCOL = "loso"
"""The MEGC 2019 evaluation: leave one subject out over the 68 subjects (See et al. 2019)."""
OFFICIAL_COUNTS = {
    "negative": {"casme2": 88, "samm": 92, "smic": 70},
    "positive": {"casme2": 32, "samm": 26, "smic": 51},
    "surprise": {"casme2": 25, "samm": 15, "smic": 43},
}
"""The composite's clips per `megc3` class and database (See et al. 2019, the MEGC 2019
summary paper: negative 250, positive 109, surprise 83; 442 clips)."""


def check_counts(info: dict) -> dict:
    """The converted composite's clips per class and database against `OFFICIAL_COUNTS`.

    Args:
        info: the `dataset.json` content.

    Returns:
        `{"what", "reference", "expected", "found", "differences"}`: the counts as
        `{class: {database: n}}`, and one line per class and database that differs (none
        when all agree; one line when the classes are not `megc3`'s).
    """
    found = {c: {d: 0 for d in DATABASES} for c in info["classes"]}
    for clip in info["clips"]:
        database = clip["subject"].split("/", 1)[0]
        found[clip["label"]][database] = found[clip["label"]].get(database, 0) + 1
    result = {"what": "MEGC 2019 class counts (See et al. 2019: negative 250, positive 109, "
                      "surprise 83; 442 clips)",
              "reference": "See et al. 2019", "expected": OFFICIAL_COUNTS, "found": found}
    if sorted(info["classes"]) != sorted(OFFICIAL_COUNTS):
        result["differences"] = [f"classes {', '.join(info['classes'])} are not megc3's: the "
                                 f"official counts are not compared"]
        return result
    result["differences"] = [
        f"{name} {database}: {expected} published, {found[name][database]} converted"
        for name, per_database in OFFICIAL_COUNTS.items()
        for database, expected in per_database.items()
        if found[name][database] != expected]
    return result


def _key(database: str, subject: str, clip: str) -> tuple:
    """Matches names across spellings: case and zero padding (`s01_ne_01` = `s1_ne_1`)."""
    def unpad(text):
        return re.sub(r"\d+", lambda m: str(int(m.group())), text.lower())
    return database, unpad(subject), unpad(clip)


def official_clips() -> list[tuple[str, str, str]]:
    """The official list: `(database, subject, clip)` in the list's order."""
    with open(CLIP_LIST, newline="", encoding="utf-8") as f:
        return [(r["database"], r["subject"], r["clip"]) for r in csv.DictReader(f)]


def read(root: dict, *, part: str = "HS") -> Release:
    """Reads the three source databases and keeps the official clips.

    Args:
        root: `{"casme2": DIR, "samm": DIR, "smic": DIR}`, each the folder its publisher's
            archive unpacks to.
        part: the SMIC camera (the composite uses HS).

    Raises:
        ValueError: a database root missing from `root`, or an unknown one.
        FileNotFoundError: a root that does not exist (from that database's reader).
    """
    missing = [d for d in DATABASES if d not in root]
    unknown = sorted(set(root) - set(DATABASES))
    if missing or unknown:
        raise ValueError(f"megc2019 needs one root per database: --root casme2=DIR --root "
                         f"samm=DIR --root smic=DIR (missing {', '.join(missing) or 'none'}"
                         f"; unknown {', '.join(unknown) or 'none'})")
    wanted = {_key(*entry): entry for entry in official_clips()}
    sources, errors, found, crops = [], [], set(), set()
    for database in DATABASES:
        options = {"part": part} if database == "smic" else {}
        release = reader(database).read(pathlib.Path(root[database]), **options)
        crops.add(release.crop)
        for source in release.sources:
            key = _key(database, source.subject, source.clip_id.split("/")[1])
            if key in wanted:
                found.add(key)
                sources.append(dataclasses.replace(
                    source, clip_id=f"{database}/{source.clip_id}", database=database))
        for error in release.errors:
            key = _error_key(database, error["clip"])
            if key in wanted:
                found.add(key)
                errors.append({"clip": f"{database}/{error['clip']}", "reason": error["reason"]})
    for key, (database, subject, clip) in wanted.items():
        if key not in found:
            errors.append({"clip": f"{database}/{subject}/{clip}",
                           "reason": f"in the official MEGC 2019 list but not found under "
                                     f"{root[database]}"})
    return Release(sources, errors, crop="detect" if "detect" in crops else "none",
                   details={"roots": {d: str(root[d]) for d in DATABASES}, "part": part,
                            "clip_list": CLIP_LIST.name, "listed": len(wanted)},
                   check=check_counts, protocol=PROTOCOL)


def _error_key(database: str, clip_id: str) -> tuple | None:
    parts = clip_id.split("/")
    return _key(database, parts[0], parts[1]) if len(parts) >= 2 else None
