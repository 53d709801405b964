"""Typed view of the pipeline config.

The YAML config is validated against ``schema/config.schema.yaml`` (which also holds every default)
and then read into the dataclasses below. Stages receive only the settings they need, as plain
JSON-able dicts built by the ``*_settings`` functions; the Snakemake rules pass those as ``params`` so
that changing one run's setting reruns only that run.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

SCHEMA_PATH = Path(__file__).parent / "schema" / "config.schema.yaml"


class ConfigError(ValueError):
    """A config that the schema or a cross-key check refuses; the message names the key."""


@dataclass(frozen=True)
class SGUFSettings:
    """SGUF's constants (METHOD.md section 2, the paper's Appendix A values)."""

    sigma: float = 1.0
    delta_s: float = 0.5
    delta_l: float = 30.0
    beta: float = 0.1
    skip_ratio: float = 0.7


@dataclass(frozen=True)
class KawhiSettings:
    """The KAWHI block of METHOD.md. ``enabled=False`` means the base algorithm exactly."""

    enabled: bool = True
    layers: str | tuple[int, ...] = (-1,)
    heads: str = "critical"
    rotary: str = "post"
    regions: str = "sguf"
    attention_fraction: float = 0.5
    metric: str = "kq"
    granularity: str = "paragraph"
    delimiter: str = "\n\n"
    tau: float = 0.1
    lam: float = 0.1
    w_min: float = 0.1
    w_max: float = 1.0
    normalize: str = "none"
    sguf: SGUFSettings = field(default_factory=SGUFSettings)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "KawhiSettings":
        d = dict(d)
        sguf = SGUFSettings(**d.pop("sguf", {}))
        layers = d.pop("layers", cls.layers)
        layers = layers if isinstance(layers, str) else tuple(layers)
        return cls(sguf=sguf, layers=layers, **d)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        if not isinstance(self.layers, str):
            d["layers"] = list(self.layers)
        return d


@dataclass(frozen=True)
class AlgorithmSettings:
    """One RL algorithm preset (GRPO, DAPO, GSPO), mapped onto trl.GRPOConfig plus DAPO extras."""

    name: str
    loss_type: str = "grpo"
    importance_sampling_level: str = "token"
    epsilon: float = 0.2
    epsilon_high: float = 0.2
    beta: float = 0.0
    num_iterations: int = 1
    scale_rewards: str = "group"
    dynamic_sampling: bool = False
    dynamic_sampling_max_tries: int = 3
    overlong_punishment: bool = False
    overlong_buffer: int = 8
    # the fine-grained reward baselines (kawhi.train.baselines): FT-RL is TRL's own option, VPPO and
    # Step-GRPO are on when their block is present (a dict of their settings)
    top_entropy_quantile: float = 1.0
    vppo: dict[str, Any] | None = None
    step_grpo: dict[str, Any] | None = None


def validate_config(config: dict[str, Any]) -> dict[str, Any]:
    """Validate ``config`` in place, filling defaults; raise ConfigError naming the key (and rule).

    The one check both the command line (``load_config``) and the Snakefile run before any job: numbers
    that YAML 1.1 read as strings (``1e-4``) are made numbers, then the schema, then the cross-key checks.
    """
    if not isinstance(config, dict) or not config:
        raise ConfigError("invalid config: it is empty; a config needs at least 'models'")
    schema = _schema()
    _coerce_numeric_strings(config, schema)
    _raise_schema_error(config, schema)
    _fill_defaults(config, schema)  # all valid now
    _check_cross_keys(config)
    return config


def _fill_defaults(config: dict[str, Any], schema: dict[str, Any]) -> None:
    """Fill every ``default`` of the schema into ``config`` (in place), as Snakemake's
    ``validate(..., set_default=True)`` does: jsonschema's documented ``extend_with_default`` recipe, a
    validator whose ``properties`` keyword first sets each missing property's default, then validates.
    Nested defaults are filled too, since the validator descends into each default it has just set."""
    import jsonschema

    validate_properties = jsonschema.Draft202012Validator.VALIDATORS["properties"]

    def set_defaults(validator: Any, properties: dict[str, Any], instance: Any, schema: dict[str, Any]):
        if isinstance(instance, dict):
            for name, subschema in properties.items():
                if isinstance(subschema, dict) and "default" in subschema:
                    instance.setdefault(name, copy.deepcopy(subschema["default"]))
        yield from validate_properties(validator, properties, instance, schema)

    filling = jsonschema.validators.extend(jsonschema.Draft202012Validator, {"properties": set_defaults})
    error = jsonschema.exceptions.best_match(filling(schema).iter_errors(config))
    if error is not None:  # a default that breaks the schema: a bug of the schema, named by its key
        key = ".".join(str(p) for p in error.absolute_path) or "<top level>"
        raise ConfigError(f"invalid config at '{key}': {error.message}")


def _schema() -> dict[str, Any]:
    return yaml.safe_load(SCHEMA_PATH.read_text())


# YAML 1.2's float (and int) syntax. PyYAML implements YAML 1.1, where ``1e-4`` (no dot) is a string.
_YAML12_NUMBER = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")


def _coerce_numeric_strings(config: dict[str, Any], schema: dict[str, Any]) -> None:
    """Turn strings in YAML 1.2 number syntax into numbers wherever the schema asks for a number."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema)
    for _ in range(1000):  # one pass per fixed value at most; the bound only guards against a loop
        fixed = False
        pending = list(validator.iter_errors(config))
        while pending:
            error = pending.pop()
            pending.extend(error.context or [])
            wanted = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
            if (error.validator != "type" or not isinstance(error.instance, str)
                    or not {"number", "integer"} & set(wanted) or not _YAML12_NUMBER.match(error.instance.strip())):
                continue
            value: float | int = float(error.instance)
            if "number" not in wanted:
                if not value.is_integer():
                    continue
                value = int(value)
            *parents, last = list(error.absolute_path)
            holder: Any = config
            for part in parents:
                holder = holder[part]
            if holder.get(last) == error.instance:
                holder[last] = value
                fixed = True
        if not fixed:
            return


def _raise_schema_error(config: dict[str, Any], schema: dict[str, Any]) -> None:
    """The most relevant schema violation as a one-line ConfigError naming the key (snakemake's own
    message prints the whole schema)."""
    import jsonschema

    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(config))
    if error is not None:
        key = ".".join(str(p) for p in error.absolute_path) or "<top level>"
        raise ConfigError(f"invalid config at '{key}': {error.message}")


# Model, algorithm and variant names become directory names and shell words in the rules.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def _check_cross_keys(config: dict[str, Any]) -> None:
    for model in config["models"]:
        if not _NAME.match(str(model)):
            raise ConfigError(f"invalid config at 'models': model name {model!r} may hold only letters, digits, "
                              f"'.', '_' and '-' (it becomes a directory name and a shell word)")
    grid = config["grid"]
    for algo in grid["algorithms"] + [grid["ablation_algorithm"]]:
        if algo not in config["algorithms"]:
            raise ConfigError(f"invalid config at 'grid.algorithms': unknown algorithm '{algo}'")
    for variant in grid["variants"] + grid["ablation_variants"]:
        if variant not in config["variants"]:
            raise ConfigError(f"invalid config at 'grid.variants': unknown variant '{variant}'")
    for variant in config["variants"]:
        _check_variant(config, variant)
    _check_training(config)
    _check_layers(config)

    _check_grid_keys(config)
    _check_baselines(config)


BASELINE_OFF = {"top_entropy_quantile": 1.0, "vppo": None, "step_grpo": None}  # AlgorithmSettings' off values
BASELINE_MECHANISMS = {"ft-rl": "top_entropy_quantile", "vppo": "vppo", "step-grpo": "step_grpo"}


def _check_baselines(config: dict[str, Any]) -> None:
    """Each of grid.baselines is a configured algorithm that switches its own mechanism on."""
    for name in config["grid"]["baselines"]:
        if name not in config["algorithms"]:
            raise ConfigError(f"invalid config at 'grid.baselines': baseline '{name}' has no preset under "
                              f"'algorithms.{name}'")
        key = BASELINE_MECHANISMS[name]
        preset = config["algorithms"][name]
        on = preset.get(key, 1.0) < 1.0 if key == "top_entropy_quantile" else key in preset
        if not on:
            raise ConfigError(f"invalid config at 'algorithms.{name}.{key}': the {name} baseline needs it "
                              f"(docs/train.md)")
    for name, preset in config["algorithms"].items():
        if "vppo" in preset and "step_grpo" in preset:
            raise ConfigError(f"invalid config at 'algorithms.{name}': vppo and step_grpo are separate baselines")


def _schema_part(*path: str) -> dict[str, Any]:
    """The schema at ``path`` (e.g. "definitions", "kawhi_settings"), standalone: its $refs still resolve."""
    schema = yaml.safe_load(SCHEMA_PATH.read_text())
    part = schema
    for key in path:
        part = part[key]
    return dict(part, definitions=schema["definitions"])


def _first_error(schema: dict[str, Any], instance: dict[str, Any], where: str) -> None:
    import jsonschema

    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(instance))
    if error is not None:
        key = ".".join(str(p) for p in error.absolute_path)
        raise ConfigError(f"invalid config at '{where}{'.' + key if key else ''}': {error.message}")


def _check_grid_keys(config: dict[str, Any]) -> None:
    """The keys of the grid's seeds, sweeps, training sets, per-algorithm training and published heads."""
    grid = config["grid"]
    for key in ("skip_ratio_variants", "selector_variants"):
        for variant in grid[key]:
            if variant not in config["variants"]:
                raise ConfigError(f"invalid config at 'grid.{key}': unknown variant '{variant}'")
            if not kawhi_settings(config, variant).enabled:
                raise ConfigError(f"invalid config at 'grid.{key}': variant '{variant}' does not enable KAWHI")
    for block in ("train_data", "chart_train_data"):
        if not config[block].get("source") and not config[block].get("suites"):
            raise ConfigError(f"invalid config at '{block}.suites' (rule train): empty, and no {block}.source "
                              f"is given: there is nothing to train on")
    training_schema = _schema_part("properties", "training")
    for algo, preset in config["algorithms"].items():
        overrides = preset.get("training", {})
        if "resources" in overrides:
            raise ConfigError(f"invalid config at 'algorithms.{algo}.training.resources': resources are the "
                              f"training rule's, not an algorithm's")
        _first_error(training_schema, deep_merge(config["training"], overrides), f"algorithms.{algo}.training")
    for algo in config["algorithms"]:
        training = algorithm_training(config, algo)
        if "prompts_per_step" in training and "gradient_accumulation_steps" in training:
            raise ConfigError(f"invalid config at 'algorithms.{algo}.training': prompts_per_step sets "
                              f"gradient_accumulation_steps; give one of the two (training block included)")
    heads = config["heads"]
    for model in heads["published"]:
        if model not in config["models"]:
            raise ConfigError(f"invalid config at 'heads.published.{model}': not a model of this config "
                              f"(models: {', '.join(config['models'])})")
    if heads["source"] == "published":
        missing = [m for m in config["models"] if m not in heads["published"]]
        if missing:
            raise ConfigError(f"invalid config at 'heads.published': heads.source is 'published' but "
                              f"model(s) {missing} have no list")


def _check_training(config: dict[str, Any]) -> None:
    training = config["training"]
    for algo in config["grid"]["algorithms"]:
        merged = algorithm_training(config, algo)
        if "prompts_per_step" in merged:  # sets gradient_accumulation_steps from whole groups
            continue
        generation_batch = merged["per_device_train_batch_size"] * merged.get("gradient_accumulation_steps", 1)
        if generation_batch % merged["num_generations"]:
            where = "training" if merged["num_generations"] == training["num_generations"] else f"algorithms.{algo}.training"
            raise ConfigError(
                f"invalid config at '{where}.num_generations' (rule train): {merged['num_generations']} does not "
                f"divide per_device_train_batch_size x gradient_accumulation_steps = {generation_batch}; TRL needs "
                f"whole groups of completions in every generation batch")
    if training["save_steps"] > training["max_steps"]:
        raise ConfigError(
            f"invalid config at 'training.save_steps' (rule train): {training['save_steps']} > training.max_steps "
            f"= {training['max_steps']}: no checkpoint would be written before the end, so a killed run restarts "
            f"from step 0")


def _model_layers(config: dict[str, Any], model: str) -> int | None:
    """Decoder layers of ``model`` where the config tells them (tiny models, local directories)."""
    spec = config["models"][model]
    if spec.get("source", "tiny") == "tiny":
        return int(spec.get("tiny", {}).get("num_hidden_layers", 2))
    local = Path(spec["source"]) / "config.json"
    if local.is_file():
        try:
            hf = json.loads(local.read_text())
        except (OSError, json.JSONDecodeError):
            return None
        layers = hf.get("text_config", hf).get("num_hidden_layers", hf.get("num_hidden_layers"))
        return int(layers) if isinstance(layers, int) else None
    return None  # a hub id: checked when the run loads the model


def _check_layers(config: dict[str, Any]) -> None:
    grid = config["grid"]
    models = list(config["models"])
    runs = [(m, v) for m in models for v in grid["variants"]]
    runs += [(models[0], v) for v in grid["ablation_variants"]]
    for model, variant in dict.fromkeys(runs):
        layers = kawhi_settings(config, variant).layers
        n = _model_layers(config, model)
        if isinstance(layers, str) or n is None:
            continue
        bad = [layer for layer in layers if not -n <= layer < n]
        if bad:
            key = f"variants.{variant}.layers" if "layers" in config["variants"][variant] else "kawhi.layers"
            raise ConfigError(f"invalid config at '{key}' (rule train): layer(s) {bad} out of range for model "
                              f"'{model}', which has {n} decoder layers (valid: {-n}..{n - 1})")


def _check_variant(config: dict[str, Any], variant: str) -> None:
    """A variant's overrides merged over the kawhi block must be a valid kawhi block."""
    kawhi_schema = _schema_part("definitions", "kawhi_settings")
    if not isinstance(config["variants"][variant], dict):
        raise ConfigError(f"invalid config at 'variants.{variant}': expected a mapping of kawhi keys")
    _coerce_numeric_strings(config["variants"][variant], kawhi_schema)
    overrides = {k: v for k, v in config["variants"][variant].items() if k != "learning_rate"}
    _first_error(_schema_part("definitions", "kawhi_settings"), deep_merge(config["kawhi"], overrides),
                 f"variants.{variant}")


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The mapping in a YAML config file; ConfigError naming the file (and line) when it is not one."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise ConfigError(f"cannot read config file {path}: {err.strerror or err}") from None
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "an unknown line"
        problem = " ".join(str(p) for p in (getattr(err, "context", None), getattr(err, "problem", None)) if p)
        raise ConfigError(f"{path}: YAML syntax error at {where}: {problem or err}") from None
    if config is None:
        raise ConfigError(f"{path} is empty: a config needs at least 'models'")
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys, got {type(config).__name__}")
    return config


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Read a YAML config, deep-merge ``overrides`` and validate it (defaults filled in)."""
    config = read_config_file(path)
    if overrides:
        config = deep_merge(config, overrides)
    try:
        return validate_config(config)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from err.__cause__


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_override(text: str) -> dict[str, Any]:
    """``a.b.c=VALUE`` (VALUE parsed as YAML) -> nested dict, for ``--set`` on the command line."""
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise ConfigError(f"override '{text}' is not of the form key.path=value")
    value: Any = yaml.safe_load(raw)
    for part in reversed(key.split(".")):
        value = {part: value}
    return value


# ---- per-stage settings: what each rule passes to its command -----------------------------------

def model_settings(config: dict[str, Any], model: str) -> dict[str, Any]:
    if model not in config["models"]:
        raise ConfigError(f"invalid config: unknown model '{model}'")
    m = config["models"][model]
    sft = m.get("sft", m["source"] == "tiny")
    return {"name": model, "arch": m["arch"], "source": m["source"], "sft": sft, "tiny": m.get("tiny", {}),
            "image_size": config["synthetic"]["image_size"], "seed": config["seed"]}


def kawhi_settings(config: dict[str, Any], variant: str) -> KawhiSettings:
    if variant not in config["variants"]:
        raise ConfigError(f"invalid config: unknown variant '{variant}'")
    overrides = {k: v for k, v in config["variants"][variant].items() if k != "learning_rate"}
    return KawhiSettings.from_dict(deep_merge(config["kawhi"], overrides))


def algorithm_settings(config: dict[str, Any], algo: str) -> AlgorithmSettings:
    if algo not in config["algorithms"]:
        raise ConfigError(f"invalid config: unknown algorithm '{algo}'")
    preset = {k: v for k, v in config["algorithms"][algo].items() if k != "training"}
    return AlgorithmSettings(name=algo, **preset)


def algorithm_training(config: dict[str, Any], algo: str) -> dict[str, Any]:
    """The training block (minus resources) with the algorithm's own ``training`` overrides merged over it."""
    training = {k: v for k, v in config["training"].items() if k != "resources"}
    return deep_merge(training, config["algorithms"][algo].get("training", {}))


TRAINSETS = ("math", "chart")  # the math grid (train_data) and the chart experiment (chart_train_data)


def train_settings(config: dict[str, Any], model: str, algo: str, variant: str, seed: int | None = None,
                   trainset: str = "math") -> dict[str, Any]:
    """Everything one training run depends on; its hash is the run's config hash.

    ``seed`` is the run's training seed (one of ``grid.seeds``; default: the config seed); ``trainset``
    says which training data the run reads (``train_data`` or ``chart_train_data``).
    """
    if trainset not in TRAINSETS:
        raise ConfigError(f"unknown training set '{trainset}' (one of {', '.join(TRAINSETS)})")
    algorithm = dataclasses.asdict(algorithm_settings(config, algo))
    # the baselines' keys appear only where they are on, so adding them changed no other run's settings hash
    algorithm = {k: v for k, v in algorithm.items() if BASELINE_OFF.get(k, object()) != v}
    training = algorithm_training(config, algo)
    # a variant's learning rate is the most specific one (then the algorithm's, then the training block's)
    training["learning_rate"] = config["variants"][variant].get("learning_rate") or training["learning_rate"]
    return {
        "model": model,
        "arch": config["models"][model]["arch"],
        "algorithm": algorithm,
        "variant": variant,
        "kawhi": kawhi_settings(config, variant).to_dict(),
        "training": training,
        "trainset": trainset,
        "seed": config["seed"] if seed is None else int(seed),
    }


def variant_changes(config: dict[str, Any], variant: str) -> str:
    """What a KAWHI variant changes against the full method (the kawhi block), e.g. ``regions=random`` or
    ``sguf.skip_ratio=0.1,learning_rate=1e-05``; "" for the full method and for variants without KAWHI."""
    settings = kawhi_settings(config, variant)
    if not settings.enabled:
        return ""

    def leaves(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
        out = {}
        for key, value in d.items():
            if isinstance(value, dict):
                out.update(leaves(value, f"{prefix}{key}."))
            else:
                out[prefix + key] = value
        return out

    full = leaves(KawhiSettings.from_dict(config["kawhi"]).to_dict())
    mine = leaves(settings.to_dict())
    changes = {k: v for k, v in mine.items() if full.get(k) != v}
    if "learning_rate" in config["variants"][variant]:
        changes["learning_rate"] = config["variants"][variant]["learning_rate"]
    return ",".join(f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in sorted(changes.items()))


def sft_settings(config: dict[str, Any], model: str) -> dict[str, Any]:
    """What one model's SFT warm-start depends on: the sft block (minus resources), model and seed."""
    if model not in config["models"]:
        raise ConfigError(f"invalid config: unknown model '{model}'")
    settings = {k: v for k, v in config["sft"].items() if k not in ("resources", "enabled")}
    settings["model"] = model
    settings["seed"] = config["seed"]
    return settings


def heads_settings(config: dict[str, Any], model: str | None = None) -> dict[str, Any]:
    """What head identification depends on: the heads block (minus resources) and its benchmark."""
    # which heads training uses (source, published) does not change the sweep
    settings = {k: v for k, v in config["heads"].items() if k not in ("resources", "source", "published")}
    settings["benchmark"] = config["heads_benchmark"]
    settings["seed"] = config["seed"]
    if model is not None:
        settings["model"] = model
    return settings


def eval_settings(config: dict[str, Any], benchmark: str | None = None, base: bool = False) -> dict[str, Any]:
    """What an evaluation depends on: the eval block (minus resources) and the seed, plus ``benchmark`` when
    given. One evaluation job runs all of a checkpoint's benchmarks with these settings (rules/eval.smk).

    ``base``: the base policy's evaluation, whose k is ``eval.base_num_samples`` where that is set (the
    warm start's pass@k); trained runs use ``eval.num_samples``.
    """
    settings = {k: v for k, v in config["eval"].items() if k not in ("resources", "base_num_samples")}
    if base and "base_num_samples" in config["eval"]:
        settings["num_samples"] = config["eval"]["base_num_samples"]
    if benchmark is not None:
        settings["benchmark"] = benchmark
    settings["seed"] = config["seed"]
    return settings


def settings_json(settings: dict[str, Any]) -> str:
    """Canonical JSON (sorted keys) so equal settings give equal strings and equal hashes."""
    return json.dumps(settings, sort_keys=True, separators=(",", ":"))
