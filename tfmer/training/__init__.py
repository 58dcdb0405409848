"""The engine: the fit loop, best-epoch keeping, the inner split, trainers, cross-validation.

It imports the core only (records, pipeline, models, metrics, the run folder) and never the
experiment registry: a method hands it what to build and how to train (`cross_validate`'s
`make_trainer`; `tfmer.experiments.trainer` gives a registered experiment's).

    fit                 CompiledModel, KeepBest, inner_split, batches as `fit` takes them
    trainer             Trainer (the interface), ModelTrainer (one model, the default)
    staged              StagedTrainer (stages with transfer between them: TLCNN)
    cross_validation    cross_validate (folds, predictions, metrics, the final model, export)
"""

from tfmer.training.cross_validation import (
    TrainerFactory,
    check_inputs,
    cross_validate,
    resolve_classes,
)
from tfmer.training.fit import CompiledModel, KeepBest, inner_split, save_weights
from tfmer.training.staged import StagedTrainer, standardisation
from tfmer.training.trainer import SEED_STRIDE, ModelTrainer, Trainer

__all__ = ["SEED_STRIDE", "CompiledModel", "KeepBest", "ModelTrainer", "StagedTrainer",
           "Trainer", "TrainerFactory", "check_inputs", "cross_validate", "inner_split",
           "resolve_classes", "save_weights", "standardisation"]
