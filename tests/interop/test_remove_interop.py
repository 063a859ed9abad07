"""`adc rm` as 0.1.2 sees it: its lookups tolerate our removal line, its get of a removed
table fails (the payload is gone), and a 0.1.2 send after the removal brings the table
back for our readers. Also: a waiting reader of ours is woken by a 0.1.2 send."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

import allye_data_connector as adc
from tests.helpers import run_python

PEER = """
import json, allye_data_connector as adc
out = {{"tables": [t["table_name"] for t in adc.list_tables(secret_dir={store!r})]}}
try:
    adc.get_dataframe("gone", secret_dir={store!r})
    out["get"] = "ok"
except Exception as exc:
    out["get"] = type(exc).__name__
print(json.dumps(out))
"""


@pytest.mark.parametrize("transport", ["shm", "file"])
def test_peer_after_rm(store, peer_python, transport):
    adc.send_dataframe(pd.DataFrame({"x": [1.0, 2.0]}), "gone", secret_dir=store, transport=transport)
    adc.send_dataframe(pd.DataFrame({"x": [3.0]}), "kept", secret_dir=store, transport="file")
    adc.remove_table("gone", secret_dir=store)
    seen = json.loads(run_python(PEER.format(store=str(store)), python=peer_python))
    assert "kept" in seen["tables"]
    assert seen["get"] != "ok"  # the payload is gone: 0.1.2 fails to load it
    with pytest.raises(adc.TableNotFoundError):
        adc.get_dataframe("gone", secret_dir=store)

    run_python(
        f"import pandas as pd, allye_data_connector as a; a.send_dataframe(pd.DataFrame({{'x': [9.0]}}), 'gone', "
        f"secret_dir={str(store)!r}, transport='file', notify_canvas=False)",
        python=peer_python,
    )
    assert adc.get_dataframe("gone", secret_dir=store)["x"].tolist() == [9.0]
    assert {t["table_name"]: t["state"] for t in adc.list_tables(secret_dir=store, all_states=True)}["gone"] == "ready"


def test_our_waiting_reader_is_woken_by_a_peer_send(store, peer_python):
    store.mkdir(parents=True)
    child = subprocess.Popen(
        [peer_python, "-c",
         "import time, pandas as pd, allye_data_connector as a; time.sleep(1.0); "
         f"a.send_dataframe(pd.DataFrame({{'v': [7]}}), 'from_peer', secret_dir={str(store)!r}, transport='file', notify_canvas=False)"]
    )
    try:
        df = adc.get_dataframe("from_peer", secret_dir=store, wait=True, timeout_sec=120)
    finally:
        child.wait(120)
    assert df["v"].tolist() == [7]
