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
