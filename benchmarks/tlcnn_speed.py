"""How fast is the TLCNN CNN on this CPU, and does the input pipeline keep its joint stage fed?

1. Forward pass of the frame CNN (Wang et al. 2018, Section 3.4) at 227 px: frames/s, at
   the batch size of its frames stage (224) and at a small one.
2. One joint-training step of the long-term model (CNN to FC6 + LSTM, Section 4.2: 16 clips
   x 16 consecutive frames at 227 px, SGD with momentum 0.9) fed by the real pipeline
   (shards -> parse -> random window -> decode -> resize to 227 -> flip -> batch), against
   the same compiled model fed the same batches held in memory. Target (issue 5): ratio
   >= 0.9.

    python benchmarks/tlcnn_speed.py [--data DIR] [--steps 4]
"""

from __future__ import annotations

import argparse
import statistics
import time

import keras
import numpy as np
import tensorflow as tf

from data_prep import synthetic
from tfmer import data
from tfmer.models.tlcnn import build_tlcnn_clip_model, build_tlcnn_cnn

SIZE, CLIPS, WINDOW = 227, 16, 16


def frames_per_second(cnn, batch: int, repeats: int) -> float:
    images = tf.random.uniform([batch, SIZE, SIZE, 3], 0, 255)
    forward = tf.function(lambda x: cnn(x, training=False))
    forward(images)  # trace
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        forward(images).numpy()
        times.append(time.perf_counter() - started)
    return batch / statistics.median(times)


def seconds_per_step(model, dataset, steps: int) -> float:
    started = time.perf_counter()
    model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0, shuffle=False)
    return (time.perf_counter() - started) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=None, help="converted dataset (default: built-in)")
    parser.add_argument("--steps", type=int, default=4, help="timed joint steps per repeat")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    info = data.load_info(args.data or synthetic.ensure("data/synthetic"))
    classes = len(info.classes)
    keras.utils.set_random_seed(0)
    cnn = build_tlcnn_cnn(classes)
    print(f"TLCNN CNN at {SIZE} px: {cnn.count_params() / 1e6:.1f} M parameters; "
          f"{tf.config.threading.get_intra_op_parallelism_threads() or 'all'} intra-op threads")
    for batch in (224, 16):
        rate = frames_per_second(cnn, batch, repeats=3)
        print(f"forward, batch {batch}: {rate:.1f} frames/s")

    model = build_tlcnn_clip_model(cnn, classes)
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                  loss="sparse_categorical_crossentropy")
    real = data.train_dataset(info, info.subjects, window=WINDOW, image_size=SIZE,
                              batch_size=CLIPS, seed=0).repeat()
    model.fit(real, steps_per_epoch=1, epochs=1, verbose=0, shuffle=False)  # trace once
    frames, labels = zip(*[(f.numpy(), y.numpy()) for f, y in real.take(args.steps)])
    in_memory = tf.data.Dataset.from_tensor_slices(
        (np.concatenate(frames), np.concatenate(labels))).batch(CLIPS).repeat()
    model.fit(in_memory, steps_per_epoch=1, epochs=1, verbose=0, shuffle=False)
    memory_times, real_times = [], []
    for _ in range(args.repeats):
        memory_times.append(seconds_per_step(model, in_memory, args.steps))
        real_times.append(seconds_per_step(model, real, args.steps))
    memory, real_time = statistics.median(memory_times), statistics.median(real_times)
    print(f"joint step, {CLIPS} clips x {WINDOW} frames at {SIZE} px: in memory "
          f"{memory:.2f} s/step, real pipeline {real_time:.2f} s/step")
    print(f"ratio real / in memory (throughput): {memory / real_time:.3f}   (target >= 0.9)")


if __name__ == "__main__":
    main()
