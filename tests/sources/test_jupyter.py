"""The progress bar of ``adc.load`` in Jupyter: a real IPython kernel (ipykernel, driven by
jupyter_client as a notebook frontend drives it) runs the load with ``progress=True``; the
iopub messages must show a progress display (rich's bar in an ipywidgets ``Output``),
updated while the load runs and drawn at 100% when it ends."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any, Iterator

import pytest
from jupyter_client.manager import start_new_kernel

ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture(scope="module")
def kernel() -> Iterator[Any]:
    km, kc = start_new_kernel(kernel_name="python3")
    try:
        yield kc
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def run(kc: Any, code: str) -> list[dict[str, Any]]:
    """Executes ``code`` and returns the iopub messages it caused, until the kernel is idle."""
    msg_id = kc.execute(textwrap.dedent(code))
    msgs = []
    while True:
        m = kc.get_iopub_msg(timeout=120)
        if m["parent_header"].get("msg_id") != msg_id:
            continue
        msgs.append(m)
        if m["msg_type"] == "status" and m["content"]["execution_state"] == "idle":
            break
    errors = [m["content"] for m in msgs if m["msg_type"] == "error"]
    assert not errors, errors[0]["traceback"]
    return msgs


def frames(msgs: list[dict[str, Any]]) -> list[str]:
    """The bar as drawn each time (plain text), in order: the display_data messages sent
    while the Output widget captured the cell's output."""
    widget = [m for m in msgs if m["msg_type"] == "display_data"
              and "application/vnd.jupyter.widget-view+json" in m["content"]["data"]]
    assert widget, "no widget was displayed: is ipywidgets installed in the kernel?"
    capturing, out = False, []
    for m in msgs:
        if m["msg_type"] == "comm_msg" and "msg_id" in m["content"]["data"].get("state", {}):
            capturing = bool(m["content"]["data"]["state"]["msg_id"])
        elif m["msg_type"] == "display_data" and capturing:
            text = ANSI.sub("", m["content"]["data"].get("text/plain", "")).strip()
            if text:
                out.append(text)
    return out


def test_load_in_jupyter_shows_a_bar_that_moves_and_ends_at_100_percent(kernel: Any, tmp_path: Path) -> None:
    store = tmp_path / "store"
    msgs = run(kernel, f"""
        import time
        import pyarrow as pa
        import allye_data_connector as adc

        class Slow(adc.DataSource):
            # Eight batches, a quarter of a second apart: the bar is redrawn in between.
            def __init__(self):
                super().__init__()
                self.k = 0
            def read(self, n=None):
                if self.k == 8:
                    return None
                time.sleep(0.25)
                self.k += 1
                self.progress(self.k * 1000, 8000)
                return pa.table({{"id": list(range((self.k - 1) * 1000, self.k * 1000))}})

        out = adc.load(Slow(), "slow", secret_dir={str(store)!r}, progress=True)
        print("rows", out["rows"])
    """)
    assert any(m["msg_type"] == "stream" and "rows 8000" in m["content"]["text"] for m in msgs)
    drawn = frames(msgs)
    percents = [int(p) for f in drawn for p in re.findall(r"(\d+)%", f)]
    # Drawn while loading (at least two steps short of the end) and at the end.
    assert len({p for p in percents if p < 100}) >= 2, drawn
    assert percents == sorted(percents), drawn
    assert "loading slow" in drawn[-1] and "100%" in drawn[-1] and "8,000 rows loaded" in drawn[-1], drawn


def test_a_csv_load_in_jupyter_ends_at_100_percent(kernel: Any, tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    path = tmp_path / "data.csv"
    pacsv.write_csv(pa.table({"id": list(range(200_000))}), path)
    msgs = run(kernel, f"""
        import allye_data_connector as adc
        adc.load({str(path)!r}, "csv", secret_dir={str(tmp_path / 'store')!r})
    """)
    drawn = frames(msgs)
    assert "loading csv" in drawn[-1] and "100%" in drawn[-1] and "200,000 rows loaded" in drawn[-1], drawn
