"""0.1.2 reads a stream through its published v1 version (it knows nothing of streams)."""

from __future__ import annotations

import json

import pandas as pd

import allye_data_connector as adc
from tests.helpers import run_python

PEER_READ = """
import json, allye_data_connector as adc, importlib.metadata as m
assert m.version("allye_data_connector") == "0.1.2"
df = adc.get_dataframe("live", secret_dir={store!r})
print(json.dumps({{"v": df["v"].tolist(), "s": df["s"].tolist(),
                   "tables": [t["table_name"] for t in adc.list_tables(secret_dir={store!r})]}}))
"""


def test_012_reads_a_published_stream(store, peer_python):
    with adc.Writer("live", secret_dir=store) as w:
        for i in range(5):
            w.write({"v": i, "s": f"r{i}"})
        w.flush()
        adc.append("live", pd.DataFrame({"v": [5, 6], "s": ["r5", "r6"]}), secret_dir=store)
    # close published every row as an ordinary v1 version
    got = json.loads(run_python(PEER_READ.format(store=str(store)), python=peer_python))
    assert got["v"] == list(range(7))
    assert got["s"] == [f"r{i}" for i in range(7)]
    assert got["tables"] == ["live"]
    # and our reader still reads the stream itself (the newest rows, not the publication)
    adc.append("live", {"v": 7, "s": "r7"}, secret_dir=store, publish=False)
    assert adc.get_dataframe("live", secret_dir=store)["v"].tolist() == list(range(8))
