"""Is the input pipeline ever the bottleneck? And does memory follow the batch, not the data?

1. Training steps/s of exp3 (builtin scale) fed by the real pipeline (shards -> parse ->
   random window -> decode -> resize -> flip -> batch -> prefetch) against the same model
   fed the same batches held in memory. Target (issue 2): ratio >= 0.9.
2. Resident memory while the training pipeline alone streams the dataset again and again:
   it levels off after the allocator warms up (clips stream from the shards; nothing keeps
   the dataset), where holding the data would add its size every pass.

    python benchmarks/pipeline_throughput.py [--data DIR] [--steps 30]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import tensorflow as tf

from data_prep import synthetic
from tfmer import data, experiments, training


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def stream_memory(info, config, epochs: int) -> list[float]:
    """RSS (MiB) after each epoch of iterating the training pipeline alone."""
    dataset = data.train_dataset(info, info.subjects, window=config.data.window,
                                 image_size=config.data.image_size,
                                 batch_size=config.train.batch_size, seed=0)
    after = []
    for _ in range(epochs):
        for _ in dataset:
            pass
        after.append(rss_mib())
    return after


def steps_per_second(model, dataset, steps: int) -> float:
    started = time.perf_counter()
    model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0)
    return steps / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=None, help="converted dataset (default: built-in)")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=20, help="pipeline passes for memory")
    args = parser.parse_args()
    info = data.load_info(args.data or synthetic.ensure("data/synthetic"))
    config = training.resolve_classes(experiments.get("exp3", "builtin"), info)
    batch = config.train.batch_size
    print(f"exp3 builtin scale: {config.data.image_size} px, windows of {config.data.window}, "
          f"batch {batch}; {info.name}: {len(info.clips)} clips")

    base = rss_mib()
    after = stream_memory(info, config, args.epochs)
    size = sum(s.stat().st_size for s in info.shards) / 2**20
    print(f"memory, pipeline alone (RSS MiB, {base:.0f} before; the shards hold {size:.0f} MiB): "
          f"after epoch 1 {after[0]:.0f}, 5 {after[4]:.0f}, {args.epochs} {after[-1]:.0f}; "
          f"growth over the last {args.epochs - 5} epochs {after[-1] - after[4]:+.0f}")

    trainer = experiments.trainer(config, len(info.classes))
    real = data.train_dataset(info, info.subjects, window=config.data.window,
                              image_size=config.data.image_size, batch_size=batch,
                              seed=0).repeat()
    trainer.model.fit(real, steps_per_epoch=2, epochs=1, verbose=0)  # trace once
    frames, labels = zip(*[(f.numpy(), l.numpy()) for f, l in real.take(args.steps)])
    in_memory = tf.data.Dataset.from_tensor_slices(
        (np.concatenate(frames), np.concatenate(labels))).batch(batch).repeat()
    trainer.model.fit(in_memory, steps_per_epoch=2, epochs=1, verbose=0)
    memory_rates, real_rates = [], []
    for _ in range(args.repeats):
        memory_rates.append(steps_per_second(trainer.model, in_memory, args.steps))
        real_rates.append(steps_per_second(trainer.model, real, args.steps))
    memory_rate, real_rate = statistics.median(memory_rates), statistics.median(real_rates)
    frames_per_step = batch * config.data.window
    print(f"training: in memory {memory_rate:.3f} steps/s ({memory_rate * frames_per_step:.1f} "
          f"frames/s), real pipeline {real_rate:.3f} steps/s "
          f"({real_rate * frames_per_step:.1f} frames/s)")
    print(f"ratio real / in memory: {real_rate / memory_rate:.3f}   (target >= 0.9)")


if __name__ == "__main__":
    main()
