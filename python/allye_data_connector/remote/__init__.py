"""Serving a store over Arrow Flight and pulling from other machines' stores with the
local store as the cache: the client (:mod:`.client`: ``connect``, :class:`Remote`), the
server (:mod:`.server`: ``serve``, ``adc serve``), the ZooKeeper registry of nodes and
versions (:mod:`.zookeeper`), the wire vocabulary both sides import (:mod:`._wire`) and
what a receive in place needs announced (:mod:`._layout`)."""

from .client import Remote, connect
from .server import serve

__all__ = ["Remote", "connect", "serve"]
