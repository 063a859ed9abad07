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
