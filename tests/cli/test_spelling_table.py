"""Every rewrite of the CLI's spelling table (``cli/_app._CLI_SPELLING``) still meets a
message the library can raise: a library message reworded would otherwise silently lose
its command-line spelling (the user would read ``mode='append'`` at a shell)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from allye_data_connector.cli import _app

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [p for p in (ROOT / "python" / "allye_data_connector").rglob("*.py") if "cli" not in p.parts]
SOURCES += list((ROOT / "rust").rglob("*.rs"))


@pytest.fixture(scope="module")
def library_text() -> str:
    text = "\n".join(p.read_text(encoding="utf-8") for p in SOURCES)
    # A name formatted into a message ({table!r}, {table:?}) reads as a quoted name.
    return re.sub(r"\{[a-z_.]+(?:!r|:\?)\}", "'t'", text)


@pytest.mark.parametrize("pattern", [p for p, _ in _app._CLI_SPELLING], ids=lambda p: p.pattern)
def test_each_rewrite_meets_a_message_of_the_library(pattern, library_text):
    # The sources hold the messages as written (f-strings and format! included); quotes
    # may be escaped there, so both spellings are tried.
    assert pattern.search(library_text) or pattern.search(library_text.replace("\\'", "'").replace('\\"', '"')), (
        f"no library message matches {pattern.pattern!r}: reword the rewrite or drop it")
