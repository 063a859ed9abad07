"""Fixtures for the benchmarks: frames of the benchmarked sizes, and a private store per
benchmark whose payloads (shared-memory segments and Arrow files) are released afterwards.

Sends leave a shared-memory segment in /dev/shm per version (gets never unlink, the same
as 0.1.2), so every segment the store's manifest names is unlinked when the benchmark
ends, and the `release_payloads` fixture lets a benchmark drop earlier rounds' payloads
in its (untimed) setup so that many rounds do not pile up segments.

Large cases (10M-row frames, a manifest of 1M events) run only with ADC_BENCH_LARGE=1;
otherwise they are reported as skipped, with that reason, in the summary.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
import pytest

from benches.frames import numeric_frame, string_frame
from benches.gating import LARGE
from benches.storetools import drop_payloads, remove_store


def pytest_report_header(config):
    return (
        "ADC_BENCH_LARGE=1: running the 10M-row and 1M-event cases"
        if LARGE
        else "ADC_BENCH_LARGE unset: 10M-row and 1M-event cases are skipped (set ADC_BENCH_LARGE=1)"
    )


@pytest.fixture(autouse=True)
def no_canvas_notification(monkeypatch):
    """Sends do not notify an Allye canvas: the timed send is the send alone."""
    monkeypatch.setenv("ALLYE_NOTIFY_CANVAS", "0")


@pytest.fixture
def release_payloads():
    """release_payloads(store): drops the payloads sent so far (see `storetools.drop_payloads`)."""
    return drop_payloads


@pytest.fixture
def store():
    """A fresh, private store directory; its shm segments are unlinked and the directory
    deleted after the benchmark."""
    d = Path(tempfile.mkdtemp(prefix="adc-bench-"))
    try:
        yield d
    finally:
        remove_store(d)


_FRAMES: dict[tuple, pd.DataFrame] = {}


@pytest.fixture(scope="session")
def frame_of():
    """frame_of(rows) -> the cached numeric benchmark frame (rows x 10: 8 float64, 2 int64);
    frame_of(rows, strings="object"|"str"|"arrow") -> the cached string-heavy frame."""

    def get(rows: int, strings: str | None = None) -> pd.DataFrame:
        key = (rows, strings)
        if key not in _FRAMES:
            if rows >= 5_000_000 or any(r >= 5_000_000 for r, _ in _FRAMES):
                _FRAMES.clear()  # 10M rows are 800 MB: keep no other frame alongside
            _FRAMES[key] = numeric_frame(rows) if strings is None else string_frame(rows, strings)
        return _FRAMES[key]

    yield get
    _FRAMES.clear()
