"""The frozen prefix computed once against recomputed at every step: training frames/s.

    python benchmarks/frozen_cache.py [--size 112] [--from conv4_1_1x1_reduce] [--epochs 5]

exp3 (VGGFace2 ResNet-50 + Bi-LSTM, windows of 13 frames, batch 8) on the built-in data,
the training subjects of kfold5's fold 0, the backbone frozen before `--from`. The same
model, from the same initial weights, trains `--epochs` epochs (a) on frames, the frozen
layers recomputed at every step (`tfmer.data.train_dataset`), and (b) on the frozen
layers' outputs computed once (`tfmer.training.frozen.FrozenPrefix`). Printed: the
seconds of each epoch after the first (the first also traces the step), training frames
per second (windows x 13 frames / epoch time), their ratio, the one-off time and disk of
the cache, and the epochs after which the cache has paid for itself. Also printed: the
ratio's ceiling by arithmetic, from the backbone's multiply-adds (convolutions and dense
layers): a recomputing step costs the frozen layers' forward pass F plus the trained
layers' forward and backward passes, about 3 T; a cached step costs the 3 T alone, so no
cache can do better than (F + 3 T) / 3 T (`tfmer.models.split.step_ceiling`). And the
ceiling on this machine, timed: the frozen layers' forward pass on a training batch, times
an epoch's steps, is all a cache can take off a recomputing epoch.
"""

from __future__ import annotations

import argparse
import statistics
import time

import keras
import tensorflow as tf

from data_prep import builtin
from tfmer import data, experiments, protocols
from tfmer.models.clip import BACKBONE_LAYER, freeze_before
from tfmer.models.split import frozen_share, step_ceiling
from tfmer.training.fit import CompiledModel, with_epochs
from tfmer.training.frozen import FrozenPrefix, cache_path


def timed(run, repeats: int = 5) -> float:
    """The median seconds of `run()` after a first (tracing) call."""
    run()
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


class EpochTimes(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--from", dest="start", default="conv4_1_1x1_reduce")
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    config = experiments.get("exp3", "builtin", [
        f"data.image_size={args.size}", f"model.unfreeze_from={args.start}",
        f"train.epochs={args.epochs}", "train.early_stopping=false"])
    config, data_dir = builtin.prepare(config)
    info = data.load_info(data_dir)
    fold = protocols.make_folds(info.subjects, "kfold5", 5, 0)[0]
    subjects = fold["train_subjects"]
    samples = len(info.clips_of(subjects))
    window, batch = config.data.window, config.train.batch_size
    keras.utils.set_random_seed(0)
    model = experiments.build(config, len(info.classes))
    backbone = model.get_layer(BACKBONE_LAYER).layer
    freeze_before(backbone, args.start)
    share = frozen_share(backbone)
    best = step_ceiling(share)
    start_weights = model.get_weights()
    log = print

    recomputed = EpochTimes()
    frames = data.train_dataset(info, subjects, window=window, image_size=args.size,
                                batch_size=batch, flip=config.data.flip, seed=0)
    CompiledModel(model, config.train).fit(with_epochs(frames, samples, config.train),
                                           log=log, callbacks=[recomputed])
    model.set_weights(start_weights)

    cached = EpochTimes()
    cut = FrozenPrefix(model, config.train, ())
    started = time.perf_counter()
    cache = cut.write(info, subjects, cache_path(None, 0), image_size=args.size,
                      flip=config.data.flip, log=log)
    build_s = time.perf_counter() - started
    size = cache.path.stat().st_size
    features = cut.training_batches(cache, window=window, batch_size=batch, repeat=False,
                                    seed=0)
    cut.compiled.fit(with_epochs(features, samples, config.train), log=log, callbacks=[cached])
    cache.path.unlink()

    per_epoch = samples * window
    steps = -(-samples // batch)
    forward = tf.function(lambda x: cut.prefix(x, training=False))
    one_batch = next(iter(frames))[0]
    frozen_step = timed(lambda: forward(one_batch).numpy())
    frozen_epoch = frozen_step * steps
    slow, fast = statistics.median(recomputed.seconds[1:]), statistics.median(cached.seconds[1:])
    saved = slow - fast
    print(f"\nexp3 at {args.size} px, frozen before {args.start}, {samples} training clips "
          f"(windows of {window}), batch {batch}, epochs after the first:")
    print(f"  recomputed at every step: {slow:6.1f} s/epoch, {per_epoch / slow:6.1f} frames/s "
          f"(epochs {', '.join(f'{s:.1f}' for s in recomputed.seconds)})")
    print(f"  computed once:            {fast:6.1f} s/epoch, {per_epoch / fast:6.1f} frames/s "
          f"(epochs {', '.join(f'{s:.1f}' for s in cached.seconds)})")
    print(f"  ratio: {slow / fast:.2f}x (target >= 2x); by arithmetic at most {best:.2f}x: "
          f"the frozen layers are {share:.0%} of the backbone's forward multiply-adds")
    print(f"  timed: the frozen layers' forward pass takes {frozen_step:.2f} s a batch, "
          f"{frozen_epoch:.1f} s of a recomputing epoch ({steps} steps), so a cache reaches at "
          f"most {slow / (slow - frozen_epoch):.2f}x here")
    print(f"  the cache: {build_s:.1f} s once, {size / 2 ** 30:.2f} GiB on disk; it pays for "
          f"itself after {build_s / saved:.1f} epochs" if saved > 0 else "  no saving")


if __name__ == "__main__":
    main()
