"""Emotion vocabularies of the databases and the class schemes clips are converted to.

Two explicit steps turn a database's label into a class:

1. `normalise(database, label)`: the database's own spelling (`Happiness`, `happy`, `AN`,
   `non_micro`, `3` in FER2013) -> one of the canonical `EMOTIONS`. Every label each database
   uses is listed in `DATABASE_EMOTIONS`; anything else is an error that names the label.
2. A `Scheme` maps each canonical emotion to a class or drops it. Every scheme lists every
   canonical emotion, either under a class or in `dropped` (checked on import), so a clip
   can never vanish silently: dropped clips are reported in `dataset.json`.
"""

from __future__ import annotations

import dataclasses

EMOTIONS = (
    "anger", "contempt", "disgust", "fear", "happiness", "sadness", "surprise",  # basic
    "neutral", "shame",                         # expression sets (TLCNN stage 1)
    "repression", "tense", "others",            # CASME, CASME II, SAMM, CAS(ME)^3
    "positive", "negative", "non-micro",        # SMIC's folders
)
"""The canonical emotions, the vocabulary of `clip/source_emotion`."""

DATABASE_EMOTIONS = {
    # CASME II coding sheet, column "Estimated Emotion".
    "casme2": {"happiness": "happiness", "disgust": "disgust", "surprise": "surprise",
               "repression": "repression", "sadness": "sadness", "fear": "fear",
               "others": "others"},
    # SAMM_Micro_FACS_Codes, column "Estimated Emotion".
    "samm": {"anger": "anger", "contempt": "contempt", "disgust": "disgust", "fear": "fear",
             "happiness": "happiness", "sadness": "sadness", "surprise": "surprise",
             "other": "others", "others": "others"},
    # SMIC: the folder names under micro/ plus the non_micro folder.
    "smic": {"negative": "negative", "positive": "positive", "surprise": "surprise",
             "non_micro": "non-micro"},
    # CASME (I) coding sheet: Yan et al. 2013 name amusement where later sheets say happiness.
    "casme": {"amusement": "happiness", "happiness": "happiness", "sadness": "sadness",
              "disgust": "disgust", "surprise": "surprise", "contempt": "contempt",
              "fear": "fear", "repression": "repression", "tense": "tense"},
    # CAS(ME)^3 part A label sheet, column "emotion".
    "casme3": {"happy": "happiness", "happiness": "happiness", "sad": "sadness",
               "sadness": "sadness", "disgust": "disgust", "fear": "fear",
               "surprise": "surprise", "anger": "anger", "others": "others"},
    # Still-image expression sets: folder names, KDEF codes (AFS = afraid, ...), RaFD words,
    # TFEID/MMI names and FER2013's numeric codes (0 angry ... 6 neutral).
    "expression": {
        "anger": "anger", "angry": "anger", "an": "anger", "0": "anger",
        "contempt": "contempt", "contemptuous": "contempt",
        "disgust": "disgust", "disgusted": "disgust", "di": "disgust", "1": "disgust",
        "fear": "fear", "fearful": "fear", "afraid": "fear", "af": "fear", "2": "fear",
        "happiness": "happiness", "happy": "happiness", "ha": "happiness", "3": "happiness",
        "sadness": "sadness", "sad": "sadness", "sa": "sadness", "4": "sadness",
        "surprise": "surprise", "surprised": "surprise", "su": "surprise", "5": "surprise",
        "neutral": "neutral", "ne": "neutral", "6": "neutral",
        "shame": "shame",
    },
}
"""Per database: its label spellings (lower case, stripped) -> canonical emotion."""

_BASIC_NEGATIVE = ("anger", "contempt", "disgust", "fear", "sadness")


@dataclasses.dataclass(frozen=True)
class Scheme:
    """An ordered class list and the canonical emotions each class takes.

    Attributes:
        name: the `--classes` value.
        classes: class names in label-index order.
        members: class -> the canonical emotions labelled with it.
        dropped: canonical emotions the scheme leaves out (reported, never silent).
        reference: where the grouping comes from.
    """

    name: str
    classes: tuple
    members: dict
    dropped: tuple = ()
    reference: str = ""

    def label(self, emotion: str) -> str | None:
        """The class of a canonical emotion, or None when the scheme drops it.

        Raises:
            ValueError: `emotion` is neither a member nor dropped (names the scheme).
        """
        for name, emotions in self.members.items():
            if emotion in emotions:
                return name
        if emotion in self.dropped:
            return None
        raise ValueError(f"class scheme {self.name} has no rule for emotion {emotion!r}")


def _check(scheme: Scheme) -> Scheme:
    listed = [e for c in scheme.classes for e in scheme.members[c]] + list(scheme.dropped)
    assert tuple(scheme.members) == scheme.classes, scheme.name
    assert sorted(listed) == sorted(EMOTIONS), (scheme.name, set(EMOTIONS) ^ set(listed))
    return scheme


SCHEMES = {s.name: _check(s) for s in (
    Scheme(
        "tlcnn4", ("positive", "negative", "surprise", "others"),
        {"positive": ("happiness", "positive"),
         "negative": _BASIC_NEGATIVE + ("negative",),
         "surprise": ("surprise",),
         "others": ("others", "repression", "tense")},
        dropped=("neutral", "shame", "non-micro"),
        reference="Wang et al. 2018 (TLCNN), Eq. 12 and Section 4.2: positive = happy, "
                  "negative = afraid, angry, disgust, sad, fear; movements of unclear emotion "
                  "are others (repression and tense, which the paper does not name, are put "
                  "there); contempt (SAMM's, CAS(ME)^3's) is absent from Eq. 12 and counted "
                  "negative here, with the other basic negative emotions, as MEGC 2019 "
                  "does"),
    Scheme(
        "megc3", ("negative", "positive", "surprise"),
        {"negative": _BASIC_NEGATIVE + ("repression", "negative"),
         "positive": ("happiness", "positive"),
         "surprise": ("surprise",)},
        dropped=("neutral", "shame", "tense", "others", "non-micro"),
        reference="MEGC 2019 composite (See et al. 2019): negative = anger, contempt, disgust, "
                  "fear, sadness and CASME II's repression; positive = happiness"),
    Scheme(
        "smic4", ("negative", "positive", "surprise", "non-micro"),
        {"negative": _BASIC_NEGATIVE + ("repression", "negative"),
         "positive": ("happiness", "positive"),
         "surprise": ("surprise",),
         "non-micro": ("non-micro",)},
        dropped=("neutral", "shame", "tense", "others"),
        reference="Bai & Goecke 2020, Section 4.1: SMIC-HS negative, positive, surprise and "
                  "non-micro-expression clips; other databases grouped as in megc3"),
    Scheme(
        "casme2_5", ("happiness", "disgust", "repression", "surprise", "others"),
        {"happiness": ("happiness",), "disgust": ("disgust",), "repression": ("repression",),
         "surprise": ("surprise",), "others": ("others",)},
        dropped=("anger", "contempt", "fear", "sadness", "neutral", "shame", "tense",
                 "positive", "negative", "non-micro"),
        reference="Yan et al. 2014 (CASME II), Section 4: five classes; fear and sadness "
                  "(too few clips) dropped"),
    Scheme(
        "expression9", ("neutral", "anger", "disgust", "fear", "happiness", "sadness",
                        "surprise", "shame", "contempt"),
        {e: (e,) for e in ("neutral", "anger", "disgust", "fear", "happiness", "sadness",
                           "surprise", "shame", "contempt")},
        dropped=("repression", "tense", "others", "positive", "negative", "non-micro"),
        reference="Wang et al. 2018 (TLCNN), Section 4.1: the nine pre-training classes "
                  "(afraid is fear)"),
)}


def normalise(database: str, label) -> str:
    """A database's label -> canonical emotion.

    Raises:
        ValueError: a label the database does not use; the message names it and lists the
            known ones.
    """
    table = DATABASE_EMOTIONS[database]
    key = str(label).strip().lower()
    if key not in table:
        raise ValueError(f"unknown emotion {label!r} for {database} (known: "
                         f"{', '.join(sorted(set(table)))})")
    return table[key]


def resolve(scheme: str, emotions) -> Scheme:
    """The `Scheme` for `--classes`.

    Args:
        scheme: a name of `SCHEMES`; `source` (the distinct emotions found, sorted, each its
            own class); or an explicit comma-separated list `a,b,c` (each listed emotion its
            own class, every other emotion found dropped).
        emotions: the emotions found in the source (canonical for databases, the free-text
            labels for a manifest).

    Raises:
        ValueError: an unknown scheme name (listing the known ones) or a list naming a class
            twice.
    """
    found = tuple(sorted(set(emotions)))
    if scheme in SCHEMES:
        return SCHEMES[scheme]
    if scheme == "source":
        return Scheme("source", found, {e: (e,) for e in found},
                      reference="the source's own emotions")
    if "," in scheme:
        classes = tuple(c.strip() for c in scheme.split(",") if c.strip())
        if len(set(classes)) != len(classes):
            raise ValueError(f"--classes {scheme!r} lists a class twice")
        return Scheme(scheme, classes, {c: (c,) for c in classes},
                      dropped=tuple(e for e in found if e not in classes),
                      reference="an explicit class list")
    raise ValueError(f"unknown class scheme {scheme!r}; known: "
                     f"{', '.join(sorted(SCHEMES) + ['source'])} or a list like a,b,c")


def assign(sources, scheme: Scheme):
    """Labels clip sources with the scheme's classes.

    Args:
        sources: `data_prep.convert.ClipSource`s whose `emotion` is set.
        scheme: the `Scheme`.

    Returns:
        `(labelled, dropped, errors)`: the sources the scheme keeps with `label` set; one
        `{"clip", "emotion"}` per dropped clip; one `{"clip", "reason"}` per clip whose
        emotion the scheme has no rule for (free-text manifest labels with a named scheme).
    """
    labelled, dropped, errors = [], [], []
    for source in sources:
        try:
            label = scheme.label(source.emotion)
        except ValueError as error:
            errors.append({"clip": source.clip_id, "reason": str(error)})
            continue
        if label is None:
            dropped.append({"clip": source.clip_id, "emotion": source.emotion})
        else:
            labelled.append(dataclasses.replace(source, label=label))
    return labelled, dropped, errors
