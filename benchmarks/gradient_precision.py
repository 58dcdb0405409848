"""How far apart can a distributed step and a one-device step be? As far as float32 is
from the exact gradient.

    python benchmarks/gradient_precision.py [--experiment exp3] [--size 32] [--batch 4]

A clip model's quick-scale build (exp2, exp3; dropout off), one batch of random clips
(pixels 0..255, as the pipeline gives them) and labels: the gradient of the batch's mean
cross-entropy in float64 on one device (the reference), in float32 on one device, and in
float32 summed over two replicas of `tf.distribute.MirroredStrategy` on two logical CPUs
(each replica's share of the summed loss over the global batch size, batch normalisation
synchronised: what `tfmer.training.distributed` computes). Printed for each float32
gradient: the median and largest relative difference from the reference over the
weight tensors (largest absolute difference / largest absolute value of the tensor;
biases left out: those before batch normalisation have a zero gradient).
"""

from __future__ import annotations

import argparse

import keras
import numpy as np
import tensorflow as tf

from tfmer import experiments
from tfmer.training.fit import synchronise_batch_norm


def gradients(model, inputs, labels) -> list[np.ndarray]:
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(
            labels, model(inputs, training=True)))
    return [np.asarray(g, np.float64) for g in tape.gradient(loss, model.trainable_variables)]


def distributed_gradients(model, inputs, labels, strategy) -> list[np.ndarray]:
    half = len(labels) // 2
    shares = [(inputs[:half], labels[:half]), (inputs[half:], labels[half:])]
    values = strategy.experimental_distribute_values_from_function(
        lambda context: shares[context.replica_id_in_sync_group])

    @tf.function
    def step(share):
        share_inputs, share_labels = share
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(keras.losses.sparse_categorical_crossentropy(
                share_labels, model(share_inputs, training=True))) / len(labels)
        return tape.gradient(loss, model.trainable_variables)

    return [np.asarray(strategy.reduce("SUM", g, axis=None), np.float64)
            for g in strategy.run(step, args=(values,))]


def differences(gradient, reference, variables) -> tuple[float, float]:
    relative = [np.abs(g - r).max() / np.abs(r).max()
                for g, r, v in zip(gradient, reference, variables)
                if np.abs(r).max() > 0 and not v.path.endswith("bias")]
    return float(np.median(relative)), float(max(relative))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--experiment", default="exp3")
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--batch", type=int, default=4)
    args = parser.parse_args()
    tf.config.set_logical_device_configuration(tf.config.list_physical_devices("CPU")[0],
                                               [tf.config.LogicalDeviceConfiguration()] * 2)
    config = experiments.get(args.experiment, "quick",
                             ["model.dropout=0", f"data.image_size={args.size}"])
    window = config.data.window
    inputs = np.random.default_rng(0).uniform(
        0, 255, (args.batch, window, args.size, args.size, 3)).astype("float32")
    labels = np.arange(args.batch) % 4

    def build():
        keras.utils.set_random_seed(0)
        return experiments.build(config, 4)

    one = build()
    weights = one.get_weights()
    float32 = gradients(one, inputs, labels)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        two = build()
        two.set_weights(weights)
    synchronise_batch_norm(two)
    replicas = distributed_gradients(two, inputs, labels, strategy)
    keras.config.set_dtype_policy("float64")
    exact = build()
    exact.set_weights([w.astype(np.float64) for w in weights])
    reference = gradients(exact, inputs.astype(np.float64), labels)

    print(f"{args.experiment} (quick scale, {args.size} px, windows of {window}), a batch of "
          f"{args.batch}: relative difference from the float64 gradient, median / largest "
          f"over {len(reference)} weight tensors")
    for name, gradient in (("one device, float32", float32),
                           ("two replicas, float32", replicas)):
        median, largest = differences(gradient, reference, one.trainable_variables)
        print(f"  {name:22s} {median:.1e} / {largest:.1e}")


if __name__ == "__main__":
    main()
