"""Size gate of the benchmark suites: the large cases (10M-row frames, a manifest of 1M
events) run only with ADC_BENCH_LARGE=1, and are reported as skipped, with that reason,
otherwise, so a quick smoke run never skips them silently."""

from __future__ import annotations

import os

import pytest

LARGE = os.environ.get("ADC_BENCH_LARGE") == "1"
LARGE_REASON = "large case: set ADC_BENCH_LARGE=1 to run it"


def large(value, id_):
    """A parameter that runs only with ADC_BENCH_LARGE=1 (skipped with the reason otherwise)."""
    return pytest.param(value, id=id_, marks=pytest.mark.skipif(not LARGE, reason=LARGE_REASON))
