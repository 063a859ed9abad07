"""YamlConfig: a dataclass base that saves itself to and loads itself from a YAML file.

Subclass it with ``@dataclass`` and call ``to_yaml(path)`` / ``Cls.from_yaml(path)``::

    @dataclass
    class Acquisition(YamlConfig):
        rate_hz: int = 30
        output: Path = Path("out")
        mode: Mode = Mode.FAST
        roi: tuple[int, int, int, int] = (0, 0, 640, 480)
        camera: Optional[Camera] = None

- The file must be named ``*.yaml`` or ``*.yml``; anything else is ``InvalidArgumentError``
  (a ``ValueError``) before any file is touched.
- Written as UTF-8 whatever the locale, atomically: the document is built in memory, written
  to a temporary file beside the target, flushed to disk and renamed over it, so a failed
  dump (a field YAML cannot represent, a full disk) leaves the old file as it was.
- Fields round-trip by their type hints: nested dataclasses (as mappings), ``Path`` (as
  strings), ``Enum`` members (as their values), tuples (as lists), ``Optional`` and
  ``Union`` fields, ``list`` / ``set`` / ``dict`` of those, and YAML's own scalars.
- A document that is not a mapping, a value of the wrong type, or a missing required field
  is ``InvalidArgumentError`` naming the file and the field. Unknown keys are logged and
  ignored (a newer file read by older code).
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import os
import tempfile
import types
import typing
from pathlib import Path, PurePath
from typing import Any, TypeVar, Union

import yaml

from .._args import PathLike
from ..errors import InvalidArgumentError

__all__ = ["YamlConfig", "read_mapping"]

logger = logging.getLogger(__name__)

T = TypeVar("T", bound="YamlConfig")

_SUFFIXES = (".yaml", ".yml")


def _check_suffix(path: Path) -> None:
    if path.suffix.lower() not in _SUFFIXES:
        raise InvalidArgumentError(f"{path}: a YamlConfig file must end in .yaml or .yml, not {path.suffix or 'nothing'!r}")


def read_mapping(path: PathLike) -> dict[str, Any]:
    """The YAML mapping in ``path`` (UTF-8); ``{}`` for an empty document."""
    path = Path(path)
    return parse_mapping(decode_text(path.read_bytes(), path), path)


def decode_text(raw: bytes, path: PathLike) -> str:
    """``raw`` (read from ``path``) as UTF-8 text; a binary file is
    :class:`~..errors.InvalidArgumentError` naming the first byte that is not text."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidArgumentError(
            f"{path} is not UTF-8 text (byte {exc.start} is {raw[exc.start:exc.start + 1]!r}): "
            "it cannot be a YAML settings file; fix or delete it") from None


def parse_mapping(text: str, path: PathLike) -> dict[str, Any]:
    """The YAML mapping in ``text`` (read from ``path``, named in errors); ``{}`` for an
    empty document."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidArgumentError(f"{path} is not valid YAML ({exc}); fix or delete it") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InvalidArgumentError(
            f"{path} must hold a mapping of key: value, not a {type(data).__name__}; fix or delete it"
        )
    return data


def _plain(value: Any) -> Any:
    """``value`` as YAML's plain types (mappings, lists, scalars)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return _plain(value.value)
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return [_plain(v) for v in sorted(value, key=repr)]
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    return value


class _Mismatch(Exception):
    pass


def _convert(hint: Any, value: Any, where: str) -> Any:
    """``value`` (from YAML) as type ``hint``; raises _Mismatch with what was wrong."""
    if hint is Any or hint is object:
        return value
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is Union or (hasattr(types, "UnionType") and isinstance(hint, getattr(types, "UnionType"))):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(arg, value, where)
            except _Mismatch as exc:
                errors.append(str(exc))
        raise _Mismatch("; ".join(errors) or f"{where}: {value!r} matches none of {hint}")
    if hint is type(None):
        # An annotation that allows only None says nothing about the value: it is what a
        # field named like a builtin makes of its own annotation (`list: Optional[list] =
        # None` evaluates `list` after the assignment), so the file's value is kept.
        return value
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise _Mismatch(f"{where}: expected a mapping for {hint.__name__}, got {value!r}")
        return _build(hint, value, where)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        try:
            return hint(value)
        except ValueError:
            if isinstance(value, str) and value in hint.__members__:
                return hint[value]
            raise _Mismatch(f"{where}: {value!r} is not a {hint.__name__} (one of {[m.value for m in hint]})") from None
    if isinstance(hint, type) and issubclass(hint, PurePath):
        if not isinstance(value, str):
            raise _Mismatch(f"{where}: expected a path string, got {value!r}")
        return hint(value)
    if origin is tuple or hint is tuple:
        if not isinstance(value, (list, tuple)):
            raise _Mismatch(f"{where}: expected a list for a tuple, got {value!r}")
        if not args:
            return tuple(value)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
        if len(args) != len(value):
            raise _Mismatch(f"{where}: expected {len(args)} items, got {len(value)}")
        return tuple(_convert(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
    if origin in (list, set, frozenset) or hint in (list, set, frozenset):
        if not isinstance(value, (list, tuple)):
            raise _Mismatch(f"{where}: expected a list, got {value!r}")
        items = [_convert(args[0], v, f"{where}[{i}]") for i, v in enumerate(value)] if args else list(value)
        return (origin or hint)(items)
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise _Mismatch(f"{where}: expected a mapping, got {value!r}")
        if not args:
            return dict(value)
        return {_convert(args[0], k, f"{where} key"): _convert(args[1], v, f"{where}[{k!r}]") for k, v in value.items()}
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise _Mismatch(f"{where}: expected true or false, got {value!r}")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _Mismatch(f"{where}: expected an int, got {value!r}")
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise _Mismatch(f"{where}: expected a number, got {value!r}")
    if hint is str:
        if isinstance(value, str):
            return value
        raise _Mismatch(f"{where}: expected a string, got {value!r}")
    return value


def _build(cls: type, data: dict[str, Any], where: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    for key in data:
        if key not in names:
            logger.warning("%s: unknown key %r ignored (known: %s)", where, key, ", ".join(sorted(names)))
    kwargs = {name: _convert(hints.get(name, Any), data[name], f"{where}: {name}") for name in names if name in data}
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise _Mismatch(f"{where}: {exc}") from None


@dataclasses.dataclass
class YamlConfig:
    """A dataclass that saves itself to and loads itself from a ``.yaml``/``.yml`` file
    (see the module documentation for the types that round-trip and the guarantees)."""

    def to_yaml_text(self) -> str:
        """The fields as the YAML text :meth:`to_yaml` writes."""
        try:
            return yaml.safe_dump(_plain(self), sort_keys=False, allow_unicode=True)
        except yaml.YAMLError as exc:
            raise InvalidArgumentError(f"{type(self).__name__} cannot be written to YAML: {exc}") from exc

    def to_yaml(self, file_path: PathLike) -> None:
        """Writes the fields to ``file_path`` atomically, as UTF-8 (parents created, 0700)."""
        path = Path(file_path)
        _check_suffix(path)
        text = self.to_yaml_text()
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(text.encode("utf-8"))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise

    @classmethod
    def from_yaml(cls: type[T], file_path: PathLike) -> T:
        """An instance from the mapping in ``file_path`` (missing keys take their defaults)."""
        path = Path(file_path)
        _check_suffix(path)
        return cls._from_mapping(read_mapping(path), str(path))

    @classmethod
    def _from_mapping(cls: type[T], data: dict[str, Any], origin: str) -> T:
        """Builds an instance from a YAML mapping; subclasses may convert differently."""
        try:
            return _build(cls, data, origin)  # type: ignore[no-any-return]
        except _Mismatch as exc:
            raise InvalidArgumentError(f"{exc}; fix {origin}") from None
