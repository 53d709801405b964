"""How the report names benchmarks, algorithms and rows ("GRPO+KAWHI w/ random regions")."""

from __future__ import annotations

from kawhi.report.manifest import BASE_ROW

BENCHMARK_LABELS = {
    "mathvista": "MathVista", "mathverse": "MathVerse", "mathvision": "MathVision", "wemath": "WeMath",
    "chartqa": "ChartQA", "chartqapro": "ChartQA-Pro", "charxiv_descriptive": "CharXiv-D",
    "charxiv_reasoning": "CharXiv-R", "chartmimic": "ChartMimic", "mme": "MME",
}
ALGO_LABELS = {"grpo": "GRPO", "dapo": "DAPO", "gspo": "GSPO", BASE_ROW: "Base model",
               "step-grpo": "Step-GRPO", "ft-rl": "FT-RL", "vppo": "VPPO"}
# Table 1's "fine-grained reward" baselines, in the paper's row order; every other run is a uniform reward
FINE_GRAINED = ("step-grpo", "ft-rl", "vppo")
FINE_GRAINED_HEADING = "Fine-grained reward"
UNIFORM_HEADING = "Uniform reward"
# A variant is named by what it changes against full KAWHI (kawhi.config.variant_changes): the paper's
# rows get the paper's words, anything else its settings.
DETAIL_LABELS = {
    "regions=all": "w/ all vision tokens", "regions=random": "w/ random regions",
    "regions=inverse": "w/ inverse regions", "regions=attention": "w/ attention selector",
    "metric=kk": "w/ Key-Key alignment", "granularity=sentence": "w/ sentence granularity",
    "granularity=token": "w/ token granularity", "heads=all": "w/o critical heads",
    "rotary=pre": "w/ q/k before RoPE",
}


def benchmark_label(name: str) -> str:
    return BENCHMARK_LABELS.get(name, name)


def method_label(algo: str, kawhi: bool = False, detail: str = "") -> str:
    """"Base model", "GRPO", "GRPO+KAWHI", "GRPO+KAWHI w/ random regions", "GRPO+KAWHI w/ sguf.skip_ratio=0.1"."""
    name = ALGO_LABELS.get(algo, algo.upper())
    if algo == BASE_ROW or not kawhi:
        return name
    if not detail:
        return name + "+KAWHI"
    return f"{name}+KAWHI {DETAIL_LABELS.get(detail, 'w/ ' + detail.replace(',', ', '))}"
