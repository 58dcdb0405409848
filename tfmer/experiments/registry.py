"""The experiment registry (as TF Model Garden's `exp_factory`): a name -> the function
returning its config at the paper's scale, the overrides of the smaller scales, the model it
exports and the trainer that trains it.

The families (`bai_goecke`, `tlcnn`) register with `@register`; `tfmer.experiments` imports
them all, so `tfmer.experiments.get(name)` knows every experiment. This module imports
neither the families nor anything that imports it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import keras

from tfmer.config import SCALES, ExperimentConfig, override
from tfmer.training import BaseTrainer, ModelTrainer

DEFAULT_NUM_CLASSES = 4  # the built-in data's tlcnn4 scheme, and SMIC's smic4 scheme


@dataclasses.dataclass(frozen=True)
class _Entry:
    config: Callable[[], ExperimentConfig]
    build: Callable[[ExperimentConfig, int], keras.Model] | None
    scales: dict
    trainer: Callable[..., BaseTrainer] | None


_REGISTRY: dict[str, _Entry] = {}


def register(name: str, *, build=None, trainer=None, builtin=None, quick=None):
    """Decorator registering a config function under `name`.

    Args:
        name: the experiment name used by `train.py --experiment`.
        build: `build(config, num_classes) -> keras.Model`, the model the run exports;
            None for a method without a Keras model (the SVM baselines).
        trainer: `trainer(config, num_classes, run_dir) -> tfmer.training.BaseTrainer`
            (e.g. a `Trainer` subclass) when the method trains otherwise; None:
            `ModelTrainer` on `build` (one model, one optimizer).
        builtin: overrides (`{"train.epochs": 3, ...}`) for the built-in-data scale.
        quick: overrides for the `--quick` scale.

    Raises:
        ValueError: the name is already registered.
    """
    def decorator(function):
        if name in _REGISTRY:
            raise ValueError(f"experiment {name!r} is already registered")
        if build is None and trainer is None:
            raise ValueError(f"experiment {name!r} needs a model to build or a trainer")
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
    """The untrained model of a resolved config.

    Raises:
        ValueError: the experiment has no Keras model (an SVM baseline).
    """
    entry = _entry(config.name)
    if entry.build is None:
        raise ValueError(f"experiment {config.name} classifies handcrafted features with an "
                         f"SVM (handcrafted.method {config.handcrafted.method}): it has no "
                         f"Keras model")
    return entry.build(config, num_classes)


def trainer(config: ExperimentConfig, num_classes: int, run_dir=None) -> BaseTrainer:
    """The trainer of a resolved config, for `tfmer.training.cross_validate`: the
    registered one, or `ModelTrainer` on the experiment's `build`."""
    entry = _entry(config.name)
    if entry.trainer is None:
        return ModelTrainer(config, num_classes, run_dir, build=entry.build)
    return entry.trainer(config, num_classes, run_dir)


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

