"""Figure 1: where the GRPO-trained model's wrong answers go wrong (VP, AO, CE, RAE, Others), plus two
examples. The rules pass the runs the paper classifies (GRPO without KAWHI, every seed); the counts add
up over the seeds' checkpoints.

Categories (kawhi.data.synthetic.classify_error decides them from each row's ground-truth ``facts``):
VP a wrongly stated visual fact; AO an answer with no reasoning; CE a wrong arithmetic step on right
facts; RAE a wrong rule on right facts and arithmetic; Others the rest. Rows without ``facts`` (real
benchmarks) are classified only by a configured LLM judge; without one their benchmark is left out and
the figure says so. The counts behind the figure go to a JSON beside it.
"""

from __future__ import annotations

import io
import logging
import textwrap
from collections import Counter
from pathlib import Path
from typing import Any, Callable

from kawhi.atomic import write_json
from kawhi.provenance import provenance
from kawhi.report.output import save_figure
from kawhi.report.manifest import EvalEntry, ReportInputError, manifest_json
from kawhi.report.results import read_jsonl
from kawhi.report.labels import benchmark_label, method_label

log = logging.getLogger(__name__)

CATEGORIES = ("VP", "AO", "CE", "RAE", "Others")
CATEGORY_NAMES = {"VP": "visual perception", "AO": "answer only", "CE": "calculation error",
                  "RAE": "reasoning / rule error", "Others": "others"}
CATEGORY_COLORS = {"VP": "#d62728", "AO": "#9467bd", "CE": "#ff7f0e", "RAE": "#1f77b4", "Others": "#7f7f7f"}

Classifier = Callable[[dict[str, Any], str], str]


def is_wrong(line: dict[str, Any]) -> bool:
    """A samples line whose score is below full marks (scores are 0/1, or a fraction for partial credit)."""
    score = line.get("score")
    if isinstance(score, bool):
        return not score
    if not isinstance(score, (int, float)):
        raise ReportInputError(f"samples line id {line.get('id')!r}: score {score!r} is not a number")
    return float(score) < 1.0


def has_facts(line: dict[str, Any]) -> bool:
    return line.get("facts") not in (None, "", {}, [])


def synthetic_classifier() -> Classifier:
    from kawhi.data.synthetic import classify_error

    return classify_error


JUDGE_PROMPT = """You are grading why a vision-language model answered a visual question wrongly.
Question: {question}
Correct answer: {answer}
Model response:
{response}

Pick the single main error category:
VP - visual perception: the response states something about the image that is wrong;
AO - answer only: no reasoning, just an answer;
CE - calculation error: right visual facts, a wrong arithmetic step;
RAE - reasoning error: right facts and arithmetic, a wrong rule or method;
Others - anything else.
Reply with the category code only."""


def parse_judge_category(reply: str) -> str:
    """The first category code in a judge's reply (RAE before the shorter codes); Others if none."""
    import re

    match = re.search(r"\b(RAE|VP|AO|CE|Others)\b", reply or "", re.IGNORECASE)
    if not match:
        return "Others"
    return next(c for c in CATEGORIES if c.lower() == match.group(1).lower())


def judge_completion(judge: dict[str, Any]) -> Callable[[str], str]:
    """``prompt -> reply`` from the judge the eval stage builds for the ``eval.judge`` block (every
    kind it knows: openai, vllm, hf); the block's ``benchmarks`` list limits scoring, not figure 1."""
    from kawhi.judge import build_judge

    try:
        return build_judge({k: v for k, v in judge.items() if k != "benchmarks"}).complete
    except ValueError as err:  # a missing or unknown key of eval.judge, named by build_judge
        raise ReportInputError(str(err)) from err


def judge_classifier(judge: dict[str, Any], complete: Callable[[str], str] | None = None) -> Classifier:
    """Error category from an LLM judge, for rows without facts (real benchmarks).

    ``complete`` maps a prompt to the judge's reply; by default the eval stage's judge client
    (kawhi.judge, configured by ``eval.judge``) provides it.
    """
    if complete is None:
        complete = judge_completion(judge)

    def classify(row: dict[str, Any], response: str) -> str:
        prompt = JUDGE_PROMPT.format(question=row.get("question", ""), answer=row.get("answer", ""),
                                     response=response)
        return parse_judge_category(complete(prompt))

    return classify


def classify_samples(lines: list[dict[str, Any]], classify: Classifier) -> Counter:
    """Category counts over the wrong answers of ``lines``; a "correct" verdict on a wrong-scored line
    (the scorer accepted less than the classifier) is counted as Others."""
    counts: Counter = Counter({c: 0 for c in CATEGORIES})
    for line in lines:
        if not is_wrong(line):
            continue
        category = classify(line, line.get("response") or "")
        counts[category if category in CATEGORIES else "Others"] += 1
    return counts


def error_distribution(entries: list[EvalEntry], judge: dict[str, Any] | None,
                       complete: Callable[[str], str] | None = None) -> dict[str, Any]:
    """Counts per model and benchmark, and which benchmarks were left out and why."""
    models: dict[str, Any] = {}
    left_out = []
    by_judge: Classifier | None = None
    for entry in entries:
        lines = read_jsonl(entry.samples_path)
        if not lines:
            raise ReportInputError(f"{entry.samples_path}: no samples")
        if all(has_facts(line) for line in lines):
            classify, how = synthetic_classifier(), "facts"
        elif judge:
            by_judge = by_judge or judge_classifier(judge, complete)
            classify, how = by_judge, "judge"
        else:
            left_out.append({"model": entry.model, "benchmark": entry.benchmark,
                             "reason": "no ground-truth facts and no judge configured (eval.judge)"})
            continue
        counts = classify_samples(lines, classify)
        # the seeds of one run add up: each seed's checkpoint answered the benchmark once
        model = models.setdefault(entry.model, {"method": method_label(entry.algo, entry.kawhi, entry.detail),
                                                "benchmarks": {}, "total": Counter()})
        bench = model["benchmarks"].setdefault(entry.benchmark, {"counts": Counter(), "n": 0, "n_wrong": 0,
                                                                 "n_checkpoints": 0, "classified_by": how})
        bench["counts"].update(counts)
        bench["n"] += len(lines)
        bench["n_wrong"] += sum(counts.values())
        bench["n_checkpoints"] += 1
        model["total"].update(counts)
    for model in models.values():
        for bench in model["benchmarks"].values():
            bench["counts"] = {c: int(bench["counts"].get(c, 0)) for c in CATEGORIES}
        model["total"] = {c: int(model["total"].get(c, 0)) for c in CATEGORIES}
        n_wrong = sum(model["total"].values())
        model["percent"] = {c: (100.0 * n / n_wrong if n_wrong else 0.0) for c, n in model["total"].items()}
        model["n_wrong"] = n_wrong
    return {"categories": list(CATEGORIES), "models": models, "left_out": left_out}


def pick_examples(entries: list[EvalEntry], n: int) -> list[dict[str, Any]]:
    """Up to ``n`` wrong answers with misread facts (VP), from the first model, one per benchmark first."""
    if n <= 0:
        return []
    from kawhi.data.synthetic import classify_error, misread_facts

    first = entries[0].model if entries else None
    pools = []
    for entry in (e for e in entries if e.model == first):
        pool = []
        for line in read_jsonl(entry.samples_path):
            if has_facts(line) and is_wrong(line) and classify_error(line, line.get("response") or "") == "VP":
                facts = misread_facts(line, line.get("response") or "")
                if facts:
                    pool.append({"model": entry.model, "benchmark": entry.benchmark, "row": line,
                                 "misread": facts})
        pools.append(pool)
    picked = []
    while len(picked) < n and any(pools):  # round-robin over benchmarks: varied examples
        for pool in pools:
            if pool and len(picked) < n:
                picked.append(pool.pop(0))
    return picked


def load_image(data_parquet: str | Path | None, row_id: Any):
    """The example's image from its benchmark parquet (the samples log carries no images)."""
    if data_parquet is None or not Path(data_parquet).exists():
        return None
    import pandas as pd
    from PIL import Image

    frame = pd.read_parquet(data_parquet)
    match = frame[frame["id"].astype(str) == str(row_id)]
    if match.empty:
        return None
    image = match.iloc[0].get("image")
    if isinstance(image, dict) and image.get("bytes"):
        return Image.open(io.BytesIO(image["bytes"])).convert("RGB")
    return None


def fact_text(fact: Any) -> str:
    if isinstance(fact, dict):
        return ", ".join(f"{k}: {v}" for k, v in fact.items())
    if isinstance(fact, (list, tuple)):
        return " / ".join(str(x) for x in fact)
    return str(fact)


def highlighted_lines(row: dict[str, Any], response: str, misread: list[Any],
                      width: int = 46) -> list[tuple[str, bool]]:
    """The response wrapped to ``width``, each line flagged when its source line states a misread fact.

    A source line is flagged when the synthetic grader finds a misread fact in that line alone (the
    facts are stated one line each), or when it names a misread fact's key.
    """
    keys = [fact_text(f).lower() for f in misread]
    out = []
    for line in response.splitlines() or [""]:
        flagged = any(k and k in line.lower() for k in keys)
        if not flagged and line.strip() and has_facts(row):
            from kawhi.data.synthetic import misread_facts

            flagged = bool(misread_facts(row, line))
        out += [(piece, flagged) for piece in (textwrap.wrap(line, width) or [""])]
    return out


def draw_example_text(ax, row: dict[str, Any], misread: list[Any], max_lines: int = 16) -> None:
    """Question, the model's response with the lines stating misread facts in red, gold answer."""
    lines = [(piece, False) for piece in textwrap.wrap("Q: " + str(row.get("question", "")), 46)]
    lines += [("", False), ("Model:", False)]
    body = highlighted_lines(row, str(row.get("response", "")), misread)
    lines += body[:max_lines] + ([("...", False)] if len(body) > max_lines else [])
    lines += [("", False), (f"Gold answer: {row.get('answer')}", False),
              ("Misread: " + "; ".join(fact_text(f) for f in misread), True)]
    step = 1.0 / max(len(lines), 18)
    for i, (text, flagged) in enumerate(lines):
        ax.text(0, 1 - i * step, text, va="top", fontsize=7, family="monospace",
                color=CATEGORY_COLORS["VP"] if flagged else "black", fontweight="bold" if flagged else "normal",
                bbox={"facecolor": "#fde2e1", "edgecolor": "none", "pad": 1} if flagged and text else None)


def plot_figure1(distribution: dict[str, Any], examples: list[dict[str, Any]], images: list):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(distribution["models"])
    n_top = max(1, len(models))
    n_rows = 1 + (1 if examples else 0)
    fig = plt.figure(figsize=(5.0 * max(n_top, len(examples) or 1), 4.0 * n_rows + 0.6))
    grid = fig.add_gridspec(n_rows, max(n_top, 2 * len(examples) or 1))
    span = grid.ncols // n_top
    for i, model in enumerate(models):
        ax = fig.add_subplot(grid[0, i * span:(i + 1) * span])
        m = distribution["models"][model]
        values = [m["percent"][c] for c in CATEGORIES]
        bars = ax.bar(CATEGORIES, values, color=[CATEGORY_COLORS[c] for c in CATEGORIES])
        for bar, count in zip(bars, (m["total"][c] for c in CATEGORIES)):
            ax.annotate(f"{bar.get_height():.0f}%\n({count})", (bar.get_x() + bar.get_width() / 2,
                        bar.get_height()), ha="center", va="bottom", fontsize=8)
        benches = ", ".join(benchmark_label(b) for b in m["benchmarks"])
        ax.set_title(f"{model} · {m['method']}: {m['n_wrong']} wrong answers\n({benches})", fontsize=9)
        ax.set_ylabel("% of wrong answers")
        ax.set_ylim(0, 110)
    if not models:
        ax = fig.add_subplot(grid[0, :])
        ax.axis("off")
        ax.text(0.5, 0.5, "no benchmark could be classified", ha="center", va="center")
    if distribution["left_out"]:
        names = sorted({benchmark_label(x["benchmark"]) for x in distribution["left_out"]})
        fig.text(0.5, 0.995, f"Left out (no ground-truth facts, no judge configured): {', '.join(names)}",
                 ha="center", va="top", fontsize=8, color="dimgray")
    for j, (example, image) in enumerate(zip(examples, images)):
        ax_img = fig.add_subplot(grid[1, 2 * j])
        ax_img.axis("off")
        if image is not None:
            ax_img.imshow(image)
        row = example["row"]
        ax_img.set_title(f"{benchmark_label(example['benchmark'])} #{row.get('id')}", fontsize=9)
        ax_txt = fig.add_subplot(grid[1, 2 * j + 1])
        ax_txt.axis("off")
        draw_example_text(ax_txt, row, example["misread"])
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    return fig


def write_figure1(entries: list[EvalEntry], data: dict[str, str], judge: dict[str, Any] | None,
                  out_json: str | Path, out_png: str | Path, out_pdf: str | Path | None,
                  n_examples: int = 2) -> dict[str, Any]:
    distribution = error_distribution(entries, judge)
    examples = pick_examples(entries, n_examples)
    images = [load_image(data.get(e["benchmark"]), e["row"].get("id")) for e in examples]
    save_figure(plot_figure1(distribution, examples, images), [out_png, out_pdf])
    distribution["examples"] = [{"model": e["model"], "benchmark": e["benchmark"], "id": e["row"].get("id"),
                                 "question": e["row"].get("question"), "response": e["row"].get("response"),
                                 "answer": e["row"].get("answer"), "misread": e["misread"]} for e in examples]
    distribution["provenance"] = provenance({"manifest": manifest_json(entries), "judge": judge or {}})
    write_json(out_json, distribution)
    for x in distribution["left_out"]:
        log.warning("Figure 1 leaves out %s/%s: %s", x["model"], x["benchmark"], x["reason"])
    return distribution
