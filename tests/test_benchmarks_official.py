"""Real-format rows through `kawhi prepare-benchmark --source DIR` and `kawhi score`, against numbers the
official scoring code computed on the same responses.

Rows come from the benchmarks' own repositories (tests/fixtures/official_rows.json: MathVista
data/testmini.json + data/query.json, MATH-V data/testmini.jsonl, We-Math data/testmini.json), laid out
as the hub downloads are (several splits side by side); images are tiny generated PNGs. The expected
numbers were computed by running the official functions named in each test on the same responses
(a scratch environment with the official repositories' requirements; none of their code is committed).
"""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pytest
from PIL import Image

from kawhi.cli import main
from tests.benchmark_cli import prepare, score

ROWS = json.loads((Path(__file__).parent / "fixtures" / "official_rows.json").read_text())


def png(seed: int = 0) -> Image.Image:
    return Image.new("RGB", (8, 6), (seed * 40 % 255, 90, 160))


def write_split(rows: list[dict], image_column: str, path: Path) -> None:
    rows = [dict(r, **{image_column: png(i)}) for i, r in enumerate(rows)]
    ds = datasets.Dataset.from_list(rows).cast_column(image_column, datasets.Image())
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.to_parquet(str(path))


# ---- MathVista ----------------------------------------------------------------------------------------

def mathvista_hub(root: Path) -> Path:
    """AI4Math/MathVista: data/testmini-*.parquet beside data/test-*.parquet (decoded_image column)."""
    testmini = [dict(r, decoded_image=None) for r in ROWS["mathvista"]]
    test = [dict(r, pid=str(1000 + i), answer="", decoded_image=None) for i, r in enumerate(ROWS["mathvista"][:2])]
    write_split(testmini, "decoded_image", root / "data" / "testmini-00000-of-00001-2e2f6c9b.parquet")
    write_split(test[:1], "decoded_image", root / "data" / "test-00000-of-00002-5c3e1a7d.parquet")
    write_split(test[1:], "decoded_image", root / "data" / "test-00001-of-00002-9a8b7c6d.parquet")
    return root


MATHVISTA_RESPONSES = [  # (pid, response)
    ("1", "The spring is compressed by $d = 1.2$ cm, so the answer is \\boxed{1.2}."),
    ("2", "1000"),
    ("4", 'The answer is "5".'),
    ("5", "Angle H is 97 degrees.\n\nThe answer is (A)."),
    ("5", "102"),
    ("2", "So the answer is $1000$."),
]


def test_mathvista_hub_folder_and_official_score(tmp_path, capsys):
    ds = prepare("mathvista", mathvista_hub(tmp_path / "MathVista"), tmp_path / "mv.parquet")
    assert sorted(ds["id"]) == ["1", "2", "4", "5"]  # testmini only: the test shards are not read
    assert ds[0]["question"].startswith("Hint: Please answer the question requiring a floating-point number")
    by_pid = {r["id"]: r for r in ds}
    rows = [by_pid[pid] for pid, _ in MATHVISTA_RESPONSES]
    metrics = score("mathvista", rows, [r for _, r in MATHVISTA_RESPONSES], tmp_path, capsys)
    # lupantech/MathVista evaluation/extract_answer.py extract_answer(quick_extract=True), the GPT step
    # answered with what each response states (1.2, -, -, A, -, 1000), then calculate_score.py
    # normalize_extracted_answer + safe_equal: 4 of 6 right.
    assert metrics["accuracy"] == pytest.approx(66.6667, abs=0.01)
    assert metrics["accuracy_multi_choice"] == pytest.approx(50.0, abs=0.01)


# ---- MathVision ---------------------------------------------------------------------------------------

def mathvision_hub(root: Path) -> Path:
    """MathLLMs/MathVision: data/test-*.parquet beside data/testmini-*.parquet."""
    rows = [dict(r, decoded_image=None) for r in ROWS["mathvision"]]
    write_split(rows, "decoded_image", root / "data" / "testmini-00000-of-00001-8a2c.parquet")
    write_split([dict(rows[0], id="9001")], "decoded_image", root / "data" / "test-00000-of-00001-1f3e.parquet")
    return root


MATHVISION_RESPONSES = [
    "Counting the digits gives 6 different ones.\n\nThe answer is 6.",
    "Each daisy doubles plus one, so \\boxed{61}.",
    "Only picture D fits.\n\nThe answer is D.",
    "Six bricks are missing, so the answer is \\boxed{5}.",
    "The length is about \\boxed{4.80} cm.",
    "So x = 5/2, i.e. \\boxed{\\frac{5}{2}}.",
    "I cannot tell.",
]


def test_mathvision_split_is_chosen_exactly_and_scored_as_the_official_evaluator(tmp_path, capsys):
    root = mathvision_hub(tmp_path / "MathVision")
    test = prepare("mathvision", root, tmp_path / "test.parquet", split="test")
    assert test["id"] == ["9001"]  # "test" never picks up testmini's rows
    ds = prepare("mathvision", root, tmp_path / "mini.parquet", split="testmini")
    assert ds["id"] == [r["id"] for r in ROWS["mathvision"]]
    metrics = score("mathvision", list(ds), MATHVISION_RESPONSES, tmp_path, capsys)
    # mathllm/MATH-V evaluation/evaluate.py evaluate() (answer cut-out) + utils.find_math_answer +
    # utils.is_equal(gt, answer) or is_equal(gt option text, answer): 5 of 7 right.
    assert metrics["accuracy"] == pytest.approx(71.4286, abs=0.01)
    assert metrics["accuracy_level_1"] == pytest.approx(50.0, abs=0.01)
    assert metrics["accuracy_level_2"] == pytest.approx(66.6667, abs=0.01)


def test_mathvision_accepts_two_decimal_rounding_as_the_official_is_equal():
    from kawhi.eval.scorers import get_scorer

    row = {"id": "x", "answer": "\\frac{1}{3}", "options": [], "level": 1}
    assert get_scorer("mathvision").score_sample(row, "\\boxed{0.33}")["score"] == 1.0
    assert get_scorer("mathvision").score_sample(row, "\\boxed{0.34}")["score"] == 0.0


# ---- WeMath -------------------------------------------------------------------------------------------

def wemath_responses() -> list[str]:
    wrong = {("2steps_1", "2steps_2"), ("2steps_2", "2steps_multi"), ("2steps_3", "2steps_1"),
             ("2steps_3", "2steps_multi")}
    out = []
    for row in ROWS["wemath"]:
        letter = row["answer"] if (row["ID"], row["key"]) not in wrong else ("E" if row["answer"] != "E" else "A")
        out.append(f"<Thought process>: The diagram gives the lengths.\n<Answer>: {letter}. option {letter}")
    no_letter = [i for i, r in enumerate(ROWS["wemath"]) if (r["ID"], r["key"]) == ("2steps_3", "2steps_2")][0]
    out[no_letter] = "<Thought process>: Not sure.\n<Answer>: none of them"
    return out


def test_wemath_hub_folder_and_official_four_dimensional_metrics(tmp_path, capsys):
    root = tmp_path / "We-Math"
    write_split([dict(r, image_path=None) for r in ROWS["wemath"]], "image_path",
                root / "data" / "testmini-00000-of-00001.parquet")
    ds = prepare("wemath", root, tmp_path / "wm.parquet")
    assert len(ds) == 13 and ds[0]["options"][:2] == ["300, 400", "400, 300"]
    metrics = score("wemath", list(ds), wemath_responses(), tmp_path, capsys)
    # We-Math evaluation/four_dimensional_metrics.py: load_and_process_data (the <Answer> template),
    # process_steps_data, calculate_metrics, compute_final_scores(total_count=4) and the final score of
    # update_main_results_df with its literal 525 (the full testmini) replaced by the 4 composites here.
    assert metrics["accuracy"] == pytest.approx(61.5385, abs=0.01)
    assert (metrics["IK"], metrics["IG"], metrics["CM_strict"], metrics["CM_loose"]) == (25.0, 25.0, 25.0, 50.0)
    assert (metrics["RM_strict"], metrics["RM_loose"]) == (50.0, 0.0)
    assert metrics["score_strict"] == pytest.approx(37.5, abs=0.01)
    assert metrics["score_loose"] == pytest.approx(62.5, abs=0.01)


# ---- folders that cannot be mapped, CharXiv's card, ChartMimic's release ------------------------------

def test_a_folder_without_the_split_is_refused_with_what_it_holds(tmp_path, capsys):
    root = mathvision_hub(tmp_path / "MathVision")
    with pytest.raises(Exception, match=r"no parquet file of split 'validation'.*test: data/test-00000.*"
                                        r"testmini: data/testmini-00000"):
        main(["prepare-benchmark", "--name", "mathvision", "--source", str(root), "--out", str(tmp_path / "o.parquet"),
              "--split", "validation"])


def test_mathverse_text_only_file_is_not_read_for_testmini(tmp_path):
    root = tmp_path / "MathVerse"
    row = {"sample_index": "1", "problem_index": "1", "problem_version": "Vision Dominant", "question": "Find x.",
           "image": None, "answer": "D", "question_type": "multi-choice",
           "metadata": {"split": "testmini", "source": "GeoQA", "subject": "Plane Geometry", "subfield": "Angle"},
           "query_wo": "Please directly answer ...", "query_cot": "Please first conduct reasoning ...",
           "question_for_eval": "Find x."}
    write_split([row], "image", root / "testmini.parquet")
    text_only = {k: v for k, v in row.items() if k != "image"} | {"sample_index": "2", "problem_version": "Text Only"}
    datasets.Dataset.from_list([text_only]).to_parquet(str(root / "testmini_text_only.parquet"))
    ds = prepare("mathverse", root, tmp_path / "o.parquet")
    assert ds["id"] == ["1"]


def charxiv_row(figure: int, answer: str | None) -> dict:
    return {"image": None, "category": "cs", "year": "20", "original_figure_path": f"{figure}.jpg",
            "original_id": str(figure), "figure_path": f"images/{figure}.jpg", "num_subplots": 2, "subplots": None,
            "subplot_row": 1, "subplot_col": 2, "subplot_loc": None,
            "descriptive_q1": 7, "descriptive_q2": 13, "descriptive_q3": 11, "descriptive_q4": 15,
            "descriptive_a1": "60", "descriptive_a2": "Ft-CNN, iCaRL*, EEIL*", "descriptive_a3": "Yes",
            "descriptive_a4": "Not Applicable",
            "reasoning_q": "Which model shows a greater decline in accuracy from Session 1 to Session 9?",
            "reasoning_q_source": 1, "reasoning_a": answer, "reasoning_a_type": 4 if answer == "0.25" else 1}


def test_charxiv_validation_maps_to_val_parquet_and_prompts_follow_the_answer_type(tmp_path):
    root = tmp_path / "CharXiv"
    write_split([charxiv_row(0, "Joint-CNN"), charxiv_row(2, "0.25")], "image", root / "val.parquet")
    write_split([charxiv_row(5, None)], "image", root / "test.parquet")  # test answers are not public
    ds = prepare("charxiv_reasoning", root, tmp_path / "r.parquet")
    assert ds["answer"] == ["Joint-CNN", "0.25"]
    assert "grounded to some text that is explicitly written" in ds[0]["question"]  # reasoning_a_type 1
    assert ds[1]["question"].strip().endswith("* Your final answer must be a number with 2 decimal places.")
    d = prepare("charxiv_descriptive", root, tmp_path / "d.parquet", split="validation")
    assert d[0]["question"].startswith("For the subplot at row 1 and column 2, what is the spatially highest")


def chartmimic_release(root: Path) -> Path:
    """The unpacked dataset-iclr.tar.gz: task folders of NAME.pdf + NAME.py, no PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    code = ("import matplotlib.pyplot as plt\nfig, ax = plt.subplots(figsize=(6.0, 4.0))\n"
            "ax.bar(['a', 'b'], [3, 5], color='#1f77b4')\nax.set_title('Sales')\n"
            "plt.tight_layout()\nplt.savefig('bar_1.pdf', bbox_inches='tight')\n")
    for task in ("direct_600", "customized_600"):
        folder = root / task
        folder.mkdir(parents=True)
        (folder / "bar_1.py").write_text(code)
        fig, ax = plt.subplots(figsize=(6.0, 4.0))
        ax.bar(["a", "b"], [3, 5])
        fig.savefig(folder / "bar_1.pdf", bbox_inches="tight")
        plt.close(fig)
    return root


def test_chartmimic_release_with_pdf_and_code(tmp_path):
    root = chartmimic_release(tmp_path / "ChartMimic")
    ds = prepare("chartmimic", root, tmp_path / "cm.parquet")
    row = ds[0]
    assert (row["id"], row["Task"], row["width"], row["height"]) == ("bar_1", "direct_600", 6.0, 4.0)
    assert "I found a very nice picture in a STEM paper" in row["question"]
    assert "figsize=(6.0, 4.0)" in row["question"]
    assert row["image"].size[0] > 100  # the PDF rendered at 120 dpi
    with pytest.raises(Exception, match=r"no task folder named 'direct_1800'.*customized_600.*direct_600"):
        prepare("chartmimic", root, tmp_path / "x.parquet", split="direct_1800")
