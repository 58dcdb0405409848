"""Does the built-in data carry the class signal? A simple motion baseline on train.py's folds.

For every clip of the converted built-in dataset: the onset frame (the first stored frame:
clips are stored onset..offset) and the apex frame (its position in the TIM-normalised
clip), both grey and area-downsampled to 32x32; features are their difference (motion) or
the apex frame alone (appearance). Standardised linear SVM, subject-independent 5 folds
exactly as `train.py` makes them, UF1/UAR pooled over folds.

Target (issue 2): motion UF1 >= 0.5, short of perfect; appearance alone far weaker.

    python benchmarks/motion_baseline.py [--data DIR]   (default: the built-in data/synthetic)
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import tensorflow as tf
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from data_prep import synthetic
from tfmer import data, metrics, protocols

FEATURE_SIZE = 32


def _grey(encoded) -> np.ndarray:
    frame = tf.io.decode_image(encoded, channels=1, expand_animations=False)
    frame = tf.image.resize(tf.cast(frame, tf.float32), [FEATURE_SIZE, FEATURE_SIZE],
                            method="area")
    return frame.numpy().reshape(-1)


def clip_features(info: data.DatasetInfo):
    """`(subjects, labels, motion [n, d], appearance [n, d])`, streamed clip by clip."""
    subjects, labels, motion, appearance = [], [], [], []
    for clip in data.read_clips(info):
        encoded = clip["image/encoded"]
        onset, apex, offset = (int(clip[f"clip/{k}"]) for k in ("onset", "apex", "offset"))
        apex_index = round((apex - onset) / (offset - onset) * (len(encoded) - 1))
        first, peak = _grey(encoded[0]), _grey(encoded[apex_index])
        subjects.append(clip["clip/subject"].numpy().decode())
        labels.append(int(clip["clip/label"]))
        motion.append(peak - first)
        appearance.append(peak)
    return np.array(subjects), np.array(labels), np.array(motion), np.array(appearance)


def cross_validate(features, labels, subjects, folds, num_classes):
    predictions = np.empty_like(labels)
    for fold in folds:
        train = np.isin(subjects, fold["train_subjects"])
        model = make_pipeline(StandardScaler(), LinearSVC(C=0.01, max_iter=20000))
        model.fit(features[train], labels[train])
        predictions[~train] = model.predict(features[~train])
    pooled = metrics.classification_metrics(labels, predictions, num_classes)
    per_fold = [metrics.classification_metrics(labels[np.isin(subjects, f["test_subjects"])],
                                               predictions[np.isin(subjects, f["test_subjects"])],
                                               num_classes)["uf1"] for f in folds]
    return pooled, per_fold


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=None, help="converted dataset (default: built-in)")
    args = parser.parse_args()
    info = data.load_info(args.data or synthetic.ensure("data/synthetic"))
    started = time.time()
    subjects, labels, motion, appearance = clip_features(info)
    folds = protocols.make_folds(info.subjects, "kfold5", 5, fold_seed=0)
    chance = metrics.chance_levels(np.bincount(labels, minlength=len(info.classes)).tolist())
    print(f"{info.name}: {len(labels)} clips, {len(info.subjects)} subjects, "
          f"classes {', '.join(info.classes)}; kfold5 folds of train.py")
    for name, features in (("motion (apex - onset)", motion),
                           ("appearance (apex only)", appearance)):
        pooled, per_fold = cross_validate(features, labels, subjects, folds, len(info.classes))
        print(f"  {name:<23} UF1 {pooled['uf1']:.3f}  UAR {pooled['uar']:.3f}  "
              f"accuracy {pooled['accuracy']:.3f}   per-fold UF1 "
              + " ".join(f"{u:.2f}" for u in per_fold))
    print(f"  chance (uniform guess)  UF1 {chance['uf1']:.3f}  UAR {chance['uar']:.3f}")
    print(f"  target: motion UF1 >= 0.5 and < 1.0   ({time.time() - started:.1f} s)")


if __name__ == "__main__":
    main()
