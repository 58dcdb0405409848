"""End to end across databases, on fixtures in the real layouts with frames of a real face
(`tests/face_frames.py`): CASME II, SAMM, SMIC and CASME written by `tests/layouts.py` and
`tests/image_layouts.py`, converted by `python -m data_prep` (`--crop detect`), then
`train.py --data DIR1,DIR2,...` with `--protocol lodo`, `--protocol train=A,test=B` and
`--permute-labels`, and the MEGC 2019 composite converted from the same roots, its class
counts checked and a run on it scored per database. Every figure is recomputed here from
`predictions.csv`."""

import csv
import json
import pathlib

import cv2
import numpy as np
import pytest
import tensorflow as tf
from sklearn.metrics import f1_score

import evaluate
import train
from data_prep import __main__ as data_prep_main
from tests import face_frames, image_layouts, layouts
from tfmer import data, features

# Clips named as in the official MEGC 2019 list (data_prep/databases/megc2019_clips.csv), two
# subjects per database, one clip of each megc3 class per subject (plus a CASME II clip of
# "others", which megc3 drops). Labels are spelt as each release writes them.
CASME2 = (("sub01", "EP02_01f", "happiness"), ("sub01", "EP19_05f", "repression"),
          ("sub01", "EP19_06f", "surprise"), ("sub02", "EP01_11f", "disgust"),
          ("sub02", "EP02_04f", "happiness"), ("sub02", "EP03_02f", "surprise"),
          ("sub02", "EP09_01", "others"))
SAMM = (("006", "006_1_2", "Happiness"), ("006", "006_1_3", "Anger"),
        ("006", "006_1_4", "Surprise"), ("007", "007_3_1", "Contempt"),
        ("007", "007_5_3", "Happiness"), ("007", "007_6_1", "Surprise"))
SMIC = (("s1", "negative", "s1_ne_01", 8), ("s1", "positive", "s1_po_01", 8),
        ("s1", "surprise", "s1_sur_01", 8), ("s3", "negative", "s3_ne_01", 9),
        ("s3", "positive", "s3_po_01", 9), ("s3", "surprise", "s3_sur_01", 9))
CASME = (("sub01", "EP01_5", "amusement"), ("sub01", "EP03_2", "disgust"),
         ("sub01", "EP06_1", "surprise"), ("sub08", "EP01_12", "disgust"),
         ("sub08", "EP05_2", "amusement"), ("sub08", "EP07_3", "surprise"))
DATABASES = ("casme", "casme2", "samm", "smic")

MEGC3 = {"happiness": "positive", "amusement": "positive", "positive": "positive",
         "repression": "negative", "disgust": "negative", "anger": "negative",
         "contempt": "negative", "negative": "negative", "surprise": "surprise"}
"""The megc3 class of each label written above (See et al. 2019); others: dropped."""

PUBLISHED = {"negative": {"casme2": 88, "samm": 92, "smic": 70},
             "positive": {"casme2": 32, "samm": 26, "smic": 51},
             "surprise": {"casme2": 25, "samm": 15, "smic": 43}}
"""The MEGC 2019 composite's clips per class and database (See et al. 2019)."""

SIZE, TIM = 48, 8
CONVERT = ["--classes", "megc3", "--crop", "detect", "--size", str(SIZE), "--tim", str(TIM),
           "--flow", "none", "--workers", "1"]
QUICK = ["--experiment", "lbptop_svm", "--quick"]


def _written(name: str) -> dict:
    """`{clip id: megc3 class}` of the clips a database's fixture holds that megc3 keeps."""
    if name == "smic":
        rows = [(s, c, e) for s, e, c, _ in SMIC]
    else:
        rows = {"casme2": CASME2, "samm": SAMM, "casme": CASME}[name]
    return {f"{s}/{c}": MEGC3[e.lower()] for s, c, e in rows if e.lower() in MEGC3}


@pytest.fixture(scope="module")
def roots(tmp_path_factory) -> dict:
    """The four releases, written with real-face frames: `{database: root}`."""
    root = tmp_path_factory.mktemp("releases")
    layouts.casme2(root / "casme2", clips=CASME2, unknown_apex=(), face=True)
    layouts.samm(root / "samm", clips=SAMM, unknown_apex=(), face=True)
    layouts.casme(root / "casme", clips=CASME, face=True)
    image_layouts.write_smic(root / "smic", parts=("HS",), clips=SMIC, face=True)
    return {name: root / name for name in DATABASES}


@pytest.fixture(scope="module")
def converted(roots, tmp_path_factory) -> dict:
    """Each release converted by `python -m data_prep DATABASE --crop detect`:
    `{database: output folder}`."""
    out = tmp_path_factory.mktemp("converted")
    for name in DATABASES:
        extra = ["--part", "HS"] if name == "smic" else []
        status = data_prep_main.main([name, "--root", str(roots[name]),
                                      "--out", str(out / name), *CONVERT, *extra])
        assert status == 0
    return {name: out / name for name in DATABASES}


def _info(folder: pathlib.Path) -> dict:
    return json.loads((folder / "dataset.json").read_text())


def _records(folder: pathlib.Path) -> dict:
    records = {}
    for shard in data.load_info(folder).shards:
        for raw in tf.data.TFRecordDataset(str(shard)):
            record = features.decode(raw.numpy())
            records[record.clip_id] = record
    return records


def _region_change(record) -> dict:
    """Per face region: the mean change |frame t - first frame| over the frames, in discs
    of 3 px around the region's stored landmarks (crop coordinates)."""
    grey = np.stack([cv2.imdecode(np.frombuffer(f, np.uint8), cv2.IMREAD_GRAYSCALE)
                     for f in record.frames]).astype(np.float64)
    change = np.abs(grey - grey[0]).mean(axis=0)
    y, x = np.mgrid[0:change.shape[0], 0:change.shape[1]]
    result = {}
    for region, indices in face_frames.LANDMARKS.items():
        points = record.landmarks[list(indices)]
        near = np.zeros(change.shape, bool)
        for px, py in points:
            near |= (x - px) ** 2 + (y - py) ** 2 <= 3 ** 2
        result[region] = change[near].mean()
    return result


def _predictions(run_dir: pathlib.Path) -> list:
    with open(run_dir / "predictions.csv", newline="") as f:
        return list(csv.DictReader(f))


def _scores(rows) -> dict:
    """Accuracy, UF1 (scikit-learn's macro F1 over the classes present) and UAR (mean
    recall over them) of prediction rows, computed here."""
    truth = np.array([int(r["y_true"]) for r in rows])
    predicted = np.array([int(r["y_pred"]) for r in rows])
    present = sorted(set(truth.tolist()))
    return {"n": len(rows), "accuracy": float(np.mean(truth == predicted)),
            "uf1": float(f1_score(truth, predicted, average="macro", labels=present,
                                  zero_division=0)),
            "uar": float(np.mean([np.mean(predicted[truth == k] == k) for k in present]))}


def _assert_figures(stored: dict, expected: dict) -> None:
    assert stored["n"] == expected["n"]
    for name in ("accuracy", "uf1", "uar"):
        assert stored[name] == pytest.approx(expected[name], abs=1e-9), name


def _database(row) -> str:
    return row["subject"].split("/", 1)[0]


def _train(argv, root: pathlib.Path, experiment: str = "lbptop_svm") -> pathlib.Path:
    """`train.py ARGV` with runs and exports under `root`; the run folder."""
    status = train.main([*argv, "--out", str(root / "runs"),
                         "--export-dir", str(root / "saved")])
    assert status == 0
    (run_dir,) = (root / "runs" / experiment).iterdir()
    return run_dir


def test_every_database_converts_with_the_face_found_and_the_movement_kept(converted):
    for name in DATABASES:
        info = _info(converted[name])
        written = _written(name)
        assert info["errors"] == [], name
        assert info["classes"] == ["negative", "positive", "surprise"]
        assert {c["id"]: c["label"] for c in info["clips"]} == written
        assert info["subjects"] == sorted({f"{name}/{i.split('/')[0]}" for i in written})
        assert all(c["landmarks"] for c in info["clips"]) and info["source"]["crop"] == "detect"
        assert (info["num_frames"], info["height"], info["width"]) == (TIM, SIZE, SIZE)
        for clip_id, record in _records(converted[name]).items():
            assert (len(record.frames), record.subject) == (TIM, f"{name}/{clip_id.split('/')[0]}")
            # The face fills the crop: landmarks inside it, spanning most of its width, the
            # eyes above the nose above the mouth.
            points = record.landmarks
            assert np.all(points >= -1) and np.all(points <= SIZE), clip_id
            assert np.ptp(points[:, 0]) >= 0.7 * SIZE, clip_id
            assert points[36:48, 1].mean() < points[27:36, 1].mean() < points[48:68, 1].mean()
            # The clip's movement is where the fixture drew it for its class (the mouth
            # corners for positive, the brows for negative, the eyes for surprise), found
            # through the crop and the stored landmarks.
            change = _region_change(record)
            region = {"positive": "mouth", "negative": "brows",
                      "surprise": "eyes"}[record.label_name]
            assert max(change, key=change.get) == region, (clip_id, change)
    # CASME II's "others" is dropped by megc3 and reported, not lost.
    assert _info(converted["casme2"])["dropped"] == [{"clip": "sub02/EP09_01",
                                                      "emotion": "others"}]


def test_leave_one_database_out_scores_each_database(converted, tmp_path, capsys):
    given = ",".join(str(converted[name]) for name in DATABASES)
    run_dir = _train([*QUICK, "--data", given, "--protocol", "lodo"], tmp_path)
    out = capsys.readouterr().out
    infos = {name: _info(converted[name]) for name in DATABASES}
    # A fold per database: its subjects tested, every other database's trained on.
    folds = json.loads((run_dir / "folds.json").read_text())
    assert [f["fold"] for f in folds] == [0, 1, 2, 3]
    assert [f["test_subjects"] for f in folds] == [infos[n]["subjects"] for n in DATABASES]
    for fold, name in zip(folds, DATABASES):
        assert fold["train_subjects"] == sorted(s for other in DATABASES if other != name
                                                for s in infos[other]["subjects"])
    # Every converted clip predicted once, in the fold of its database.
    rows = _predictions(run_dir)
    # Read as one, clip ids carry their database (CASME and CASME II could share one).
    assert sorted(r["clip_id"] for r in rows) == sorted(
        f"{name}/{c['id']}" for name in DATABASES for c in infos[name]["clips"])
    assert all(folds[int(r["fold"])]["test_subjects"][0].split("/")[0] == _database(r)
               for r in rows)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["protocol"] == "lodo"
    assert sorted(metrics["datasets"]) == list(DATABASES)
    for name in DATABASES:
        assert metrics["datasets"][name]["n"] == infos[name]["num_clips"]
        _assert_figures(metrics["datasets"][name], _scores([r for r in rows
                                                            if _database(r) == name]))
    _assert_figures(metrics["pooled"], _scores(rows))
    per_database = "per database: " + "  ".join(
        f"{n}: UF1 {d['uf1']:.3f} UAR {d['uar']:.3f} (n={d['n']})"
        for n, d in metrics["datasets"].items())
    assert per_database in out
    # evaluate.py RUN_DIR recomputes the same, per database too, from predictions.csv.
    assert evaluate.main([str(run_dir)]) == 0
    recomputed = capsys.readouterr().out
    assert per_database in recomputed and "matches" in recomputed


def test_train_on_casme2_and_test_on_samm(converted, tmp_path):
    given = ",".join(str(converted[name]) for name in DATABASES)
    run_dir = _train([*QUICK, "--data", given, "--protocol", "train=casme2,test=samm",
                      "--no-export"], tmp_path)
    (fold,) = json.loads((run_dir / "folds.json").read_text())
    assert fold["train_subjects"] == _info(converted["casme2"])["subjects"]
    assert fold["test_subjects"] == _info(converted["samm"])["subjects"]
    rows = _predictions(run_dir)
    assert {r["clip_id"] for r in rows} == {f"samm/{c['id']}"
                                            for c in _info(converted["samm"])["clips"]}
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["protocol"] == "train=casme2,test=samm"
    _assert_figures(metrics["pooled"], _scores(rows))


def test_the_label_permutation_check_runs_across_databases(converted, tmp_path, capsys):
    given = ",".join(str(converted[name]) for name in ("casme2", "samm", "smic"))
    run_dir = _train([*QUICK, "--data", given, "--protocol", "lodo", "--permute-labels", "2",
                      "--no-export"], tmp_path)
    out = capsys.readouterr().out
    metrics = json.loads((run_dir / "metrics.json").read_text())
    check = metrics["permutation"]
    assert check["n"] == 2 and len(check["uf1"]) == 2
    real = _scores(_predictions(run_dir))["uf1"]
    assert check["real_uf1"] == pytest.approx(real, abs=1e-9)
    assert check["p_value"] == pytest.approx((1 + sum(u >= real for u in check["uf1"])) / 3)
    assert any(check["p_value"] == pytest.approx(p) for p in (1 / 3, 2 / 3, 1.0))
    assert f"p = {check['p_value']:.3f} for UF1 {check['real_uf1']:.3f}" in out


def test_megc2019_composite_checks_its_class_counts_and_scores_each_database(
        roots, tmp_path, capsys):
    out = tmp_path / "megc2019"
    status = data_prep_main.main(["megc2019", "--root", f"casme2={roots['casme2']}",
                                  "--root", f"samm={roots['samm']}",
                                  "--root", f"smic={roots['smic']}", "--out", str(out),
                                  *CONVERT])
    assert status == 0
    printed = capsys.readouterr().out
    info = _info(out)
    # The 18 fixture clips megc3 keeps (of 442 listed): every listed clip the fixtures
    # lack is reported, and the counts differ from the published ones by what they lack.
    kept = {f"{n}/{c}": label for n in ("casme2", "samm", "smic")
            for c, label in _written(n).items()}
    assert {c["id"]: c["label"] for c in info["clips"]} == kept
    assert all(c["landmarks"] for c in info["clips"])
    assert len(info["errors"]) == 442 - len(kept) - 1  # and CASME II's others, dropped
    assert all("not found under" in e["reason"] for e in info["errors"])
    assert {c: sum(per.values()) for c, per in PUBLISHED.items()} == {
        "negative": 250, "positive": 109, "surprise": 83}
    check = info["check"]
    assert check["expected"] == PUBLISHED
    found = {c: {d: sum(1 for i, label in kept.items()
                        if label == c and i.startswith(f"{d}/")) for d in per}
             for c, per in PUBLISHED.items()}
    assert check["found"] == found
    differences = [f"{c} {d}: {n} published, {found[c][d]} converted"
                   for c, per in PUBLISHED.items() for d, n in per.items()]
    assert check["differences"] == differences
    assert f"{check['what']}: {'; '.join(differences)}" in printed
    # A run on the composite, with no --protocol: the composite's own, leave one subject
    # out; each database scored on its clips.
    run_dir = _train([*QUICK, "--data", str(out), "--no-export"], tmp_path)
    summary = capsys.readouterr().out
    rows = _predictions(run_dir)
    folds = json.loads((run_dir / "folds.json").read_text())
    assert [f["test_subjects"] for f in folds] == [[s] for s in info["subjects"]]
    assert len(info["subjects"]) == 6
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["protocol"] == "loso"
    assert sorted(metrics["datasets"]) == ["casme2", "samm", "smic"]
    for name, figures in metrics["datasets"].items():
        assert figures["n"] == 6
        _assert_figures(figures, _scores([r for r in rows if _database(r) == name]))
        assert f"{name}: UF1 {figures['uf1']:.3f} UAR {figures['uar']:.3f} (n=6)" in summary


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error: ")
    return err


def test_databases_with_the_same_clip_names_read_as_one_and_one_read_twice_is_refused(
        roots, converted, tmp_path):
    # CASME and CASME II both name a clip sub01/EP02_01f: read as one, ids carry the database.
    clashing = (("sub01", "EP02_01f", "disgust"), ("sub01", "EP03_2", "surprise"))
    layouts.casme(tmp_path / "casme_root", clips=clashing, face=True)
    assert data_prep_main.main(["casme", "--root", str(tmp_path / "casme_root"), "--out",
                                str(tmp_path / "casme"), *CONVERT]) == 0
    both = data.load_info(f"{tmp_path / 'casme'},{converted['casme2']}")
    ids = sorted(c["id"] for c in both.clips)
    assert "casme/sub01/EP02_01f" in ids and "casme2/sub01/EP02_01f" in ids
    parsed = sorted(c["clip/id"].numpy().decode() for c in data.read_clips(both, frames=False))
    assert parsed == ids
    assert data.namespaced_id("casme2/sub01/EP02_01f", "casme2/sub01") == "casme2/sub01/EP02_01f"
    # The composite holds CASME II already: reading it beside CASME II is refused.
    out = tmp_path / "megc2019"
    assert data_prep_main.main(["megc2019", "--root", f"casme2={roots['casme2']}",
                                "--root", f"samm={roots['samm']}", "--root",
                                f"smic={roots['smic']}", "--out", str(out), *CONVERT]) == 0
    with pytest.raises(ValueError, match="subject casme2/sub01 is in .* one database is read "
                                         "twice"):
        data.load_info(f"{out},{converted['casme2']}")


def test_a_cross_database_protocol_the_data_cannot_run_is_refused_naming_the_databases(
        converted, tmp_path, capsys):
    argv = [*QUICK, "--out", str(tmp_path / "runs"), "--export-dir", str(tmp_path / "saved")]
    capsys.readouterr()
    assert train.main([*argv, "--data", str(converted["casme2"]), "--protocol", "lodo"]) == 2
    line = _error_line(capsys)
    assert "lodo" in line and "at least 2 databases" in line and "casme2" in line
    given = ",".join(str(converted[name]) for name in DATABASES)
    assert train.main([*argv, "--data", given, "--protocol", "train=casme2,test=nosuch"]) == 2
    line = _error_line(capsys)
    assert "nosuch" in line and "casme, casme2, samm, smic" in line
    assert not (tmp_path / "runs").exists()  # refused before a run folder is made
