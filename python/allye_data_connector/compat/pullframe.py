"""pullframe's API on Arrow Flight peers: ``from allye_data_connector.compat.pullframe
import pullframe`` instead of ``from pullframe import pullframe``.

``with pullframe(hosts, directory, sync_timeout=60.0) as pf:`` then ``pf.load(name, start,
end)`` (the rows of the DatetimeIndex with ``start <= t <= end``, ``None`` for an open end)
and ``pf.save(name, df)``, as pullframe's README says. ``directory`` is this node's store
(the cache); ``hosts`` are the peers' Flight servers (``host:port`` or ``grpc://`` URIs;
started with ``adc serve --no-auth``, pullframe's trusted-network model, or set
``$ALLYE_REMOTE_TOKEN``), or one ``zk://host:port`` ZooKeeper registry. A load syncs only
on demand: once the cache holds the peers' current version no data moves, and only the
rows newer than the cache's last index are pulled (pullframe's append-only sync).
``save`` merges like pullframe's cache: the new rows replace the old ones of the columns
they have, other columns keep their values.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, Iterable, Iterator, Optional, Union

import pandas as pd

from .._args import PathLike, path_arg
from ..errors import InvalidArgumentError, TableNotFoundError
from ..remote import Remote
from ..tables import api


class PullFrame:
    """One node's view (see the module docs)."""

    def __init__(self, hosts: Union[None, str, Iterable[str]], directory: PathLike,
                 sync_timeout: float = 60.0, **remote_options: Any) -> None:
        self.directory = path_arg(directory)
        os.makedirs(self.directory, exist_ok=True)
        if isinstance(hosts, str):
            hosts = [h for h in hosts.split(",") if h.strip()]
        hosts = list(hosts or [])
        registry = next((h for h in hosts if h.startswith("zk://")), None)
        peers = [h for h in hosts if not h.startswith("zk://")]
        self.remote: Optional[Remote] = None
        if peers or registry:
            self.remote = Remote(peers or None, registry=registry, secret_dir=self.directory,
                                 timeout_sec=float(sync_timeout), **remote_options)

    def close(self) -> None:
        if self.remote is not None:
            self.remote.close()

    def _local(self, name: str, start: Any = None) -> pd.DataFrame:
        df: pd.DataFrame = api.get_dataframe(name, secret_dir=self.directory, start=start)
        return df

    def load(self, name: str, start: Optional[Any] = None, end: Optional[Any] = None) -> pd.DataFrame:
        """The rows of ``name`` with ``start <= index <= end`` (None: open), synced from
        the peers first when they have a newer version."""
        if self.remote is not None:
            self.remote.sync(name, sync="tail")
        df = self._local(name, start)
        if end is not None:
            if not isinstance(df.index, pd.DatetimeIndex):
                raise InvalidArgumentError(f"{name!r} has no DatetimeIndex; pullframe frames are indexed by time")
            df = df.loc[: pd.Timestamp(end)]
        return df

    def save(self, name: str, df: pd.DataFrame) -> None:
        """Merges ``df`` into this node's cache of ``name`` (its rows replace those of the
        same index in its columns) and stores the result as a new version, which peers
        serving this store then offer."""
        if not isinstance(df, pd.DataFrame) or not isinstance(df.index, pd.DatetimeIndex):
            raise InvalidArgumentError("pullframe saves DataFrames indexed by a DatetimeIndex")
        try:
            old = self._local(name)
        except TableNotFoundError:
            old = None
        if old is not None and len(old):
            merged = old.reindex(index=old.index.union(df.index),
                                 columns=list(old.columns) + [c for c in df.columns if c not in old.columns])
            for column in df.columns:
                merged.loc[df.index, column] = df[column]
            df = merged
        api.send_dataframe(df, name, secret_dir=self.directory, shm_unlink_on_read=False, notify_canvas=False)


@contextlib.contextmanager
def pullframe(hosts: Union[None, str, Iterable[str]], directory: PathLike,
              sync_timeout: float = 60.0, **remote_options: Any) -> Iterator[PullFrame]:
    """pullframe's context manager (see the module docs)."""
    pf = PullFrame(hosts, directory, sync_timeout, **remote_options)
    try:
        yield pf
    finally:
        pf.close()


__all__ = ["pullframe", "PullFrame"]
