"""A CLI that fits the terminal: tables sized to a pseudo-terminal of 80 and 120 columns
and aligned by display width when piped, cells cut, untrusted bytes escaped, the states
`adc show`, `adc ls` and `adc get` report agreeing."""

from __future__ import annotations

import json
import re
import time

import numpy as np
import pandas as pd
import pytest
from rich.cells import cell_len

import allye_data_connector as adc

LONG = "a_rather_long_table_name_that_a_rich_table_would_cut_at_eighty_columns_" + "x" * 40
CJK = "センサー測定値テーブル"
# An OSC (retitles the terminal, rings the bell), a screen clear, a C1 CSI, a bidi override.
HOSTILE = "evil\x1b]0;pwned\x07\x1b[2J\x9b31m\u202e"
RAW = ("\x1b", "\x07", "\x9b", "\u202e", "\x00")


def send(df, name, store, **kw):
    return adc.send_dataframe(df, name, secret_dir=store, notify_canvas=False, **kw)


def small(n: int = 3) -> pd.DataFrame:
    return pd.DataFrame({"v": np.arange(n, dtype=np.float64)})


def lines_of(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def test_ls_fits_80_columns_one_line_per_table(store, adc_tty, adc_cmd):
    send(pd.DataFrame({"v": np.arange(1_234_567.0)}), LONG, store, ttl_sec=3600)
    send(small(), CJK, store, transport="file")
    send(small(12), "sensors", store)
    shown = adc_tty("ls", columns=80, store=store)
    lines = lines_of(shown.stdout)
    assert all(cell_len(line) <= 80 for line in lines), "\n".join(f"{cell_len(x)} {x}" for x in lines)
    # the store's path, the header, then exactly one line per table
    assert len(lines) == 2 + 3, shown.stdout
    assert lines[1].split() == ["table", "state", "producer", "rows", "cols", "size", "transport", "age", "expires"]
    assert LONG not in shown.stdout and any(line.startswith(LONG[:8]) and "…" in line for line in lines)
    assert any("1,234,567" in line and ("in 60" in line or "in 59" in line) for line in lines), shown.stdout
    assert any(line.startswith(CJK[:3]) for line in lines)
    # Piped: every name whole, no ellipsis, the expiry as a time.
    piped = adc_cmd("ls", store=store).stdout
    assert LONG in piped and CJK in piped and "…" not in piped
    assert adc.describe_table(LONG, secret_dir=store)["expires_at"] in piped


def test_ls_objects_fits_120_columns(store, adc_tty):
    objs = adc.objects("a_namespace_with_a_long_name", secret_dir=str(store))
    objs.put("weights_of_the_model_trained_on_the_whole_archive", np.zeros((300, 20)),
             description="the weights of the nightly model, trained on every sensor of the plant since 2019")
    objs["config"] = {"lr": 0.1}
    objs.put("frame", pd.DataFrame({"a": [1, 2]}), description="a frame")
    shown = adc_tty("ls", "--objects", columns=120, store=store)
    lines = lines_of(shown.stdout)
    assert all(cell_len(line) <= 120 for line in lines), "\n".join(f"{cell_len(x)} {x}" for x in lines)
    assert len(lines) == 2 + 3, shown.stdout
    assert "(300, 20)" in shown.stdout and "ago" in shown.stdout


def test_piped_columns_align_by_display_width(store, adc_cmd):
    send(small(), CJK, store)
    send(small(1234), "ascii_name", store)
    out = adc_cmd("ls", store=store).stdout.splitlines()
    header = out[0]
    state_at = cell_len(header[: header.index("state")])
    for row in out[1:]:
        before = row[: row.index("ready")]
        assert cell_len(before) == state_at, (row, cell_len(before), state_at)


def test_show_cuts_a_huge_cell(store, adc_cmd, adc_tty):
    big = "y" * 10_000_000
    send(pd.DataFrame({"s": [big, "short"], "n": [1, 2]}), "huge", store)
    out = adc_cmd("show", "huge", store=store).stdout
    assert len(out) < 10_000, len(out)
    assert "y" * 40 in out and "…" in out and "short" in out
    as_json = adc_cmd("show", "huge", "--json", store=store).stdout
    assert len(as_json) < 20_000 and "…" in json.loads(as_json)["head"]["data"][0][0]
    assert "yyyyyyyy" + "…" in adc_cmd("show", "huge", "--cell-width", "10", store=store).stdout
    tty = adc_tty("show", "huge", columns=80, store=store).stdout
    assert len(tty) < 10_000 and all(cell_len(line) <= 80 for line in tty.splitlines()), tty


def test_untrusted_bytes_are_escaped(store, tmp_path, adc_cmd, adc_tty):
    send(pd.DataFrame({"s": ["ok", HOSTILE], HOSTILE: [1, 2]}), HOSTILE, store)
    for args in (("ls",), ("ls", "--all"), ("show", HOSTILE), ("show", HOSTILE, "--json"), ("ls", "--json")):
        piped = adc_cmd(*args, store=store)
        assert not any(c in piped.stdout + piped.stderr for c in RAW), (args, piped.stdout)
        shown = adc_tty(*args, columns=100, store=store)  # rich's own colour codes are removed
        assert not any(c in shown.stdout for c in RAW), (args, shown.stdout)
        assert "\\x1b]0;pwned\\x07" in piped.stdout or "\\u001b]0;pwned\\u0007" in piped.stdout, (args, piped.stdout)
    # --json keeps the value: the escapes are JSON's, and decode to the bytes that were sent.
    assert json.loads(adc_cmd("ls", "--json", store=store).stdout)[0]["table_name"] == HOSTILE
    garbage = tmp_path / "garbage.parquet"
    garbage.write_bytes(bytes(range(256)) * 40)
    for cmd in ("load", "send"):
        failed = adc_cmd(cmd, str(garbage), store=store, check=4)
        lines = failed.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and len(lines[0]) < 1200, failed.stderr
        assert not any(c in failed.stderr for c in RAW), failed.stderr


def test_show_of_an_expired_table_says_so_and_exits_as_get(store, tmp_path, adc_cmd):
    send(small(), "short", store, transport="file", ttl_sec=0)
    time.sleep(1.1)
    get = adc_cmd("get", "short", "-o", str(tmp_path / "x.csv"), store=store, check=3)
    show = adc_cmd("show", "short", store=store, check=3)
    assert "state: expired" in show.stdout and "ready" not in show.stdout.splitlines()[0], show.stdout
    assert "expired" in show.stderr and "expired" in get.stderr
    assert json.loads(adc_cmd("show", "short", "--json", store=store, check=3).stdout)["state_shown"] == "expired"
    listed = adc_cmd("ls", "--all", store=store).stdout
    assert re.search(r"^short\s+expired\s", listed, re.M), listed
    assert "short" not in adc_cmd("ls", store=store).stdout  # what a get can read: not it
    adc.remove_table("short", secret_dir=store)
    show = adc_cmd("show", "short", store=store, check=3)
    assert "state: removed" in show.stdout and "removed (removed" not in show.stdout
    assert re.search(r"^short\s+removed\s", adc_cmd("ls", "--all", store=store).stdout, re.M)


def test_an_error_from_a_source_is_one_safe_bounded_line():
    from allye_data_connector.cli._app import error_line, exit_code

    api = adc.errors.SourceError("the source 'tickets' failed: HTTP 502\n<html>\n  <body>\x1b[2J" + "x" * 5000
                                 + "</body>\n</html>; check the service")
    line = error_line(api)
    assert "\n" not in line and "\x1b" not in line and "\\x1b[2J" in line and len(line) < 1100, line
    assert line.startswith("error: the source 'tickets' failed: HTTP 502 <html> <body>")
    assert line.endswith("; check the service") and exit_code(api) == 4
