"""Real second users for the store's trust rule (docs/PROTOCOL.md, "Security model").

The session creates a victim and an attacker (``useradd``; both in one extra group, for
the group-writable store), with homes under a fresh directory that every user can
traverse, and removes them, their group and their shared-memory segments at the end.
Their processes run this checkout's interpreter, venv and package through :func:`run_as`:
``unshare`` gives each one a private mount namespace in which a directory that hides them
from other users (a clean clone or a pyenv Python under ``/root``) is covered by an empty
tmpfs into which exactly the interpreter, the venv and the checkout are bind-mounted back
at their own paths, then ``setpriv`` drops to the user. The kernel checks every access
of the user's process, so root's own bypass of permissions plays no part in what is tested.

Needs root (CI runs as root). Elsewhere the suite is skipped, unless
``ADC_REQUIRE_SECOND_USER`` is set, which makes it fail instead (``.ci/run`` sets it).
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shlex
import shutil
import subprocess
import sys
import tempfile
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent


@dataclass(frozen=True)
class User:
    name: str
    uid: int
    gid: int
    home: Path


@dataclass(frozen=True)
class Users:
    victim: User
    attacker: User
    group: str
    gid: int
    base: Path

    def run(self, who: User, script: str, *args: Any, shm_size: Optional[str] = None,
            umask: int = 0o022, check: bool = True) -> Any:
        return run_as(self.base, who, script, *args, shm_size=shm_size, umask=umask, check=check)


def _require() -> None:
    why = None
    if os.geteuid() != 0:
        why = "the second-user suite creates users: it runs as root (CI does)"
    else:
        missing = [t for t in ("useradd", "userdel", "groupadd", "groupdel", "setpriv", "unshare", "mount")
                   if shutil.which(t) is None]
        if missing:
            why = f"the second-user suite needs {', '.join(missing)}"
    if why:
        if os.environ.get("ADC_REQUIRE_SECOND_USER"):
            pytest.fail(why + " (ADC_REQUIRE_SECOND_USER is set)")
        pytest.skip(why)


def _run(cmd: Sequence[str]) -> None:
    subprocess.run(cmd, check=True, capture_output=True, text=True)


@pytest.fixture(scope="session")
def users() -> Iterator[Users]:
    _require()
    tag = secrets.token_hex(3)
    base = Path(tempfile.mkdtemp(prefix="adc-sec-"))
    base.chmod(0o755)  # every user can reach the homes, the shared dir and the mounts
    for d in ("stage", "home", "scripts"):
        (base / d).mkdir()
        (base / d).chmod(0o755)
    shared = base / "shared"
    shared.mkdir()
    shared.chmod(0o1777)  # a shared temporary directory, as /tmp
    group = f"adcg{tag}"
    made: list[str] = []
    _run(["groupadd", group])
    try:
        for role in ("v", "a"):
            name = f"adc{role}{tag}"
            home = base / "home" / name
            _run(["useradd", "--no-create-home", "--home-dir", str(home), "--shell", "/bin/sh",
                  "--user-group", "--groups", group, name])
            made.append(name)
            pw = pwd.getpwnam(name)
            home.mkdir()
            os.chown(home, pw.pw_uid, pw.pw_gid)
            home.chmod(0o755)  # a usual home: others may look in, not write
        victim, attacker = (User(n, pwd.getpwnam(n).pw_uid, pwd.getpwnam(n).pw_gid, base / "home" / n) for n in made)
        import grp
        yield Users(victim=victim, attacker=attacker, group=group, gid=grp.getgrnam(group).gr_gid, base=base)
    finally:
        uids = set()
        for name in made:
            try:
                uids.add(pwd.getpwnam(name).pw_uid)
            except KeyError:
                pass
        # Their segments outlive them: /dev/shm is not a home.
        for entry in Path("/dev/shm").iterdir():
            try:
                if entry.lstat().st_uid in uids:
                    entry.unlink()
            except OSError:
                pass
        for name in made:
            subprocess.run(["userdel", name], capture_output=True)
        subprocess.run(["groupdel", group], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


_PRELUDE = """
import json, os, sys
ARGS = json.loads(sys.argv[1])
def out(value):
    print("ADC-RESULT " + json.dumps(value), flush=True)
def attempt(f, *a, **kw):
    '''The outcome of an attack: "ok" or the exception's class name.'''
    try:
        f(*a, **kw)
        return "ok"
    except Exception as exc:
        return type(exc).__name__
def segments(pattern, mine=True):
    '''The paths in /dev/shm matching ``pattern`` this user owns (or, ``mine=False``, does
    not own); one deleted meanwhile by another process is not there.'''
    import glob
    found = []
    for p in glob.glob("/dev/shm/" + pattern):
        try:
            uid = os.stat(p).st_uid
        except FileNotFoundError:
            continue
        if (uid == os.getuid()) == mine:
            found.append(p)
    return sorted(found)
"""


def run_as(base: Path, who: User, script: str, *args: Any, shm_size: Optional[str] = None,
           umask: int = 0o022, check: bool = True) -> Any:
    """Runs ``script`` (Python, with ``ARGS``, ``out`` and ``attempt`` defined) as ``who``
    in a private mount namespace where the checkout is reachable (see the module docs);
    with ``shm_size``, that namespace gets its own ``/dev/shm`` of that size. Returns what
    the script passed to ``out`` (the last call), or the completed process with ``check=False``."""
    path = base / "scripts" / f"{secrets.token_hex(6)}.py"
    path.write_text(_PRELUDE + textwrap.dedent(script))
    path.chmod(0o644)
    inner = _inner_command(base, who, path, json.dumps(list(args)), umask)
    setup = _mounts(base)
    if shm_size:
        setup.append(f"mount -t tmpfs -o size={shm_size},mode=1777 tmpfs /dev/shm")
    shell = " && ".join(setup + ["exec " + inner])
    proc = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", shell],
                          capture_output=True, text=True, timeout=300)
    if not check:
        return proc
    if proc.returncode != 0:
        raise AssertionError(f"{who.name} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    results = [line[len("ADC-RESULT "):] for line in proc.stdout.splitlines() if line.startswith("ADC-RESULT ")]
    assert results, f"{who.name} printed no result:\n{proc.stdout}\n{proc.stderr}"
    return json.loads(results[-1])


def _mounts(base: Path) -> list[str]:
    """Shell commands (run as root in the new mount namespace) that make the interpreter,
    the venv and the checkout reachable by every user at their own paths: each directory
    on their way that others cannot traverse is covered with an empty tmpfs (0755), into
    which they are bind-mounted back from a staging place."""
    needed = sorted({os.path.realpath(p) for p in (sys.base_prefix, sys.prefix, str(ROOT))}, key=len)
    blockers: list[str] = []
    staged: list[tuple[str, str]] = []
    for i, path in enumerate(needed):
        parts = Path(path).parts
        for depth in range(1, len(parts)):
            ancestor = str(Path(*parts[:depth]))
            if not os.stat(ancestor).st_mode & 0o001:
                if ancestor not in blockers:
                    blockers.append(ancestor)
                staged.append((path, str(base / "stage" / str(i))))
                break
    q = shlex.quote
    cmds = []
    for path, stage in staged:
        cmds.append(f"mkdir -p {q(stage)} && mount --bind {q(path)} {q(stage)}")
    for blocker in blockers:
        cmds.append(f"mount -t tmpfs -o mode=0755 tmpfs {q(blocker)}")
    for path, stage in staged:
        cmds.append(f"mkdir -p {q(path)} && mount --bind {q(stage)} {q(path)}")
    return cmds or ["true"]


def _inner_command(base: Path, who: User, script: Path, args: str, umask: int) -> str:
    env = {
        "HOME": str(who.home),
        "USER": who.name,
        "PATH": f"{Path(sys.prefix) / 'bin'}:/usr/bin:/bin",
        "PYTHONDONTWRITEBYTECODE": "1",
        "ALLYE_NOTIFY_CANVAS": "0",
        "LANG": "C.UTF-8",
    }
    env_args = " ".join(shlex.quote(f"{k}={v}") for k, v in env.items())
    body = f"umask {umask:03o} && exec {shlex.quote(sys.executable)} {shlex.quote(str(script))} {shlex.quote(args)}"
    return (f"setpriv --reuid={who.uid} --regid={who.gid} --init-groups "
            f"env -i {env_args} sh -c {shlex.quote(body)}")


# One user's processes in a namespace of their own, several users' in the same one: the
# full-/dev/shm test runs a victim, an attacker and the victim again in one namespace.
def run_sequence(base: Path, steps: Sequence[tuple[User, str, Sequence[Any]]], shm_size: str) -> list[Any]:
    """Runs each ``(user, script, args)`` in turn in ONE private mount namespace whose
    ``/dev/shm`` is a fresh tmpfs of ``shm_size``; returns each step's result."""
    outs = []
    lines = _mounts(base) + [f"mount -t tmpfs -o size={shm_size},mode=1777 tmpfs /dev/shm"]
    for i, (who, script, args) in enumerate(steps):
        path = base / "scripts" / f"{secrets.token_hex(6)}.py"
        path.write_text(_PRELUDE + textwrap.dedent(script))
        path.chmod(0o644)
        result = base / "scripts" / f"{path.stem}.out"
        outs.append(result)
        lines.append(f"{_inner_command(base, who, path, json.dumps(list(args)), 0o022)} > {shlex.quote(str(result))}")
    proc = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", " && ".join(lines)],
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        done = "\n".join(o.read_text() for o in outs if o.exists())
        raise AssertionError(f"a step failed ({proc.returncode}):\n{done}\n{proc.stderr}")
    results = []
    for o in outs:
        found = [line[len("ADC-RESULT "):] for line in o.read_text().splitlines() if line.startswith("ADC-RESULT ")]
        results.append(json.loads(found[-1]) if found else None)
    return results
