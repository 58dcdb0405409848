"""Shared fixtures, built once per test run: tiny clips written in the manifest layout and
converted with the real converter, the built-in synthetic clips, and one finished run."""

from __future__ import annotations

import pathlib

import pytest

from data_prep import clip, manifest, synthetic
from tests.helpers import CLASSES, labelled_frames, train_quick, write_clip

SHARE_EXP3_RUN = {"test_training.py", "test_gradcam_compare.py"}
"""The files that read `exp3_run` (about 100 s to train)."""


def pytest_xdist_make_scheduler(config, log):
    """Under pytest-xdist (`-n 2`, setup.cfg) a test file runs on one worker, so its module
    fixtures are built once, and so do the files that share `exp3_run`."""
    from xdist.scheduler import LoadScopeScheduling

    class ByFile(LoadScopeScheduling):
        def _split_scope(self, nodeid):
            file = nodeid.split("::", 1)[0]
            return "exp3_run" if pathlib.Path(file).name in SHARE_EXP3_RUN else file

    return ByFile(config, log)


@pytest.fixture(scope="session")
def tiny_manifest(tmp_path_factory) -> pathlib.Path:
    """6 subjects x 4 classes, 12-frame clips with onset/apex/offset, as a manifest CSV."""
    root = tmp_path_factory.mktemp("tiny_raw")
    lines = ["path,subject,label,onset,apex,offset,fps"]
    for s in range(6):
        for label, name in enumerate(CLASSES):
            clip = f"sub{s:02d}/clip_{name}"
            write_clip(root / clip, labelled_frames(label, seed=10 * s + label), first_number=5)
            lines.append(f"{clip},{s:02d},{name},6,9,14,200")
    (root / "manifest.csv").write_text("\n".join(lines) + "\n")
    return root / "manifest.csv"


@pytest.fixture(scope="session")
def tiny_dataset(tiny_manifest, tmp_path_factory) -> pathlib.Path:
    """`tiny_manifest` converted: TIM to 8 frames of 32 px, 5 clips per shard."""
    out = tmp_path_factory.mktemp("tiny_data")
    options = clip.ConvertOptions(num_frames=8, size=32, clips_per_shard=5, workers=1,
                                     progress=False)
    manifest.convert_manifest(tiny_manifest, out, classes="tlcnn4", name="tiny", options=options)
    return out


@pytest.fixture(scope="session")
def builtin_dataset(tmp_path_factory) -> pathlib.Path:
    """The built-in synthetic clips, small: 4 subjects x 1 clip of each of the 4 classes,
    TIM to 8 frames of 32 px, with the landmarks Grad-CAM scoring needs."""
    out = tmp_path_factory.mktemp("builtin")
    synthetic.build(out, num_subjects=4, clips_per_class=1,
                    options=clip.ConvertOptions(num_frames=8, size=32, workers=1,
                                                progress=False))
    return out


@pytest.fixture(scope="session")
def exp3_run(builtin_dataset, tmp_path_factory) -> tuple[pathlib.Path, pathlib.Path]:
    """`train.py --experiment exp3 --quick --protocol kfold2` on `builtin_dataset`, the final
    model exported: `(run folder, SavedModel folder)`."""
    root = tmp_path_factory.mktemp("exp3_run")
    return train_quick("exp3", builtin_dataset, root)
