"""mkdocs hooks (mkdocs.yml ``hooks``): the site's pages that live outside ``docs/``
(README.md is the front page, benches/RESULTS.md the benchmarks page, with its chart),
and the links between the repository's files.

Every page writes its links as they resolve in the repository, so that they also work
where the files are read as they are (GitHub, an editor): README.md links
``docs/guide/tables.md``, ARCHITECTURE.md links ``../benches/RESULTS.md``. Here each link
is resolved against its page's place in the repository and pointed at the site's page for
that file; a link to a file the site does not publish is left alone, and the strict build
fails on it as on any broken link.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parent.parent

#: Repository path -> the site's path of the files published from outside docs/.
PUBLISHED = {
    "README.md": "index.md",
    "benches/RESULTS.md": "benchmarks.md",
    "benches/compare.png": "compare.png",
}
_SOURCE = {site: repo for repo, site in PUBLISHED.items()}

#: An inline link or image target: ](target) or ](target "title").
_LINK = re.compile(r"(\]\()([^)\s]+)((?:\s+\"[^\"]*\")?\))")
_FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)


def on_files(files: Files, config: Any) -> Files:
    for repo, site in PUBLISHED.items():
        files.append(File.generated(config, site, abs_src_path=str(ROOT / repo)))
    return files


def _site_path(repo_path: str) -> str | None:
    if repo_path in PUBLISHED:
        return PUBLISHED[repo_path]
    if repo_path.startswith("docs/"):
        return repo_path[len("docs/"):]
    return None


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    src = page.file.src_uri
    repo_page = _SOURCE.get(src, f"docs/{src}")

    def relink(m: re.Match[str]) -> str:
        target = m.group(2)
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith(("#", "/")):
            return m.group(0)
        path, _, anchor = target.partition("#")
        repo_target = posixpath.normpath(posixpath.join(posixpath.dirname(repo_page), path))
        site = _site_path(repo_target)
        if site is None:
            return m.group(0)
        rel = posixpath.relpath(site, posixpath.dirname(src) or ".")
        return f"{m.group(1)}{rel}{'#' + anchor if anchor else ''}{m.group(3)}"

    out, last = [], 0
    for fence in _FENCE.finditer(markdown):  # code blocks keep their text
        out.append(_LINK.sub(relink, markdown[last:fence.start()]))
        out.append(fence.group(0))
        last = fence.end()
    out.append(_LINK.sub(relink, markdown[last:]))
    return "".join(out)
