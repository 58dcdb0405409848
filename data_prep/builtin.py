"""The built-in synthetic inputs of `train.py` and `python -m gradcam select` with no
`--data`, built on first use: the micro-expression clips at the experiment's TIM length and,
for an experiment with an expression stage, the still expression images
(`data_prep.synthetic`). Free of TensorFlow: building them runs the converter's workers.
"""

from __future__ import annotations

import pathlib

from data_prep import synthetic
from tfmer.config import ExperimentConfig, override

ROOT = "data"
"""The folder the built-in datasets are built in."""
DEFAULT_TIM = 32


def clips_dir(num_frames: int = DEFAULT_TIM, root=ROOT) -> pathlib.Path:
    """`data/synthetic` for TIM32 clips, `data/synthetic_tim<N>` for other lengths."""
    name = "synthetic" if num_frames == DEFAULT_TIM else f"synthetic_tim{num_frames}"
    return pathlib.Path(root) / name


def clips(num_frames: int = DEFAULT_TIM, root=ROOT) -> pathlib.Path:
    """The folder of the built-in clips of `num_frames` frames (`clips_dir`), built when
    missing."""
    return synthetic.ensure(clips_dir(num_frames, root), num_frames)


def prepare(config: ExperimentConfig, root=ROOT) -> tuple[ExperimentConfig, pathlib.Path]:
    """The built-in inputs of an experiment, built when missing.

    The clips have `data.tim` frames (32 when the experiment accepts any length). An
    expression stage without `transfer.expression_data` or `transfer.expression_weights`
    gets the built-in expression set, `data/synthetic_expression`.

    Returns:
        `(config, data_dir)`: the config with `transfer.expression_data` set when it was
        filled in, and the converted clips' folder.
    """
    data_dir = clips(config.data.tim or DEFAULT_TIM, root)
    transfer = config.transfer
    if ("expression" in transfer.stages and transfer.expression_data is None
            and transfer.expression_weights is None):
        images = synthetic.ensure_expression(pathlib.Path(root) / "synthetic_expression")
        config = override(config, [f"transfer.expression_data={images}"])
    return config, data_dir
