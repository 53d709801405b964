"""Synthetic visual-reasoning suites: generators, the registry, parquet writing and exact grading.

Suites (names used everywhere): ``shapes_count`` and ``shapes_arith`` (math-style), ``bars_lookup``
and ``lines_compare`` (chart-style), ``mme_synth`` (MME-style yes/no). See docs/data.md.
"""

from kawhi.data.synthetic.grading import (
    ERROR_CATEGORIES,
    classify_error,
    equations,
    error_counts,
    is_correct,
    misread_facts,
    reasoning_paragraphs,
    stated_facts,
    yes_no_answer,
)
from kawhi.data.synthetic.registry import SUITES, get_suite
from kawhi.data.synthetic.spec import Item, QuestionType, SuiteSpec
from kawhi.data.synthetic.writer import build_rows, split_of, suite_texts, write_suite

__all__ = [
    "ERROR_CATEGORIES", "SUITES", "Item", "QuestionType", "SuiteSpec", "build_rows", "classify_error",
    "equations", "error_counts", "get_suite", "is_correct", "misread_facts", "reasoning_paragraphs",
    "split_of", "stated_facts", "suite_texts", "write_suite", "yes_no_answer",
]
