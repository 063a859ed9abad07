"""Tables: a DataFrame (or Arrow data) sent under a name, read in place by any process
of the machine. The calls (:mod:`.api`: send, get, list, describe, remove, watch), the
store's maintenance (:mod:`.maintenance`: gc, compact, cleanup of deleted stores), the
records they return (:mod:`.records`), watches of new versions (:mod:`.watching`) and
the canvas notification a send makes (:mod:`.canvas`)."""

from .api import (
    describe_table,
    get_arrow,
    get_dataframe,
    list_tables,
    remove_table,
    send_dataframe,
    store_path,
    watch,
)
from .maintenance import cleanup_orphans, compact, gc
from .watching import Watch

__all__ = [
    "Watch",
    "cleanup_orphans",
    "compact",
    "describe_table",
    "gc",
    "get_arrow",
    "get_dataframe",
    "list_tables",
    "remove_table",
    "send_dataframe",
    "store_path",
    "watch",
]
