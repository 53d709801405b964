"""The README's plug-and-play example, run as written on a tiny Qwen2.5-VL-class model (issue 13, part 8).

Only the constants at its top change (model path, heads, output folder, steps) and the completion length;
each substitution must match exactly once, so an edit of the README that breaks the example fails here.
"""

import re
from pathlib import Path

import pytest

MARKER = "<!-- plug-and-play example"


def readme_example(repo_root: Path) -> str:
    text = (repo_root / "README.md").read_text()
    start = text.index(MARKER)
    match = re.search(r"```python\n(.*?)```", text[start:], flags=re.S)
    assert match, "no python block after the plug-and-play marker"
    return match.group(1)


def _substitute(code: str, old: str, new: str) -> str:
    assert code.count(old) == 1, f"the README example no longer contains {old!r} exactly once"
    return code.replace(old, new)


def test_readme_example_trains_with_kawhi(repo_root, tiny_model_factory, tmp_path):
    code = readme_example(repo_root)
    model_dir = tiny_model_factory("qwen2_5_vl")
    code = re.sub(r'^MODEL = ".*"$', f'MODEL = "{model_dir}"', code, count=1, flags=re.M)
    code = re.sub(r"^HEADS = \[.*$", "HEADS = [0, 1]", code, count=1, flags=re.M)
    code = re.sub(r'^OUTPUT = ".*"$', f'OUTPUT = "{tmp_path / "out"}"', code, count=1, flags=re.M)
    code = re.sub(r"^STEPS = \d+$", "STEPS = 1", code, count=1, flags=re.M)
    code = _substitute(code, "max_completion_length=256", "max_completion_length=16")
    for line in (f'MODEL = "{model_dir}"', "HEADS = [0, 1]", "STEPS = 1"):
        assert line in code, line
    namespace: dict = {}
    exec(compile(code, "README.md plug-and-play example", "exec"), namespace)
    trainer = namespace["trainer"]
    assert trainer.state.global_step == 1
    assert trainer.kawhi.enabled and trainer.kawhi_heads == (0, 1)
    logged = [h for h in trainer.state.log_history if "kawhi/weight_mean" in h]
    assert logged, "the example trained without KAWHI weights"
    low, high = logged[0]["kawhi/weight_min"], logged[0]["kawhi/weight_max"]
    assert 0.1 - 1e-6 <= low <= high <= 1.0 + 1e-6
    assert logged[0]["kawhi/capture_mb"] > 0


def test_readme_example_names_the_papers_heads(repo_root):
    """The example's default heads are the paper's published list for Qwen2.5-VL-7B-Instruct (METHOD.md)."""
    code = readme_example(repo_root)
    assert 'MODEL = "Qwen/Qwen2.5-VL-7B-Instruct"' in code
    heads = re.search(r"^HEADS = (\[.*?\])", code, flags=re.M)
    assert heads and eval(heads.group(1)) == [0, 1, 3, 22, 23, 24, 25, 26, 27]
