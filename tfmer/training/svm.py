"""The trainer of the handcrafted baselines: features once per run, an SVM per fold.

`SVMTrainer` computes every clip's features at its first fit (`tfmer.clip_features`, cached
in the run folder as `features.npz`) and, for each fit, chooses the candidate setting by
inner cross-validation on the fit's training subjects and fits the method's pipeline on
all of them (`tfmer.svm`). The fold's test subjects are only predicted. It has no epochs:
its history is empty, and its choices per fold go to `search.json` and `search.png`.
"""

from __future__ import annotations

import numpy as np

from tfmer import clip_features, data, export, plots, svm
from tfmer.config import ExperimentConfig
from tfmer.run_folder import FEATURES, SEARCH, SEARCH_PNG, RunFolder
from tfmer.training.trainer import BaseTrainer


class SVMTrainer(BaseTrainer):
    """A handcrafted method's features and SVM (`config.handcrafted`).

    Attributes:
        features: every clip's `clip_features.Features`, computed at the first fit.
        estimator: the last fit's pipeline.
        chosen: the last fit's candidate setting (`{"variant", "C", "gamma"}`).
    """

    def __init__(self, config: ExperimentConfig, num_classes: int, run_dir=None):
        super().__init__(config, num_classes, run_dir)
        self.features, self.estimator, self.chosen = None, None, None

    def _features(self, info: data.DatasetInfo, log) -> clip_features.Features:
        if self.features is None:
            settings = self.config.handcrafted
            self.features = (clip_features.compute(settings, info, log=log)
                             if self.run_folder is None else
                             clip_features.cached(settings, info, self.run_folder.file(FEATURES),
                                                  log=log))
        return self.features

    def fit(self, info: data.DatasetInfo, subjects, seed: int, log=print,
            final: bool = False) -> dict:
        features, settings = self._features(info, log), self.config.handcrafted
        clips = info.clips_of(subjects)
        clip_ids = [c["id"] for c in clips]
        labels = np.array([info.classes.index(c["label"]) for c in clips])
        training = {variant: features.select(variant, clip_ids) for variant in features.variants}
        self.chosen, table = svm.search(settings, training, labels,
                                        [c["subject"] for c in clips], self.num_classes, seed)
        self.estimator = svm.fit(settings, self.chosen, training[self.chosen["variant"]], labels,
                                 seed)
        self.selection = {"chosen": self.chosen, "candidates": table} if table else None
        chosen = ", ".join(f"{k} {v}" for k, v in self.chosen.items() if v not in ("", None))
        searched = (f"chosen by {settings.inner_folds}-fold inner cross-validation of "
                    f"{len(set(c['subject'] for c in clips))} training subjects among "
                    f"{len(table)} candidates (UF1 {max(t['uf1'] for t in table):.3f})"
                    if table else "fixed")
        log(f"  {settings.kernel} SVM on {len(clips)} clips: {chosen} ({searched})")
        return {}

    def predict(self, info: data.DatasetInfo, subjects) -> list[dict]:
        return clip_features.predict(self.estimator, self.features, self.chosen["variant"], info,
                                     info.clips_of(subjects))

    def write_selections(self, folder: RunFolder, selections: list[dict]) -> None:
        """`search.json` and its plot `search.png`."""
        folder.write_json(SEARCH, selections)
        plots.plot_search(selections, folder.file(SEARCH_PNG),
                          title=f"{self.config.name}: inner search")

    def export(self, classes, export_root, extra: dict) -> tuple:
        """The final pipeline with its feature settings (`tfmer.export.export_svm`)."""
        path = export.export_svm(self.estimator, self.config, classes, export_root,
                                 extra={**extra, "chosen": self.chosen})
        return path, (f"scikit-learn pipeline ({export.SVM_MODEL}) on "
                      f"{self.config.handcrafted.method} features")
