"""The frozen prefix computed once: a fit whose backbone's first layers are frozen trains
the rest of the model on their outputs, computed once per training clip.

With l_s's earlier layers frozen (`model.unfreeze_from`, or Grad-CAM's choice in a fold)
the model is `suffix(prefix(frames))` (`tfmer.models.split`), and the prefix, a fixed
function, is over half of ResNet-50's compute when l_s is in conv4. `FrozenPrefix`
computes it for every frame of the fit's training clips (and for their mirror images when
the pipeline flips), writes the features to `frozen_cache/<fit seed>.tfrecord` in the run
folder (streamed back by `tf.data`: memory stays bounded by the shuffle buffer), and
trains the suffix, whose layers are the model's own, on random windows of them, as
`tfmer.data.train_dataset` draws windows of frames. The held-out clips of early stopping
are turned into features in memory (one central window each). The file goes when the
fit ends. The features are float32: a step on them equals a step on the frames
(`tests/test_split.py`: equal logits and gradients). The random draws (clip order,
windows, flips) are the same kind as the frame pipeline's but not the same numbers, so a
cached run's figures differ from an uncached one's as two seeds' do.

Used for `train.frozen_cache` `on`, and for `auto` from 3 epochs (a fit draws a window of
`data.window` of the T frames per clip and epoch, and the cache computes all T frames
once, flipped too when the pipeline flips). Off by default: a training step's cost on a
CPU is mostly the trained layers' forward and backward passes, so the saving is the
frozen layers' forward pass alone: 1.6x per epoch with ResNet-50 frozen up to conv5 at
112 px, little up to conv4 (BENCHMARKS.md), and a fold's features take disk (0.4-0.9 GB
for 72 clips of 32 frames at 112 px; 28x28x512 floats a frame at 224 px before conv4).
Not for random rotation (no finite set of variants to compute), class balancing, single
frames or flow input.
"""

from __future__ import annotations

import os
import pathlib
import tempfile
import time

import keras
import tensorflow as tf

from tfmer import data
from tfmer.files import atomic
from tfmer.models.split import split_clip_model
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


class FrozenPrefix:
    """A clip model cut at its first trainable backbone layer, and the suffix compiled for
    `train` (its `CompiledModel` trains the model's own layers).

    Attributes:
        prefix, suffix: `tfmer.models.split.split_clip_model`.
        compiled: the suffix's `CompiledModel`.
        frozen: the backbone's trainable flags it was cut for (a new cut when they change).
    """

    def __init__(self, model: keras.Model, train, frozen: tuple):
        self.prefix, self.suffix = split_clip_model(model)
        self.compiled = CompiledModel(self.suffix, train)
        self.frozen = frozen
        self._features = tf.function(lambda frames: self.prefix(frames, training=False),
                                     reduce_retracing=True)

    def write(self, info: data.DatasetInfo, subjects, path, *, image_size: int, flip: bool,
              log=print) -> pathlib.Path:
        """Writes the features of every frame of the clips of `subjects` (and of the
        mirrored frames with `flip`) to the TFRecord file `path` (atomically): one
        `Example` per clip, `features` a serialised float32 `[variants, T, h, w, c]`,
        `label`. Logs its size and time."""
        started, count, size = time.time(), 0, 0
        path = pathlib.Path(path)
        with atomic(path) as temporary, tf.io.TFRecordWriter(str(temporary)) as writer:
            for frames, labels, _ in data.eval_dataset(info, subjects, image_size=image_size):
                variants = [self._features(frames)[0]]
                if flip:  # random_flip mirrors a clip's width axis
                    variants.append(self._features(tf.reverse(frames, axis=[3]))[0])
                stacked = tf.stack(variants)
                size += stacked.shape.num_elements() * 4
                writer.write(tf.train.Example(features=tf.train.Features(feature={
                    "features": tf.train.Feature(bytes_list=tf.train.BytesList(
                        value=[tf.io.serialize_tensor(stacked).numpy()])),
                    "label": tf.train.Feature(int64_list=tf.train.Int64List(
                        value=[int(labels[0])]))})).SerializeToString())
                count += 1
        shape = "x".join(str(d) for d in self.prefix.outputs[0].shape[2:])
        log(f"  frozen prefix computed once: {count} clips x {1 + flip} variant(s), frames "
            f"of {shape} features, {size / 2 ** 30:.2f} GiB on disk ({path.parent}), "
            f"{time.time() - started:.0f} s")
        return path

    def training_batches(self, path, *, window: int, batch_size: int, flip: bool,
                         repeat: bool, seed=None):
        """Training batches of features `(float32 [B, window, h, w, c], labels)` from the
        file `write` wrote: shuffled clips, a random window each, the mirrored variant
        with probability 1/2 with `flip`, as `tfmer.data.train_dataset` draws frames."""
        spec = {"features": tf.io.FixedLenFeature([], tf.string),
                "label": tf.io.FixedLenFeature([], tf.int64)}
        shape = self.prefix.outputs[0].shape[2:]
        clips = tf.data.TFRecordDataset(str(path)).shuffle(
            data.SHUFFLE_CLIPS, seed=seed, reshuffle_each_iteration=True)
        if repeat:
            clips = clips.repeat()

        def sample(serialized):
            example = tf.io.parse_single_example(serialized, spec)
            variants = tf.ensure_shape(tf.io.parse_tensor(example["features"], tf.float32),
                                       [1 + flip, None, *shape])
            chosen = variants[0]
            if flip:
                mirrored = tf.random.uniform([], seed=seed) < 0.5
                chosen = tf.cond(mirrored, lambda: variants[1], lambda: variants[0])
            return data.random_window(chosen, window, seed=seed), tf.cast(example["label"],
                                                                          tf.int32)

        batches = clips.map(sample, num_parallel_calls=data.AUTOTUNE).batch(batch_size)
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
    """Where a fit's features go: `frozen_cache/seed<seed>-<process id>.tfrecord` in the
    run folder (jobs of one run never share one; a killed job's file stays until the
    folder is removed), or in the system's temporary folder for a trainer without one."""
    root = (run_folder.file(CACHE) if run_folder is not None
            else pathlib.Path(tempfile.gettempdir()) / f"tfmer-{CACHE}")
    return root / f"seed{seed}-{os.getpid()}.tfrecord"
