"""The paper's published numbers (../shared/PAPER.md), looked up for the rows this pipeline reproduces.

A row is published when its model's ``source`` is one of the paper's checkpoints and the paper reports
that algorithm, KAWHI variant and benchmark: the paper profile finds its values, the tiny profile none.
A variant is matched by what it changes against full KAWHI (kawhi.config.variant_changes), never by
its name. The rules put each value into the report manifests (EvalEntry.published, RunEntry.published).
"""

from __future__ import annotations

QWEN25_7B = "Qwen/Qwen2.5-VL-7B-Instruct"
QWEN3_4B = "Qwen/Qwen3-VL-4B-Instruct"
MATH = ("mathvista", "mathverse", "mathvision", "wemath")
CHARTS = ("charxiv_descriptive", "charxiv_reasoning", "chartqa", "chartqapro", "chartmimic")


def _row(benchmarks: tuple[str, ...], *values: float) -> dict[str, float]:
    return dict(zip(benchmarks, values, strict=True))


# Table 1 (MathVista / MathVerse / MathVision / WeMath), Table 3 (MathVerse / MathVision) and the
# paper's Fig. 4 (VisionZip at 50 %: MathVista / MathVerse / MathVision), by model, then by row.
# Row keys: "base"; an algorithm ("grpo"); "<algo>+kawhi"; "<algo>+kawhi <what the variant changes>".
PUBLISHED_MATH: dict[str, dict[str, dict[str, float]]] = {
    QWEN25_7B: {
        "base": _row(MATH, 67.47, 45.56, 23.36, 54.32),
        "step-grpo": _row(MATH, 66.87, 44.32, 24.76, 55.32),  # the fine-grained reward baselines
        "ft-rl": _row(MATH, 67.68, 46.88, 26.12, 56.78),
        "vppo": _row(MATH, 68.42, 47.21, 28.42, 57.12),
        "grpo": _row(MATH, 68.37, 45.94, 28.29, 58.10),
        "grpo+kawhi": _row(MATH, 69.30, 47.56, 29.28, 57.84),
        "dapo": _row(MATH, 69.20, 47.75, 28.21, 57.98),
        "dapo+kawhi": _row(MATH, 69.08, 48.20, 31.91, 58.21),
        "gspo": _row(MATH, 69.42, 49.87, 27.30, 59.02),
        "gspo+kawhi": _row(MATH, 69.37, 50.10, 32.57, 59.71),
        "grpo+kawhi regions=all": _row(MATH[1:3], 46.58, 28.45),
        "grpo+kawhi regions=random": _row(MATH[1:3], 46.34, 28.98),
        "grpo+kawhi regions=inverse": _row(MATH[1:3], 45.74, 27.82),
        "grpo+kawhi metric=kk": _row(MATH[1:3], 47.08, 28.95),
        "grpo+kawhi granularity=sentence": _row(MATH[1:3], 47.11, 26.64),
        "grpo+kawhi granularity=token": _row(MATH[1:3], 46.21, 26.64),
        "grpo+kawhi heads=all": _row(MATH[1:3], 46.57, 28.32),
        "grpo+kawhi rotary=pre": _row(MATH[1:3], 47.08, 28.62),
        "grpo+kawhi regions=attention": _row(MATH[:3], 69.17, 47.34, 28.98),
    },
    QWEN3_4B: {
        "base": _row(MATH, 70.43, 40.86, 21.38, 69.43),
        "grpo": _row(MATH, 71.07, 41.12, 22.16, 70.31),
        "grpo+kawhi": _row(MATH, 71.80, 42.10, 23.03, 70.98),
        "dapo": _row(MATH, 69.40, 40.48, 27.63, 69.67),
        "dapo+kawhi": _row(MATH, 71.21, 41.36, 28.43, 71.23),
        "gspo": _row(MATH, 70.50, 41.62, 32.89, 71.55),
        "gspo+kawhi": _row(MATH, 72.10, 46.82, 31.09, 72.15),
    },
}
# Table 2: charts, GRPO and GRPO+KAWHI trained on the ChartQA subset.
PUBLISHED_CHARTS: dict[str, dict[str, dict[str, float]]] = {
    QWEN25_7B: {
        "base": _row(CHARTS, 67.9, 42.1, 87.4, 41.9, 40.2),
        "grpo": _row(CHARTS, 70.1, 44.3, 88.3, 43.7, 42.8),
        "grpo+kawhi": _row(CHARTS, 72.2, 46.4, 89.1, 45.3, 45.1),
    },
}
# Fig. 5: seconds per training step, Qwen2.5-VL-7B with GRPO (VERL, 8 x H200).
PUBLISHED_STEP_TIME: dict[str, dict[str, float]] = {QWEN25_7B: {"grpo": 521.0, "grpo+kawhi": 540.6}}


def row_key(algo: str, kawhi: bool, detail: str) -> str:
    """"base", "grpo", "grpo+kawhi", "grpo+kawhi regions=random"."""
    if algo == "base" or not kawhi:
        return algo
    return f"{algo}+kawhi" + (f" {detail}" if detail else "")


def published_score(source: str, trainset: str, algo: str, kawhi: bool, detail: str,
                    benchmark: str) -> float | None:
    """The paper's score for this row and benchmark; ``trainset`` "" is the base model (any benchmark)."""
    key = row_key(algo, kawhi, detail)
    tables = [PUBLISHED_MATH, PUBLISHED_CHARTS] if key == "base" else \
        [{"math": PUBLISHED_MATH, "chart": PUBLISHED_CHARTS}.get(trainset, {})]
    for table in tables:
        value = table.get(source, {}).get(key, {}).get(benchmark)
        if value is not None:
            return value
    return None


def published_step_time(source: str, algo: str, kawhi: bool, detail: str) -> float | None:
    return PUBLISHED_STEP_TIME.get(source, {}).get(row_key(algo, kawhi, detail))
