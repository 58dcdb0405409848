"""The frozen prefix computed once: a fit whose backbone's first layers are frozen trains
the rest of the model on their outputs, computed once per training clip.

With l_s's earlier layers frozen (`model.unfreeze_from`, or Grad-CAM's choice in a fold)
the model is `suffix(prefix(frames))` (`tfmer.models.split`), and the prefix is a fixed
function: 42 % of ResNet-50's forward multiply-adds when l_s is conv4's first layer, 76 %
when it is conv5's (`benchmarks/frozen_cache.py`). `FrozenPrefix` computes it for every
frame of the fit's training clips (and for their mirror images when the pipeline flips),
writes the features to `frozen_cache/seed<N>-<pid>.f32` in the run folder (raw float32
frames, memory-mapped and read back a window at a time by `tf.data`: memory stays bounded
by the prefetched batches), and trains the suffix, whose layers are the model's own, on
random windows of them, as `tfmer.data.train_dataset` draws windows of frames. The
held-out clips of early stopping are turned into features in memory (one central window
each). The file goes when the fit ends. The features are float32: a step on them equals a
step on the frames (`tests/test_split.py`: equal logits and gradients). The random draws
(clip order, windows, flips) are the same kind as the frame pipeline's but not the same
numbers, so a cached run's figures differ from an uncached one's as two seeds' do.

Used for `train.frozen_cache` `on`, and for `auto` from 3 epochs (a fit draws a window of
`data.window` of the T frames per clip and epoch, and the cache computes all T frames
once, flipped too when the pipeline flips). Off by default: a training step's cost is
mostly the trained layers' forward and backward passes, on any machine, so the saving is
the frozen layers' forward pass alone (the log gives its ceiling, `step_ceiling`): 1.24x
per epoch with ResNet-50 frozen up to conv4 at 112 px, 1.66x up to conv5 (BENCHMARKS.md), and
a fold's features take disk (0.4-0.9 GB for 72 clips of 32 frames at 112 px; 28x28x512
floats a frame at 224 px before conv4).
Not for random rotation (no finite set of variants to compute), class balancing, single
frames or flow input.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf

from tfmer import data
from tfmer.files import atomic
from tfmer.models.clip import BACKBONE_LAYER
from tfmer.models.split import frozen_share, split_clip_model, step_ceiling
from tfmer.training.fit import CompiledModel, with_cardinality

CACHE = "frozen_cache"
"""The run folder's subfolder of the caches of the fits in progress."""
AUTO_EPOCHS = 3
"""`train.frozen_cache: auto` caches from this many epochs on."""


def unsuitable(config) -> str | None:
    """Why `config`'s fits cannot or should not cache a frozen prefix; None when they
    can (and, the backbone's first layers being frozen, `FrozenPrefix` applies)."""
    data_config, train = config.data, config.train
    if train.frozen_cache == "off":
        return "train.frozen_cache off"
    if data_config.input != "frames" or not data_config.window or data_config.window == 1:
        return "it trains on windows of frames only"
    if data_config.rotation:
        return f"random rotation (data.rotation {data_config.rotation}) has no finite variants"
    if data_config.balance_classes:
        return "class balancing draws clips with replacement"
    if train.frozen_cache == "auto" and train.epochs < AUTO_EPOCHS:
        return f"fewer than {AUTO_EPOCHS} epochs: computing it costs more than it saves"
    return None


@dataclasses.dataclass(frozen=True)
class Cache:
    """The file `FrozenPrefix.write` wrote and where each clip's frames are in it.

    Attributes:
        path: the file: float32 frames of shape `frame`, one after another.
        frame: a frame's features' shape `(h, w, c)`.
        variants: 2 when the mirrored frames follow each clip's frames, else 1.
        starts, lengths, labels: per clip, its first frame's row, its frame count T and
            its label.
    """

    path: pathlib.Path
    frame: tuple
    variants: int
    starts: np.ndarray
    lengths: np.ndarray
    labels: np.ndarray


class FrozenPrefix:
    """A clip model cut at its first trainable backbone layer, and the suffix compiled for
    `train` (its `CompiledModel` trains the model's own layers).

    Attributes:
        prefix, suffix: `tfmer.models.split.split_clip_model`.
        compiled: the suffix's `CompiledModel`.
        frozen: the backbone's trainable flags it was cut for (a new cut when they change).
        share: the frozen layers' share of the backbone's forward multiply-adds.
    """

    def __init__(self, model: keras.Model, train, frozen: tuple):
        self.share = frozen_share(model.get_layer(BACKBONE_LAYER).layer)
        self.prefix, self.suffix = split_clip_model(model)
        self.compiled = CompiledModel(self.suffix, train)
        self.frozen = frozen
        self._features = tf.function(lambda frames: self.prefix(frames, training=False),
                                     reduce_retracing=True)

    def write(self, info: data.DatasetInfo, subjects, path, *, image_size: int, flip: bool,
              log=print) -> Cache:
        """Writes the features of every frame of the clips of `subjects` (and of the
        mirrored frames with `flip`) to the file `path` (atomically), raw float32 frames
        `[h, w, c]` one after another: clip by clip, each clip's T frames, then with `flip`
        their mirror images. Logs its size and time."""
        started, starts, lengths, labels = time.time(), [], [], []
        path, row = pathlib.Path(path), 0
        with atomic(path) as temporary, open(temporary, "wb") as out:
            for frames, label, _ in data.eval_dataset(info, subjects, image_size=image_size):
                variants = [self._features(frames)[0]]
                if flip:  # random_flip mirrors a clip's width axis
                    variants.append(self._features(tf.reverse(frames, axis=[3]))[0])
                for variant in variants:
                    out.write(variant.numpy().tobytes())
                starts.append(row)
                lengths.append(int(frames.shape[1]))
                labels.append(int(label[0]))
                row += lengths[-1] * len(variants)
        frame = tuple(self.prefix.outputs[0].shape[2:])
        cache = Cache(path, frame, 1 + flip, np.array(starts, np.int64),
                      np.array(lengths, np.int32), np.array(labels, np.int32))
        log(f"  frozen prefix computed once: {len(starts)} clips x {cache.variants} "
            f"variant(s), frames of {'x'.join(map(str, frame))} features, "
            f"{path.stat().st_size / 2 ** 30:.2f} GiB on disk ({path.parent}), "
            f"{time.time() - started:.0f} s; the frozen layers are {self.share:.0%} of the "
            f"backbone's forward pass, a step on their features at most "
            f"{step_ceiling(self.share):.2f}x faster")
        return cache

    def training_batches(self, cache: Cache, *, window: int, batch_size: int, repeat: bool,
                         seed=None):
        """Training batches of features `(float32 [B, window, h, w, c], labels)` from the
        file `write` wrote: shuffled clips, a random window each, the mirrored variant
        with probability 1/2 where the cache has it, as `tfmer.data.train_dataset` draws frames. The
        draws come first, in order; then only the window's frames are read from the file
        (memory-mapped)."""
        rows = np.memmap(cache.path, np.float32, mode="r").reshape(-1, *cache.frame)
        clips = tf.data.Dataset.from_tensor_slices((cache.starts, cache.lengths, cache.labels))
        clips = clips.shuffle(data.SHUFFLE_CLIPS, seed=seed, reshuffle_each_iteration=True)
        if repeat:
            clips = clips.repeat()

        def draw(first_row, length, label):
            if cache.variants == 2:
                mirrored = tf.random.uniform([], seed=seed) < 0.5
                first_row += tf.cast(mirrored, tf.int64) * tf.cast(length, tf.int64)
            start = tf.random.uniform([], 0, tf.maximum(length - window, 0) + 1,
                                      dtype=tf.int32, seed=seed)
            return first_row + tf.cast(data.window_indices(length, window, start), tf.int64), label

        def read(window_rows, label):
            features = tf.numpy_function(lambda chosen: rows[chosen], [window_rows], tf.float32,
                                         stateful=False)
            return tf.ensure_shape(features, [window, *cache.frame]), label

        batches = clips.map(draw).map(read, num_parallel_calls=data.AUTOTUNE).batch(batch_size)
        return batches.prefetch(2).with_options(data.pipeline_options())

    def validation_features(self, batches, count: int, batch_size: int):
        """The held-out batches `(frames, labels)` as features, computed here, in memory
        (each clip's central window), with their count declared."""
        features, labels = [], []
        for frames, label in batches:
            features.append(self._features(frames))
            labels.append(label)
        dataset = tf.data.Dataset.from_tensor_slices((tf.concat(features, 0),
                                                      tf.concat(labels, 0)))
        return with_cardinality(dataset.batch(batch_size), count, batch_size)


def cache_path(run_folder, seed: int) -> pathlib.Path:
    """Where a fit's features go: `frozen_cache/seed<seed>-<process id>.f32` in the
    run folder (jobs of one run never share one; a killed job's file stays until the
    folder is removed), or in the system's temporary folder for a trainer without one."""
    root = (run_folder.file(CACHE) if run_folder is not None
            else pathlib.Path(tempfile.gettempdir()) / f"tfmer-{CACHE}")
    return root / f"seed{seed}-{os.getpid()}.f32"
