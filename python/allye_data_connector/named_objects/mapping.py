"""``adc.objects(namespace)``: the named objects of a namespace as a mapping
(:class:`Objects`), and the namespaces of a store. ``objs["x"] = obj`` publishes a new
immutable version, ``objs["x"]`` returns the latest. Each namespace is a sub-store
``<store>/objects/<namespace>/`` with its own log and payloads (``_core`` owns it); this
module converts objects with :mod:`.codecs`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from typing import Any, Optional, Union

import numpy as np
import pyarrow as pa

from .. import _core, _wait, settings as _settings
from .._args import PathLike, store_arg
from ..errors import InvalidArgumentError, NanFoundError, TableNotFoundError
from ..settings import Settings
from .codecs import Payload, decode, decode_bytes, encode, encode_deferring_nan, ndarray_dtype, ndarray_meta, table_of

logger = logging.getLogger(__name__)

_KEY = _core.OBJECT_METADATA_KEY


def _info(ev: Mapping[str, Any], namespace: str) -> dict[str, Any]:
    meta = dict(ev.get("metadata", {}).get(_KEY, {}))
    payload = ev.get("payload") or {}
    out: dict[str, Any] = {
        "name": ev["table_name"],
        "namespace": namespace,
        "kind": meta.get("kind"),
        "type": meta.get("type"),
        "bytes": payload.get("data_size"),
        "transport": payload.get("transport"),
        "created_at": ev.get("created_at"),
        "expires_at": payload.get("expires_at"),
        "ttl_sec": ev.get("ttl_sec"),
        "writer": ev.get("metadata", {}).get("adc", {}).get("writer"),
        "description": meta.get("description"),
        "id": ev.get("id"),
    }
    if meta.get("kind") == "numpy":
        out["dtype"] = str(ndarray_dtype(meta))
        out["shape"] = tuple(meta["shape"])
        out["order"] = meta.get("order")
    elif meta.get("kind") == "pickle":
        out["buffers"] = meta.get("buffers")
    else:
        out["shape"] = tuple(payload.get("shape") or ())
    return out


class Objects(MutableMapping[str, Any]):
    """The objects of one namespace of a store, as a mapping of names to objects.

    ``objs[name] = obj`` publishes a new immutable version (readers of the previous one
    keep valid data); ``objs[name]`` returns the latest (``KeyError`` if none); ``del``,
    ``in``, ``len``, iteration and ``keys()`` work as on a dict. Settings (``max_shm_bytes``,
    ``max_store_bytes``, ``allow_pickle``, ``default_ttl_sec``, gc) come from the store's
    ``settings.yaml`` as for tables."""

    def __init__(
        self,
        namespace: str = _core.DEFAULT_NAMESPACE,
        secret_dir: Optional[PathLike] = None,
        *,
        allow_pickle: Optional[bool] = None,
    ) -> None:
        if not isinstance(namespace, str):
            raise InvalidArgumentError(f"namespace must be a str, got {type(namespace).__name__}")
        self._namespace = _core.check_namespace_name(namespace)
        self._secret_dir = store_arg(secret_dir)
        self._allow_pickle = allow_pickle

    @property
    def namespace(self) -> str:
        return self._namespace

    @property
    def store(self) -> str:
        """The store directory."""
        return _core.resolve_store(self._secret_dir)

    def __repr__(self) -> str:
        return f"Objects(namespace={self._namespace!r}, secret_dir={self.store!r})"

    def _settings(self) -> _settings.Settings:
        return _settings.shared_for(self._secret_dir)

    def _pickle_allowed(self) -> bool:
        return self._settings().allow_pickle if self._allow_pickle is None else bool(self._allow_pickle)

    def _kw(self) -> dict[str, Any]:
        return {"namespace": self._namespace, "secret_dir": self._secret_dir}

    # -- writing

    def put(
        self,
        name: str,
        obj: Any,
        *,
        description: Optional[str] = None,
        ttl_sec: Optional[int] = None,
        transport: str = "auto",
        durable: bool = False,
    ) -> dict[str, Any]:
        """Publishes ``obj`` as the new version of ``name``; returns its :meth:`info`.

        ``transport``: ``"auto"`` (shared memory at any size, as Plasma's memory was;
        a file when ``/dev/shm`` is full), ``"shm"``, or ``"file"`` (kept across
        reboots). Raises :class:`~..errors.StoreFullError` (writing nothing) when the store
        would pass ``max_store_bytes``."""
        return _info(self._publish(name, obj, description, ttl_sec, transport, durable, record=True), self._namespace)

    def _publish(
        self, name: str, obj: Any, description: Optional[str] = None, ttl_sec: Optional[int] = None,
        transport: str = "auto", durable: bool = False, keep_description: bool = False, record: bool = False,
    ) -> Any:
        """:meth:`put` without building its :meth:`info` (``objs[name] = obj`` returns nothing);
        ``keep_description``: without ``description``, the previous version's is kept;
        ``record``: return the version's ``ready`` event (else ``None``: not built)."""
        record = record or logger.isEnabledFor(logging.DEBUG)
        if not isinstance(name, str):
            raise InvalidArgumentError(f"object names are str, got {type(name).__name__}")
        _core.check_transport(transport)
        eff = self._settings()
        allow = eff.allow_pickle if self._allow_pickle is None else bool(self._allow_pickle)
        payload, meta, reject_nan = encode_deferring_nan(obj, allow_pickle=allow)
        if description is not None:
            meta["description"] = str(description)
        try:
            ev = self._put(payload, name, meta, transport, ttl_sec, durable, eff, reject_nan, keep_description, record)
        except NanFoundError:
            # A float column holds NaN: put it with the NaN as nulls (nothing was written).
            table, _ = encode(obj, allow_pickle=allow)
            ev = self._put(table, name, meta, transport, ttl_sec, durable, eff, (), keep_description, record)
        if ev is not None and logger.isEnabledFor(logging.DEBUG):
            logger.debug("put %s/%s (%s, %d bytes)", self._namespace, name, meta["kind"], ev["payload"]["data_size"])
        return ev

    def _put(
        self, payload: Payload, name: str, meta: dict[str, Any], transport: str, ttl_sec: Optional[int],
        durable: bool, eff: Settings, reject_nan: tuple[int, ...], keep_description: bool = False,
        record: bool = True,
    ) -> Any:
        return _core.put_object(
            payload,
            name,
            metadata={_KEY: meta},
            transport=transport,
            ttl_sec=eff.default_ttl_sec if ttl_sec is None else int(ttl_sec),
            durable=durable,
            quota=eff.max_store_bytes,
            auto_gc=eff.auto_gc,
            auto_gc_grace_sec=eff.auto_gc_grace_sec,
            keep_versions=eff.keep_versions,
            pool_max_bytes=eff.pool_max_bytes,
            reject_nan=list(reject_nan),
            keep_description=keep_description,
            record=record,
            **self._kw(),
        )

    def __setitem__(self, name: str, obj: Any) -> None:
        self._publish(name, obj)

    @contextmanager
    def create(
        self,
        name: str,
        shape: Union[int, tuple[int, ...]],
        dtype: Any = "float64",
        *,
        order: str = "C",
        description: Optional[str] = None,
        ttl_sec: Optional[int] = None,
        transport: str = "auto",
    ) -> Iterator[np.ndarray[Any, Any]]:
        """``with objs.create("frame", (n, k), "float64") as arr: fill arr``: a writable
        view of a new shared-memory segment (Plasma's create/seal: no second copy),
        published as ``name`` when the block ends, then made read-only. An exception
        inside the block publishes nothing and removes the segment; a writer killed
        inside leaves a segment that gc removes. ``transport="file"`` fills process memory
        written to a file at the end."""
        _core.check_table_name(name)
        _core.check_transport(transport)
        if order not in ("C", "F"):
            raise InvalidArgumentError(f"order must be 'C' or 'F', got {order!r}")
        dt = np.dtype(dtype)
        if dt.hasobject:
            raise InvalidArgumentError(f"create() makes arrays of fixed-size items; dtype {dt} holds objects")
        dims = (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(int(n) for n in shape)
        if any(n < 0 for n in dims):
            raise InvalidArgumentError(f"shape {dims} has a negative dimension")
        if transport == "file" or not hasattr(_core, "create_object") or dt.itemsize == 0:
            arr = np.empty(dims, dtype=dt, order=order)  # type: ignore[call-overload]
            yield arr
            self.put(name, arr, description=description, ttl_sec=ttl_sec, transport=transport)
            return
        nbytes = int(np.prod(dims, dtype=np.int64)) * dt.itemsize
        meta = ndarray_meta(dt, dims, order, nbytes)
        if description is not None:
            meta["description"] = str(description)
        eff = self._settings()
        writer = _core.create_object(
            name, nbytes, metadata={_KEY: meta}, ttl_sec=eff.default_ttl_sec if ttl_sec is None else int(ttl_sec),
            quota=eff.max_store_bytes, auto_gc=eff.auto_gc, auto_gc_grace_sec=eff.auto_gc_grace_sec,
            keep_versions=eff.keep_versions, **self._kw(),
        )
        arr = np.asarray(writer).view(dt).reshape(dims, order=order)
        try:
            yield arr
        except BaseException as exc:
            writer.abort(f"an exception inside create(): {type(exc).__name__}")
            raise
        arr.flags.writeable = False  # published versions are immutable
        writer.commit()

    # -- reading

    def get_object(self, name: str, *, as_polars: Optional[bool] = None) -> Any:
        """The latest version of ``name`` (``KeyError`` — :class:`~..errors.ObjectNotFoundError`
        — if none). ``as_polars=True`` returns Arrow data as polars."""
        if not isinstance(name, str):
            raise KeyError(name)
        meta, data = _core.get_object_bytes(name, allow_pickle=self._pickle_allowed(), **self._kw())
        if isinstance(data, list):  # an array's or a pickle's bytes, over the mapping
            return decode_bytes(data, meta)
        return decode(table_of(data), meta, as_polars=as_polars)

    def __getitem__(self, name: str) -> Any:
        return self.get_object(name)

    def wait(self, name: str, *, after: Optional[str] = None, timeout_sec: Optional[float] = None) -> Any:
        """The latest version of ``name``, waiting for one to be published; with ``after``
        (the ``id`` of a version, from :meth:`info`), waiting for a version other than that
        one. ``timeout_sec`` None waits forever; then :class:`~..errors.WaitTimeoutError`."""

        def attempt() -> Any:
            if after is not None and _core.object_latest(name, **self._kw())["id"] == after:
                raise TableNotFoundError(f"no version of object {name!r} newer than {after} yet")
            return self.get_object(name)

        return _wait.wait_until(
            attempt,
            secret_dir=_core.namespace_store(self._namespace, secret_dir=self._secret_dir),
            timeout_sec=timeout_sec,
        )

    def info(self, name: str) -> dict[str, Any]:
        """What ``name``'s latest version is: ``kind``, ``type``, ``shape`` and ``dtype`` (arrays)
        or ``shape`` (rows, columns) and ``schema`` (``(name, type)`` pairs) of Arrow data,
        ``bytes``, ``transport``, ``created_at``, ``expires_at``, ``writer``, ``description``,
        ``id``."""
        info = _info(_core.object_latest(name, **self._kw()), self._namespace)
        if info["kind"] not in ("numpy", "pickle"):
            try:
                schema = self.schema(name)
            except KeyError:  # removed or replaced by a pickle meanwhile
                schema = None
            info["schema"] = None if schema is None else [(f.name, str(f.type)) for f in schema]
        return info

    def schema(self, name: str) -> Optional[pa.Schema]:
        """The Arrow schema of an object stored as Arrow data (None for arrays and pickles)."""
        kind = _core.object_latest(name, **self._kw())["metadata"].get(_KEY, {}).get("kind")
        if kind in ("numpy", "pickle"):
            return None
        _, data = _core.get_object(name, allow_pickle=False, **self._kw())
        return table_of(data).schema

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        try:
            _core.object_latest(name, **self._kw())
        except KeyError:
            return False
        return True

    def __iter__(self) -> Iterator[str]:
        return iter([ev["table_name"] for ev in _core.list_objects(**self._kw())])

    def __len__(self) -> int:
        return len(_core.list_objects(**self._kw()))

    def list(self) -> list[dict[str, Any]]:
        """:meth:`info` of every object, sorted by name."""
        return [_info(ev, self._namespace) for ev in _core.list_objects(**self._kw())]

    # -- deleting and accounting

    def __delitem__(self, name: str) -> None:
        if name not in self:
            raise KeyError(name)
        _core.remove_object(name, **self._kw())

    def used(self) -> int:
        """Bytes held by the live versions of this namespace's objects."""
        return int(_core.objects_used(**self._kw()))

    def store_used(self) -> int:
        """Bytes held by the live versions of the whole store (tables and every namespace):
        what ``max_store_bytes`` bounds."""
        return int(_core.objects_used(secret_dir=self._secret_dir))

    def clear(self) -> None:
        for name in list(self):
            del self[name]


def objects(
    namespace: str = _core.DEFAULT_NAMESPACE,
    secret_dir: Optional[PathLike] = None,
    *,
    allow_pickle: Optional[bool] = None,
) -> Objects:
    """The named objects of ``namespace`` in the store (see :class:`Objects`).

    Args:
        namespace: The namespace (``"default"``).
        secret_dir: The store directory (else ``$ALLYE_SECRET_DIR``, else ``~/.allye_secrets``).
        allow_pickle: Allow pickles (None: the ``allow_pickle`` setting).

    Returns:
        The namespace's ``Objects``, a dict-like mapping.
    """
    return Objects(namespace, secret_dir, allow_pickle=allow_pickle)


def namespaces(secret_dir: Optional[PathLike] = None) -> list[str]:
    """The namespaces that exist (made by :func:`create_namespace` or by their first
    object, until :func:`remove_namespace`), sorted.

    Args:
        secret_dir: The store directory (else ``$ALLYE_SECRET_DIR``, else ``~/.allye_secrets``).

    Returns:
        The namespaces' names, sorted.
    """
    return list(_core.namespaces(secret_dir=store_arg(secret_dir)))


def create_namespace(namespace: str, secret_dir: Optional[PathLike] = None) -> bool:
    """Makes ``namespace`` exist (listed by :func:`namespaces`) before its first object;
    False when it existed already."""
    return bool(_core.create_namespace(namespace, secret_dir=store_arg(secret_dir)))


def remove_namespace(namespace: str, secret_dir: Optional[PathLike] = None) -> int:
    """Deletes a namespace and every object in it; returns how many it held. The default
    namespace cannot be removed (:class:`~..errors.InvalidArgumentError`).

    Args:
        namespace: The namespace to delete.
        secret_dir: The store directory (else ``$ALLYE_SECRET_DIR``, else ``~/.allye_secrets``).

    Returns:
        How many objects it held.

    Raises:
        InvalidArgumentError: The default namespace.
    """
    return int(_core.remove_namespace(namespace, secret_dir=store_arg(secret_dir)))


def capacity(secret_dir: Optional[PathLike] = None) -> dict[str, Any]:
    """Free and total bytes of ``/dev/shm`` (``shm_free``, ``shm_total``) and of the store's
    file system (``store_free``, ``store_total``), the bytes held by live versions
    (``used``) and the ``max_store_bytes`` quota (``quota``, None when unset); the
    pre-mapped pool segments of this user's processes (``pool_bytes``, ``pool_segments``)
    and this process's pool bound (``pool_max_bytes``, setting ``pool_max_bytes``).

    Args:
        secret_dir: The store directory (else ``$ALLYE_SECRET_DIR``, else ``~/.allye_secrets``).

    Returns:
        ``shm_free``, ``shm_total``, ``store_free``, ``store_total``, ``used``, ``quota``,
        ``pool_bytes``, ``pool_segments``, ``pool_max_bytes``.
    """
    store = _core.resolve_store(store_arg(secret_dir))
    quota = _settings.shared(store).max_store_bytes
    return dict(_core.capacity(secret_dir=store_arg(secret_dir), quota=quota))
