"""Objects live in sub-stores (``<store>/objects/<namespace>/``): the store fixture also
unlinks the segments their logs name."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import unlink_segments


def unlink_object_segments(store: Path) -> None:
    unlink_segments(store)
    objects = store / "objects"
    if objects.is_dir():
        for ns in objects.iterdir():
            unlink_segments(ns)


@pytest.fixture
def store(tmp_path: Path):
    d = tmp_path / "store"
    yield d
    unlink_object_segments(d)
