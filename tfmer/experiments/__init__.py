"""The experiment registry: `get(name)`, `names()`, `build_model(name)`.

Each experiment is a function returning a frozen `ExperimentConfig` at the paper's scale,
registered with `register`, which also names the model builder and the overrides of the
smaller scales (`builtin`: the built-in synthetic data on a CPU; `quick`: a smoke run).
Importing this package registers every experiment module listed at the bottom.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import keras

from tfmer.experiments.config import (
    GRADCAM,
    SCALES,
    DataConfig,
    ExperimentConfig,
    ModelConfig,
    ProtocolConfig,
    TrainConfig,
    TransferConfig,
    override,
)

DEFAULT_NUM_CLASSES = 4  # the built-in data's tlcnn4 scheme, and SMIC's smic4 scheme


@dataclasses.dataclass(frozen=True)
class _Entry:
    config: Callable[[], ExperimentConfig]
    build: Callable[[ExperimentConfig, int], keras.Model]
    scales: dict
    trainer: type | None


_REGISTRY: dict[str, _Entry] = {}


def register(name: str, *, build, trainer=None, builtin=None, quick=None):
    """Decorator registering a config function under `name`.

    Args:
        name: the experiment name used by `train.py --experiment`.
        build: `build(config, num_classes) -> keras.Model`, the model the run exports.
        trainer: the class that trains it in each fold,
            `trainer(config, num_classes, run_dir)` with the interface of
            `tfmer.training.FoldTrainer`; None: `FoldTrainer` (one model, one optimizer).
        builtin: overrides (`{"train.epochs": 3, ...}`) for the built-in-data scale.
        quick: overrides for the `--quick` scale.

    Raises:
        ValueError: the name is already registered.
    """
    def decorator(function):
        if name in _REGISTRY:
            raise ValueError(f"experiment {name!r} is already registered")
        _REGISTRY[name] = _Entry(function, build, {"builtin": builtin or {}, "quick": quick or {}},
                                 trainer)
        return function
    return decorator


def names() -> list[str]:
    """The registered experiment names, sorted."""
    return sorted(_REGISTRY)


def _entry(name: str) -> _Entry:
    if name not in _REGISTRY:
        raise ValueError(f"unknown experiment {name!r}; registered: {', '.join(names())}")
    return _REGISTRY[name]


def get(name: str, scale: str = "paper", overrides=()) -> ExperimentConfig:
    """The validated config of experiment `name` at `scale`, with `--set` overrides applied.

    Raises:
        ValueError: unknown name (listing the registered ones), unknown scale, bad override.
    """
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; known: {', '.join(SCALES)}")
    entry = _entry(name)
    config = entry.config().validate()
    if scale != "paper":
        config = override(dataclasses.replace(config, scale=scale), entry.scales[scale])
    return override(config, overrides)


def build(config: ExperimentConfig, num_classes: int) -> keras.Model:
    """The untrained model of a resolved config."""
    return _entry(config.name).build(config, num_classes)


def trainer_class(name: str) -> type | None:
    """The trainer class registered for experiment `name`; None for the default
    (`tfmer.training.FoldTrainer`)."""
    return _entry(name).trainer


def build_model(name: str, quick: bool = False, num_classes: int | None = None) -> keras.Model:
    """The untrained Keras model of a registered experiment, as `train.py` would build it.

    Args:
        name: experiment name.
        quick: the `--quick` scale.
        num_classes: classes of the softmax; default the config's class list, else 4.
    """
    config = get(name, "quick" if quick else "paper")
    if num_classes is None:
        num_classes = len(config.data.classes) if config.data.classes else DEFAULT_NUM_CLASSES
    return build(config, num_classes)


def describe(name: str) -> str:
    """One line: name, paper, description (for `train.py --list`)."""
    config = _entry(name).config()
    return f"{name:<12} {config.paper}: {config.description}"


__all__ = ["GRADCAM", "DataConfig", "ExperimentConfig", "ModelConfig", "ProtocolConfig",
           "TrainConfig", "TransferConfig", "build", "build_model", "describe", "get", "names",
           "override", "register", "trainer_class"]

from tfmer.experiments import bai_goecke  # noqa: E402,F401  (registers exp1, exp2, exp3)
from tfmer.experiments import tlcnn  # noqa: E402,F401  (registers tlcnn, tlcnn_e, ..., c3d)
