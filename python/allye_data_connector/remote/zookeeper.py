"""A ZooKeeper registry of serving nodes and of tables' versions and replicas (``kazoo``),
for clusters that need no configuration: nodes join (and vanish when they die) by
themselves, and clients learn of new versions through watches instead of asking.

Layout under the root (``/allye`` unless the URL names a chroot; docs/PROTOCOL.md "remote"):

- ``nodes/node-<seq>`` (ephemeral): ``{"location", "store", "pid", "host"}`` of a server;
- ``tables/<name>`` (persistent; the name percent-encoded into one part): the table's current version ``{"id", "source_id",
  "location", "created_at", "bytes", "shape", ...}``, written by the node that has the
  original;
- ``tables/<name>/replicas/<node>`` (ephemeral): ``{"location", "source_id"}`` of each node
  serving a copy (original or pulled).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from collections.abc import Mapping
from typing import Any, Optional
from urllib.parse import quote

from .. import _core, _optional
from ..errors import InvalidArgumentError, RemoteUnavailableError
from ..tables import api as tables
from ._wire import source_id

logger = logging.getLogger(__name__)

ROOT = "/allye"
NODES = f"{ROOT}/nodes"
TABLES = f"{ROOT}/tables"


def table_path(name: str) -> str:
    """The node of a table: its name percent-encoded into one path part, so that a name
    with ``/`` (``sensors/temp``) is one node, never a child of another table's."""
    return f"{TABLES}/{quote(name, safe='')}"


def parse_url(url: str) -> str:
    """kazoo's hosts string (``h1:p1,h2:p2[/chroot]``) of a ``zk://`` URL."""
    if not isinstance(url, str) or not url.startswith("zk://") or len(url) <= len("zk://"):
        raise InvalidArgumentError(f"a registry is 'zk://host:port[,host:port][/chroot]', got {url!r}")
    return url[len("zk://"):]


def require_kazoo() -> None:
    """Raises :class:`~..errors.MissingDependencyError` naming the ``remote`` extra when
    kazoo (the ZooKeeper client) is not installed."""
    _optional.require("kazoo.client", extra="remote", purpose="the ZooKeeper registry (zk://...)")


class Registry:
    """A connection to the registry (see the module docs)."""

    def __init__(self, url: str, *, timeout_sec: float = 10.0) -> None:
        parse_url(url)
        require_kazoo()
        from kazoo.client import KazooClient
        from kazoo.handlers.threading import KazooTimeoutError

        self.url = url
        self.zk = KazooClient(hosts=parse_url(url), timeout=timeout_sec)
        try:
            self.zk.start(timeout=timeout_sec)
        except KazooTimeoutError as exc:
            self.zk.close()
            raise RemoteUnavailableError(f"ZooKeeper at {url} did not answer within {timeout_sec}s") from exc
        self.zk.ensure_path(NODES)
        self.zk.ensure_path(TABLES)
        self._lock = threading.Lock()
        self._versions: dict[str, Optional[dict[str, Any]]] = {}
        self._nodes: Optional[list[str]] = None

    def close(self) -> None:
        try:
            self.zk.stop()
            self.zk.close()
        except Exception as exc:  # already lost
            logger.debug("closing the registry: %s", exc)

    # -- reading (watches keep the answers current without calls) --
    def nodes(self) -> list[str]:
        """Locations of the live serving nodes."""
        with self._lock:
            if self._nodes is None:
                self._nodes = []

                def changed(children: list[str]) -> None:
                    found = []
                    for child in sorted(children):
                        try:
                            data, _ = self.zk.get(f"{NODES}/{child}")
                            found.append(json.loads(data)["location"])
                        except Exception:  # vanished meanwhile
                            continue
                    self._nodes = found

                self.zk.ChildrenWatch(NODES, changed)
            return list(self._nodes)

    def version(self, name: str) -> Optional[dict[str, Any]]:
        """The table's current version as the registry records it (None: unknown); pushed
        by a watch after the first call, so later calls ask nothing."""
        with self._lock:
            if name not in self._versions:
                self._versions[name] = None

                def changed(data: Optional[bytes], stat: Any) -> None:
                    self._versions[name] = json.loads(data) if data else None

                self.zk.DataWatch(table_path(name), changed)
            return self._versions[name]

    def replicas(self, name: str) -> list[str]:
        """Locations serving the table's current version (the original first)."""
        current = self.version(name)
        if current is None:
            return []
        out = self.locations(name, current.get("source_id", current["id"]))
        if not out:
            return [current["location"]]
        if current["location"] in out:
            out.remove(current["location"])
            out.insert(0, current["location"])
        return out

    def locations(self, name: str, source_id: str) -> list[str]:
        """Locations whose store holds version ``source_id`` of the table (the original's
        id: a pulled copy records it), as their servers published them; one round trip."""
        path = f"{table_path(name)}/replicas"
        try:
            children = self.zk.get_children(path)
        except Exception:
            return []
        out = []
        for child in sorted(children):
            try:
                data, _ = self.zk.get(f"{path}/{child}")
            except Exception:
                continue
            rec = json.loads(data)
            if rec.get("source_id") == source_id and rec.get("location") not in out:
                out.append(rec["location"])
        return out

    # -- writing (a serving node) --
    def publish_node(self, location: str, *, secret_dir: Optional[str] = None) -> "NodePublisher":
        """Registers a serving node and keeps its tables' versions published while it runs."""
        return NodePublisher(self, location, secret_dir)


class NodePublisher:
    """A node's registration: its ephemeral node, and its tables' versions and replicas
    published at start and after each new version (a watch on the store's manifest)."""

    def __init__(self, registry: Registry, location: str, secret_dir: Optional[str]) -> None:
        self.registry = registry
        self.zk = registry.zk
        self.location = location
        self.secret_dir = secret_dir
        info = {"location": location, "store": _core.resolve_store(secret_dir), "pid": os.getpid(),
                "host": socket.gethostname()}
        path = self.zk.create(f"{NODES}/node-", json.dumps(info).encode(), ephemeral=True, sequence=True)
        self.node_id = path.rsplit("/", 1)[-1]
        self._published: dict[str, str] = {}
        # The watch first: a version sent meanwhile is then published by one or the other.
        self._watch = tables.watch(secret_dir=secret_dir, callback=lambda _rec: self.publish())
        self.publish()

    def publish(self) -> None:
        """Publishes every table of the store whose version changed since the last time."""
        for ev in _core.list_tables(secret_dir=self.secret_dir):
            name, sid = ev["table_name"], source_id(ev)
            try:
                _core.check_remote_table_name(name)
            except InvalidArgumentError:  # not served, so not published
                continue
            if self._published.get(name) == sid:
                continue
            try:
                self._publish_one(ev, name, sid)
                self._published[name] = sid
            except Exception as exc:  # the registry is advisory: serving goes on
                logger.warning("could not publish %r to the registry: %s", name, exc)

    def _publish_one(self, ev: Mapping[str, Any], name: str, sid: str) -> None:
        from kazoo.exceptions import NodeExistsError

        table = table_path(name)
        p = ev.get("payload") or {}
        is_original = sid == ev["id"]
        if is_original:
            record = {"id": ev["id"], "source_id": sid, "table_name": name, "location": self.location,
                      "created_at": ev.get("created_at"), "bytes": p.get("data_size"), "shape": p.get("shape"),
                      "schema_sha256": p.get("schema_sha256")}
            self.zk.ensure_path(table)
            self.zk.set(table, json.dumps(record).encode())
        replica = f"{table}/replicas/{self.node_id}"
        data = json.dumps({"location": self.location, "source_id": sid}).encode()
        try:
            self.zk.create(replica, data, ephemeral=True, makepath=True)
        except NodeExistsError:
            self.zk.set(replica, data)
        logger.info("published %r (%s) as %s", name, sid, "original" if is_original else "replica")

    def close(self) -> None:
        self._watch.stop()
        self.registry.close()
