import pytest

from data_prep import classes
from data_prep.clip import ClipSource


def test_every_database_label_maps_to_a_canonical_emotion_every_scheme_handles():
    for database, table in classes.DATABASE_EMOTIONS.items():
        for label, emotion in table.items():
            assert emotion in classes.EMOTIONS, (database, label)
            for scheme in classes.SCHEMES.values():
                scheme.label(emotion)  # a class or None (dropped), never "no rule"


@pytest.mark.parametrize("scheme,expected", [
    # MEGC 2019 (RESEARCH.md): negative = anger, contempt, disgust, fear, sadness, repression.
    ("megc3", {"anger": "negative", "contempt": "negative", "disgust": "negative",
               "fear": "negative", "sadness": "negative", "repression": "negative",
               "happiness": "positive", "surprise": "surprise", "others": None,
               "non-micro": None}),
    # TLCNN Eq. 12: positive = happy, negative = afraid, angry, disgust, sad, fear.
    ("tlcnn4", {"happiness": "positive", "fear": "negative", "anger": "negative",
                "disgust": "negative", "sadness": "negative", "surprise": "surprise",
                "others": "others", "non-micro": None, "neutral": None}),
    ("smic4", {"negative": "negative", "positive": "positive", "surprise": "surprise",
               "non-micro": "non-micro", "others": None}),
    ("casme2_5", {"happiness": "happiness", "repression": "repression", "others": "others",
                  "fear": None, "sadness": None}),
    ("expression9", {"shame": "shame", "contempt": "contempt", "neutral": "neutral",
                     "others": None}),
])
def test_scheme_groupings_follow_the_papers(scheme, expected):
    assert {e: classes.SCHEMES[scheme].label(e) for e in expected} == expected


def test_class_orders():
    assert classes.SCHEMES["smic4"].classes == ("negative", "positive", "surprise", "non-micro")
    assert classes.SCHEMES["tlcnn4"].classes == ("positive", "negative", "surprise", "others")
    assert len(classes.SCHEMES["expression9"].classes) == 9


def test_normalise_spellings_and_unknown_labels():
    assert classes.normalise("samm", " Other ") == "others"
    assert classes.normalise("casme3", "happy") == "happiness"
    assert classes.normalise("expression", "AF") == "fear"
    assert classes.normalise("expression", 6) == "neutral"  # FER2013 code
    assert classes.normalise("smic", "non_micro") == "non-micro"
    with pytest.raises(ValueError, match="unknown emotion 'joy' for casme2 .*happiness"):
        classes.normalise("casme2", "joy")


def test_source_and_explicit_lists():
    source = classes.resolve("source", ["b", "a", "b"])
    assert source.classes == ("a", "b") and source.label("b") == "b"
    explicit = classes.resolve("x,y", ["x", "z"])
    assert explicit.classes == ("x", "y") and explicit.label("z") is None
    with pytest.raises(ValueError, match="lists a class twice"):
        classes.resolve("x,x", [])
    with pytest.raises(ValueError, match="unknown class scheme 'nope'.*megc3"):
        classes.resolve("nope", [])


def test_assign_labels_drops_and_reports():
    sources = [ClipSource(f"c{i}", "1", e, None) for i, e in
               enumerate(["happiness", "others", "joy"])]
    labelled, dropped, errors = classes.assign(sources, classes.SCHEMES["megc3"])
    assert [(s.clip_id, s.label) for s in labelled] == [("c0", "positive")]
    assert dropped == [{"clip": "c1", "emotion": "others"}]
    assert errors == [{"clip": "c2", "reason": "class scheme megc3 has no rule for emotion 'joy'"}]
