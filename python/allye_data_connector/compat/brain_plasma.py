"""brain-plasma's ``Brain`` on named objects: switch with one import,
``from allye_data_connector.compat.brain_plasma import Brain``.

There is no Plasma server: ``path`` is the store directory, ``size`` its
``max_store_bytes`` quota, and the objects outlive every process (``sleep``, ``wake_up``,
``start`` and ``dead`` only mark this handle). Each method is a call of
:class:`~allye_data_connector.named_objects.Objects`; a missing name raises ``KeyError``,
learning a name again replaces its value.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Optional, Union

from .. import _core
from .. import settings as _settings
from ..errors import InvalidArgumentError, StoreError
from ..named_objects import (
    Objects,
    create_namespace as _create_namespace,
    namespaces as _namespaces,
    remove_namespace as _remove_namespace,
)

logger = logging.getLogger(__name__)

__all__ = ["Brain", "BrainAsleepError"]


class BrainAsleepError(StoreError):
    """The ``Brain`` was put to sleep (``sleep()``/``dead()``); call ``wake_up()``."""


class Brain:
    """A namespace of named objects in the store at ``path`` (brain-plasma's API).

    ``start_process=True`` sets the store's quota to ``size`` bytes, as starting a
    ``plasma_store -m size`` did (unless the objects already there hold more);
    ``start_process=False`` keeps the quota the store has."""

    def __init__(
        self,
        path: str = "/tmp/plasma",
        start_process: bool = True,
        size: int = 50000000,
        namespace: str = _core.DEFAULT_NAMESPACE,
    ) -> None:
        self.path = os.fspath(path)
        self._awake = True
        self.client = Objects(namespace, self.path)
        self.namespace = self.client.namespace
        _create_namespace(self.namespace, self.path)
        if start_process:
            self.start(size=size)
        self.bytes = self.size()
        self.mb = "{} MB".format(round(self.bytes / 1000000))

    def __repr__(self) -> str:
        return f"Brain(path={self.path!r}, namespace={self.namespace!r})"

    def _objects(self) -> Objects:
        if not self._awake:
            raise BrainAsleepError("this Brain is asleep (sleep() or dead() was called); call wake_up() first")
        return self.client

    # -- the core: learn, recall, forget

    def learn(self, thing: Any, name: str, description: Union[str, bool, None] = False) -> None:
        """Stores ``thing`` under ``name`` (replacing a previous value; a new description
        replaces the old one, none keeps it)."""
        if not isinstance(name, str):
            raise TypeError(f'name "{name}" must be str, not {type(name).__name__}')
        self._objects()._publish(name, thing, description=str(description) if description else None,
                                 keep_description=True)

    def recall(self, name: str) -> Any:
        """The value stored under ``name`` (``KeyError`` if there is none)."""
        return self._objects()[name]

    def forget(self, name: str) -> None:
        """Deletes ``name`` and its value; nothing happens when it does not exist."""
        objs = self._objects()
        if name in objs:
            del objs[name]

    def exists(self, name: str) -> bool:
        return name in self._objects()

    def __setitem__(self, name: str, thing: Any) -> None:
        self.learn(thing, name)

    def __getitem__(self, name: str) -> Any:
        return self.recall(name)

    def __delitem__(self, name: str) -> None:
        self.forget(name)

    def __contains__(self, name: object) -> bool:
        return name in self._objects()

    def __len__(self) -> int:
        return len(self._objects())

    # -- what the brain knows

    def names(self, namespace: Optional[str] = None) -> list[str]:
        """Names in the current namespace, in ``namespace``, or (``"all"``) in every namespace."""
        self._objects()
        if namespace is None or namespace == self.namespace:
            return list(self.client)
        if namespace == "all":
            return [n for ns in sorted(self.namespaces()) for n in Objects(ns, self.path)]
        return list(Objects(namespace, self.path))

    def _metadata(self, name: str) -> dict[str, Any]:
        info = self._objects().info(name)
        return {
            "name": name,
            "value_id": info["id"],
            "description": info["description"] or False,
            "namespace": self.namespace,
            **{k: v for k, v in info.items() if k not in ("name", "id", "description", "namespace")},
        }

    def info(self, name: str) -> dict[str, Any]:
        """The metadata of ``name``: ``name``, ``value_id``, ``description`` (False when
        none), ``namespace``, and the object's kind, type, shape, bytes, transport,
        created_at, writer (``KeyError`` if it does not exist)."""
        return self._metadata(name)

    def metadata(self, *names: str, output: str = "dict") -> Any:
        """brain-plasma 0.3's metadata: one name's (None if missing), or every name's as a
        dict by name (``output="dict"``) or a list (``output="list"``)."""
        if output not in ("dict", "list"):
            raise TypeError('output must be "list" or "dict"')
        if len(names) == 1:
            return self._metadata(names[0]) if names[0] in self else None
        wanted = list(names) or self.names()
        found = [self._metadata(n) for n in wanted if n in self]
        if output == "list":
            return found
        by_name = {m["name"]: m for m in found}
        return {n: by_name.get(n) for n in wanted} if names else by_name

    def knowledge(self) -> list[dict[str, Any]]:
        """The metadata of every name in the namespace."""
        return [self._metadata(n) for n in self.names()]

    def object_map(self) -> dict[str, str]:
        """Each name and the id of its current value (the transfer id of its version)."""
        return {m["name"]: m["value_id"] for m in self.knowledge()}

    object_ids = object_map

    def object_id(self, name: str) -> Optional[str]:
        """The id of ``name``'s current value (None if it does not exist)."""
        return self._metadata(name)["value_id"] if name in self else None

    def ids(self) -> list[str]:
        """The ids of the current values of every name in the namespace."""
        return list(self.object_map().values())

    # -- capacity

    def size(self) -> int:
        """The bytes the store may hold: its quota, else the size of the file system
        objects go to (``/dev/shm``)."""
        cap = _core.capacity(secret_dir=self.path, quota=self._quota())
        total = cap["quota"] if cap["quota"] is not None else (cap["shm_total"] or cap["store_total"] or 0)
        self.bytes = int(total)
        self.mb = "{} MB".format(round(self.bytes / 1000000))
        return self.bytes

    def used(self) -> int:
        """Bytes held by the live values of the store (every namespace, and its tables)."""
        return self.client.store_used()

    def free(self) -> int:
        """``size() - used()``."""
        return self.size() - self.used()

    def resize(self, size: int) -> None:
        """Sets the store's quota to ``size`` bytes; refuses a size below :meth:`used`."""
        size = int(size)
        used = self.used()
        if size < used:
            raise InvalidArgumentError(f"cannot resize to {size} bytes: the store holds {used}; forget some names first")
        self._set_quota(size)
        self.size()

    def _quota(self) -> Optional[int]:
        return _settings.shared_for(self.path).max_store_bytes

    def _set_quota(self, size: int) -> None:
        store = _core.resolve_store(self.path)
        file = _settings.settings_file(store)
        current = _settings.Settings.from_yaml(file) if file.exists() else _settings.Settings()
        if current.max_store_bytes == size:
            return
        current.max_store_bytes = size
        _settings.save(current, store)

    # -- namespaces

    def set_namespace(self, namespace: Optional[str] = None) -> str:
        """Switches to ``namespace``, creating it in the store if it is new (every Brain
        of the store then lists it); returns the current one."""
        if namespace is None:
            return self.namespace
        client = Objects(namespace, self.path)
        _create_namespace(client.namespace, self.path)
        self.client = client
        self.namespace = client.namespace
        return self.namespace

    def namespaces(self) -> set[str]:
        """Every namespace of the store (set, or holding objects), the default included."""
        return set(_namespaces(self.path)) | {_core.DEFAULT_NAMESPACE, self.namespace}

    def show_namespaces(self) -> set[str]:
        """brain-plasma's name for :meth:`namespaces`."""
        return self.namespaces()

    def remove_namespace(self, namespace: Optional[str] = None) -> str:
        """Deletes a namespace (default: the current one) and its values; the default
        namespace cannot be removed. Switches to the default one if it was current."""
        namespace = self.namespace if namespace is None else namespace
        if namespace == _core.DEFAULT_NAMESPACE:
            raise InvalidArgumentError("the default namespace cannot be removed")
        if namespace in _namespaces(self.path):
            _remove_namespace(namespace, self.path)
        elif namespace != self.namespace:
            raise InvalidArgumentError(f'namespace "{namespace}" does not exist')
        if namespace == self.namespace:
            self.set_namespace(_core.DEFAULT_NAMESPACE)
        return "Deleted namespace {}. Using namespace {}.".format(namespace, self.namespace)

    # -- the server's life (there is none)

    def sleep(self) -> None:
        """Disconnects this handle; :meth:`wake_up` reconnects it. The values stay."""
        self._awake = False

    def wake_up(self) -> None:
        self._awake = True
        self.size()

    def start(self, path: Optional[str] = None, size: Optional[int] = None) -> None:
        """brain-plasma started a server here. There is none: ``path`` switches store,
        ``size`` sets its quota (kept as it is when the store already holds more)."""
        if path is not None:
            self.path = os.fspath(path)
            self.client = Objects(self.namespace, self.path)
        self._awake = True
        if size is not None:
            used = self.used()
            if int(size) < used:
                logger.warning("Brain at %s holds %d bytes, more than size=%d: the quota is left as it is",
                               self.path, used, size)
            else:
                self._set_quota(int(size))

    def dead(self, i_am_sure: bool = False) -> None:
        """brain-plasma killed its server here. The values outlive this call (they are
        files and segments of the store, freed by ``forget`` or gc); with
        ``i_am_sure=True`` this handle is put to sleep."""
        if i_am_sure:
            self.sleep()
