"""Settings: the defaults of sends and reads, from arguments, then environment variables,
then ``<store>/settings.yaml``, then built-in defaults (0.1.2's).

:class:`Settings` is the one configuration of this package, a
:class:`~.yaml_config.YamlConfig`. :func:`load` resolves the effective
values and records where each came from (``adc config`` shows them).
"""

from __future__ import annotations

import copy
import functools
import logging
import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping, Optional, get_type_hints

from .. import _core
from .._args import PathLike
from ..errors import InvalidArgumentError
from .yaml_config import YamlConfig, decode_text, parse_mapping

logger = logging.getLogger(__name__)

SETTINGS_FILE: str = _core.SETTINGS_FILE


@functools.lru_cache(maxsize=None)
def _hints(cls: type) -> dict[str, str]:
    # get_type_hints evaluates every annotation (tens of µs); every send resolves settings.
    return {k: str(v) for k, v in get_type_hints(cls).items()}


#: Settings that are sizes in bytes: they take units wherever they are given (128MiB, 1GB).
SIZE_SETTINGS = ("max_shm_bytes", "max_store_bytes", "pool_max_bytes")

_SIZE_UNITS = {
    "": 1, "b": 1,
    "k": 1000, "kb": 1000, "m": 1000**2, "mb": 1000**2, "g": 1000**3, "gb": 1000**3, "t": 1000**4, "tb": 1000**4,
    "kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4,
}


def parse_size(text: str) -> int:
    """``"128MiB"`` -> 134217728, ``"1GB"`` -> 10**9, ``"4096"`` -> 4096 (``KiB`` and
    friends are powers of 1024, ``KB`` or ``K`` powers of 1000); anything else is
    :class:`~..errors.InvalidArgumentError`."""
    m = re.fullmatch(r"\s*([0-9][0-9_]*(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*", str(text))
    unit = m.group(2).lower() if m else None
    if m is None or unit not in _SIZE_UNITS:
        raise InvalidArgumentError(f"{text!r} is not a size: use bytes or a unit, e.g. 4096, 64MiB, 1GB, 512KiB")
    value = float(m.group(1).replace("_", "")) * _SIZE_UNITS[unit]
    if value != int(value):
        raise InvalidArgumentError(f"{text!r} is not a whole number of bytes")
    return int(value)


#: The least value of each numeric setting (None, where a setting may be unset, is not
#: checked), and why.
MINIMUM = {
    "max_shm_bytes": (1, "a send needs room for its data"),
    "chunk_rows": (0, "0 keeps the batches as given"),
    "default_ttl_sec": (0, "or none for no expiry"),
    "auto_gc_grace_sec": (0, "0 frees at once"),
    "keep_versions": (1, "a send never frees the version it has just written"),
    "max_store_bytes": (0, "or none for no quota"),
    "pool_max_bytes": (0, "0 for no pool, none for the default"),
}


def check(values: Any, origins: Mapping[str, str]) -> None:
    """Raises :class:`~..errors.InvalidArgumentError` naming each setting of ``values``
    (a :class:`Settings`) that is out of range, with where it came from (``origins``)."""
    bad = []
    for name, (least, why) in MINIMUM.items():
        value = getattr(values, name)
        if value is not None and value < least:
            origin = origins.get(name, "default")
            fix = f"change ${origin[4:]}" if origin.startswith("env:") else f"adc config --set {name}=VALUE"
            bad.append(f"{name}={value} from {origin} is out of range: it must be at least {least} ({why}); {fix}")
    if bad:
        raise InvalidArgumentError("; ".join(bad))


def _coerce(cls: type, name: str, value: Any, origin: str) -> Any:
    """Converts ``value`` (from YAML or an environment variable) to the field's type."""
    hint = _hints(cls)[name]
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none", "null")):
        if "Optional" in hint or "None" in hint:
            return None
        raise InvalidArgumentError(f"{name} from {origin} must not be empty")
    if name in SIZE_SETTINGS and isinstance(value, str):
        try:
            return parse_size(value)
        except InvalidArgumentError as exc:
            raise InvalidArgumentError(f"{name} from {origin}: {exc}") from None
    try:
        if "bool" in hint:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if "int" in hint:
            if isinstance(value, bool):
                raise ValueError(value)
            return int(str(value).strip().replace("_", ""))
        return str(value)
    except ValueError:
        raise InvalidArgumentError(f"{name}={value!r} from {origin} is not a valid {hint}") from None


@dataclass
class Settings(YamlConfig):
    """Defaults of this package. ``None`` means "not set" where that makes sense."""

    #: Largest Arrow size sent through shared memory by ``transport="auto"``.
    max_shm_bytes: int = _core.DEFAULT_MAX_SHM_BYTES
    #: Rows per record batch in file payloads. None: one batch for uncompressed files
    #: (a get maps them without copying), ``_core.DEFAULT_COMPRESSED_CHUNK_ROWS`` (0.1.2's)
    #: for compressed ones.
    chunk_rows: Optional[int] = None
    #: File payload compression: None (zero-copy reads) or one of ``_core.COMPRESSIONS``.
    compression: Optional[str] = None
    #: Time to live of sends that do not pass ``ttl_sec`` (None: no expiry).
    default_ttl_sec: Optional[int] = None
    #: Notify a running Allye canvas after each send.
    notify_canvas: bool = True
    #: Free superseded versions inside sends (bounded work per send), so a loop of sends
    #: does not fill /dev/shm; False leaves them to ``gc()``.
    auto_gc: bool = True
    #: Seconds a superseded version is kept after its successor appeared (readers that
    #: do not retry, 0.1.2's, open what they looked up within this time); 0 frees at once.
    auto_gc_grace_sec: int = _core.DEFAULT_AUTO_GC_GRACE_SEC
    #: Versions per table and producer that sends never free.
    keep_versions: int = _core.DEFAULT_KEEP_VERSIONS
    #: Bytes the live versions of the store's tables and named objects may hold; a put of
    #: an object that would pass it raises ``StoreFullError`` (None: no quota).
    max_store_bytes: Optional[int] = None
    #: Store and load named objects that are not Arrow data or NumPy arrays as pickles
    #: (loading a pickle runs code: only from a private store, see docs/PROTOCOL.md).
    allow_pickle: bool = _core.DEFAULT_ALLOW_PICKLE
    #: Flight peers ``adc.connect()`` pulls from when given none: ``host:port`` or Flight
    #: URIs, comma separated (see docs/guide/remote.md).
    peers: Optional[str] = None
    #: Bound of a process's pool of pre-mapped shared-memory segments, which large
    #: shared-memory payloads are copied into (filled in the background after a large
    #: send, given back when idle). None: 1/8 of /dev/shm
    #: (``_core.default_pool_max_bytes()``); 0: no pool.
    pool_max_bytes: Optional[int] = None

    @classmethod
    def _from_mapping(cls, data: dict[str, Any], origin: str) -> "Settings":
        # The file's values go through the same coercion as environment variables
        # ("1_000", "yes"), so `adc config --set` and hand edits read alike.
        return cls(**{f.name: _coerce(cls, f.name, data[f.name], origin) for f in fields(cls) if f.name in data})


#: Environment variable of each setting.
ENV = {
    "max_shm_bytes": "ALLYE_MAX_SHM_BYTES",
    "chunk_rows": "ALLYE_CHUNK_ROWS",
    "compression": "ALLYE_ARROW_COMPRESSION",  # 0.1.2's own variable
    "default_ttl_sec": "ALLYE_DEFAULT_TTL_SEC",
    "notify_canvas": "ALLYE_NOTIFY_CANVAS",
    "auto_gc": "ALLYE_AUTO_GC",
    "auto_gc_grace_sec": "ALLYE_AUTO_GC_GRACE_SEC",
    "keep_versions": "ALLYE_KEEP_VERSIONS",
    "max_store_bytes": "ALLYE_MAX_STORE_BYTES",
    "allow_pickle": "ALLYE_ALLOW_PICKLE",
    "peers": "ALLYE_PEERS",
    "pool_max_bytes": "ALLYE_POOL_MAX_BYTES",
}


@dataclass
class Resolved:
    """Effective settings and the origin of each value (``argument``, ``env:NAME``,
    ``file:PATH`` or ``default``)."""

    settings: Settings
    sources: dict[str, str] = field(default_factory=dict)
    store: Optional[Path] = None
    file: Optional[Path] = None


#: ``<store>/settings.yaml`` -> (its stat stamp, its mapping): read again when the file's
#: mtime, size or inode changes (an edit, or a new file renamed over it by ``save``).
_cache: dict[str, tuple[tuple[int, int, int], dict[str, Any]]] = {}


_UNSEEN: Any = object()


def _file_entry(path: str, stamp: Any = _UNSEEN) -> Optional[tuple[tuple[int, int, int], dict[str, Any]]]:
    """The cached (stamp, mapping) of a settings file, read again when its stamp changed;
    None when there is no file. ``stamp``: the file's ``(mtime_ns, size, inode)`` (None:
    no file) as the caller has just taken it, else taken here."""
    if stamp is _UNSEEN:
        try:
            st = os.stat(path)
        except OSError:
            return None
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
    elif stamp is None:
        return None
    hit = _cache.get(path)
    if hit is not None and hit[0] == stamp:
        return hit
    data = _read_yaml(path)
    known = set(_FIELDS)
    for key in data:
        if key not in known:
            logger.warning("%s: unknown setting %r ignored (known: %s)", path, key, ", ".join(sorted(known)))
    entry = (stamp, data)
    _cache[path] = entry
    return entry


def _file_values(path: str) -> dict[str, Any]:
    entry = _file_entry(path)
    return {} if entry is None else entry[1]


def _read_yaml(path: str) -> dict[str, Any]:
    """The mapping in ``<store>/settings.yaml``, read by the core under the store's trust
    rule (``StoreNotPrivateError`` when another user could have written it)."""
    raw = _core.read_store_file(SETTINGS_FILE, secret_dir=os.path.dirname(path))
    return {} if raw is None else parse_mapping(decode_text(raw, path), path)


def settings_file(store: PathLike) -> Path:
    return Path(_file_key(store))


def _file_key(store: PathLike) -> str:
    """``<store>/settings.yaml`` as a str: the path read, and the key of ``_cache``."""
    return os.path.join(os.fspath(store), SETTINGS_FILE)


#: Names of the settings, in declaration order.
_FIELDS = tuple(f.name for f in fields(Settings))
_FIELD_SET = frozenset(_FIELDS)


def _resolve(store: Optional[str], arguments: dict[str, Any]) -> tuple[Settings, dict[str, str], Optional[str]]:
    """(settings, source of each, settings file) for ``store``; plain strings and
    ``os`` calls, as every send resolves its settings."""
    unknown = set(arguments) - set(_FIELDS)
    if unknown:
        raise InvalidArgumentError(f"unknown settings {sorted(unknown)}")
    path = _file_key(store) if store is not None else None
    from_file = _file_values(path) if path is not None else {}
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    environ = os.environ
    for name in _FIELDS:
        env_name = ENV[name]
        env_value = environ.get(env_name)
        if arguments.get(name) is not None:
            values[name], sources[name] = arguments[name], "argument"
        elif env_value is not None and (env_value.strip() or name == "compression"):
            values[name] = _coerce(Settings, name, env_value, f"${env_name}")
            sources[name] = f"env:{env_name}"
        elif name in from_file:
            values[name] = _coerce(Settings, name, from_file[name], str(path))
            sources[name] = f"file:{path}"
        else:
            sources[name] = "default"
    s = Settings(**values)
    check(s, sources)
    s.compression = _core.normalize_compression(s.compression)
    return s, sources, path


def parse_setting(name: str, value: Any, origin: str) -> Any:
    """``value`` (text from the command line, an environment variable or YAML) as the
    type of setting ``name``; ``origin`` says where it came from in the error."""
    if name not in _FIELDS:
        raise InvalidArgumentError(f"unknown setting {name!r}; the settings are {', '.join(_FIELDS)}")
    return _coerce(Settings, name, value, origin)


#: Environment variables of the settings, in declaration order.
_ENV_NAMES = tuple(ENV[name] for name in _FIELDS)
_ENV_KEYS = tuple(os.environ.encodekey(name) for name in _ENV_NAMES)

#: store -> (the settings file's cache entry, the settings' environment variables, the
#: Settings they resolved to). A hit needs the same file entry (same stamp, not dropped
#: by ``save`` or a test) and the same environment; a forked child starts empty (the
#: fork hook below).
_resolved: dict[Optional[str], tuple[Any, tuple[Optional[str], ...], Settings]] = {}
#: ``_file_key`` of each store :func:`shared` was asked about (a join per call costs a
#: tenth of the call).
_file_keys: dict[str, str] = {}


def _environment() -> tuple[Any, ...]:
    """The values of the settings' environment variables. ``os.environ.get`` of twelve
    names, most of them unset, costs about 9 µs (each miss raises and catches a KeyError
    inside ``os._Environ``); CPython keeps the encoded mapping as ``os.environ._data``,
    which ``os.environ`` updates on every change, and reading it costs well under 1 µs."""
    raw = getattr(os.environ, "_data", None)
    if isinstance(raw, dict):
        return tuple(map(raw.get, _ENV_KEYS))
    environ = os.environ
    return tuple([environ.get(name) for name in _ENV_NAMES])


def _forget_in_child() -> None:
    _resolved.clear()
    _file_keys.clear()
    _cache.clear()


os.register_at_fork(after_in_child=_forget_in_child)


def effective(store: Optional[str] = None, **arguments: Any) -> Settings:
    """The effective settings for ``store`` (a resolved store directory as a str, or None
    for no file), as :func:`load` resolves them, without recording their sources. The
    caller's own copy: changing it changes nothing else."""
    return copy.copy(shared(store, **arguments))


def shared(store: Optional[str] = None, **arguments: Any) -> Settings:
    """:func:`effective` for the package's own reads: every send and get asks for them,
    so without arguments (or with only None ones) the result is cached until
    ``settings.yaml`` or one of the settings' environment variables changes. The
    Settings returned is shared by every caller: read it, never change it."""
    if _overrides(arguments):
        return _resolve(store, arguments)[0]
    return _shared(store, _UNSEEN)


def shared_for(secret_dir: Optional[str], **arguments: Any) -> Settings:
    """:func:`shared` for the store ``secret_dir`` resolves to (``_core.resolve_store``),
    the store resolved and its settings file's stamp taken in one call to the core: what
    every put, get and send asks (an ``os.stat`` from Python costs several times the
    core's)."""
    if _overrides(arguments):
        return _resolve(_core.resolve_store(secret_dir), arguments)[0]
    store, stamp = _core.store_and_settings_stamp(secret_dir)
    return _shared(store, stamp)


def _overrides(arguments: dict[str, Any]) -> bool:
    """Whether ``arguments`` set a value (or name an unknown setting, which ``_resolve``
    refuses): then the settings are resolved for this call, not taken from the cache."""
    return bool(arguments) and (any(v is not None for v in arguments.values()) or not arguments.keys() <= _FIELD_SET)


def _shared(store: Optional[str], stamp: Any) -> Settings:
    env = _environment()
    if store is None:
        entry = None
    else:
        path = _file_keys.get(store)
        if path is None:
            if len(_file_keys) >= 256:  # a process making many stores (tests) keeps few
                _file_keys.clear()
            path = _file_keys[store] = _file_key(store)
        entry = _file_entry(path, stamp)
    hit = _resolved.get(store)
    if hit is not None and hit[0] is entry and hit[1] == env:
        return hit[2]
    s = _resolve(store, {})[0]
    # The entry _resolve read (the file may have changed in between: then the next call
    # resolves again, as its entry is no longer the one cached).
    _resolved[store] = (entry, env, s)
    return s


def load(store: Optional[PathLike] = None, **arguments: Any) -> Resolved:
    """The effective settings for ``store`` (a resolved store directory, or None for no
    file): each field from ``arguments`` when given and not None, else its environment
    variable, else the store's ``settings.yaml``, else the default."""
    s, sources, path = _resolve(os.fspath(store) if store is not None else None, arguments)
    return Resolved(
        settings=s, sources=sources, store=Path(store) if store is not None else None,
        file=Path(path) if path is not None else None,
    )


def save(settings: Settings, store: PathLike) -> Path:
    """Writes ``settings`` to ``<store>/settings.yaml`` (created private, atomically,
    by the core under the store's trust rule)."""
    path = settings_file(store)
    _core.write_store_file(SETTINGS_FILE, settings.to_yaml_text().encode("utf-8"), secret_dir=os.fspath(store))
    _cache.pop(_file_key(store), None)
    return path
