"""ChartMimic's execution side against hostile programs: the reference stays hidden, forged or
malformed elements score 0 with a reason, a broken reference row does not stop the run, and scoring
works with the Python environment under /tmp. Skipped, with the reason, where the sandbox cannot start."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kawhi.eval.rescore import score_file
from kawhi.eval.sandbox import exposed_python_dirs, sandbox_unavailable_reason
from kawhi.eval.scorers import get_scorer
from kawhi.eval.scorers.chartmimic import parse_elements

UNAVAILABLE = sandbox_unavailable_reason()
pytestmark = pytest.mark.skipif(UNAVAILABLE is not None, reason=f"sandbox unavailable: {UNAVAILABLE}")
WORKFLOW = Path(__file__).resolve().parents[1] / "workflow"

REFERENCE = """import matplotlib.pyplot as plt
fig, ax = plt.subplots(figsize=(4, 3))
ax.bar(['x', 'y'], [3, 5], color='#1f77b4')
ax.set_title('Sales')
plt.savefig('out.png')
"""

# The attack of issue 19: find the scorer's --predictions file in the host's command lines, read the
# reference program from it and run that instead of drawing anything.
STEAL_REFERENCE = """import json, os
for pid in os.listdir('/proc'):
    try:
        args = open(f'/proc/{pid}/cmdline', 'rb').read().split(b'\\0')
    except OSError:
        continue
    for arg in args:
        if arg.endswith(b'.jsonl') and os.path.exists(arg):
            exec(json.loads(open(arg).readline())['answer'])
"""


def fenced(code: str) -> str:
    return f"```python\n{code}```"


def write_predictions(path: Path, pairs: list[tuple[str, str]]) -> Path:
    path.write_text("".join(json.dumps({"id": f"row_{i}", "answer": answer, "response": response}) + "\n"
                            for i, (answer, response) in enumerate(pairs)))
    return path


def run_cli(python: str, *args: str) -> dict:
    done = subprocess.run([python, "-c", "import sys; from kawhi.cli import main; sys.exit(main())", *args],
                          capture_output=True, text=True, timeout=300,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(WORKFLOW)})
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def test_stealing_the_reference_through_proc_scores_zero(tmp_path):
    predictions = write_predictions(tmp_path / "predictions.jsonl", [(REFERENCE, fenced(STEAL_REFERENCE))])
    result = run_cli(sys.executable, "score", "--benchmark", "chartmimic", "--predictions", str(predictions))
    assert result["metrics"]["low_level"] == 0.0


def test_a_forged_elements_file_scores_zero():
    """A program that draws nothing and leaves the perfect elements in the box's old elements file."""
    scorer = get_scorer("chartmimic")
    row = {"id": "bar_1", "answer": REFERENCE}
    reference, _ = scorer.reference_elements(row)
    forged = json.dumps([reference])
    code = f"import json, os\nopen('kawhi_elements.json', 'w').write({forged!r})\nos._exit(0)\n"
    scored = scorer.score_sample(row, fenced(code))
    assert scored["score"] == 0.0 and not scored["executed"]
    assert scored["error"].startswith("no elements")


@pytest.mark.parametrize("payload, why", [
    (b'{"texts": 5, "chart_types": {}, "colors": [], "layout": [], "n_axes": 1}', "'texts' must be a list"),
    (b'{"texts": [], "chart_types": {}, "colors": [], "layout": [], "n_axes": 1, "score": 1}', "exactly the keys"),
    (b'{"texts": []}', "exactly the keys"),
    (b'{"texts": [], "chart_types": {"bar": "1"}, "colors": [], "layout": [], "n_axes": 1}', "'chart_types' must map"),
    (b'{"texts": [], "chart_types": {}, "colors": [], "layout": [{"nrows": 1}], "n_axes": 1}', "'layout' must be"),
    (b'{}{}', "malformed elements"),  # a second document after the tracer's
    (b'\xff\xfe', "malformed elements"),
    (b'[{"texts": []}]', "exactly the keys"),
])
def test_malformed_elements_score_zero_with_the_reason(payload, why):
    scorer = get_scorer("chartmimic")
    row = {"id": "bar_1", "answer": REFERENCE}
    code = f"import os\nos.write(int(os.environ['KAWHI_SANDBOX_CHANNEL_FD']), {payload!r})\nos._exit(0)\n"
    scored = scorer.score_sample(row, fenced(code))
    assert scored["score"] == 0.0 and not scored["executed"]
    assert why in scored["error"]
    with pytest.raises(ValueError, match=why.replace("[", r"\[").replace("(", r"\(")):
        parse_elements(payload)


def test_a_malformed_elements_file_in_the_box_does_not_stop_scoring():
    """Today's crash (TypeError): a malformed file where the scorer used to read the elements."""
    scorer = get_scorer("chartmimic")
    code = "import os\nopen('kawhi_elements.json', 'w').write('[{\"texts\": 5}]')\nos._exit(0)\n"
    scored = scorer.score_sample({"id": "bar_1", "answer": REFERENCE}, fenced(code))
    assert scored["score"] == 0.0 and scored["error"]


def test_a_reference_that_does_not_run_scores_zero_and_the_run_goes_on(tmp_path):
    predictions = write_predictions(tmp_path / "predictions.jsonl",
                                    [("import matplotlib.pyplot as plt\nplt.plot(undefined_data)\n", fenced(REFERENCE)),
                                     (REFERENCE, fenced(REFERENCE))])
    result = score_file("chartmimic", predictions)
    assert result["metrics"]["low_level"] == pytest.approx(50.0)
    assert result["metrics"]["n_reference_failed"] == 1.0
    scored = get_scorer("chartmimic").score_sample({"id": "broken", "answer": "raise SystemExit(3)"}, fenced(REFERENCE))
    assert scored["reference_failed"] and "'broken' does not run" in scored["error"]


def test_scoring_works_from_a_venv_under_tmp(tmp_path):
    """Issue 15: the interpreter's prefix and site-packages are exposed wherever they live."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)],
                   check=True, timeout=120)
    site = next((venv / "lib").glob("python3*/site-packages"))
    shared = [p for p in sys.path if p.endswith("site-packages") and not p.startswith(str(venv))]
    (site / "shared-venv.pth").write_text("\n".join(shared) + "\n")  # this project's packages
    python = str(venv / "bin" / "python")
    probe = subprocess.run([python, "-c", "import sys, json; from kawhi.eval.sandbox import exposed_python_dirs;"
                            "print(json.dumps([sys.prefix, exposed_python_dirs()]))"],
                           capture_output=True, text=True, check=True, env={"PYTHONPATH": str(WORKFLOW)})
    prefix, exposed = json.loads(probe.stdout)
    assert prefix.startswith("/tmp/") and prefix in exposed
    predictions = write_predictions(tmp_path / "predictions.jsonl", [(REFERENCE, fenced(REFERENCE))])
    result = run_cli(python, "score", "--benchmark", "chartmimic", "--predictions", str(predictions))
    assert result["metrics"]["low_level"] == 100.0 and result["metrics"]["exec_rate"] == 100.0
    assert not any(d.startswith(str(WORKFLOW)) for d in exposed_python_dirs())
