"""Imports run one way: the import-linter contract in pyproject.toml holds, and it would catch an upward import."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("importlinter")

ROOT = Path(__file__).resolve().parents[1]


def lint_imports(project: Path) -> subprocess.CompletedProcess:
    """Run ``lint-imports`` on ``project`` (its pyproject.toml, its ``workflow/kawhi``), never the installed copy."""
    env = {**os.environ, "PYTHONPATH": str(project / "workflow")}
    code = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"
    return subprocess.run([sys.executable, "-c", code, "--config", str(project / "pyproject.toml"), "--no-cache"],
                          cwd=project, env=env, capture_output=True, text=True, timeout=300)


def copy_project(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    shutil.copytree(ROOT / "workflow" / "kawhi", project / "workflow" / "kawhi",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", project / "pyproject.toml")
    return project


def test_the_contract_is_kept():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


@pytest.mark.parametrize("module, upward", [
    ("data/benchmarks.py", "kawhi.eval.scorers.wemath"),  # data must not reach up into a stage
    ("eval/runner.py", "kawhi.heads.sweep"),              # stages are independent of each other
    ("config.py", "kawhi.cli"),                            # the bottom imports nothing above it
])
def test_an_upward_import_breaks_it(tmp_path, module, upward):
    project = copy_project(tmp_path)
    path = project / "workflow" / "kawhi" / module
    path.write_text(path.read_text() + f"\nimport {upward}  # deliberately upward\n")
    result = lint_imports(project)
    assert result.returncode != 0
    assert "BROKEN" in result.stdout and upward in result.stdout, result.stdout


def test_a_module_without_a_layer_breaks_it(tmp_path):
    project = copy_project(tmp_path)
    (project / "workflow" / "kawhi" / "utils.py").write_text('"""A grab bag nobody placed."""\n')
    result = lint_imports(project)
    assert result.returncode != 0 and "kawhi.utils" in result.stdout, result.stdout
