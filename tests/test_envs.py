"""One pinned environment for every rule: envs/kawhi.yaml installs envs/paper.lock.txt, which pins exactly the
dependencies of pyproject.toml, and every rule that runs a command names that environment."""

from __future__ import annotations

import re
import tomllib

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

LOCKED_EXTRAS = ("gpu", "slurm")  # the paper profile's: what `make lock` compiles


def _requirements(repo_root) -> list[Requirement]:
    project = tomllib.loads((repo_root / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"])
    for extra in LOCKED_EXTRAS:
        specs += project["optional-dependencies"][extra]
    return [Requirement(s) for s in specs]


def _locked(repo_root) -> dict[str, Version]:
    pins = {}
    for line in (repo_root / "envs" / "paper.lock.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        assert sep, f"envs/paper.lock.txt: {line!r} is not an exact pin"
        pins[canonicalize_name(name.split("[")[0])] = Version(version.split(";")[0].strip())
    return pins


def test_one_environment_and_its_lock(repo_root):
    assert sorted(p.name for p in (repo_root / "envs").iterdir()) == ["kawhi.yaml", "paper.lock.txt"]
    env = yaml.safe_load((repo_root / "envs" / "kawhi.yaml").read_text())
    assert "python=3.11" in env["dependencies"]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert pip == ["-r paper.lock.txt", "--editable=.."]


def test_the_lock_satisfies_every_dependency_of_pyproject(repo_root):
    """Fails when pyproject.toml changes a range (or adds a package) without `make lock`."""
    locked = _locked(repo_root)
    for req in _requirements(repo_root):
        name = canonicalize_name(req.name)
        assert name in locked, f"{req.name} is a dependency in pyproject.toml but not in envs/paper.lock.txt (make lock)"
        assert req.specifier.contains(locked[name], prereleases=True), (
            f"envs/paper.lock.txt pins {req.name}=={locked[name]}, outside pyproject.toml's {req.specifier} (make lock)")


def test_the_lock_check_catches_a_stale_pin(repo_root, tmp_path, monkeypatch):
    (tmp_path / "envs").mkdir()
    (tmp_path / "pyproject.toml").write_text((repo_root / "pyproject.toml").read_text())
    lock = (repo_root / "envs" / "paper.lock.txt").read_text()
    (tmp_path / "envs" / "paper.lock.txt").write_text(re.sub(r"(?m)^trl==\S+", "trl==1.15.0", lock))
    with pytest.raises(AssertionError, match="trl==1.15.0"):
        test_the_lock_satisfies_every_dependency_of_pyproject(tmp_path)


def _rules(text: str):
    """(rule name, its directive block, dedented to the top level) for each rule of a Snakemake file, also
    a rule that a loop generates (`rule:` with `name:`, as rules/report.smk makes one per artefact)."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        head = re.match(r"^( *)(?:local)?rule ?(\w*):$", line)
        if not head:
            continue
        indent, body = len(head.group(1)), []
        for following in lines[i + 1:]:
            if following.strip() and len(following) - len(following.lstrip()) <= indent:
                break
            body.append(following[indent:])
        block = "\n".join(body)
        named = re.search(r"(?m)^    name:\n        (.+)$", block)
        yield head.group(2) or (named.group(1) if named else "<anonymous>"), block


def test_every_rule_that_runs_a_command_uses_the_environment(repo_root):
    files = [repo_root / "Snakefile", *sorted((repo_root / "rules").glob("*.smk"))]
    running = 0
    for path in files:
        for name, body in _rules(path.read_text()):
            if re.search(r"(?m)^    (shell|run|script|notebook|wrapper):", body):
                running += 1
                assert re.search(r"(?m)^    conda:\n        KAWHI_ENV$", body), f"{path.name}: rule {name} has no conda: KAWHI_ENV"
    assert running >= 12  # the report stage's twelve artefact rules come from one loop body (rules/report.smk)
    assert 'KAWHI_ENV = "../envs/kawhi.yaml"' in (repo_root / "rules" / "common.smk").read_text()
