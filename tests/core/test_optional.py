"""Optional dependencies: a missing one is one typed error naming the extra to install."""

import pytest

from allye_data_connector import _optional
from allye_data_connector.errors import AllyeError, MissingDependencyError


def test_a_missing_module_names_the_extra_that_installs_it():
    with pytest.raises(MissingDependencyError) as info:
        _optional.require("allye_no_such_module_xyz", extra="remote", purpose="the ZooKeeper registry")
    err = info.value
    assert isinstance(err, AllyeError) and isinstance(err, ImportError)
    assert str(err) == ("the ZooKeeper registry needs the Python package 'allye_no_such_module_xyz', "
                        "which is not installed: pip install 'allye_data_connector[remote]'")


def test_an_installed_module_is_returned():
    assert _optional.require("json", extra="sql", purpose="x").dumps([1]) == "[1]"


def test_every_extra_is_declared_in_pyproject():
    import pathlib
    import tomllib

    root = pathlib.Path(__file__).resolve().parents[2]
    extras = tomllib.loads((root / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for extra, dists in _optional.EXTRAS.items():
        declared = {d.split(">")[0].split("=")[0].strip() for d in extras[extra]}
        assert declared == set(dists), extra


# ---- every optional dependency of the package goes through require() --------------------
# A module set to None in sys.modules cannot be imported (ImportError), as if not installed.

import subprocess  # noqa: E402
import sys  # noqa: E402

import allye_data_connector as adc  # noqa: E402
from allye_data_connector.errors import InvalidArgumentError  # noqa: E402


def _hide(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    for m in modules:
        monkeypatch.setitem(sys.modules, m, None)


def test_a_sqlite_load_without_the_driver_names_the_sql_extra(monkeypatch, tmp_path):
    _hide(monkeypatch, "adbc_driver_sqlite", "adbc_driver_sqlite.dbapi")
    with pytest.raises(MissingDependencyError, match=r"pip install 'allye_data_connector\[sql\]'"):
        adc.load(str(tmp_path / "local.db"), "t", params={"table": "t"}, secret_dir=tmp_path / "s", progress=False)
    assert not (tmp_path / "local.db").exists()


def test_a_postgresql_load_without_the_driver_names_the_sql_extra(monkeypatch, tmp_path):
    _hide(monkeypatch, "adbc_driver_postgresql", "adbc_driver_postgresql.dbapi")
    with pytest.raises(MissingDependencyError, match=r"reading postgresql databases .*\[sql\]"):
        adc.load("postgresql://me@127.0.0.1:1/shop", "orders", params={"query": "select 1"},
                 secret_dir=tmp_path / "s", progress=False)


def test_an_unknown_scheme_lists_the_schemes_that_are_read(tmp_path):
    with pytest.raises(InvalidArgumentError) as info:
        adc.load("tickets://prod", "tickets", params={"query": "x"}, secret_dir=tmp_path / "s", progress=False)
    msg = str(info.value)
    assert "'tickets'" in msg and "postgresql://" in msg and "sqlite://" in msg and ".db" in msg
    assert "driver=" in msg and "adbc-driver-tickets" not in msg


def test_an_unknown_scheme_with_a_driver_is_read_by_that_driver(tmp_path):
    from allye_data_connector.errors import SourceError

    # The driver decides: a package that is not installed is named as such.
    with pytest.raises(SourceError, match="no ADBC driver 'adbc_driver_tickets' is installed"):
        adc.load("tickets://prod", "tickets", params={"query": "x", "driver": "adbc_driver_tickets"},
                 secret_dir=tmp_path / "s", progress=False)


def test_the_cli_names_the_extra_and_the_known_schemes(tmp_path):
    code = ("import sys; sys.modules['adbc_driver_sqlite'] = None; sys.modules['adbc_driver_sqlite.dbapi'] = None\n"
            "from allye_data_connector.cli import main; main()")
    env_dir = ["-d", str(tmp_path / "s")]
    (tmp_path / "local.db").touch()  # it exists: what is missing is the driver
    out = subprocess.run([sys.executable, "-c", code, *env_dir, "load", "local.db", "--param", "table=t"],
                         capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode != 0
    assert "pip install 'allye_data_connector[sql]'" in out.stderr and "None" not in out.stderr
    out = subprocess.run([sys.executable, "-m", "allye_data_connector", *env_dir, "load", "tickets://prod",
                          "--table", "tickets", "--query", "x"], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode != 0
    assert "no data source reads the scheme 'tickets'" in out.stderr and "adbc-driver-tickets" not in out.stderr


def test_a_registry_without_kazoo_names_the_remote_extra(monkeypatch, tmp_path):
    _hide(monkeypatch, "kazoo", "kazoo.client")
    with pytest.raises(MissingDependencyError, match=r"the ZooKeeper registry .*\[remote\]"):
        adc.connect(registry="zk://127.0.0.1:1", secret_dir=tmp_path / "s")


def test_arrow_data_as_polars_without_polars_names_the_polars_extra(monkeypatch, tmp_path):
    import pyarrow as pa

    objs = adc.objects(secret_dir=tmp_path / "s")
    objs["t"] = pa.table({"a": [1, 2]})
    _hide(monkeypatch, "polars")
    with pytest.raises(MissingDependencyError, match=r"\[polars\]"):
        objs.get_object("t", as_polars=True)
    assert objs["t"].column("a").to_pylist() == [1, 2]
