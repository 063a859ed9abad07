"""The README's main job, `python -m allye_data_connector demo`: it works, honours
--secret-dir and $ALLYE_SECRET_DIR, leaves nothing behind (files or segments), says only
true things, and uses only the public API."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import allye_data_connector as adc
from allye_data_connector import demo
from tests.helpers import unlink_segments

SEGMENT = re.compile(r"/dev/shm/(adc_[0-9a-f]{24})")


def run_demo(args: list[str], env: dict, timeout: float = 600) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "allye_data_connector", *args], capture_output=True, text=True,
                          env=env, timeout=timeout)
    assert proc.returncode == 0, f"{args} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def check_true_story(out: str) -> None:
    """What the demo says it did, checked against what it printed."""
    names = [name for name, _, _ in demo.SENDS]
    for name in names:
        assert re.search(rf"^sent {name} ", out, re.M), out
        assert re.search(rf"^got  {name} .* same values, dtypes and index as sent$", out, re.M), out
    assert "DIFFERENT" not in out and "error" not in out.lower()
    assert "none were sent with a ttl" not in out
    # zero-copy proof: the big columns were read from a mapping, one segment and one file
    assert SEGMENT.search(out) and re.search(r"is a read-only view of /\S+\.arrow \(mapped, not copied\)", out), out


def test_demo_in_a_temporary_store_leaves_nothing_behind(tmp_path, cli_env):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    out = run_demo(["demo"], cli_env({"TMPDIR": str(tmp)})).stdout
    check_true_story(out)
    store = Path(re.search(r"^store: (\S+)", out, re.M).group(1))
    assert store.parent == tmp and not store.exists()
    assert list(tmp.iterdir()) == []  # no store, no pickle file
    segments = SEGMENT.findall(out)
    assert segments and not any(Path("/dev/shm", s).exists() for s in segments)
    # gc ran in the demo's own store: each payload it says it freed is listed with its reason
    freed = re.search(r"^gc\(dry_run=False\) freed (\d+) payloads?", out, re.M)
    # (and what deleted stores left, which any store's gc frees: named by its segment)
    reasons = re.findall(r"^     (\S+): (.+)$", out, re.M)
    assert freed and int(freed.group(1)) == len(reasons) > 0, out
    assert all("shm_unlink_on_read" in why for name, why in reasons if name.startswith("demo_"))
    assert all(name.startswith("demo_") or why.startswith("left by the deleted store") for name, why in reasons), out
    assert "cleaned up: removed the demo tables" in out and "deleted the temporary store" in out


def test_demo_uses_the_store_of_the_secret_dir_options_and_env(tmp_path, cli_env):
    runs = {
        "env": (["demo", "--rows", "2000"], {"ALLYE_SECRET_DIR": str(tmp_path / "env")}),
        "option": (["demo", "--rows", "2000", "--secret-dir", str(tmp_path / "option")], {}),
        "global": (["--secret-dir", str(tmp_path / "global"), "demo", "--rows", "2000"], {}),
    }
    for key, (args, extra) in runs.items():
        store = tmp_path / key
        try:
            out = run_demo(args, cli_env(extra)).stdout
            check_true_story(out)
            assert f"store: {store}\n" in out
            assert (store / "manifest.jsonl").exists()
            # the user's store keeps its other tables and is not gc'd; the demo's are removed
            assert "gc(" not in out and adc.list_tables(secret_dir=store) == []
            assert not any(Path("/dev/shm", s).exists() for s in SEGMENT.findall(out))
            assert list((store / "payloads").iterdir()) == []
        finally:
            unlink_segments(store)


def test_demo_keep_leaves_the_tables_and_others_are_untouched(tmp_path, cli_env, adc_cmd):
    store = tmp_path / "store"
    adc.send_dataframe(demo.frames(10)["people"], "mine", secret_dir=store, notify_canvas=False)
    try:
        out = run_demo(["--secret-dir", str(store), "demo", "--rows", "500", "--keep"], cli_env({})).stdout
        assert "kept the demo tables" in out and "cleaned up" not in out
        listed = {t["table_name"] for t in json.loads(adc_cmd("ls", "--json", store=store).stdout)}
        assert listed == {"mine", *(name for name, _, _ in demo.SENDS)}
        assert len(adc.get_dataframe("mine", secret_dir=store)) == 5
    finally:
        unlink_segments(store)


def test_demo_uses_only_the_public_api():
    tree = ast.parse(Path(demo.__file__).read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(("." * node.level) + (node.module or ""))
    assert not {m for m in imported if m.startswith(".") or "_core" in m or "posixshmem" in m}, imported
    package_names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} & {"adc"}
    assert package_names == {"adc"}
    used = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)
            and n.value.id == "adc"}
    assert used and used <= set(adc.__all__), used - set(adc.__all__)
