"""A fit across the workers of a cluster (`device.strategy: multiworker`): tfmer's own
training loop, as Keras 3's `Model.fit` does not run under
`tf.distribute.MultiWorkerMirroredStrategy` (keras-team/keras#20585).

It trains as `fit` would on one device. Every worker draws the same global batch from its
own copy of the pipeline (the seeds are the fit's), and replica r of n trains on rows
`r * B // n` to `(r + 1) * B // n` of it: its loss is its share of the batch's summed
cross-entropy divided by the global batch size B (plus 1/n of the regularisation), so the
gradients the optimizer sums across replicas (Keras' `apply_gradients` all-reduces them)
are the gradient of the global batch's mean loss, the one-device step's. The epoch's
`loss` and `accuracy` are sums over the global batches divided by their samples (Keras
weights each batch by its size alike), and the held-out split is scored the same way,
its sums all-reduced, so every worker sees the same `val_loss` and stops at the same
epoch. The batches are drawn as Keras' epoch iterator draws them (`fit.replay`), so a
multi-worker fit trains on a one-device fit's batches, epoch after epoch. The section's
callbacks (best epoch, decay, checkpoints, TensorBoard) and Keras' progress line run as
under `fit`.
"""

from __future__ import annotations

import itertools

import keras
import tensorflow as tf

SUM = tf.distribute.ReduceOp.SUM


def _share(tensor, replica: tf.distribute.ReplicaContext):
    """The rows of `tensor` (a global batch) that `replica` trains on."""
    size = tf.shape(tensor)[0]
    index, count = replica.replica_id_in_sync_group, replica.num_replicas_in_sync
    return tensor[index * size // count:(index + 1) * size // count]


class DistributedFit:
    """The training and scoring steps of one compiled model under the strategy in scope.

    Made again whenever the model is compiled again (what trains has changed).

    Args:
        model: a compiled model (probabilities out, sparse labels).
    """

    def __init__(self, model: keras.Model):
        self.model = model
        self.strategy = tf.distribute.get_strategy()
        self._train = tf.function(self._train_step)
        self._score = tf.function(self._score_step)

    def _sums(self, inputs, labels, training: bool):
        """This replica's `(summed cross-entropy, correct, its part of the regularisation)`
        on its share of the global batch `(inputs, labels)`."""
        replica = tf.distribute.get_replica_context()
        inputs = tf.nest.map_structure(lambda t: _share(t, replica), inputs)
        labels = tf.cast(_share(labels, replica), tf.int64)
        probabilities = self.model(inputs, training=training)
        summed = tf.reduce_sum(keras.losses.sparse_categorical_crossentropy(
            labels, probabilities))
        correct = tf.reduce_sum(tf.cast(tf.argmax(probabilities, axis=-1) == labels,
                                        tf.float32))
        extra = tf.add_n(self.model.losses) if self.model.losses else tf.constant(0.0)
        return summed, correct, extra / replica.num_replicas_in_sync

    def _train_step(self, inputs, labels):
        def replica_step(inputs, labels):
            size = tf.cast(tf.shape(labels)[0], tf.float32)  # the global batch's
            model, optimizer = self.model, self.model.optimizer
            with tf.GradientTape() as tape:
                summed, correct, extra = self._sums(inputs, labels, training=True)
                scaled = optimizer.scale_loss(summed / size + extra)
            gradients = tape.gradient(scaled, model.trainable_variables)
            optimizer.apply_gradients(zip(gradients, model.trainable_variables))
            return summed, correct, extra

        return self._reduced(replica_step, inputs, labels)

    def _score_step(self, inputs, labels):
        return self._reduced(lambda inputs, labels: self._sums(inputs, labels, training=False),
                             inputs, labels)

    def _reduced(self, replica_step, inputs, labels):
        """`(summed cross-entropy, correct, regularisation)` of the global batch."""
        parts = self.strategy.run(replica_step, (inputs, labels))
        return tuple(self.strategy.reduce(SUM, part, axis=None) for part in parts)

    @staticmethod
    def _figures(totals: list, prefix: str = "") -> dict:
        """`loss` and `accuracy` from `[summed loss, correct, samples]`."""
        loss, correct, samples = totals
        return {f"{prefix}accuracy": correct / samples, f"{prefix}loss": loss / samples}

    def _pass(self, step, batches, totals: list, after_batch=None) -> None:
        """Runs `step` on every `(inputs, labels)` of `batches`, adding to `totals`."""
        for index, (inputs, labels) in enumerate(batches):
            summed, correct, extra = step(inputs, labels)
            samples = int(tf.shape(labels)[0])
            totals[0] += float(summed) + float(extra) * samples
            totals[1] += float(correct)
            totals[2] += samples
            if after_batch is not None:
                after_batch(index, self._figures(totals))

    def evaluate(self, validation) -> dict:
        """`val_loss` and `val_accuracy` of the held-out batches."""
        totals = [0.0, 0.0, 0]
        self._pass(self._score, validation, totals)
        return self._figures(totals, "val_")

    def fit(self, batches, *, validation=None, epochs: int, initial_epoch: int = 0,
            steps_per_epoch: int | None = None, callbacks=(), verbose: int = 2):
        """Trains as `keras.Model.fit(batches, validation_data=validation, epochs=...,
        initial_epoch=..., steps_per_epoch=..., callbacks=..., shuffle=False)` does.

        Returns:
            Its `keras.callbacks.History`.
        """
        steps = steps_per_epoch or int(batches.cardinality())
        history = keras.callbacks.History()
        callback_list = keras.callbacks.CallbackList(
            list(callbacks) + [history], add_progbar=verbose != 0, verbose=verbose,
            epochs=epochs, steps=steps, model=self.model)
        self.model.stop_training = False
        callback_list.on_train_begin()
        stream = iter(batches) if steps_per_epoch else None  # one stream for every epoch
        logs = {}
        for epoch in range(initial_epoch, epochs):
            callback_list.on_epoch_begin(epoch)
            epoch_batches = (itertools.islice(stream, steps) if stream is not None
                             else iter(batches))
            totals = [0.0, 0.0, 0]
            self._pass(self._train, epoch_batches, totals,
                       after_batch=callback_list.on_train_batch_end)
            if stream is None:
                iter(batches)  # Keras' epoch iterator opens the next epoch's at once
            logs = self._figures(totals)
            if validation is not None:
                logs.update(self.evaluate(validation))
            callback_list.on_epoch_end(epoch, logs)
            if self.model.stop_training:
                break
        callback_list.on_train_end(logs)
        return history
