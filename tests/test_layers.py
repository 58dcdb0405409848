"""The import structure: layers import only downwards, and no two files import each other.

Core (records, pipeline, models, metrics, the run folder; the converters; Grad-CAM scoring)
-> engine (`tfmer/training/`) -> methods (`tfmer/experiments/`) -> applications (the
command-line entry points and the built-in data). Read from the source with `ast`: every
`import` and `from ... import`, those inside functions included.
"""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ("tfmer", "data_prep", "gradcam")
SCRIPTS = ("train", "evaluate")
ENGINE, METHODS, APPLICATIONS = 1, 2, 3
APPLICATION_MODULES = {"train", "evaluate", "data_prep.__main__", "data_prep.builtin",
                       "gradcam.__main__", "gradcam.select", "gradcam.compare",
                       "tfmer.predict"}


def _module_files() -> dict[str, pathlib.Path]:
    files = {name: ROOT / f"{name}.py" for name in SCRIPTS}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            files[name] = path
    return files


def _imports(path: pathlib.Path, known: set[str]) -> set[str]:
    """The project modules a file imports: `from a.b import c` is `a.b.c` when that is a
    module, else `a.b`."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                found.add(candidate if candidate in known else node.module)
    return {name for name in found if name in known}


def import_graph() -> dict[str, set[str]]:
    """Module name -> the project modules it imports."""
    files = _module_files()
    return {name: _imports(path, set(files)) for name, path in files.items()}


def layer(module: str) -> int:
    if module in APPLICATION_MODULES:
        return APPLICATIONS
    if module.startswith("tfmer.experiments"):
        return METHODS
    if module.startswith("tfmer.training"):
        return ENGINE
    return 0


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module, or a module importing
    itself (Tarjan's algorithm)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph[node]:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for target in graph[todo.pop()] - seen:
            seen.add(target)
            todo.append(target)
    return seen


def test_the_graph_is_read_from_the_code():
    graph = import_graph()
    assert "tfmer.training.cross_validation" in graph["tfmer.training"]
    assert "tfmer.experiments.registry" in graph["tfmer.experiments.tlcnn"]
    assert "tfmer.experiments" in graph["train"]  # imported inside a function
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"a"}}) == [["a"]] and cycles({"a": {"b"}, "b": set()}) == []


def test_no_two_files_import_each_other():
    assert cycles(import_graph()) == []


def test_layers_import_only_downwards():
    upwards = [f"{source} -> {target}" for source, targets in import_graph().items()
               for target in targets if layer(target) > layer(source)]
    assert upwards == []


def test_the_engine_and_gradcam_scoring_never_reach_the_registry():
    graph = import_graph()
    for start in [m for m in graph if m.startswith("tfmer.training")] + [
            "gradcam.scoring", "gradcam.core", "gradcam.regions"]:
        assert not {m for m in reachable(graph, start) if m.startswith("tfmer.experiments")}, start


def test_tfmer_never_imports_data_prep():
    """Only `python -m tfmer.predict`, an application, converts (with the converter's own
    functions) what it predicts on."""
    graph = import_graph()
    assert [f"{m} -> {t}" for m in graph if m.startswith("tfmer") for t in graph[m]
            if t.startswith("data_prep") and m not in APPLICATION_MODULES] == []


@pytest.mark.parametrize("module", ["train", "evaluate", "data_prep.__main__", "data_prep.builtin",
                                    "tfmer.handcrafted.methods", "tfmer.svm"])
def test_entry_points_and_worker_tasks_load_no_tensorflow_at_import(module):
    """Spawned converter and feature workers re-import a script's top level and their task's
    module (`tfmer.handcrafted.methods.extract`): none may load TensorFlow."""
    code = f"import sys, {module}; print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, check=True)
    assert result.stdout.split() == ["False", "False"], result.stderr
