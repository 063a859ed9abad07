"""The guide's own rules: every fenced block is of a language the harness knows (so no
Python or shell example goes unrun for want of a language tag), and the settings
reference names every setting."""

from __future__ import annotations

from pathlib import Path

import pytest
from sybil import Document
from sybil.parsers.markdown.lexers import FencedCodeBlockLexer

from allye_data_connector import settings
from tests.docs.harness import LANGUAGES, ROOT

PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_every_block_has_a_known_language(page: Path) -> None:
    lexer = FencedCodeBlockLexer(language=r"[^\n]*", mapping={"language": "language"})
    document = Document(page.read_text(encoding="utf-8"), str(page))
    found = [(document.line_column(r.start), r.lexemes["language"]) for r in lexer(document)]
    fences = sum(1 for line in document.text.splitlines() if line.lstrip().startswith("```"))
    assert len(found) * 2 == fences, f"{page}: {fences} fence lines, {len(found)} blocks lexed"
    unknown = [(where, lang) for where, lang in found if lang not in LANGUAGES]
    assert not unknown, f"blocks of unknown language (tag them {sorted(LANGUAGES)}): {unknown}"


def test_the_settings_reference_names_every_setting_and_its_variable() -> None:
    text = (ROOT / "docs" / "reference" / "settings.md").read_text(encoding="utf-8")
    rows = {line.split("|")[1].strip() for line in text.splitlines() if line.startswith("| `")}
    for name, env in settings.ENV.items():
        row = next((r for r in rows if r.startswith(f"`{name}`")), None)
        assert row is not None, f"docs/reference/settings.md has no row for {name}"
        assert f"`{env}`" in text, f"docs/reference/settings.md does not name {env}"
