"""Optional dependencies: each feature that needs one imports it through :func:`require`,
so a missing one is one typed error naming the extra that installs it, never a bare
``ModuleNotFoundError`` from deep inside a call."""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import MissingDependencyError

#: The extras of ``pyproject.toml`` and what each installs (the distribution names).
EXTRAS = {
    "sql": ("adbc-driver-manager", "adbc-driver-postgresql", "adbc-driver-sqlite"),
    "remote": ("kazoo",),
    "polars": ("polars",),
}


def install_hint(extra: str) -> str:
    """The command that installs ``extra``."""
    return f"pip install 'allye_data_connector[{extra}]'"


def require(module: str, *, extra: str, purpose: str) -> ModuleType:
    """Imports ``module`` (for ``purpose``, in words: "the ZooKeeper registry"), or raises
    :class:`MissingDependencyError` saying which extra installs it."""
    if extra not in EXTRAS:
        raise ValueError(f"unknown extra {extra!r}")  # a bug of ours, not the user's
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        missing = exc.name or module
        raise MissingDependencyError(
            f"{purpose} needs the Python package {missing!r}, which is not installed: {install_hint(extra)}"
        ) from exc
