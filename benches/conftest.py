"""Fixtures for the benchmarks: frames of the benchmarked sizes, and a private store per
benchmark whose payloads (shared-memory segments and Arrow files) are released afterwards.

Sends leave a shared-memory segment in /dev/shm per version (gets never unlink, the same
as 0.1.2), so every segment the store's manifest names is unlinked when the benchmark
ends, and the `release_payloads` fixture lets a benchmark drop earlier rounds' payloads
in its (untimed) setup so that many rounds do not pile up segments.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

SHM_TRANSPORT = "shm_arrow_stream_v1"
FILE_TRANSPORT = "file_arrow_ipc_v1"


def manifest_events(store: Path) -> list[dict]:
    """The manifest's lines as dicts (unparsable or non-object lines skipped)."""
    manifest = Path(store) / "manifest.jsonl"
    try:
        text = manifest.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    events = []
    for line in text.splitlines():
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        if isinstance(ev, dict):
            events.append(ev)
    return events


def payload_locators(store: Path) -> tuple[set[str], set[str]]:
    """(shm segment names, payload file paths) named by the store's manifest.

    A segment is named by every line whose payload transport is shm_arrow_stream_v1; our
    "writing" lines also announce the planned segment in metadata.adc, which covers a send
    that failed half-way.
    """
    segments: set[str] = set()
    files: set[str] = set()
    for ev in manifest_events(store):
        for ref in (ev.get("payload"), (ev.get("metadata") or {}).get("adc")):
            if not isinstance(ref, dict) or not isinstance(ref.get("locator"), str):
                continue
            if ref.get("transport") == SHM_TRANSPORT:
                segments.add(ref["locator"])
            elif ref.get("transport") == FILE_TRANSPORT:
                files.add(ref["locator"])
    return segments, files


def unlink_segments(store: Path) -> int:
    """Unlinks /dev/shm/<locator> for every shm payload in the store's manifest (missing
    ones ignored). Returns how many were removed."""
    removed = 0
    for name in payload_locators(store)[0]:
        if "/" in name or not name:
            continue  # never touch anything outside /dev/shm
        try:
            os.unlink(os.path.join("/dev/shm", name))
            removed += 1
        except FileNotFoundError:
            pass
    return removed


def drop_payloads(store: Path) -> None:
    """Drops every payload the store names so far (segments and files inside the store),
    keeping the manifest. For a benchmark's untimed setup between rounds."""
    unlink_segments(store)
    root = Path(store).resolve()
    for path in payload_locators(store)[1]:
        p = Path(path)
        if root in p.resolve().parents:
            p.unlink(missing_ok=True)


def remove_store(store: Path) -> None:
    """Unlinks the store's segments, then deletes the store directory."""
    unlink_segments(store)
    shutil.rmtree(store, ignore_errors=True)


@pytest.fixture
def release_payloads():
    """release_payloads(store): drops the payloads sent so far (see `drop_payloads`)."""
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


_FRAMES: dict[int, pd.DataFrame] = {}


def make_frame(rows: int) -> pd.DataFrame:
    """rows x 10 columns: f0..f7 float64, i0..i1 int64 (np.random.default_rng(0))."""
    rng = np.random.default_rng(0)
    cols = {f"f{i}": rng.standard_normal(rows) for i in range(8)}
    cols.update({f"i{i}": rng.integers(-(2**40), 2**40, size=rows, dtype=np.int64) for i in range(2)})
    return pd.DataFrame(cols)


@pytest.fixture(scope="session")
def frame_of():
    """frame_of(rows) -> the cached benchmark frame of that many rows."""

    def get(rows: int) -> pd.DataFrame:
        if rows not in _FRAMES:
            _FRAMES[rows] = make_frame(rows)
        return _FRAMES[rows]

    yield get
    _FRAMES.clear()
