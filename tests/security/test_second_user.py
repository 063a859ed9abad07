"""A second local user against a victim's store and shared memory (issue: "A store trusts
nobody"). Each attack runs in a real process of the attacker; the victim's tables,
objects, arrays and streams are then read back by the victim's own process and must be
equal. See docs/PROTOCOL.md, "Security model"."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from tests.security.conftest import Users, run_sequence

# --- what the victim keeps, and how it checks it -----------------------------------------

SETUP = """
import numpy as np, pandas as pd, allye_data_connector as adc
store = ARGS[0]
df = pd.DataFrame({"x": np.arange(1000, dtype="int64"), "s": [f"v{i}" for i in range(1000)]})
sent = {t: adc.send_dataframe(df, t, secret_dir=store, transport=t[0] == "f" and "file" or "shm")
        for t in ("ftable", "stable")}
objs = adc.objects(secret_dir=store, allow_pickle=True)
objs["pickled"] = {"k": [1, 2, 3]}
objs["arr"] = np.arange(10)
adc.append("log", pd.DataFrame({"n": [1, 2, 3]}), secret_dir=store, publish=False)
a = adc.SharedArray.create("counts", 8, "int64", secret_dir=store, fill=7)
a.close()
out({"segments": [os.path.basename(p) for p in segments("adc*")]})
"""

CHECK = """
import numpy as np, pandas as pd, allye_data_connector as adc
store = ARGS[0]
df = pd.DataFrame({"x": np.arange(1000, dtype="int64"), "s": [f"v{i}" for i in range(1000)]})
got = {}
for t in ("ftable", "stable"):
    try:
        got[t] = adc.get_dataframe(t, secret_dir=store).equals(df)
    except Exception as exc:
        got[t] = repr(exc)
objs = adc.objects(secret_dir=store, allow_pickle=True)
got["pickled"] = objs["pickled"] == {"k": [1, 2, 3]}
got["arr"] = objs["arr"].tolist() == list(range(10))
got["log"] = adc.get_dataframe("log", secret_dir=store)["n"].tolist() == [1, 2, 3]
a = adc.SharedArray.open("counts", secret_dir=store)
got["counts"] = a.read().tolist() == [7] * 8
a.close()
out(got)
"""

ALL_EQUAL = {"ftable": True, "stable": True, "pickled": True, "arr": True, "log": True, "counts": True}


def victim_store(users: Users, name: str) -> Path:
    return users.victim.home / name


def setup_victim(users: Users, name: str, umask: int = 0o022) -> tuple[Path, list[str]]:
    store = victim_store(users, name)
    made = users.run(users.victim, SETUP, str(store), umask=umask)
    return store, made["segments"]


def check_victim(users: Users, store: Path) -> None:
    assert users.run(users.victim, CHECK, str(store)) == ALL_EQUAL


def tree_modes(root: Path) -> dict[str, int]:
    out = {".": root.lstat().st_mode & 0o7777}
    for p in root.rglob("*"):
        out[str(p.relative_to(root))] = p.lstat().st_mode & 0o7777
    return out


# --- the attacks --------------------------------------------------------------------------


def test_everything_the_victim_makes_is_private_even_under_umask_000(users: Users) -> None:
    store, segments = setup_victim(users, "open_umask", umask=0o000)
    modes = tree_modes(store)
    assert modes["."] == 0o700
    for rel, mode in modes.items():
        path = store / rel
        assert path.lstat().st_uid == users.victim.uid, rel
        assert mode == (0o700 if path.is_dir() else 0o600), (rel, oct(mode))
    assert segments, "the victim made segments"
    for seg in segments:
        st = os.lstat(f"/dev/shm/{seg}")
        assert (st.st_uid, st.st_mode & 0o777) == (users.victim.uid, 0o600), seg
    check_victim(users, store)


READ_ATTEMPTS = """
import glob, allye_data_connector as adc
store, segments = ARGS
tried = {
    "list": attempt(os.listdir, store),
    "manifest": attempt(open, os.path.join(store, "manifest.jsonl"), "rb"),
    "get_dataframe": attempt(adc.get_dataframe, "ftable", secret_dir=store),
    "get_shm": attempt(adc.get_dataframe, "stable", secret_dir=store),
    "objects": attempt(lambda: adc.objects(secret_dir=store, allow_pickle=True)["pickled"]),
    "array": attempt(adc.SharedArray.open, "counts", secret_dir=store),
    "list_tables": attempt(adc.list_tables, secret_dir=store),
}
payloads = glob.glob(os.path.join(store, "payloads", "*"))
tried["payload_glob_empty"] = payloads == []
for seg in segments:
    tried["read " + seg] = attempt(lambda: open("/dev/shm/" + seg, "rb").read(1))
    tried["write " + seg] = attempt(lambda: open("/dev/shm/" + seg, "r+b").write(b"x"))
    tried["unlink " + seg] = attempt(os.unlink, "/dev/shm/" + seg)
    tried["rename " + seg] = attempt(os.rename, "/dev/shm/" + seg, "/dev/shm/stolen-" + seg)
out(tried)
"""


def test_the_attacker_can_read_replace_or_delete_nothing(users: Users) -> None:
    store, segments = setup_victim(users, "default_umask")
    tried = users.run(users.attacker, READ_ATTEMPTS, str(store), segments)
    assert tried.pop("payload_glob_empty") is True
    assert all(v != "ok" for v in tried.values()), tried
    # The library refuses a store that is not the caller's before the OS would.
    assert tried["get_dataframe"] == tried["objects"] == tried["list_tables"] == "StoreNotPrivateError", tried
    check_victim(users, store)


CLEANUP_AND_GC = """
import allye_data_connector as adc
adc.cleanup_orphans(dry_run=False)
mine = os.path.join(os.environ["HOME"], "own")
import pandas as pd
adc.send_dataframe(pd.DataFrame({"y": [1]}), "t", secret_dir=mine, transport="shm")
adc.gc(dry_run=False, secret_dir=mine)
out("done")
"""


def test_the_attackers_own_cleanup_and_gc_leave_the_victim_alone(users: Users) -> None:
    store, segments = setup_victim(users, "cleanup")
    users.run(users.attacker, CLEANUP_AND_GC)
    assert all(os.path.exists(f"/dev/shm/{s}") for s in segments)
    check_victim(users, store)


PRECREATE_STORE = """
path = ARGS[0]
os.mkdir(path)
os.chmod(path, ARGS[1])
out("made")
"""

SEND_INTO = """
import numpy as np, pandas as pd, allye_data_connector as adc
store = ARGS[0]
tried = {
    "send": attempt(adc.send_dataframe, pd.DataFrame({"x": [1]}), "t", secret_dir=store),
    "put": attempt(lambda: adc.objects(secret_dir=store).__setitem__("o", np.arange(3))),
    "append": attempt(adc.append, "log", pd.DataFrame({"n": [1]}), secret_dir=store, publish=False),
    "array": attempt(adc.SharedArray.create, "a", 4, "int64", secret_dir=store),
    "get": attempt(adc.get_dataframe, "t", secret_dir=store),
    "gc": attempt(adc.gc, dry_run=False, secret_dir=store),
}
try:
    adc.send_dataframe(pd.DataFrame({"x": [1]}), "t", secret_dir=store)
except adc.errors.StoreNotPrivateError as exc:
    tried["message"] = str(exc)
out(tried)
"""


@pytest.mark.parametrize("mode", [0o777, 0o755])
def test_a_store_directory_another_user_made_first_is_refused(users: Users, mode: int) -> None:
    shared = users.base / "shared" / f"store{mode:o}"
    users.run(users.attacker, PRECREATE_STORE, str(shared), mode)
    tried = users.run(users.victim, SEND_INTO, str(shared))
    message = tried.pop("message")
    assert set(tried.values()) == {"StoreNotPrivateError"}, tried
    assert str(shared) in message and f"uid {users.attacker.uid}" in message, message
    assert list(shared.iterdir()) == [], "the victim wrote nothing into the other user's directory"


GROUP_STORE = """
import grp
store, group = ARGS
os.chown(store, -1, grp.getgrnam(group).gr_gid)
os.chmod(store, 0o770)
important = os.path.join(os.environ["HOME"], "important")
os.makedirs(important, exist_ok=True)
with open(os.path.join(important, "file"), "w") as f:
    f.write("precious")
out("ok")
"""

PLANT = """
import json, shutil
store, victim_home = ARGS
important = os.path.join(victim_home, "important")
done = {}
def swap(name, target):
    path = os.path.join(store, name)
    aside = os.path.join(store, "." + name + "-aside")
    try:
        os.rename(path, aside)  # the attacker may rename entries of a directory it can write
    except OSError as exc:
        done[name + " rename"] = type(exc).__name__
    os.symlink(target, path)
    done[name] = "linked"
swap("payloads", important)
swap("objects", important)
swap("streams", important)
# The manifest (0600, unreadable) replaced by one of the attacker's, with two ready lines
# whose locator reaches ~/important/file through the link: the older is superseded, so a
# gc that followed the link would delete the file.
manifest = os.path.join(store, "manifest.jsonl")
done["manifest rename"] = attempt(os.rename, manifest, manifest + "-aside")
with open(manifest, "w") as f:
    for i in range(2):
        f.write(json.dumps({
            "version": 1, "id": f"planted-{i}", "table_name": "ftable", "producer": "python",
            "status": "ready", "created_at": "2025-01-01T00:00:0%d+0000" % i, "ttl_sec": None,
            "payload": {"transport": "file_arrow_ipc_v1", "locator": os.path.join(store, "payloads", "file"),
                        "data_size": 8, "shape": [1, 1], "schema_sha256": "", "created_at": "", "expires_at": None},
            "metadata": {}}) + "\\n")
os.chmod(manifest, 0o666)
out(done)
"""

VICTIM_AFTER_PLANT = """
import numpy as np, pandas as pd, allye_data_connector as adc
store = ARGS[0]
tried = {
    "gc": attempt(adc.gc, dry_run=False, secret_dir=store),
    "send": attempt(adc.send_dataframe, pd.DataFrame({"x": [1]}), "ftable", secret_dir=store, transport="file"),
    "put": attempt(lambda: adc.objects(secret_dir=store).__setitem__("o", np.arange(3))),
    "append": attempt(adc.append, "log", pd.DataFrame({"n": [4]}), secret_dir=store, publish=False),
    "get": attempt(adc.get_dataframe, "ftable", secret_dir=store),
    "remove": attempt(adc.remove_table, "ftable", secret_dir=store),
}
important = os.path.join(os.environ["HOME"], "important")
tried["important"] = sorted(os.listdir(important))
tried["file"] = open(os.path.join(important, "file")).read()
out(tried)
"""


def test_a_group_writable_store_is_refused_and_planted_links_delete_nothing(users: Users) -> None:
    store, _ = setup_victim(users, "group_store")
    users.run(users.victim, GROUP_STORE, str(store), users.group)
    planted = users.run(users.attacker, PLANT, str(store), str(users.victim.home))
    assert planted["payloads"] == "linked", planted
    tried = users.run(users.victim, VICTIM_AFTER_PLANT, str(store))
    assert tried.pop("important") == ["file"] and tried.pop("file") == "precious"
    assert set(tried.values()) == {"StoreNotPrivateError"}, tried


ROOT_PLANT_READY = """
import json
store = ARGS[0]
lines = open(os.path.join(store, "manifest.jsonl")).read().splitlines()
ready = [json.loads(l) for l in lines if '"ready"' in l and '"ftable"' in l][-1]
for i in range(2):
    ready["id"] = f"planted-{i}"
    ready["payload"]["locator"] = os.path.join(store, "payloads", "file")
    with open(os.path.join(store, "manifest.jsonl"), "a") as f:
        f.write(json.dumps(ready) + "\\n")
out("ok")
"""


def test_links_in_a_private_store_are_never_followed(users: Users) -> None:
    """Whoever managed to plant them (here root, which permissions do not stop): the
    victim's gc, sends, puts and appends refuse the links and touch nothing outside."""
    store, _ = setup_victim(users, "private_links")
    users.run(users.victim, GROUP_STORE.replace("os.chown(store, -1, grp.getgrnam(group).gr_gid)", "")
              .replace("os.chmod(store, 0o770)", ""), str(store), users.group)
    users.run(users.victim, ROOT_PLANT_READY, str(store))  # the victim's own manifest lines
    important = users.victim.home / "important"
    for name in ("payloads", "objects", "streams"):
        (store / name).rename(store / f".{name}-aside")
        (store / name).symlink_to(important)
        os.lchown(store / name, users.victim.uid, users.victim.gid)
    tried = users.run(users.victim, VICTIM_AFTER_PLANT, str(store))
    assert tried.pop("important") == ["file"] and tried.pop("file") == "precious"
    assert set(tried.values()) == {"StoreNotPrivateError"}, tried
    # Put back as they were: everything reads back equal.
    for name in ("payloads", "objects", "streams"):
        (store / name).unlink()
        (store / f".{name}-aside").rename(store / name)
    users.run(users.victim, "import allye_data_connector as adc\nadc.remove_table('ftable', secret_dir=ARGS[0])\n"
              "import pandas as pd, numpy as np\n"
              "df = pd.DataFrame({'x': np.arange(1000, dtype='int64'), 's': [f'v{i}' for i in range(1000)]})\n"
              "adc.send_dataframe(df, 'ftable', secret_dir=ARGS[0], transport='file')\nout('ok')", str(store))
    check_victim(users, store)


RECORDS = """
import json
tags, victim_store = ARGS
gone = json.dumps({"path": victim_store + "-gone", "dev": 1, "ino": 1}).encode()
tried = {}
for tag in tags + ["0123456789", "abcdefabcd"]:
    # A record of the attacker's making, naming a store that is gone, under the victim's
    # tags (taken from its segment names) and others.
    def plant():
        fd = os.open(f"/dev/shm/adc_store_{tag}", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
        os.write(fd, gone)
        os.fchmod(fd, 0o666)
        os.close(fd)
    tried[tag] = attempt(plant)
import allye_data_connector as adc
adc.cleanup_orphans(dry_run=False)
out(tried)
"""

VICTIM_CLEANUP = """
import subprocess, sys, allye_data_connector as adc
freed = adc.cleanup_orphans(dry_run=False)
cli = subprocess.run([sys.executable, "-m", "allye_data_connector", "cleanup"], capture_output=True, text=True)
out({"freed": [a["locator"] for a in freed], "cli": cli.returncode})
"""


def test_planted_store_records_never_make_cleanup_free_live_segments(users: Users) -> None:
    store, segments = setup_victim(users, "records")
    tags = sorted({s[4:14] for s in segments if s.startswith("adc_") and not s.startswith("adc_store_")
                   and len(s) == 28})
    assert tags, segments
    tried = users.run(users.attacker, RECORDS, tags, str(store))
    assert all(tried[t] == "FileExistsError" for t in tags), tried  # the victim's own record holds the name
    # Worse: the victim's record vanished (reboot-like timing) and the attacker's stands in.
    for tag in tags:
        Path(f"/dev/shm/adc_store_{tag}").unlink()
    tried = users.run(users.attacker, RECORDS, tags, str(store))
    assert all(tried[t] == "ok" for t in tags), tried
    for tag in tags:
        assert os.stat(f"/dev/shm/adc_store_{tag}").st_uid == users.attacker.uid
    result = users.run(users.victim, VICTIM_CLEANUP)
    assert result == {"freed": [], "cli": 0}, result
    assert all(os.path.exists(f"/dev/shm/{s}") for s in segments)
    check_victim(users, store)
    # And the victim's next shared-memory sends work (untagged, since the record is not theirs).
    users.run(users.victim, "import pandas as pd, allye_data_connector as adc\n"
              "adc.send_dataframe(pd.DataFrame({'z': [1]}), 'more', secret_dir=ARGS[0], transport='shm')\n"
              "out(adc.get_dataframe('more', secret_dir=ARGS[0])['z'].tolist())", str(store))


def old_array_segment(store: Path, name: str) -> str:
    """The name earlier versions gave an array: predictable by anyone who knows the path."""
    h = hashlib.sha256(str(store.resolve()).encode() + b"\0" + name.encode()).hexdigest()[:24]
    return f"adca_{h}"


PRECREATE_SEGMENTS = """
tried = {}
for seg in ARGS[0]:
    try:
        fd = os.open("/dev/shm/" + seg, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o666)
        os.fchmod(fd, 0o666)
        os.ftruncate(fd, 1 << 16)
        os.close(fd)
        tried[seg] = "made"
    except OSError as exc:
        tried[seg] = type(exc).__name__
out(tried)
"""

VICTIM_ARRAYS = """
import numpy as np, allye_data_connector as adc
store = ARGS[0]
a = adc.SharedArray.create("fresh", 4, "int64", secret_dir=store)
a.write(slice(None), [11, 12, 13, 14])
b = adc.SharedArray.create("fresh2", 4, "int64", secret_dir=store, exist_ok=True, fill=5)
res = {"fresh": a.read().tolist(), "fresh2": b.read().tolist()}
res["mine"] = [os.path.basename(p) for p in segments("adca_*")]
a.close(); b.close()
out(res)
"""

ATTACKER_READS_ARRAYS = """
tried = {}
for p in segments("adca_*", mine=False):
    tried[os.path.basename(p)] = attempt(lambda: open(p, "rb").read(8))
out(tried)
"""

LEGACY_MARKER = """
store, segment = ARGS
os.makedirs(os.path.join(store, "arrays"), exist_ok=True)
with open(os.path.join(store, "arrays", "legacy"), "w") as f:
    f.write(segment)
import allye_data_connector as adc
tried = {"open": attempt(adc.SharedArray.open, "legacy", secret_dir=store)}
try:
    adc.SharedArray.open("legacy", secret_dir=store)
except adc.errors.StoreNotPrivateError as exc:
    tried["message"] = str(exc)
a = adc.SharedArray.create("legacy", 4, "int64", secret_dir=store, exist_ok=True, fill=3)
tried["recreated"] = [a.read().tolist(), a.segment]
a.close()
out(tried)
"""


def test_predictable_array_names_are_neither_denial_nor_adoption(users: Users) -> None:
    store, _ = setup_victim(users, "arrays")
    planted = [old_array_segment(store, n) for n in ("fresh", "fresh2", "legacy")]
    assert set(users.run(users.attacker, PRECREATE_SEGMENTS, planted).values()) == {"made"}
    res = users.run(users.victim, VICTIM_ARRAYS, str(store))
    assert res["fresh"] == [11, 12, 13, 14] and res["fresh2"] == [5] * 4
    assert not set(res["mine"]) & set(planted), "the victim's names are not the predictable ones"
    tried = users.run(users.attacker, ATTACKER_READS_ARRAYS)
    assert tried and all(v == "PermissionError" for v in tried.values()), tried
    # An array an earlier version made, whose (predictable) segment another user made
    # first: refused, never adopted; a create makes a private one instead.
    legacy = users.run(users.victim, LEGACY_MARKER, str(store), planted[2])
    assert legacy["open"] == "StoreNotPrivateError", legacy
    assert planted[2] in legacy["message"] and f"uid {users.attacker.uid}" in legacy["message"]
    assert legacy["recreated"][0] == [3] * 4
    assert os.stat(f"/dev/shm/{planted[2]}").st_uid == users.attacker.uid  # left alone, not unlinked
    check_victim(users, store)


ATTACKER_INTO_QUOTA = """
import numpy as np, pandas as pd, allye_data_connector as adc
store = ARGS[0]
out({
    "put": attempt(lambda: adc.objects(secret_dir=store).__setitem__("big", np.zeros(1 << 20))),
    "send": attempt(adc.send_dataframe, pd.DataFrame({"x": np.zeros(1 << 16)}), "filler", secret_dir=store),
})
"""

FILL_SHM = """
fd = os.open("/dev/shm/attacker-filler", os.O_CREAT | os.O_RDWR, 0o600)
written = 0
chunk = b"\\xff" * (1 << 20)
try:
    while True:
        written += os.write(fd, chunk)
except OSError as exc:
    out({"filled": written, "error": exc.errno})
"""

VICTIM_WHEN_FULL = """
import numpy as np, pandas as pd, allye_data_connector as adc
store = ARGS[0]
res = {}
big = pd.DataFrame({"x": np.arange(1 << 17, dtype="float64")})
ev = adc.send_dataframe(big, "after", secret_dir=store)  # auto: shared memory is full
res["after"] = adc.get_dataframe("after", secret_dir=store).equals(big)
res["transport"] = adc.describe_table("after", secret_dir=store)["transport"]
res["array"] = attempt(adc.SharedArray.create, "more", 1 << 20, "float64", secret_dir=store)
from allye_data_connector.shared_array import list_arrays
res["arrays"] = sorted(a["name"] for a in list_arrays(secret_dir=store))
out(res)
"""


def test_a_full_shared_memory_or_quota_costs_the_victim_nothing(users: Users) -> None:
    store = victim_store(users, "quota")
    steps = run_sequence(users.base, [
        (users.victim, SETUP, [str(store)]),
        (users.attacker, ATTACKER_INTO_QUOTA, [str(store)]),
        (users.attacker, FILL_SHM, []),
        (users.victim, VICTIM_WHEN_FULL, [str(store)]),
        (users.victim, CHECK, [str(store)]),
    ], shm_size="48m")
    _, into, filled, when_full, check = steps
    assert into == {"put": "StoreNotPrivateError", "send": "StoreNotPrivateError"}, into  # not the attacker's
    assert filled["error"] == 28 and filled["filled"] > 0, filled  # ENOSPC: /dev/shm is full
    assert when_full["after"] is True and when_full["transport"] == "file_arrow_ipc_v1", when_full
    assert when_full["array"] == "StorageFullError" and when_full["arrays"] == ["counts"], when_full
    assert check == ALL_EQUAL, check


def test_the_victims_store_reads_back_after_every_attack(users: Users) -> None:
    """The default store (~/.allye_secrets) of a victim who never passed secret_dir."""
    made = users.run(users.victim, SETUP.replace("store = ARGS[0]", "store = None"))
    users.run(users.attacker, READ_ATTEMPTS, str(users.victim.home / ".allye_secrets"), made["segments"])
    users.run(users.attacker, CLEANUP_AND_GC)
    assert users.run(users.victim, CHECK.replace("store = ARGS[0]", "store = None")) == ALL_EQUAL
    assert tree_modes(users.victim.home / ".allye_secrets")["."] == 0o700
