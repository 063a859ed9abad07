"""What the source tests share: a store's leftovers and sample files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa


def sample(rows: int, start: int = 0) -> pa.Table:
    ids = np.arange(start, start + rows, dtype=np.int64)
    return pa.table({"id": ids, "x": ids * 0.5, "name": [f"n{i}" for i in ids]})


def manifest_lines(store: Path) -> list[dict]:
    path = store / "manifest.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def payload_files(store: Path) -> list[str]:
    d = store / "payloads"
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


def leftovers(store: Path) -> list[str]:
    """Temporary payload files (a half-written version)."""
    return [n for n in payload_files(store) if ".tmp-" in n]


def statuses(store: Path, table: str) -> list[str]:
    return [ev["status"] for ev in manifest_lines(store) if ev["table_name"] == table]
