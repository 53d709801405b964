"""The paper grid as plain functions of the validated config: every results/ path, the runs, and what each
report artefact reads.

rules/common.smk imports this module and turns its functions into the rules' named input functions; nothing
here knows Snakemake. A run is ``(model, trainset, algo, variant, seed)``: trainset "math" reads train_data
(Table 1, the ablations, the sweeps), "chart" reads chart_train_data (the chart experiment of Figure 4).
Each report command gets a manifest (JSON, kawhi.report.manifest) naming its input files and what each one
is; the same entries give the rule's input list, so the manifest and the DAG cannot disagree.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Iterable, Sequence

from kawhi.config import kawhi_settings, model_settings, settings_json, variant_changes
from kawhi.data.synthetic.registry import SUITES
from kawhi.report.manifest import BASE_ROW, EvalEntry, HeadsEntry, RunEntry, manifest_json
from kawhi.report.published import published_score, published_step_time

Config = dict[str, Any]
Run = tuple[str, str, str, str, Any]  # (model, trainset, algo, variant, seed)

# ---- path patterns: the results/ layout, defined once (the rules' outputs are these very strings) ----------
RESULTS = "results"
LOGS = "logs"
BASE_MODEL = "results/models/{model}/base"  # the model as built (tiny) or fetched (hub id / local path)
SFT_MODEL = "results/models/{model}/sft"
DATA = "results/data/{name}/{split}.parquet"  # a synthetic suite or a prepared benchmark
HEADS_DIR = "results/heads/{model}"  # head identification: critical_heads.json, ablation.csv, figure3.*
HEADS_JSON = "results/heads/{model}/critical_heads.json"
HEADS_ABLATION = "results/heads/{model}/ablation.csv"
HEADS_FIGURE_PNG = "results/heads/{model}/figure3.png"  # the per-model Figure 3 panel; the report combines them
HEADS_FIGURE_PDF = "results/heads/{model}/figure3.pdf"
PUBLISHED_HEADS = "results/heads/{model}/published_heads.json"
RUN_DIR = "results/train/{model}/{trainset}/{algo}/{variant}/seed-{seed}"
RUN_DONE = "results/train/{model}/{trainset}/{algo}/{variant}/seed-{seed}/done.json"
RUN_MODEL = "results/train/{model}/{trainset}/{algo}/{variant}/seed-{seed}/final"
EVAL_BASE = "results/eval/{model}/base/{bench}.json"
EVAL_BASE_SAMPLES = "results/eval/{model}/base/{bench}.samples.jsonl"
EVAL_RUN = "results/eval/{model}/{trainset}/{algo}/{variant}/seed-{seed}/{bench}.json"
EVAL_RUN_SAMPLES = "results/eval/{model}/{trainset}/{algo}/{variant}/seed-{seed}/{bench}.samples.jsonl"
REPORT_FILE = "results/report/{name}"

SYNTHETIC_SUITES = list(SUITES)  # the suites kawhi.data.synthetic can generate
# trainset -> (its config block, the `kawhi prepare-benchmark` layout its source is read with)
TRAIN_DATA = {"math": ("train_data", "rl_train"), "chart": ("chart_train_data", "chartqa")}


def data_file(name: str, split: str = "test") -> str:
    """A synthetic suite or a prepared benchmark, as local parquet."""
    return DATA.format(name=name, split=split)


def run_done(model: str, trainset: str, algo: str, variant: str, seed: Any) -> str:
    """The training run's done.json: its only declared output (the checkpoints beside it survive a crash)."""
    return RUN_DONE.format(model=model, trainset=trainset, algo=algo, variant=variant, seed=seed)


def eval_base_json(model: str, bench: str) -> str:
    return EVAL_BASE.format(model=model, bench=bench)


def eval_run_json(model: str, trainset: str, algo: str, variant: str, seed: Any, bench: str) -> str:
    return EVAL_RUN.format(model=model, trainset=trainset, algo=algo, variant=variant, seed=seed, bench=bench)


def report_file(name: str) -> str:
    """A table or figure of the paper, e.g. report_file("table1.csv")."""
    return REPORT_FILE.format(name=name)


def prepared_train_data(trainset: str) -> str:
    return data_file(f"{trainset}_train", "train")


def key_steps_data(trainset: str) -> str:
    """A prepared hub training set with the judge's key steps added (rule key_steps, rules/baselines.smk)."""
    return data_file(f"{trainset}_train", "train.keysteps")


def policy_dir(config: Config, model: str) -> str:
    """The starting policy of RL and the 'base model' row of Table 1: warm-started when SFT is on."""
    if model_settings(config, model)["sft"] and config["sft"]["enabled"]:
        return SFT_MODEL.format(model=model)
    return BASE_MODEL.format(model=model)


def training_heads_json(config: Config, model: str) -> str:
    """The critical heads the KAWHI runs read: the sweep's, or the published list (heads.source)."""
    pattern = PUBLISHED_HEADS if config["heads"]["source"] == "published" else HEADS_JSON
    return pattern.format(model=model)


def needs_key_steps(config: Config, algo: str) -> bool:
    """Step-GRPO reads each problem's key steps from a dataset column (kawhi.data.key_steps)."""
    return config["algorithms"][algo].get("step_grpo") is not None


def train_data_files(config: Config, trainset: str, algo: str | None = None) -> list[str]:
    """The run's training parquet(s); Step-GRPO on hub data reads the copy with key steps (synthetic suites
    carry theirs)."""
    block = config[TRAIN_DATA[trainset][0]]
    if block.get("source"):
        return [key_steps_data(trainset) if algo is not None and needs_key_steps(config, algo)
                else prepared_train_data(trainset)]
    return [data_file(s, "train") for s in block["suites"]]


# One evaluation job per checkpoint runs all of its benchmarks (rules/eval.smk): the model and lm-eval load
# once. A run is scored on its training set's benchmarks, whichever of them the report reads.
def run_benchmarks(config: Config, trainset: str) -> list[str]:
    """What every run trained on ``trainset`` is evaluated on: the math grid's runs (Table 1, the baselines,
    the sweeps) on the math and ablation benchmarks, the chart experiment's on the chart benchmarks."""
    names = {"math": config["math_benchmarks"] + config["ablation_benchmarks"],
             "chart": config["chart_benchmarks"]}[trainset]
    return list(dict.fromkeys(names))


def base_benchmarks(config: Config, model: str) -> list[str]:
    """What the base policy of ``model`` is evaluated on: the math grid's benchmarks, and for the model of
    the chart experiment the chart benchmarks too (Figure 4's base row)."""
    names = run_benchmarks(config, "math") + (run_benchmarks(config, "chart") if model == first_model(config)
                                              else [])
    return list(dict.fromkeys(names))


# ---- the runs ------------------------------------------------------------------------------------------


def models(config: Config) -> list[str]:
    return list(config["models"])


def first_model(config: Config) -> str:
    """The model of the chart experiment, the ablations and the sweeps."""
    return models(config)[0]


def figure4_algorithm(config: Config) -> str:
    """GRPO, as in the paper (charts, Figure 1); the first configured algorithm if GRPO is not in the grid."""
    algos = config["grid"]["algorithms"]
    return "grpo" if "grpo" in algos else algos[0]


def uses_kawhi(config: Config, variant: str) -> bool:
    return kawhi_settings(config, variant).enabled


def plain_variant(config: Config) -> str:
    """The grid's variant without KAWHI (the algorithm alone)."""
    return next(v for v in config["grid"]["variants"] if not uses_kawhi(config, v))


def full_variant(config: Config) -> str:
    """The grid's variant with full KAWHI (no change against the kawhi block): the sweeps' reference."""
    return next(v for v in config["grid"]["variants"]
                if uses_kawhi(config, v) and not variant_changes(config, v))


def main_runs(config: Config) -> list[Run]:
    """Table 1: every model x algorithm x grid.variants x grid.seeds, trained on train_data."""
    grid = config["grid"]
    return [(m, "math", a, v, s) for m in models(config) for a in grid["algorithms"] for v in grid["variants"]
            for s in grid["seeds"]]


def chart_runs(config: Config) -> list[Run]:
    """The chart experiment: the first model, GRPO x grid.variants x grid.seeds, on chart_train_data."""
    grid, model, algo = config["grid"], first_model(config), figure4_algorithm(config)
    return [(model, "chart", algo, v, s) for v in grid["variants"] for s in grid["seeds"]]


def sweep_runs(config: Config, variants: Sequence[str]) -> list[Run]:
    """The first model, the ablation algorithm, each variant x grid.ablation_seeds, trained on train_data."""
    grid, model = config["grid"], first_model(config)
    return [(model, "math", grid["ablation_algorithm"], v, s) for v in variants for s in grid["ablation_seeds"]]


def baseline_runs(config: Config) -> list[Run]:
    """Table 1's fine-grained reward baselines (grid.baselines): the first model, without KAWHI, on train_data,
    every seed of grid.seeds, as the paper trains them."""
    grid, model, plain = config["grid"], first_model(config), plain_variant(config)
    return [(model, "math", b, plain, s) for b in grid["baselines"] for s in grid["seeds"]]


def all_runs(config: Config) -> list[Run]:
    """Every training run of the grid, each once: Table 1, its baselines, the chart experiment, the sweeps."""
    grid = config["grid"]
    sweeps = grid["ablation_variants"] + grid["skip_ratio_variants"] + grid["selector_variants"]
    runs = main_runs(config) + baseline_runs(config) + chart_runs(config) + sweep_runs(config, sweeps)
    return list(dict.fromkeys(runs))


def run_seeds(config: Config, model: str, trainset: str, algo: str, variant: str) -> list[Any]:
    """Every seed a run is trained with: a run in Table 1 and in a sweep keeps the seeds of both lists."""
    return sorted({r[4] for r in all_runs(config) if r[:4] == (model, trainset, algo, variant)})


# ---- report entries: what each table and figure reads -------------------------------------------------


def eval_entry(config: Config, model: str, trainset: str, algo: str, variant: str, seed: Any,
               bench: str) -> EvalEntry:
    """One eval result as the report reads it; algo BASE_ROW is the base model (the policy before RL)."""
    source = config["models"][model]["source"]
    if algo == BASE_ROW:
        return EvalEntry(model, BASE_ROW, "", bench, eval_base_json(model, bench), False,
                         published=published_score(source, "", BASE_ROW, False, "", bench))
    kawhi, detail = uses_kawhi(config, variant), variant_changes(config, variant)
    return EvalEntry(model, algo, variant, bench, eval_run_json(model, trainset, algo, variant, seed, bench),
                     kawhi, trainset, seed, detail, published_score(source, trainset, algo, kawhi, detail, bench))


def base_entries(config: Config, model: str, benches: Iterable[str]) -> list[EvalEntry]:
    return [eval_entry(config, model, "", BASE_ROW, "", None, b) for b in benches]


def row_entries(config: Config, model: str, trainset: str, algo: str, variant: str,
                benches: Iterable[str]) -> list[EvalEntry]:
    """One table row: the eval results of every seed of the run."""
    benches = list(benches)
    return [eval_entry(config, model, trainset, algo, variant, s, b)
            for s in run_seeds(config, model, trainset, algo, variant) for b in benches]


def table1_entries(config: Config) -> list[EvalEntry]:
    """Per model: the base model, then every main run and baseline, on the math benchmarks."""
    benches = config["math_benchmarks"]
    runs = main_runs(config) + baseline_runs(config)
    entries = []
    for model in models(config):
        entries += base_entries(config, model, benches)
        for (a, v) in dict.fromkeys((a, v) for (m, _, a, v, _) in runs if m == model):
            entries += row_entries(config, model, "math", a, v, benches)
    return entries


def figure4_entries(config: Config) -> list[EvalEntry]:
    """The chart experiment (radar and chart table): the first model's base model, then its chart runs."""
    benches, model = config["chart_benchmarks"], first_model(config)
    entries = base_entries(config, model, benches)
    for v in config["grid"]["variants"]:
        entries += row_entries(config, model, "chart", figure4_algorithm(config), v, benches)
    return entries


def sweep_entries(config: Config, variants: Sequence[str], benches: Sequence[str]) -> list[EvalEntry]:
    """The first model's sweep rows (ablation algorithm, math runs) on ``benches``, each variant once."""
    model, algo = first_model(config), config["grid"]["ablation_algorithm"]
    return [e for v in dict.fromkeys(variants) for e in row_entries(config, model, "math", algo, v, benches)]


def table2_entries(config: Config) -> list[EvalEntry]:
    """The ablation algorithm without KAWHI, with full KAWHI, then each ablation."""
    grid = config["grid"]
    return sweep_entries(config, grid["variants"] + grid["ablation_variants"], config["ablation_benchmarks"])


def figure7_entries(config: Config) -> list[EvalEntry]:
    """The skip-ratio sweep: without KAWHI, full KAWHI, then each skip ratio, on the ablation benchmarks."""
    variants = [plain_variant(config), full_variant(config)] + config["grid"]["skip_ratio_variants"]
    return sweep_entries(config, variants, config["ablation_benchmarks"])


def selector_entries(config: Config) -> list[EvalEntry]:
    """The token-selector sweep: without KAWHI, full KAWHI, then each selector, on the math benchmarks."""
    variants = [plain_variant(config), full_variant(config)] + config["grid"]["selector_variants"]
    return sweep_entries(config, variants, config["math_benchmarks"])


def figure1_entries(config: Config) -> list[EvalEntry]:
    """The GRPO-trained model of each model (every seed), as the paper's Figure 1 classifies it."""
    benches = config["report"].get("figure1_benchmarks") or config["math_benchmarks"]
    algo, plain = figure4_algorithm(config), plain_variant(config)
    return [e for m in models(config) for e in row_entries(config, m, "math", algo, plain, benches)]


def figure1_benchmarks(config: Config) -> list[str]:
    """The benchmarks whose test data Figure 1's example cases read their images from."""
    return list(dict.fromkeys(e.benchmark for e in figure1_entries(config)))


def summary_entries(config: Config) -> list[EvalEntry]:
    """Every main-grid comparison: Table 1's rows plus the chart experiment's."""
    return list(dict.fromkeys(table1_entries(config) + figure4_entries(config)))


def heads_entries(config: Config) -> list[HeadsEntry]:
    """Each model's head sweep (Figure 3), with the paper's published heads where it gives them."""
    published = config["heads"]["published"]
    return [HeadsEntry(m, HEADS_ABLATION.format(model=m), HEADS_JSON.format(model=m), tuple(published.get(m, ())),
                       config["heads"]["source"]) for m in models(config)]


def run_entry(config: Config, model: str, trainset: str, algo: str, variant: str, seed: Any) -> RunEntry:
    kawhi, detail = uses_kawhi(config, variant), variant_changes(config, variant)
    step_time = (published_step_time(config["models"][model]["source"], algo, kawhi, detail)
                 if trainset == "math" else None)
    return RunEntry(model, algo, variant, run_done(model, trainset, algo, variant, seed), kawhi, trainset, seed,
                    detail, step_time)


def curves_runs(config: Config) -> list[RunEntry]:
    """The reward curves: Table 1's runs and the chart experiment's."""
    return [run_entry(config, *run) for run in main_runs(config) + chart_runs(config)]


def figure5_runs(config: Config) -> list[RunEntry]:
    """Table 1's runs: per model and algorithm, the step times without and with KAWHI."""
    return [run_entry(config, *run) for run in main_runs(config)]


def gallery_runs(config: Config) -> list[RunEntry]:
    """The first model's KAWHI math run(s) of the Figure 4 algorithm, first seed: the gallery's rollouts."""
    algo, seed = figure4_algorithm(config), config["grid"]["seeds"][0]
    return [run_entry(config, first_model(config), "math", algo, v, seed) for v in config["grid"]["variants"]
            if uses_kawhi(config, v)]


def warmstart_inputs(config: Config) -> list[str]:
    """Every base (warm-started) policy on every math suite (what Table 1's RL trains and is scored on):
    where RL starts from. The base model is not evaluated on the chart suites elsewhere in the grid."""
    return [eval_base_json(m, b) for m in models(config) for b in config["math_benchmarks"]]


# ---- the report artefacts: one table, one rule each (rules/report.smk) -----------------------------------

# an output's report() entry: (category, label kind, label title); its format label comes from the extension
_FORMATS = {"csv": "csv", "md": "markdown", "tex": "latex", "png": "png", "pdf": "pdf", "json": "json",
            "rst": "headline"}


@dataclass(frozen=True)
class Artefact:
    """One table or figure: ``kawhi <name> <options> --out-<key> <file> ...`` writes its ``outputs``.

    ``outputs`` maps each output's key (its ``--out-<key>`` option) to its file name under results/report/ and
    its report() entry (category, label kind, title), or None for a file the HTML report does not show.
    ``options`` are the command's other options, a template of ``{params.<name>}`` and ``{input}`` (``:q``
    quotes; see ``report_arguments``); ``params`` the names of the
    params they read (see ``report_param``).
    """

    outputs: dict[str, tuple[str, tuple[str, str, str] | None]]
    options: str = "--manifest {params.manifest:q}"
    params: tuple[str, ...] = ("manifest",)
    uses_report_resources: bool = True  # threads and resources from config report.resources (else 1 thread)

    def files(self) -> list[str]:
        """Every output path, in the order `rule all` and the named target list them."""
        return [report_file(name) for name, _ in self.outputs.values()]


def _outputs(name: str, *specs: tuple[str, tuple[str, str, str] | None]) -> dict:
    """{key: (file, report entry)} from (extension, report entry) pairs: the key is the extension."""
    return {ext: (f"{name}.{ext}", entry) for ext, entry in specs}


def _same(entry: tuple[str, str, str] | None, *exts: str) -> tuple[tuple[str, Any], ...]:
    """The same report() entry for several extensions."""
    return tuple((ext, entry) for ext in exts)


_TABLE1 = ("Tables", "table", "1 main results")
_TABLE2 = ("Tables", "table", "2 ablations")
_FIGURE1 = ("Figures", "figure", "1 error categories")
_FIGURE3 = ("Figures", "figure", "3 head ablation")
_FIGURE4, _CHARTS = ("Figures", "figure", "4 chart radar"), ("Tables", "table", "chart results")
_FIGURE5 = ("Figures", "figure", "5 step time")
_FIGURE7, _SKIP = ("Figures", "figure", "7 skip ratio"), ("Tables", "table", "skip ratio")
_SELECTOR, _SELECTOR_TABLE = ("Figures", "figure", "token selector"), ("Tables", "table", "token selector")
_CURVES = ("Training", "figure", "reward curves")
_GALLERY = ("Training", "figure", "KAWHI gallery")
_SUMMARY = ("Tables", "table", "performance summary")
_WARMSTART = ("Tables", "table", "warm-start pass@k")

ARTEFACTS: dict[str, Artefact] = {
    "table1": Artefact(_outputs("table1", *_same(_TABLE1, "csv", "md", "tex"))),
    "table2": Artefact(_outputs("table2", *_same(_TABLE2, "csv", "md", "tex"))),
    "figure1": Artefact(_outputs("figure1", ("json", None), *_same(_FIGURE1, "png", "pdf")),
                        "--manifest {params.manifest:q} --data {params.data} --judge {params.judge:q}"
                        " --examples {params.examples}", ("manifest", "data", "judge", "examples")),
    "figure3": Artefact(_outputs("figure3", *_same(_FIGURE3, "png", "pdf"))),
    "figure4": Artefact(_outputs("figure4", *_same(_FIGURE4, "png", "pdf"), *_same(_CHARTS, "csv", "md"),
                                 ("tex", None))),
    "figure5": Artefact(_outputs("figure5", *_same(_FIGURE5, "png", "pdf", "csv"))),
    "figure7": Artefact(_outputs("figure7", *_same(_FIGURE7, "png", "pdf"), *_same(_SKIP, "csv", "md"),
                                 ("tex", None)),
                        "--manifest {params.manifest:q} --skip-ratios {params.skip_ratios:q}"
                        " --reference-variant {params.reference}", ("manifest", "skip_ratios", "reference")),
    "selector": Artefact(_outputs("selector", *_same(_SELECTOR, "png", "pdf"),
                                  *_same(_SELECTOR_TABLE, "csv", "md"), ("tex", None)),
                         "--manifest {params.manifest:q} --reference-variant {params.reference}",
                         ("manifest", "reference")),
    "curves": Artefact(_outputs("curves", *_same(_CURVES, "png", "pdf", "csv"))),
    "gallery": Artefact(_outputs("gallery", *_same(_GALLERY, "png", "pdf")),
                        "--manifest {params.manifest:q} --n {params.n}", ("manifest", "n")),
    # the landing page (report/workflow.rst) includes headline.rst; registered so the report knows where it lies
    "summary": Artefact({**_outputs("summary", *_same(_SUMMARY, "json", "md")), "rst": ("headline.rst", _SUMMARY)}),
    "warmstart": Artefact(_outputs("warmstart", *_same(_WARMSTART, "csv", "md")), "--results {input}", (),
                          uses_report_resources=False),
}
def report_entry(artefact: str, key: str) -> dict[str, Any] | None:
    """The report() keywords of one output (caption, category, labels), or None when the report skips it."""
    _, entry = ARTEFACTS[artefact].outputs[key]
    if entry is None:
        return None
    category, kind, title = entry
    return {"caption": f"../report/{artefact}.rst", "category": category,
            "labels": {kind: title, "format": _FORMATS[key]}}


class _Arg:
    """A value in an option template, formatted as Snakemake formats shell lines: a list space-joined, ``:q``
    shell-quoted."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __format__(self, spec: str) -> str:
        text = " ".join(map(str, self.value)) if isinstance(self.value, (list, tuple)) else str(self.value)
        return shlex.quote(text) if spec == "q" else text


def report_arguments(config: Config, artefact: str, inputs: Iterable[str], outputs: dict[str, str]) -> str:
    """The arguments of `kawhi <artefact>`: the subcommand, its options with their params (the manifest, ...)
    filled in, then ``--out-<key> <file>`` for each output.

    The rule passes them as one param: rules generated in a loop must not read the loop variable in their
    shell command (Snakemake evaluates it again when the job runs, after the loop has moved on).
    """
    spec = ARTEFACTS[artefact]
    params = SimpleNamespace(**{p: _Arg(report_param(config, artefact, p)) for p in spec.params})
    options = spec.options.format(params=params, input=_Arg(list(inputs)))
    outs = " ".join(f"--out-{key} {outputs[key]}" for key in spec.outputs)
    return f"{artefact} {options} {outs}"


def report_inputs(config: Config, artefact: str) -> list[str] | dict[str, list[str]]:
    """The input files of one artefact (Figure 1's also the test data of its benchmarks)."""
    if artefact == "figure1":
        return {"evals": [e.path for e in figure1_entries(config)],
                "data": [data_file(b, "test") for b in figure1_benchmarks(config)]}
    if artefact == "figure3":
        return [f for e in heads_entries(config) for f in (e.heads_json, e.ablation_csv)]
    if artefact == "warmstart":
        return warmstart_inputs(config)
    return [e.done if isinstance(e, RunEntry) else e.path for e in report_entries(config, artefact)]


def report_entries(config: Config, artefact: str) -> list[Any]:
    """The manifest entries of one artefact (kawhi.report.manifest)."""
    return {"table1": table1_entries, "table2": table2_entries, "figure1": figure1_entries,
            "figure3": heads_entries, "figure4": figure4_entries, "figure5": figure5_runs,
            "figure7": figure7_entries, "selector": selector_entries, "curves": curves_runs,
            "gallery": gallery_runs, "summary": summary_entries}[artefact](config)


def report_param(config: Config, artefact: str, name: str) -> Any:
    """One param of an artefact's command: its manifest, or the settings its options name."""
    if name == "manifest":
        return manifest_json(report_entries(config, artefact))
    if name == "data":  # BENCH=PARQUET pairs: where Figure 1's example cases find their images
        return [f"{b}={data_file(b, 'test')}" for b in figure1_benchmarks(config)]
    if name == "judge":
        return settings_json(config["eval"].get("judge") or {})
    if name == "examples":
        return config["report"]["figure1_examples"]
    if name == "skip_ratios":
        variants = [full_variant(config)] + config["grid"]["skip_ratio_variants"]
        return json.dumps({v: kawhi_settings(config, v).sguf.skip_ratio for v in variants}, sort_keys=True)
    if name == "reference":
        return full_variant(config)
    if name == "n":
        return config["report"]["gallery_rollouts"]
    raise KeyError(f"no report param {name!r}")


def report_artefacts(config: Config) -> list[str]:
    """The artefacts `rule all` builds: a sweep without variants has no figure."""
    skip = {"figure7"} if not config["grid"]["skip_ratio_variants"] else set()
    skip |= {"selector"} if not config["grid"]["selector_variants"] else set()
    return [a for a in ARTEFACTS if a not in skip]
