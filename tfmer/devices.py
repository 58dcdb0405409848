"""Where and how a run trains: the `device` config section resolved against the machine.

`resolve` turns `DeviceConfig` (`auto` or an explicit choice per switch) and the GPUs
TensorFlow finds into the settings a run uses, recorded in its folder (`device.json`):

* `mixed_precision`: `auto` is `mixed_bfloat16` on a GPU of compute capability 8 or more
  (Ampere and later: bfloat16 needs no loss scaling), `mixed_float16` on 7.x (Volta,
  Turing: float16 tensor cores; Keras scales the loss), float32 on older GPUs and on a
  CPU. The models' softmax layers compute in float32 whatever the policy.
* `xla`: `auto` compiles the training step with XLA (`jit_compile`) where a GPU is found.
* `prefetch_to_device`: `auto` stages the training batches on the GPU ahead of the step
  (`tf.data.experimental.prefetch_to_device`) where a GPU is found.
* `strategy`: `default` one device; `mirrored` every local GPU
  (`tf.distribute.MirroredStrategy`: one CPU replica on a machine without GPUs). The batch
  of a step stays `train.batch_size` in all (the global batch, split evenly across the
  replicas), so the learning rate of the config applies unchanged; scale both with `--set`
  for a larger global batch. Batch normalisation keeps per-replica statistics (Keras'
  default). `multiworker` is refused: Keras 3's `Model.fit` does not run under
  `tf.distribute.MultiWorkerMirroredStrategy` (keras-team/keras#20585); several machines
  train a run's folds as jobs instead (`train.py --run-dir DIR --folds ...`).

On a CPU every `auto` resolves to what tfmer did before: float32, no XLA, no prefetching
to a device, one device. `use` applies resolved settings for the length of a run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os

import keras
import tensorflow as tf

from tfmer.config import DeviceConfig

MULTIWORKER_UNSUPPORTED = (
    "Keras 3's Model.fit does not run under tf.distribute.MultiWorkerMirroredStrategy "
    "(keras-team/keras#20585)")


@dataclasses.dataclass(frozen=True)
class Settings:
    """What a run uses (`resolve`), as `device.json` records it.

    Attributes:
        gpus: the GPUs found, `[{"name", "compute_capability"}]`.
        strategy: `default` or `mirrored`.
        mixed_precision: the Keras dtype policy: `float32`, `mixed_float16`,
            `mixed_bfloat16`.
        xla: the training step compiled with XLA.
        prefetch_to_device: the device training batches are staged on, or None.
    """

    gpus: tuple = ()
    strategy: str = "default"
    mixed_precision: str = "float32"
    xla: bool = False
    prefetch_to_device: str | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def describe(self) -> str:
        """One line for the run's log."""
        found = (f"{len(self.gpus)} GPU(s) ({', '.join(g['name'] for g in self.gpus)})"
                 if self.gpus else "no GPU, the CPU")
        return (f"device: {found}; {self.strategy} strategy, {self.mixed_precision}, XLA "
                f"{'on' if self.xla else 'off'}, prefetch to "
                f"{self.prefetch_to_device or 'host memory'}")


def local_gpus() -> list[dict]:
    """The GPUs TensorFlow finds: `[{"name", "compute_capability": [major, minor]}]`."""
    found = []
    for gpu in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(gpu)
        found.append({"name": details.get("device_name", gpu.name),
                      "compute_capability": list(details.get("compute_capability", (0, 0)))})
    return found


def resolve(device: DeviceConfig, gpus: list[dict], environ=os.environ) -> Settings:
    """The settings of `device` on a machine with `gpus` (`local_gpus`).

    Raises:
        ValueError: `multiworker` (without `TF_CONFIG`, or at all: see the module).
    """
    if device.strategy == "multiworker":
        if "TF_CONFIG" not in environ:
            raise ValueError("device.strategy multiworker needs TF_CONFIG in the environment "
                             "(the cluster's workers and this one's task)")
        raise ValueError(f"device.strategy multiworker is not available: "
                         f"{MULTIWORKER_UNSUPPORTED}; train the run's folds as jobs on the "
                         f"machines instead (train.py --run-dir DIR --folds ...)")
    lowest = min((tuple(g["compute_capability"]) for g in gpus), default=None)
    if device.mixed_precision != "auto":
        policy = "float32" if device.mixed_precision == "off" else device.mixed_precision
    elif lowest is None or lowest < (7, 0):
        policy = "float32"
    else:
        policy = "mixed_bfloat16" if lowest >= (8, 0) else "mixed_float16"
    xla = bool(gpus) if device.xla == "auto" else device.xla == "on"
    prefetch = bool(gpus) if device.prefetch_to_device == "auto" else (
        device.prefetch_to_device == "on")
    return Settings(gpus=tuple(gpus), strategy=device.strategy, mixed_precision=policy,
                    xla=xla, prefetch_to_device=("/gpu:0" if gpus else "/cpu:0") if prefetch
                    else None)


_current = Settings()


def current() -> Settings:
    """The settings of the run in progress (`use`); the defaults outside a run."""
    return _current


@contextlib.contextmanager
def use(settings: Settings):
    """Applies `settings` for the block: the Keras dtype policy, the settings `current`
    gives the training code (XLA, prefetching) and the strategy's scope (models built in
    the block are mirrored); all restored afterwards."""
    global _current
    previous, policy = _current, keras.mixed_precision.global_policy()
    strategy = (tf.distribute.MirroredStrategy() if settings.strategy == "mirrored"
                else tf.distribute.get_strategy())
    _current = settings
    keras.mixed_precision.set_global_policy(settings.mixed_precision)
    try:
        with strategy.scope():
            yield strategy
    finally:
        _current = previous
        keras.mixed_precision.set_global_policy(policy)
