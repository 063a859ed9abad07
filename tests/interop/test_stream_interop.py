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


PEER_READ_LOADED = """
import json, allye_data_connector as adc, importlib.metadata as m
assert m.version("allye_data_connector") == "0.1.2"
df = adc.get_dataframe("loaded", secret_dir={store!r})
print(json.dumps({{"id": df["id"].tolist()}}))
"""


def test_012_reads_a_table_loaded_by_appends(store, peer_python, tmp_path):
    import pyarrow as pa
    import pyarrow.csv as pacsv

    path = tmp_path / "rows.csv"
    pacsv.write_csv(pa.table({"id": list(range(100))}), path)
    adc.load(path, "loaded", secret_dir=store, progress=False)  # replace: a plain version
    pacsv.write_csv(pa.table({"id": list(range(250))}), path)
    out = adc.load(path, "loaded", secret_dir=store, mode="append", params={"cursor": "id"}, chunk_bytes=1,
                   progress=False)
    assert out["rows_loaded"] == 150
    # The append made a stream (first chunk: the plain version) and published it at its end.
    got = json.loads(run_python(PEER_READ_LOADED.format(store=str(store)), python=peer_python))
    assert got["id"] == list(range(250))
