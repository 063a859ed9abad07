"""Send in a child process that exits; read in two more children, one after another."""

from __future__ import annotations

import json

import pytest

from tests.helpers import run_python, shm_exists

SENDER = """
import numpy as np, pandas as pd, allye_data_connector as adc
rng = np.random.default_rng(7)
n = 200_000
df = pd.DataFrame({{f"f{{i}}": rng.standard_normal(n) for i in range(4)}} | {{"n": np.arange(n), "s": [f"r{{i}}" for i in range(n)]}},
                  index=pd.date_range("2025-01-01", periods=n, freq="s", tz="UTC", name="ts"))
adc.send_dataframe(df, "xp", secret_dir={store!r}, transport={transport!r}, chunk_rows=50_000)
print(float(df["f0"].sum()), int(df["n"].sum()))
"""

READER = """
import json, pandas as pd, allye_data_connector as adc
df = adc.get_dataframe("xp", secret_dir={store!r})
assert isinstance(df.index, pd.DatetimeIndex) and str(df.index.tz) == "UTC" and df.index.name == "ts"
assert df["s"].iloc[-1] == "r199999"
print(json.dumps([float(df["f0"].sum()), int(df["n"].sum()), list(map(str, df.columns)), len(df)]))
"""


@pytest.mark.parametrize("transport", ["shm", "file"])
def test_send_in_child_read_in_two_later_children(store, transport):
    sums = run_python(SENDER.format(store=str(store), transport=transport)).split()
    # The sender has exited: its payload must still be there, for every reader.
    line = json.loads((store / "manifest.jsonl").read_text().splitlines()[-1])
    if transport == "shm":
        assert shm_exists(line["payload"]["locator"])
    for _ in range(2):
        f0, n, cols, rows = json.loads(run_python(READER.format(store=str(store))))
        assert (repr(f0), str(n)) == (sums[0], sums[1])
        assert cols == ["f0", "f1", "f2", "f3", "n", "s"] and rows == 200_000
    if transport == "shm":
        assert shm_exists(line["payload"]["locator"]), "readers must not unlink the segment"


def test_rust_example_reads_a_table_sent_from_python(store):
    import subprocess
    from pathlib import Path

    import numpy as np
    import pandas as pd

    import allye_data_connector as adc

    exe = Path(__file__).resolve().parents[2] / "target" / "debug" / "examples" / "read_table"
    assert exe.exists(), "build it first: cargo build -p allye-core --example read_table (.ci/run does)"
    df = pd.DataFrame({"x": np.arange(1000.0), "n": np.arange(1000), "s": ["a"] * 1000})
    for transport in ("shm", "file"):
        adc.send_dataframe(df, "native", secret_dir=store, transport=transport, chunk_rows=300)
        out = subprocess.run([str(exe), "--secret-dir", str(store), "native"], capture_output=True, text=True, check=True).stdout
        assert f"rows=1000" in out
        assert "column x Float64 sum=499500" in out
        assert "column n Int64 sum=499500" in out
        assert "column s Utf8" in out or "column s LargeUtf8" in out
    missing = subprocess.run([str(exe), "--secret-dir", str(store), "nope"], capture_output=True, text=True)
    assert missing.returncode == 1 and "no ready version" in missing.stderr


WRITER = """
import sys, numpy as np, pandas as pd, allye_data_connector as adc
store, rounds = sys.argv[1], int(sys.argv[2])
objs = adc.objects(secret_dir=store)
for n in range(rounds):
    adc.send_dataframe(pd.DataFrame({"n": np.full(100, n)}), "t", secret_dir=store, shm_unlink_on_read=False)
    objs["o"] = {"n": n, "pad": "x" * 500}
    # The writer's own reads follow its own appends and its own compactions.
    assert adc.get_dataframe("t", secret_dir=store)["n"].tolist() == [n] * 100
    assert objs["o"]["n"] == n
    if n % 25 == 24:
        adc.gc(secret_dir=store, dry_run=False)
        adc.compact(secret_dir=store)
print("done")
"""


def test_a_reader_in_another_process_follows_appends_and_compactions(store, tmp_path):
    """A reader keeps lookups going (its index holding the log's descriptor) while another
    process sends, puts, collects and compacts: every read is one whole version, never an
    older one than the last read, and the last read is the last version."""
    import subprocess
    import sys

    import allye_data_connector as adc

    rounds = 200
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    writer = subprocess.Popen([sys.executable, str(script), str(store), str(rounds)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    objs = adc.objects(secret_dir=store)
    seen_t = seen_o = -1
    reads = 0
    try:
        while writer.poll() is None or reads == 0:
            try:
                values = set(adc.get_dataframe("t", secret_dir=store)["n"].tolist())
                o = objs["o"]
            except (adc.errors.TableNotFoundError, KeyError):
                continue  # nothing sent yet
            assert len(values) == 1, values
            (n,) = values
            assert n >= seen_t and o["n"] >= seen_o and o["pad"] == "x" * 500
            seen_t, seen_o = n, o["n"]
            reads += 1
    finally:
        out, err = writer.communicate(timeout=120)
    assert writer.returncode == 0 and out.strip() == "done", err
    assert reads > 0
    assert adc.get_dataframe("t", secret_dir=store)["n"].tolist() == [rounds - 1] * 100
    assert objs["o"]["n"] == rounds - 1
    assert len((store / "manifest.jsonl").read_text().splitlines()) < 2 * rounds, "compacted along the way"
