"""`tfmer.files.atomic`: a reader sees the old file or the whole new one, never a part."""

import json

import pytest

from tfmer.files import TEMPORARY_PREFIX, atomic, write_json_atomic, write_text_atomic


def test_a_write_replaces_the_file_only_when_complete(tmp_path):
    path = tmp_path / "sub" / "model.weights.h5"
    with atomic(path) as temporary:
        assert temporary.parent == path.parent and temporary.name.endswith(".weights.h5")
        assert not path.exists()  # nothing at the final name while writing
        temporary.write_bytes(b"new")
    assert path.read_bytes() == b"new" and sorted(p.name for p in path.parent.iterdir()) == [
        "model.weights.h5"]


def test_a_failed_write_keeps_the_old_file_and_leaves_nothing_behind(tmp_path):
    path = tmp_path / "metrics.json"
    write_json_atomic(path, {"uf1": 0.5})
    with pytest.raises(RuntimeError):
        with atomic(path) as temporary:
            temporary.write_text("{half")
            raise RuntimeError("interrupted")
    assert json.loads(path.read_text()) == {"uf1": 0.5}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_folders_are_written_whole_and_replace_the_old_one(tmp_path):
    path = tmp_path / "export"
    path.mkdir()
    (path / "old.txt").write_text("old")
    (tmp_path / f"{TEMPORARY_PREFIX}export").mkdir()  # left by an interrupted write
    with atomic(path) as temporary:
        temporary.mkdir()
        write_text_atomic(temporary / "new.txt", "new")
    assert sorted(p.name for p in path.iterdir()) == ["new.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["export"]
