"""Class schemes: the fixed, ordered class list a dataset is converted to."""

from __future__ import annotations

SCHEMES = {
    # Wang et al. 2018 (TLCNN), Section 4.2 and Table 3: four classes.
    "tlcnn4": ("positive", "negative", "surprise", "others"),
}


def resolve(scheme: str, labels) -> tuple[str, ...]:
    """The ordered class list for `--classes`.

    Args:
        scheme: a registered scheme name (see `SCHEMES`), `source` (the sorted distinct
            labels found in the source), or an explicit comma-separated list `a,b,c`.
        labels: the labels found in the source, used by `source`.

    Raises:
        ValueError: an unknown scheme name, listing the known ones.
    """
    if scheme in SCHEMES:
        return SCHEMES[scheme]
    if scheme == "source":
        return tuple(sorted(set(labels)))
    if "," in scheme:
        classes = tuple(c.strip() for c in scheme.split(",") if c.strip())
        if len(set(classes)) != len(classes):
            raise ValueError(f"--classes {scheme!r} lists a class twice")
        return classes
    raise ValueError(f"unknown class scheme {scheme!r}; known: "
                     f"{', '.join(sorted(SCHEMES) + ['source'])} or a list like a,b,c")
