"""MathVerse: real-format rows through `kawhi prepare-benchmark --source DIR` (a folder laid out like the hub
download AI4Math/MathVerse: testmini.parquet beside testmini_text_only.parquet) and `kawhi score`, against the
official rule-based scoring step and aggregation run on the same responses.

The official code (ZrrSkywalker/MathVerse evaluation/score_answer_s2.py: ``match_answer`` with
``quick_match=True`` and the aggregation of its ``__main__``: per subject, per subject-subfield, per
problem version, total) is ported below as the reference. The official step 1 (extract_answer_s1.py) asks
GPT to extract the answer with ``demo_prompt_extract``; the reference takes, for each response, the
extraction that prompt's examples give (the option letter or the value the response ends on), written
beside it. Rows: ZrrSkywalker/MathVerse data/testmini_text_only.json (sample_index 1, 2, 8, as testmini
versions of the same problems) and output_templates/output_testmini.json (sample_index 3421-3425, with
their ``model_answer`` texts as responses).
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import datasets
import pytest
from PIL import Image

from kawhi.cli import main
from tests.benchmark_cli import score
from kawhi.eval.scorers import get_scorer


# ---- reference: ZrrSkywalker/MathVerse evaluation/score_answer_s2.py ------------------------------------

def official_match_answer(inst, api_key=None, quick_match=False):
    """score_answer_s2.py match_answer, the quick match (the GPT branch needs a judge)."""
    if quick_match:
        return '1' if inst['answer'] == inst['extraction'] else '0'
    raise NotImplementedError("the GPT judgement is not run here")


def official_scores(results):
    """score_answer_s2.py __main__: judgements, then subject / subfield / version / total accuracies
    (the script prints them as fractions; here in percent, keyed as kawhi names them). It reads
    inst['category'], which the released rows call 'metadata'."""
    score_dict = defaultdict(lambda: defaultdict(list))
    score_version_dict = defaultdict(list)
    for inst in results:
        inst['judgement'] = int(official_match_answer(inst, None, True))
        score_dict[inst['metadata']['subject']][inst['metadata']['subfield']].append(inst['judgement'])
        score_version_dict[inst['problem_version']].append(inst['judgement'])
    out = {}
    total_cnt, right_cnt = 0, 0
    for subject in score_dict:
        subject_total_cnt, subject_right_cnt = 0, 0
        for subfield in score_dict[subject]:
            subfield_total_cnt = len(score_dict[subject][subfield])
            subfield_right_cnt = len([inst for inst in score_dict[subject][subfield] if inst == 1])
            subject_total_cnt += subfield_total_cnt
            subject_right_cnt += subfield_right_cnt
            out[f"subfield {subject} {subfield}"] = 100 * subfield_right_cnt / subfield_total_cnt
        out[f"subject {subject}"] = 100 * subject_right_cnt / subject_total_cnt
        total_cnt += subject_total_cnt
        right_cnt += subject_right_cnt
    out["total"] = 100 * right_cnt / total_cnt
    total_cnt, right_cnt = 0, 0
    for version in score_version_dict:
        version_total_cnt = len(score_version_dict[version])
        version_right_cnt = len([inst for inst in score_version_dict[version] if inst == 1])
        total_cnt += version_total_cnt
        right_cnt += version_right_cnt
        out[f"version {version}"] = 100 * version_right_cnt / version_total_cnt
    out["acc"] = 100 * right_cnt / total_cnt
    return out


def kawhi_key(official_key: str) -> str:
    from kawhi.eval.scorers.base import slug

    kind, _, rest = official_key.partition(" ")
    return {"total": "accuracy", "acc": "accuracy"}.get(kind) or {
        "subject": f"accuracy_subject_{slug(rest)}", "subfield": f"accuracy_subfield_{slug(rest)}",
        "version": f"accuracy_{slug(rest)}"}[kind]


# ---- rows ----------------------------------------------------------------------------------------------

MC_INSTRUCTION = ("Please first conduct reasoning, and then answer the question and provide the correct option "
                  "letter, e.g., A, B, C, D, at the end.")
FF_INSTRUCTION = ("Please first conduct reasoning, and then answer the question and provide the final value, "
                  "e.g., 1, 2.5, 300, at the end.")
PLANE = {"split": "testmini", "source": "GeoQA", "subject": "Plane Geometry"}
SOLID = {"split": "testmini", "source": "Geo3D_collected", "subject": "Solid Geometry", "subfield": "Length"}
Q1 = ("As shown in the figure, in triangle ABC, it is known that angle A = 80.0, angle B = 60.0, point D is on AB "
      "and point E is on AC, DE parallel BC, then the size of angle CED is ()\nChoices:\nA:40\u00b0\nB:60\u00b0\n"
      "C:120\u00b0\nD:140\u00b0")
Q2 = ("As shown in the figure, AB parallel CD, straight line EF intersects AB at point E, intersects CD at point F, "
      "EG bisects angle BEF, and it intersects CD at point G, angle 1 = 50.0, then angle 2 is equal to ()\n"
      "Choices:\nA:50\u00b0\nB:60\u00b0\nC:65\u00b0\nD:90\u00b0")
Q8 = ("As shown in the figure, triangle ABC congruent triangle DEF, points A and D, B and E are the corresponding "
      "vertices, and the measured BC = 5.0, BF = 7.0, then the length of EC is ()\nChoices:\nA:1cm\nB:2cm\nC:3cm\n"
      "D:4cm")
Q685 = {"Text Dominant": "A soft drink can has a height of 13 cm and a radius of 3 cm. Find L, the length of the "
                         "longest straw that can fit into the can (so that the straw is not bent and fits entirely "
                         "inside the can).\n\nGive your answer rounded down to the nearest cm, to ensure it fits "
                         "inside the can.",
        "Text Lite": "The radius is 3 cm. Find L.\n\nGive your answer rounded down to the nearest cm.",
        "Vision Intensive": "The radius is 3 cm. Find L.\n\nGive your answer rounded down to the nearest cm.",
        "Vision Dominant": "Find L.", "Vision Only": ""}
# output_templates/output_testmini.json model_answer of 3421..3425 (their endings; the reasoning before is cut)
ANSWERS_685 = {
    "Text Dominant": "L \u2248 \u221a205 \u2248 14.32 (rounded down to the nearest whole centimeter gives us 14)\n\nSo "
                     "the length of the longest straw that can fit into the can, rounded down to the nearest cm, is 14 cm.",
    "Text Lite": "Therefore, the length of the longest straw that can fit into the can, rounded down to the nearest cm, "
                 "is:\n\n14",
    "Vision Intensive": "we would round 14.32 cm down to:\n\nL = 14 cm\n\nFinal answer: 14",
    "Vision Dominant": "Therefore, the longest straw that can fit into the can, rounded down to the nearest cm to "
                       "ensure it fits, is 14 cm.",
    "Vision Only": "L \u2248 13 cm\n\nSo the length of the longest straw that can fit into the can, rounded down to "
                   "the nearest centimeter, is 13 cm.",
}


def mc_row(index, problem, version, question, answer, subfield):
    shown = "" if version == "Vision Only" else question
    query = (f"According to the question shown in the image, p{MC_INSTRUCTION[1:]}" if version == "Vision Only"
             else f"{MC_INSTRUCTION}\nQuestion: {question}")
    return {"sample_index": str(index), "problem_index": str(problem), "problem_version": version,
            "question": shown, "image": None, "answer": answer, "question_type": "multi-choice",
            "metadata": dict(PLANE, subfield=subfield), "query_wo": query.replace(MC_INSTRUCTION, "Please directly "
            "answer the question and provide the correct option letter, e.g., A, B, C, D."), "query_cot": query,
            "question_for_eval": shown}


def ff_row(index, version):
    question = Q685[version]
    query = (f"According to the question shown in the image, p{FF_INSTRUCTION[1:]}" if version == "Vision Only"
             else f"{FF_INSTRUCTION}\nQuestion: {question}")
    return {"sample_index": str(index), "problem_index": "685", "problem_version": version, "question": question,
            "image": None, "answer": "14", "question_type": "free-form", "metadata": dict(SOLID),
            "query_wo": query, "query_cot": query, "question_for_eval": question}


ROWS = [mc_row(1, 1, "Text Dominant", Q1, "D", "Angle"), mc_row(6, 1, "Vision Only", Q1, "D", "Angle"),
        mc_row(7, 2, "Text Dominant", Q2, "C", "Angle"), mc_row(8, 8, "Text Lite", Q8, "C", "Length")]
ROWS += [ff_row(3421 + i, version) for i, version in enumerate(Q685)]

# (response, what demo_prompt_extract's examples extract from it)
RESPONSES = [
    ("Angle ADE = angle B = 60\u00b0, so angle CED = 180\u00b0 - 40\u00b0 = 140\u00b0.\n\nThe answer is D.", "D"),
    ("The figure shows the angles; the correct option is B.", "B"),
    ("Angle BEF = 130\u00b0, EG bisects it, so angle 2 = 65\u00b0.\n\nAnswer: A", "A"),
    ("EC = BF - BC = 7 - 5 = 2, but BE = EC ... so EC = 3 cm.\n\nThe correct option is C.", "C"),
] + [(ANSWERS_685[v], "13" if v == "Vision Only" else "14") for v in Q685]


def png(seed: int) -> Image.Image:
    return Image.new("RGB", (9, 7), (seed * 29 % 255, 70, 200))


def mathverse_hub(root: Path) -> Path:
    rows = [dict(r, image=png(i)) for i, r in enumerate(ROWS)]
    ds = datasets.Dataset.from_list(rows).cast_column("image", datasets.Image())
    root.mkdir(parents=True)
    ds.to_parquet(str(root / "testmini.parquet"))
    text_only = [{k: v for k, v in ROWS[0].items() if k != "image"} | {"sample_index": "9001", "problem_version": "Text Only"}]
    datasets.Dataset.from_list(text_only).to_parquet(str(root / "testmini_text_only.parquet"))
    return root


def test_mathverse_hub_folder_and_official_quick_match_aggregation(tmp_path, capsys):
    out = tmp_path / "mv.parquet"
    assert main(["prepare-benchmark", "--name", "mathverse", "--source", str(mathverse_hub(tmp_path / "MathVerse")),
                 "--out", str(out)]) == 0
    ds = datasets.load_dataset("parquet", data_files=str(out), split="train")
    assert ds["id"] == [r["sample_index"] for r in ROWS]  # testmini only, the text-only file is not read
    assert ds[0]["question"] == ROWS[0]["query_cot"] and ds[1]["question_hub"] == ""
    assert ds[0]["metadata"]["subject"] == "Plane Geometry"

    metrics = score("mathverse", list(ds), [r for r, _ in RESPONSES], tmp_path, capsys)
    official = official_scores([dict(r, extraction=e) for r, (_, e) in zip(ROWS, RESPONSES)])
    assert official["total"] == pytest.approx(100 * 6 / 9)  # the reference is not trivially all right
    assert len(official) == 1 + 2 + 3 + 5 + 1
    for key, value in official.items():
        assert metrics[kawhi_key(key)] == pytest.approx(value, abs=0.01), key
    assert metrics["accuracy_subject_plane_geometry"] == pytest.approx(50.0)
    assert metrics["accuracy_text_dominant"] == pytest.approx(200 / 3)


def test_quick_match_agrees_per_response_where_the_extraction_is_the_gold_format():
    """Per response, kawhi's rule-based extraction is the string the GPT step gives, so the quick match is the
    same judgement."""
    scorer = get_scorer("mathverse")
    for row, (response, extraction) in zip(ROWS, RESPONSES):
        row = dict(row, question_hub=row["question"])
        got = scorer.score_sample(row, response)
        assert got["extracted"] == extraction
        assert got["score"] == float(official_match_answer(dict(row, extraction=extraction), None, True))


@pytest.mark.parametrize("gold,options_text,response,kawhi", [
    ("(C)", "Choices:\nA:1cm\nB:2cm\nC:3cm\nD:4cm", "The answer is C.", 1.0),
    ("False", "Choices:\nA:True\nB:False", "So the statement is false: B.", 1.0),
    ("C\nD", "Choices:\nA:x\nB:y\nC:z\nD:w", "The answer is C and D.", 1.0),
])
def test_widened_quick_match_differs_from_the_official_one(gold, options_text, response, kawhi):
    """Documented difference: the official quick match (answer == extraction) scores these 0 although the GPT
    judgement (demo_prompt_score: "[Standard Answer]: B / [Model_answer]: This is not a function -> 1")
    accepts them; kawhi's rule-based path scores them as the judge would."""
    row = {"id": "x", "answer": gold, "question_type": "multi-choice", "question_hub": f"Which?\n{options_text}"}
    got = get_scorer("mathverse").score_sample(row, response)
    assert got["score"] == kawhi
    assert official_match_answer({"answer": gold, "extraction": got["extracted"]}, None, True) == "0"


def test_vision_only_text_gold_is_scored_not_refused():
    """A Vision Only row has an empty question, so a text gold ("False") names no option: compared as text."""
    row = {"id": "v", "answer": "False", "question_type": "multi-choice", "question_hub": "",
           "question": "According to the question shown in the image, ..."}
    scorer = get_scorer("mathverse")
    assert scorer.score_sample(row, "The statement is wrong, so the answer is False.")["score"] == 1.0
    assert scorer.score_sample(row, "The answer is True.")["score"] == 0.0
