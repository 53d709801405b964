"""The conda environments under envs/ pin the same versions as pyproject.toml."""

import tomllib

import pytest
import yaml
from packaging.requirements import Requirement


def _pyproject_requirements(repo_root):
    project = tomllib.loads((repo_root / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        specs += extra
    reqs = [Requirement(s) for s in specs]
    return {r.name.lower(): r for r in reqs}


def _env_files(repo_root):
    return sorted((repo_root / "envs").glob("*.yaml"))


def test_every_stage_has_an_env(repo_root):
    names = {p.stem for p in _env_files(repo_root)}
    assert {"data", "models", "heads", "train", "eval", "report"} <= names


@pytest.mark.parametrize("stage", ["data", "models", "heads", "train", "eval", "report"])
def test_env_pins_agree_with_pyproject(repo_root, stage):
    pinned = _pyproject_requirements(repo_root)
    env = yaml.safe_load((repo_root / "envs" / f"{stage}.yaml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    checked = 0
    for line in pip_section:
        if line.startswith("-"):
            assert line == "--editable=..", f"envs/{stage}.yaml: unexpected pip option {line!r}"
            continue
        req = Requirement(line)
        assert req.name.lower() in pinned, f"envs/{stage}.yaml: {req.name} is not a dependency in pyproject.toml"
        assert req.specifier == pinned[req.name.lower()].specifier, (
            f"envs/{stage}.yaml pins {req.name}{req.specifier}, pyproject.toml {pinned[req.name.lower()].specifier}")
        checked += 1
    assert checked >= 5
    assert "python=3.11" in env["dependencies"]
