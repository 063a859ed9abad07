"""Reading a store's manifest, padding it with history and releasing its payloads, for
tests, benchmarks and benches/compare.py (which also runs it under 0.1.2's interpreter):
standard library only.

Our "writing" lines announce the payload they are about to create in ``metadata.adc``,
which covers a send that failed half-way; 0.1.2's ``ready`` lines name theirs in
``payload``. Only segments and files the manifest names are touched, never a glob.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

SHM_TRANSPORT = "shm_arrow_stream_v1"
FILE_TRANSPORT = "file_arrow_ipc_v1"


def manifest_events(store) -> list[dict]:
    """The manifest's lines as dicts (unparsable or non-object lines skipped)."""
    try:
        text = (Path(store) / "manifest.jsonl").read_text(encoding="utf-8", errors="replace")
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


def payload_locators(store) -> tuple[set[str], set[str]]:
    """(shm segment names, payload file paths) named by the store's manifest."""
    segments: set[str] = set()
    files: set[str] = set()
    for ev in manifest_events(store):
        metadata = ev.get("metadata") if isinstance(ev.get("metadata"), dict) else {}
        for ref in (ev.get("payload"), metadata.get("adc")):
            if not isinstance(ref, dict) or not isinstance(ref.get("locator"), str):
                continue
            if ref.get("transport") == SHM_TRANSPORT:
                segments.add(ref["locator"])
            elif ref.get("transport") == FILE_TRANSPORT:
                files.add(ref["locator"])
    return segments, files


def latest_ready(store, table_name: str):
    """The last ``ready`` event of a table, or None."""
    for ev in reversed(manifest_events(store)):
        if ev.get("table_name") == table_name and ev.get("status") == "ready":
            return ev
    return None


def shm_exists(name: str) -> bool:
    return Path("/dev/shm", name).exists()


def unlink_segments(store) -> int:
    """Unlinks /dev/shm/<locator> for every shm payload the manifest names (missing ones
    ignored). Returns how many were removed."""
    removed = 0
    for name in payload_locators(store)[0]:
        if not name or "/" in name or name in (".", ".."):
            continue  # never touch anything outside /dev/shm
        try:
            os.unlink(os.path.join("/dev/shm", name))
            removed += 1
        except FileNotFoundError:
            pass
    return removed


def drop_payloads(store) -> None:
    """Drops every payload the store names so far (segments, and files inside the store),
    keeping the manifest."""
    unlink_segments(store)
    root = Path(store).resolve()
    for path in payload_locators(store)[1]:
        p = Path(path)
        if root in p.resolve().parents:
            p.unlink(missing_ok=True)


def remove_store(store) -> None:
    """Unlinks the store's segments, then deletes the store directory."""
    unlink_segments(store)
    shutil.rmtree(store, ignore_errors=True)


def write_history(store, events: int) -> None:
    """Appends `events` ready lines of other tables (copies of a real line of this store,
    with fresh ids and names), as a long-lived store accumulates."""
    template = latest_ready(store, "seed")
    assert template is not None
    lines = []
    with open(os.path.join(store, "manifest.jsonl"), "a", encoding="utf-8") as f:
        for i in range(events):
            ev = dict(template, id=str(uuid.UUID(int=i)), table_name=f"other_{i % 1000}")
            lines.append(json.dumps(ev, separators=(",", ":"), ensure_ascii=False))
            if len(lines) == 10_000:
                f.write("\n".join(lines) + "\n")
                lines.clear()
        if lines:
            f.write("\n".join(lines) + "\n")
