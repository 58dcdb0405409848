"""The MEGC 2019 composite: the official clip list, three roots, megc3 labels."""

import collections
import dataclasses
import json

import pytest
import tensorflow as tf

from data_prep import convert, databases
from data_prep.clip import ConvertOptions
from data_prep.databases import megc2019
from tests import image_layouts, layouts
from tfmer import data, experiments, features
from tfmer.training import cross_validation

# Listed in the official list: sub01/EP02_01f, sub01/EP19_05f, sub02/EP09_01 (CASME II);
# 006/006_1_2, 006/006_5_9 (SAMM); s01_ne_01, s01_po_01, s02_sur_01 (SMIC, zero-padded there).
CASME2 = (("sub01", "EP02_01f", "happiness"), ("sub01", "EP19_05f", "repression"),
          ("sub02", "EP09_01", "others"), ("sub02", "EP77_01", "happiness"))
SAMM = (("006", "006_1_2", "Happiness"), ("006", "006_5_9", "Anger"),
        ("006", "006_9_9", "Surprise"))
SMIC = (("s1", "negative", "s1_ne_01", 3), ("s1", "positive", "s1_po_01", 3),
        ("s1", "non_micro", "s1_no_01", 2), ("s2", "surprise", "s2_sur_01", 3))
FOUND = {"casme2/sub01/EP02_01f", "casme2/sub01/EP19_05f", "casme2/sub02/EP09_01",
         "samm/006/006_1_2", "samm/006/006_5_9",
         "smic/s1/s1_ne_01", "smic/s1/s1_po_01", "smic/s2/s2_sur_01"}


def test_the_shipped_list_is_the_official_composite():
    clips = megc2019.official_clips()
    assert len(clips) == len(set(clips)) == 442
    assert collections.Counter(d for d, _, _ in clips) == {"smic": 164, "casme2": 145,
                                                           "samm": 133}
    assert len({(d, s) for d, s, _ in clips}) == 68


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    root = tmp_path_factory.mktemp("megc")
    layouts.casme2(root / "casme2", clips=CASME2, unknown_apex=())
    layouts.samm(root / "samm", clips=SAMM, unknown_apex=())
    image_layouts.write_smic(root / "smic", parts=("HS",), clips=SMIC)
    return {name: root / name for name in megc2019.DATABASES}


def test_keeps_exactly_the_listed_clips_and_reports_the_missing(roots):
    release = megc2019.read(roots)
    assert {s.clip_id for s in release.sources} == FOUND
    by_id = {s.clip_id: s for s in release.sources}
    assert (by_id["samm/006/006_5_9"].database, by_id["samm/006/006_5_9"].emotion) == (
        "samm", "anger")
    assert (by_id["smic/s2/s2_sur_01"].subject, by_id["casme2/sub02/EP09_01"].emotion) == (
        "s2", "others")
    missing = {e["clip"] for e in release.errors}
    assert len(missing) == 442 - len(FOUND)
    assert "smic/s03/s03_ne_01" in missing and "casme2/sub26/EP18_51" in missing
    assert all("not found under" in e["reason"] for e in release.errors)


def test_converts_with_megc3_labels_and_subjects_of_each_database(roots, tmp_path):
    options = ConvertOptions(num_frames=0, size=16, crop="none", workers=1, progress=False)
    info = databases.convert_database("megc2019", roots, tmp_path, classes="megc3",
                                      options=options)
    assert info["classes"] == ["negative", "positive", "surprise"]
    # repression and anger are negative (MEGC rule); CASME II "others" is dropped, reported.
    assert info["class_counts"] == {"negative": 3, "positive": 3, "surprise": 1}
    assert info["dropped"] == [{"clip": "casme2/sub02/EP09_01", "emotion": "others"}]
    assert info["subjects"] == ["casme2/sub01", "samm/006", "smic/s1", "smic/s2"]
    # The fixture holds 7 of the 442 clips: every class and database differs from the
    # published counts, each by what the fixture lacks.
    check = info["check"]
    assert check["found"]["negative"]["smic"] + check["found"]["negative"]["casme2"] + \
        check["found"]["negative"]["samm"] == 3
    assert "negative smic: 70 published, " in "; ".join(check["differences"])
    assert len(check["differences"]) == sum(
        check["found"][c][d] != n for c, per in megc2019.OFFICIAL_COUNTS.items()
        for d, n in per.items())
    assert json.loads((tmp_path / "dataset.json").read_text())["check"] == check
    # Published with LOSO: a run follows it unless given --protocol.
    assert info["protocol"] == "loso"
    kfold = experiments.get("lbptop_svm", overrides=("protocol.protocol=kfold5",))
    lines = []
    followed = cross_validation.follow_dataset_protocol(kfold, data.load_info(tmp_path),
                                                        lines.append)
    assert followed.protocol.protocol == "loso" and "published with loso" in lines[0]
    synthetic = data.load_info(tmp_path)
    synthetic = dataclasses.replace(synthetic, raw={**synthetic.raw, "protocol": None})
    assert cross_validation.follow_dataset_protocol(kfold, synthetic, lines.append) is kfold
    assert "MEGC 2019 class counts" in convert.summary(info, tmp_path)
    complete = {"classes": ["negative", "positive", "surprise"], "clips": [
        {"subject": f"{d}/x", "label": c} for c, per in megc2019.OFFICIAL_COUNTS.items()
        for d, n in per.items() for _ in range(n)]}
    assert megc2019.check_counts(complete)["differences"] == []
    assert sum(n for per in megc2019.OFFICIAL_COUNTS.values() for n in per.values()) == 442
    records = {}
    for shard in data.load_info(tmp_path).shards:
        for raw in tf.data.TFRecordDataset(str(shard)):
            record = features.decode(raw.numpy())
            records[record.clip_id] = record
    assert (records["samm/006/006_1_2"].dataset, records["samm/006/006_1_2"].fps) == ("samm", 200)
    assert records["smic/s1/s1_ne_01"].subject == "smic/s1"
    assert len(records["smic/s1/s1_ne_01"].frames) == 3


def test_every_root_is_needed(roots):
    with pytest.raises(ValueError, match="missing smic"):
        megc2019.read({"casme2": roots["casme2"], "samm": roots["samm"]})
