"""Fixtures of the shared-array tests: a private store whose arrays are destroyed afterwards."""

from __future__ import annotations

import os

import pytest

from allye_data_connector import SharedArray
from allye_data_connector.errors import AllyeError
from allye_data_connector.arrays import list_arrays


@pytest.fixture
def astore(tmp_path):
    d = tmp_path / "store"
    yield d
    for info in list_arrays(secret_dir=d):
        try:
            SharedArray.open(info["name"], secret_dir=d).destroy()
        except AllyeError:
            pass
        try:
            os.unlink(f"/dev/shm/{info['segment']}")
        except FileNotFoundError:
            pass
