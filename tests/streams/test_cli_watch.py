"""`adc watch` of a stream: each new chunk as it lands."""

from __future__ import annotations

import json
import subprocess

import allye_data_connector as adc
from tests.cli.test_cli import ADC


def test_adc_watch_follows_a_stream(store):
    adc.append("ticks", {"n": 0}, secret_dir=store)
    proc = subprocess.Popen([ADC, "--secret-dir", str(store), "--json", "watch", "ticks", "--count", "2", "--timeout", "30"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert "following stream ticks" in proc.stderr.readline()
    adc.append("ticks", [{"n": 1}, {"n": 2}], secret_dir=store)
    adc.append("ticks", {"n": 3}, secret_dir=store)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert [r["records"] for r in lines] == [[{"n": 1}, {"n": 2}], [{"n": 3}]]


def test_adc_watch_stream_before_it_exists_and_times_out(store):
    proc = subprocess.run([ADC, "--secret-dir", str(store), "watch", "later", "--stream", "--timeout", "0.3"],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 5, proc.stderr
    assert "no new chunk of stream later" in proc.stderr
