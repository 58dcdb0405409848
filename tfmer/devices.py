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
  (`tf.distribute.MirroredStrategy`: one CPU replica on a machine without GPUs);
  `multiworker` the workers of the cluster `TF_CONFIG` describes
  (`tf.distribute.MultiWorkerMirroredStrategy`, trained by tfmer's own step:
  `tfmer.training.distributed`, as Keras 3's `Model.fit` does not run under it,
  keras-team/keras#20585). The batch of a step stays `train.batch_size` in all (the global
  batch, split evenly across the replicas), so the learning rate of the config applies
  unchanged; scale both with `--set` for a larger global batch. Batch normalisation
  computes its statistics over the global batch (Keras' `synchronized`), so a step
  computes what a one-device step on the same batch does, up to the order of floating
  point sums; dropout draws each replica's masks itself.

On a CPU every `auto` resolves to what tfmer did before: float32, no XLA, no prefetching
to a device, one device. `use` applies resolved settings for the length of a run.

`multiworker` runs the same `train.py` command on every worker, each with its `TF_CONFIG`
(`{"cluster": {"worker": ["host:port", ...]}, "task": {"type": "worker", "index": i}}`).
The chief (worker 0, or a task of type `chief`) writes the run folder and the export;
the other workers train alongside it into a scratch folder removed at the end. Its
collective operations must be set up before TensorFlow runs anything in the process, so
the strategy is made once, when a run first enters `use`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os

import keras
import tensorflow as tf

from tfmer.config import DeviceConfig

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
        workers: the processes a step runs on (`multiworker`: the cluster's tasks), 1
            otherwise.
        worker: this process's index among them (0: the chief).
    """

    gpus: tuple = ()
    strategy: str = "default"
    mixed_precision: str = "float32"
    xla: bool = False
    prefetch_to_device: str | None = None
    workers: int = 1
    worker: int = 0

    @property
    def chief(self) -> bool:
        """This process writes the run (the only process, or the cluster's chief)."""
        return self.worker == 0

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def describe(self) -> str:
        """One line for the run's log."""
        found = (f"{len(self.gpus)} GPU(s) ({', '.join(g['name'] for g in self.gpus)})"
                 if self.gpus else "no GPU, the CPU")
        workers = (f", worker {self.worker} of {self.workers}" if self.workers > 1 else "")
        return (f"device: {found}; {self.strategy} strategy{workers}, {self.mixed_precision}, XLA "
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
        ValueError: `multiworker` without a usable `TF_CONFIG` (`cluster`).
    """
    workers, worker = cluster(environ) if device.strategy == "multiworker" else (1, 0)
    lowest = min((tuple(g["compute_capability"]) for g in gpus), default=None)
    if device.mixed_precision != "auto":
        policy = "float32" if device.mixed_precision == "off" else device.mixed_precision
    elif lowest is None or lowest < (7, 0):
        policy = "float32"
    else:
        policy = "mixed_bfloat16" if lowest >= (8, 0) else "mixed_float16"
    # A multi-worker step holds its all-reduce, which XLA does not compile.
    xla = device.strategy != "multiworker" and (
        bool(gpus) if device.xla == "auto" else device.xla == "on")
    prefetch = bool(gpus) if device.prefetch_to_device == "auto" else (
        device.prefetch_to_device == "on")
    return Settings(gpus=tuple(gpus), strategy=device.strategy, mixed_precision=policy,
                    xla=xla, prefetch_to_device=("/gpu:0" if gpus else "/cpu:0") if prefetch
                    else None, workers=workers, worker=worker)


def cluster(environ=os.environ) -> tuple[int, int]:
    """`(workers, this one's index)` from `TF_CONFIG` (index 0 the chief: a task of type
    `chief`, else worker 0).

    Raises:
        ValueError: no `TF_CONFIG`, or one that is not a cluster with this task in it.
    """
    if "TF_CONFIG" not in environ:
        raise ValueError("device.strategy multiworker needs TF_CONFIG in the environment "
                         "(the cluster's workers and this one's task)")
    try:
        spec = json.loads(environ["TF_CONFIG"])
        chiefs, workers = spec["cluster"].get("chief", []), spec["cluster"].get("worker", [])
        task = (spec["task"]["type"], int(spec["task"]["index"]))
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise ValueError(f"TF_CONFIG is not a cluster and a task ({error!r}): give "
                         f'{{"cluster": {{"worker": ["host:port", ...]}}, '
                         f'"task": {{"type": "worker", "index": i}}}}') from None
    order = ([("chief", i) for i in range(len(chiefs))]
             + [("worker", i) for i in range(len(workers))])
    if task not in order:
        raise ValueError(f"TF_CONFIG: task {task[0]} {task[1]} is not in its cluster "
                         f"({len(order)} task(s))")
    return len(order), order.index(task)


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
    strategy = _strategy(settings.strategy)
    _current = settings
    keras.mixed_precision.set_global_policy(settings.mixed_precision)
    try:
        with strategy.scope():
            yield strategy
    finally:
        _current = previous
        keras.mixed_precision.set_global_policy(policy)


_multiworker = None  # made once a process (its collective operations are set up once)


def _strategy(name: str):
    """The `tf.distribute` strategy `name` stands for.

    Raises:
        ValueError: `multiworker` after TensorFlow ran operations in this process.
    """
    global _multiworker
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name != "multiworker":
        return tf.distribute.get_strategy()
    if _multiworker is None:
        try:
            _multiworker = tf.distribute.MultiWorkerMirroredStrategy()
        except RuntimeError as error:  # "Collective ops must be configured at program startup"
            raise ValueError(f"device.strategy multiworker: {error}; start the run in a "
                             f"fresh process (train.py) before TensorFlow runs anything "
                             f"else") from None
    return _multiworker
