"""The pool lives in the process that sends: tests of it send from this process (or from
children) and give the pool back after each test, so that the next starts empty."""

from __future__ import annotations

from pathlib import Path

import pytest

from allye_data_connector import _core
from tests.named_objects.conftest import unlink_object_segments


@pytest.fixture
def store(tmp_path: Path):
    _core.pool_release()  # what earlier tests' large puts left in this process's pool
    d = tmp_path / "store"
    yield d
    _core.pool_release()
    unlink_object_segments(d)
