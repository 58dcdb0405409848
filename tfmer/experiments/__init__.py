"""The experiments by name: `get(name)`, `names()`, `build_model(name)`, `trainer(config)`.

Each experiment is a function returning a frozen `tfmer.config.ExperimentConfig` at the
paper's scale, registered with `tfmer.experiments.registry.register`, which also names the
model it exports, the trainer that trains it and the overrides of the smaller scales
(`builtin`: the built-in synthetic data on a CPU; `quick`: a smoke run). This module is the
one that imports the families, so that importing it registers every experiment; a family
imports the registry module, never this one.
"""

from tfmer.experiments import (  # noqa: F401  (they register)
    bai_goecke,
    handcrafted,
    motion,
    tlcnn,
)
from tfmer.experiments.registry import (
    build,
    build_model,
    describe,
    get,
    names,
    register,
    trainer,
)

__all__ = ["build", "build_model", "describe", "get", "names", "register",
           "trainer"]
