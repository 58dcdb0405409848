"""The engine: the fit loop, best-epoch keeping, the inner split, trainers, cross-validation.

It imports the core only (records, pipeline, models, metrics, the run folder) and never the
experiment registry: a method hands it what to build and how to train (`cross_validate`'s
`make_trainer`; `tfmer.experiments.trainer` gives a registered experiment's).

    fit                 CompiledModel, KeepBest, inner_split, batches as `fit` takes them,
                        FoldRecorder (epoch checkpoints to resume from, TensorBoard logs)
    distributed         DistributedFit (the fit loop across a cluster's workers)
    trainer             BaseTrainer (the interface), Trainer (Keras networks), ModelTrainer
                        (one model, the default)
    staged              StagedTrainer (stages with transfer between them: TLCNN)
    svm                 SVMTrainer (handcrafted features once per run, an SVM per fold)
    cross_validation    cross_validate (folds, predictions, metrics, the final model, export;
                        resuming a killed run; folds as jobs), merge (pooling jobs' folds)
"""

from tfmer.training.cross_validation import (
    TrainerFactory,
    check_inputs,
    cross_validate,
    merge,
    resolve_classes,
)
from tfmer.training.fit import CompiledModel, KeepBest, inner_split, save_weights
from tfmer.training.staged import StagedTrainer, standardisation
from tfmer.training.svm import SVMTrainer
from tfmer.training.trainer import SEED_STRIDE, BaseTrainer, ModelTrainer, Trainer

__all__ = ["SEED_STRIDE", "BaseTrainer", "CompiledModel", "KeepBest", "ModelTrainer",
           "SVMTrainer", "StagedTrainer", "Trainer", "TrainerFactory", "check_inputs",
           "cross_validate", "inner_split", "merge", "resolve_classes", "save_weights",
           "standardisation"]
