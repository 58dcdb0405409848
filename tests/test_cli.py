"""The command-line conventions: one error line and exit status 2; no TensorFlow start-up
lines unless asked for."""

import os
import pathlib
import subprocess
import sys

from tfmer import cli

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_errors_become_one_line_and_status_2(capsys):
    def fails(name):
        raise FileNotFoundError(f"{name} does not exist")

    assert cli.run(fails, "data/x") == cli.USAGE_ERROR == 2
    assert capsys.readouterr().err == "error: data/x does not exist\n"
    assert cli.run(lambda: 0) == 0


def _score_missing_model(**environment):
    """`python evaluate.py --model ... --data ...` (the mode that loads TensorFlow) on a
    folder that is no export, in a shell with no TensorFlow variables set."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("TF_")}
    env.pop(cli.SHOW_TENSORFLOW_LOGS, None)
    result = subprocess.run([sys.executable, "evaluate.py", "--model", str(ROOT / "tests"),
                             "--data", str(ROOT / "tests")], cwd=ROOT, capture_output=True,
                            text=True, env={**env, **environment})
    assert result.returncode == 2
    return result.stderr


def test_tensorflow_starts_quietly_unless_asked_to_show_its_lines():
    assert _score_missing_model().splitlines() == [
        f"error: {ROOT / 'tests'} is not a tfmer SavedModel export: no assets/tfmer.json"]
    shown = _score_missing_model(**{cli.SHOW_TENSORFLOW_LOGS: "1"})
    assert "absl::InitializeLog" in shown and shown.splitlines()[-1].startswith("error: ")
