"""The registry of synthetic suites: name -> SuiteSpec (kind, chance, description, sampler)."""

from __future__ import annotations

from kawhi.data.synthetic import bars_lookup, lines_compare, mme_synth, shapes_arith, shapes_count
from kawhi.data.synthetic.spec import SuiteSpec

SUITES: dict[str, SuiteSpec] = {
    module.SPEC.name: module.SPEC
    for module in (shapes_count, shapes_arith, bars_lookup, lines_compare, mme_synth)
}


def get_suite(name: str) -> SuiteSpec:
    try:
        return SUITES[name]
    except KeyError:
        raise KeyError(f"unknown synthetic suite {name!r}; expected one of {sorted(SUITES)}") from None
