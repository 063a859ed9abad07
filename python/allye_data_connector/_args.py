"""The argument rules every public call shares, written once: the store argument
(``secret_dir``) and whole-number arguments."""

from __future__ import annotations

import os
from typing import Any, Optional, Union

from . import _core
from .errors import InvalidArgumentError

#: A path as the calls take it: a str or an ``os.PathLike`` (``pathlib.Path``).
PathLike = Union[str, "os.PathLike[str]"]


def store_arg(secret_dir: Optional[PathLike]) -> Optional[str]:
    """``secret_dir`` as ``_core`` takes it: a str with ``~`` expanded (:func:`path_arg`),
    or None for the default store (``$ALLYE_SECRET_DIR``, else ``~/.allye_secrets``,
    which the core resolves)."""
    return None if secret_dir is None else path_arg(secret_dir)


def path_arg(path: PathLike) -> str:
    """A directory or file argument as a str with ``~`` expanded. ``os.path``, not
    ``pathlib``: the store argument of every call goes through this, and pathlib costs
    about 10 us a time."""
    return os.path.expanduser(os.fspath(path))


def store_dir(secret_dir: Optional[PathLike]) -> str:
    """The store directory ``secret_dir`` resolves to (the default store for None)."""
    return str(_core.resolve_store(store_arg(secret_dir)))


def int_arg(name: str, value: Any, *, minimum: int) -> int:
    """``value`` when it is an int (not a bool) of at least ``minimum``, else
    :class:`~.errors.InvalidArgumentError` naming the argument."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgumentError(f"{name} must be an int, got {value!r}")
    if value < minimum:
        raise InvalidArgumentError(f"{name}={value} must be >= {minimum}")
    return value
