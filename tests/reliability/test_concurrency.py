"""Concurrent writers and readers: processes (ours, with gc and compaction running at the
same time), threads in one process, and 0.1.2's writers on the same manifest."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pandas as pd

import allye_data_connector as adc
from tests.helpers import run_python

ROWS = 20_000
WRITERS = 5
SENDS = 12

CHECK = """
def check(df):
    w, s = int(df["w"].iloc[0]), int(df["s"].iloc[0])
    assert (df["w"] == w).all() and (df["s"] == s).all(), "mixed versions"
    assert np.array_equal(df["v"].to_numpy(), np.arange({rows}) + w * 1000 + s), "torn payload"
    assert list(df["label"].iloc[:3]) == [f"w{{w}}s{{s}}r{{i}}" for i in range(3)]
    return w, s
"""

WRITER = """
import sys, numpy as np, pandas as pd, allye_data_connector as adc
store, w = sys.argv[1], int(sys.argv[2])
for s in range({sends}):
    df = pd.DataFrame({{"w": np.full({rows}, w), "s": np.full({rows}, s),
                       "v": np.arange({rows}) + w * 1000 + s,
                       "label": [f"w{{w}}s{{s}}r{{i}}" for i in range({rows})]}})
    transport = "shm" if (w + s) % 2 else "file"
    adc.send_dataframe(df, f"shared{{w % 2}}", secret_dir=store, transport=transport,
                       shm_unlink_on_read=False)
    adc.send_dataframe(df, f"own{{w}}", secret_dir=store, transport=transport,
                       shm_unlink_on_read=False)
print("done", flush=True)
"""

READER = """
import sys, os, numpy as np, allye_data_connector as adc
from allye_data_connector import errors
store, stop = sys.argv[1], sys.argv[2]
{check}
reads = 0
seen = set()
while not os.path.exists(stop):
    for name in ("shared0", "shared1", "own0", "own3"):
        try:
            df = adc.get_dataframe(name, secret_dir=store)
        except errors.TableNotFoundError:
            continue  # not sent yet
        seen.add(check(df))
        reads += 1
print(reads, len(seen), flush=True)
"""

COLLECTOR = """
import sys, os, allye_data_connector as adc
store, stop = sys.argv[1], sys.argv[2]
rounds = deleted = 0
while not os.path.exists(stop):
    deleted += sum(a["action"] == "delete" and a["scope"] == "store" for a in adc.gc(secret_dir=store, dry_run=False))
    if rounds % 5 == 0:
        adc.compact(secret_dir=store)
    rounds += 1
print(rounds, deleted, flush=True)
"""


def spawn(code: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def finish(proc: subprocess.Popen) -> str:
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    return out


def test_five_writers_two_readers_and_a_collector(store, tmp_path):
    """5 writer processes (2 sends per round, mixed transports, shared and own tables),
    2 readers that check every frame they get, and a process running gc and compaction
    in a loop: no torn or lost line, every read is one complete sent version."""
    store.mkdir(parents=True)
    stop = tmp_path / "stop"
    check = textwrap.dedent(CHECK.format(rows=ROWS))
    writers = [spawn(WRITER.format(rows=ROWS, sends=SENDS), str(store), str(w)) for w in range(WRITERS)]
    readers = [spawn(READER.format(check=check), str(store), str(stop)) for _ in range(2)]
    collector = spawn(COLLECTOR, str(store), str(stop))
    for w in writers:
        assert finish(w).strip() == "done"
    stop.touch()
    reads = [tuple(map(int, finish(r).split())) for r in readers]
    rounds, deleted = map(int, finish(collector).split())
    assert all(n > 0 for n, _ in reads), reads
    assert rounds > 0

    # After the run: every line whole, each transfer `writing` then `ready`.
    adc.gc(secret_dir=store, dry_run=False)
    lines = (store / "manifest.jsonl").read_text().splitlines()
    events = [json.loads(line) for line in lines]
    assert all(e["status"] in ("writing", "ready") for e in events)
    # The last version of every table is the last one sent to it.
    ns: dict = {"np": np}
    exec(check, ns)
    tables = {t["table_name"] for t in adc.list_tables(secret_dir=store)}
    assert tables == {"shared0", "shared1"} | {f"own{w}" for w in range(WRITERS)}
    for w in range(WRITERS):
        assert ns["check"](adc.get_dataframe(f"own{w}", secret_dir=store)) == (w, SENDS - 1)
    last_shared = {ns["check"](adc.get_dataframe(f"shared{k}", secret_dir=store))[1] for k in (0, 1)}
    assert last_shared == {SENDS - 1}
    # gc and compaction kept exactly one payload per table.
    payload_files = list((store / "payloads").iterdir())
    ready = [e for e in events if e["status"] == "ready"]
    live = {e["payload"]["locator"] for e in ready if e["payload"]["transport"] == "shm_arrow_stream_v1" and Path("/dev/shm", e["payload"]["locator"]).exists()}
    assert len(payload_files) + len(live) == len(tables)
    print(f"reads per reader {reads}; collector rounds {rounds}, deleted {deleted}")


def test_threads_in_one_process_send_and_read(store):
    errors_seen: list[BaseException] = []
    check_ns: dict = {"np": np}
    exec(textwrap.dedent(CHECK.format(rows=ROWS)), check_ns)

    def work(w: int) -> None:
        try:
            for s in range(8):
                df = pd.DataFrame(
                    {"w": np.full(ROWS, w), "s": np.full(ROWS, s), "v": np.arange(ROWS) + w * 1000 + s,
                     "label": [f"w{w}s{s}r{i}" for i in range(ROWS)]}
                )
                adc.send_dataframe(df, f"t{w % 2}", secret_dir=store, transport="shm" if s % 2 else "file",
                                   shm_unlink_on_read=False)
                check_ns["check"](adc.get_dataframe(f"t{w % 2}", secret_dir=store))
                if s % 3 == 0:
                    adc.gc(secret_dir=store, dry_run=False)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors_seen.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors_seen, errors_seen
    events = [json.loads(line) for line in (store / "manifest.jsonl").read_text().splitlines()]
    assert sum(e["status"] == "ready" for e in events) == 32


PEER_WRITER = """
import sys, pandas as pd, allye_data_connector as adc, importlib.metadata as m
assert m.version("allye_data_connector") == "0.1.2"
store, p = sys.argv[1], int(sys.argv[2])
for s in range(10):
    adc.send_dataframe(pd.DataFrame({"p": [p] * 100, "s": [s] * 100}), f"peer{p}", secret_dir=store,
                       transport="file", notify_canvas=False)
print("done")
"""


def test_012_writers_and_ours_on_one_manifest(store, peer_python):
    store.mkdir(parents=True)
    peers = [
        subprocess.Popen([peer_python, "-c", PEER_WRITER, str(store), str(p)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for p in range(2)
    ]
    ours = [spawn(WRITER.format(rows=1000, sends=5), str(store), str(w)) for w in range(3)]
    for proc in peers + ours:
        assert finish(proc).strip() == "done"
    lines = (store / "manifest.jsonl").read_text(encoding="utf-8").splitlines()
    events = [json.loads(line) for line in lines]  # every line whole
    assert sum(e["status"] == "ready" for e in events) == 2 * 10 + 3 * 5 * 2
    assert sum(e["status"] == "writing" for e in events) == 2 * 10 + 3 * 5 * 2
    for p in range(2):
        df = adc.get_dataframe(f"peer{p}", secret_dir=store)
        assert df["p"].eq(p).all() and df["s"].eq(9).all()
    out = run_python(
        f"""
        import allye_data_connector as adc
        df = adc.get_dataframe("own0", secret_dir={str(store)!r})  # a file: 0.1.2 readers unlink shm
        print(int(df["w"].iloc[0]), int(df["s"].iloc[0]))
        """,
        python=peer_python,
    )
    assert out.split() == ["0", "4"]
    # Compaction under the lock keeps every live line of both writers.
    adc.gc(secret_dir=store, dry_run=False)
    adc.compact(secret_dir=store)
    assert {t["table_name"] for t in adc.list_tables(secret_dir=store)} == {"peer0", "peer1", "own0", "own1", "own2", "shared0", "shared1"}
