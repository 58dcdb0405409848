"""The run folder, `runs/<experiment>/<run-id>/`: its file names, writing and reading back.

The one owner of the format (`../shared/CONTRACT.md`, "A finished run"): training writes a
run through `RunFolder`, and `evaluate.py RUN_DIR`, `evaluate.py --compare` and
`python -m gradcam compare` read it back through it, so the names and layouts live here
only. Every file is written atomically (`tfmer.files`).

    config.json        the resolved config (`ExperimentConfig.to_dict()`) and a `dataset`
                       entry naming the converted data it ran on
    folds.json         `[{"fold", "train_subjects", "test_subjects"}]` (clip ids with
                       `kfoldK-clips`)
    predictions.csv    `clip_id,subject,fold,seed,y_true,y_pred,p_<class>...`
    metrics.json       pooled and per-fold figures (`tfmer.results.compute_metrics`)
    histories.json     `[{"label", "history"}]`, a Keras history per fit
    gradcam.json       each fold's Grad-CAM layer scores and choice (when selecting)
    search.json        an SVM baseline's inner-search scores and choice of each fold
    features.npz       an SVM baseline's features of every clip, computed once per run
                       (`tfmer.clip_features`)
    frame_metrics.json per-frame and majority-vote figures of frame models
    export.json        `{"saved_model": path}` of the final model's export
    confusion_matrix.png, folds.png, training_curves.png   the plots of the results
    report.html        the whole run on one self-contained page (`tfmer.html_report`)
    search.png         an SVM baseline's inner-search scores per fold
    final.weights.h5   the final model after training (`initial.weights.h5`, its state
                       before, only with `train.py --keep-initial`: `gradcam compare`
                       otherwise rebuilds it from the seed)
    versions.json      the versions of tfmer, TensorFlow, Keras and Python it ran with
    device.json        the GPUs found and the device settings used (`tfmer.devices`:
                       strategy, mixed precision, XLA, prefetching); each fold's result
                       records those of the process that trained it too
    options.json       what the run does after its folds (export, permutation check), kept
                       by `train.py --resume`
    folds/fold<F>.seed<S>.json   each finished fit of a fold: its predictions, history and
                       selection, kept as it finishes (`train.py --resume` skips them)
    folds/.lock.fold<F>.seed<S>, folds/.lock.final   held by the process training that
                       fit (`claim`), so two jobs never train one fit
    .lock.run          held while a process creates the folder or pools its folds (`lock`)
    checkpoints/fold<F>.seed<S>.npz   a fit in progress at its last finished epoch
                       (removed when the fit is done; `tfmer.training.fit.FoldRecorder`);
                       one file per fit, so jobs training other folds never share one
    frozen_cache/seed<N>-<pid>.f32   the frozen backbone layers' outputs of the fit in
                       progress, with `train.frozen_cache` (removed when it ends)
    tensorboard/fold<F>.seed<S>/<model>/   TensorBoard logs of every fit (`final/` for the
                       final model)
    frames.weights.h5, expression[.seedN].weights.h5   stage weights of staged trainers

Free of TensorFlow.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import datetime
import json
import pathlib

from tfmer.config import ExperimentConfig
from tfmer.files import lock_path, locked, try_lock, write_json_atomic, write_text_atomic

CONFIG = "config.json"
FOLDS = "folds.json"
PREDICTIONS = "predictions.csv"
METRICS = "metrics.json"
HISTORIES = "histories.json"
GRADCAM = "gradcam.json"
SEARCH = "search.json"
FEATURES = "features.npz"
SEARCH_PNG = "search.png"
FRAME_METRICS = "frame_metrics.json"
EXPORT = "export.json"
CONFUSION_MATRIX_PNG = "confusion_matrix.png"
FOLDS_PNG = "folds.png"
TRAINING_CURVES_PNG = "training_curves.png"
REPORT_HTML = "report.html"
"""One self-contained page of the whole run, images embedded (`tfmer.html_report`)."""
INITIAL_WEIGHTS = "initial.weights.h5"
FINAL_WEIGHTS = "final.weights.h5"
"""The final model's weights before and after training."""
VERSIONS = "versions.json"
DEVICE = "device.json"
OPTIONS = "options.json"
"""How the run was asked to end (`export_final`, `export_root`, `permute_labels`,
`keep_initial`), which `train.py --resume` keeps."""
FOLD_RESULTS = "folds"
CHECKPOINTS = "checkpoints"
TENSORBOARD = "tensorboard"
FRAMES_WEIGHTS = "frames.weights.h5"
"""A staged trainer's final CNN after its frames stage."""
PREDICTION_COLUMNS = ("clip_id", "subject", "fold", "seed", "y_true", "y_pred")


def expression_weights(training_seed: int) -> str:
    """The file of a staged trainer's stage-1 weights of a training seed:
    `expression.weights.h5` for seed 0, `expression.seed<N>.weights.h5` for seed N."""
    return ("expression.weights.h5" if training_seed == 0
            else f"expression.seed{training_seed}.weights.h5")


def fit_tag(fold: int | None, seed: int) -> str:
    """The name of one fit of a run: `fold<F>.seed<S>`, `final` for the final model."""
    return "final" if fold is None else f"fold{fold}.seed{seed}"


def write_predictions(path, rows, classes) -> None:
    """Writes a `predictions.csv`: `clip_id,subject,fold,seed,y_true,y_pred,p_<class>...`.

    Args:
        rows: dicts with the `PREDICTION_COLUMNS` keys and `probabilities` (`[K]`).
    """
    header = list(PREDICTION_COLUMNS) + [f"p_{c}" for c in classes]
    lines = [",".join(header)]
    for row in rows:
        values = [str(row[c]) for c in PREDICTION_COLUMNS]
        values += [f"{p:.6f}" for p in row["probabilities"]]
        lines.append(",".join(values))
    write_text_atomic(path, "\n".join(lines) + "\n")


def read_predictions(path) -> tuple[list[dict], tuple]:
    """Reads a `predictions.csv`; returns `(rows, classes)` (classes from the `p_` columns).

    Raises:
        ValueError: a required column is missing (naming the file and the columns).
    """
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        classes = tuple(c[2:] for c in reader.fieldnames if c.startswith("p_"))
        missing = [c for c in PREDICTION_COLUMNS if c not in reader.fieldnames]
        if missing:
            raise ValueError(f"{path} lacks column(s) {', '.join(missing)}")
        rows = []
        for row in reader:
            rows.append({"clip_id": row["clip_id"], "subject": row["subject"],
                         "fold": int(row["fold"]), "seed": int(row["seed"]),
                         "y_true": int(row["y_true"]), "y_pred": int(row["y_pred"]),
                         "probabilities": [float(row[f"p_{c}"]) for c in classes]})
    return rows, classes


@dataclasses.dataclass(frozen=True)
class RunFolder:
    """One run folder. Writing methods are used while training; reading ones afterwards.

    Attributes:
        path: the folder.
    """

    path: pathlib.Path

    def __post_init__(self):
        object.__setattr__(self, "path", pathlib.Path(self.path))

    @classmethod
    def create(cls, runs_root, experiment: str) -> "RunFolder":
        """A new `runs_root/<experiment>/<YYYYmmdd-HHMMSS>[-n]/`, created."""
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        root = pathlib.Path(runs_root) / experiment
        for n in range(1000):
            path = root / (stamp if n == 0 else f"{stamp}-{n}")
            try:
                path.mkdir(parents=True)
                return cls(path)
            except FileExistsError:
                continue
        raise RuntimeError(f"cannot create a run folder under {root}")

    def file(self, name: str) -> pathlib.Path:
        """The path of one of the run's files (a name above)."""
        return self.path / name

    # Writing.

    def write_config(self, config: ExperimentConfig, dataset: dict) -> None:
        """`config.json`: the resolved config and the `dataset` it runs on."""
        write_json_atomic(self.file(CONFIG), {**config.to_dict(), "dataset": dataset})

    def write_json(self, name: str, content) -> None:
        """One of the run's JSON files (`FOLDS`, `METRICS`, `HISTORIES`, ...)."""
        write_json_atomic(self.file(name), content)

    def write_predictions(self, rows, classes) -> None:
        """`predictions.csv` (`write_predictions`)."""
        write_predictions(self.file(PREDICTIONS), rows, classes)

    def write_fold_result(self, fold: int, seed: int, content: dict) -> None:
        """`folds/fold<F>.seed<S>.json`: one finished fit of a fold (its `predictions`,
        `history` and `selection`), kept as soon as it finishes."""
        write_json_atomic(self.file(FOLD_RESULTS) / f"{fit_tag(fold, seed)}.json", content)

    def lock(self):
        """The run's own lock (`tfmer.files.locked` on `.lock.run`), held while a process
        creates the run's files or pools its folds, so jobs of one run take turns."""
        return locked(self.file("run"))

    @contextlib.contextmanager
    def claim(self, tags):
        """Holds the fits `tags` (`fit_tag`) for the block: no other process can claim them
        meanwhile (an `flock` on `folds/.lock.<tag>`, released when the process ends in
        any way, so a killed job leaves none behind).

        Raises:
            ValueError: another process holds one of them (naming the fit and the folder);
                none is held then.
        """
        held = []
        try:
            for tag in tags:
                handle = try_lock(self.file(FOLD_RESULTS) / tag)
                if handle is None:
                    raise ValueError(
                        f"{tag} of {self.path} is being trained by another process (it holds "
                        f"{lock_path(self.file(FOLD_RESULTS) / tag)}): give this job other "
                        f"folds (--folds), or wait until that one ends")
                held.append(handle)
            yield
        finally:
            for handle in held:
                handle.close()

    def checkpoint(self, tag: str) -> pathlib.Path:
        """`checkpoints/<tag>.npz`: the checkpoint of the fit `tag` (`fit_tag`)."""
        return self.file(CHECKPOINTS) / f"{tag}.npz"

    # Reading.

    def require(self, *names: str) -> None:
        """Raises FileNotFoundError, naming the folder and the first missing file, unless
        the folder holds all `names`."""
        if not self.path.is_dir():
            raise FileNotFoundError(f"{self.path}: no such run folder")
        for name in names:
            if not self.file(name).is_file():
                raise FileNotFoundError(f"{self.path} is not a finished run: no {name}")

    def read_json(self, name: str, default=None):
        """A JSON file of the run; `default` when it does not exist.

        Raises:
            ValueError: the file is not valid JSON (naming it).
        """
        path = self.file(name)
        if not path.is_file():
            return default
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise ValueError(f"{path} is not valid JSON: {error}") from None

    def fold_results(self) -> dict:
        """The finished fits of the run's folds, `{(fold, seed): content}`
        (`write_fold_result`); empty when none finished.

        Raises:
            ValueError: a file that is not valid JSON (naming it).
        """
        found = {}
        for path in sorted(self.file(FOLD_RESULTS).glob("fold*.seed*.json")):
            content = self.read_json(f"{FOLD_RESULTS}/{path.name}")
            found[content["fold"], content["seed"]] = content
        return found

    def saved_config(self) -> dict:
        """`config.json` as saved: the config's fields and the `dataset` entry.

        Raises:
            FileNotFoundError: no `config.json` (not a run folder).
            ValueError: a `config.json` that is not a run's.
        """
        if not self.file(CONFIG).is_file():
            raise FileNotFoundError(f"{self.path} is not a run folder: it has no {CONFIG} "
                                    "(train.py writes runs to runs/<experiment>/<time stamp>/)")
        saved = self.read_json(CONFIG)
        if not isinstance(saved, dict) or "dataset" not in saved or "name" not in saved:
            raise ValueError(f"{self.file(CONFIG)} is not a train.py run config (no \"name\" "
                             "or \"dataset\" entry)")
        return saved

    def config(self) -> ExperimentConfig:
        """The run's resolved `ExperimentConfig`, rebuilt from `config.json`."""
        return ExperimentConfig.from_dict(self.saved_config(), source=str(self.file(CONFIG)))

    def dataset_dir(self) -> pathlib.Path:
        """The converted dataset the run trained on (`config.json`'s `dataset.path`)."""
        return pathlib.Path(self.saved_config()["dataset"]["path"])

    def folds(self) -> list[dict]:
        """`folds.json`, checked to be a non-empty list of `{"fold", "test_subjects", ...}`.

        Raises:
            FileNotFoundError: no `folds.json`.
            ValueError: not valid JSON, or an entry without `fold` or `test_subjects`.
        """
        self.require(FOLDS)
        path, folds = self.file(FOLDS), self.read_json(FOLDS)
        if not isinstance(folds, list) or not folds:
            raise ValueError(f"{path} must hold a non-empty list of folds")
        for index, fold in enumerate(folds):
            if not isinstance(fold, dict) or "fold" not in fold or "test_subjects" not in fold:
                raise ValueError(f"{path} entry {index} lacks 'fold' or 'test_subjects'")
        return folds

    def predictions(self) -> tuple[list[dict], tuple]:
        """`predictions.csv` as `(rows, classes)` (`read_predictions`).

        Raises:
            FileNotFoundError: no `predictions.csv` (not a finished run).
        """
        self.require(PREDICTIONS)
        return read_predictions(self.file(PREDICTIONS))

    def saved_model(self) -> pathlib.Path | None:
        """The SavedModel folder `export.json` records; None when the run exported none."""
        recorded = self.read_json(EXPORT)
        return None if recorded is None else pathlib.Path(recorded["saved_model"])
