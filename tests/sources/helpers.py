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


def numbered_ids(count: int, rows: int, start: int = 0, shuffle_seed: int | None = None,
                 run: int = 1) -> np.ndarray:
    """The ids a :class:`Numbered` source returns, in its order."""
    ids = np.arange(start, start + count * rows, dtype=np.int64) // run
    if shuffle_seed is not None:
        ids = np.random.default_rng(shuffle_seed).permutation(ids)
    return ids


def numbered_source(**kw):  # type: ignore[no-untyped-def]
    """A :class:`Numbered` source (made here so that a child process names the same class)."""
    import allye_data_connector as adc

    class Numbered(adc.DataSource):
        """``count`` batches of ``rows`` rows (``numbered_ids``), the same on every run.
        ``block_at``: at that read, touch ``marker`` and sleep (to be killed);
        ``fail_at``: raise at that read."""

        def __init__(self, count: int = 5, rows: int = 100, start: int = 0, shuffle_seed: int | None = None,
                     run: int = 1, cursor: str | None = "id", block_at: int = -1, fail_at: int = -1,
                     marker: str | None = None):
            super().__init__({"cursor": cursor} if cursor else {})
            self.ids = numbered_ids(count, rows, start, shuffle_seed, run)
            self.rows, self.block_at, self.fail_at, self.marker, self.reads = rows, block_at, fail_at, marker, 0

        def read(self, n=None):  # type: ignore[no-untyped-def]
            self.reads += 1
            if self.reads == self.block_at:
                import time

                Path(str(self.marker)).touch()
                time.sleep(600)
            if self.reads == self.fail_at:
                raise RuntimeError("the API went away")
            part = self.ids[(self.reads - 1) * self.rows:self.reads * self.rows]
            if not len(part):
                return None
            return pa.table({"id": part, "v": part * 2}).to_batches()[0]

    return Numbered(**kw)
