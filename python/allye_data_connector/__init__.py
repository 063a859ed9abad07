"""allye_data_connector: move pandas DataFrames and Arrow tables between processes on one
machine without copying them (Allye exchange protocol v1; drop-in for 0.1.2)."""

import logging
from typing import TYPE_CHECKING, Any

from . import errors
from ._core import __version__
from .errors import AllyeError, TableNotFoundError

if TYPE_CHECKING:  # the names __getattr__ below imports on first use
    from .arrays import SharedArray as SharedArray
    from .frames import Selection as Selection
    from .named_objects import Objects as Objects
    from .named_objects import capacity as capacity
    from .named_objects import namespaces as namespaces
    from .named_objects import objects as objects
    from .named_objects import remove_namespace as remove_namespace
    from .remote import Remote as Remote
    from .remote import connect as connect
    from .remote import serve as serve
    from .settings import YamlConfig as YamlConfig
    from .sources import DataSource as DataSource
    from .sources import load as load
    from .streams import LogWriter as LogWriter
    from .streams import Writer as Writer
    from .streams import append as append
    from .streams import append_log as append_log
    from .streams import compact_stream as compact_stream
    from .streams import follow as follow
    from .tables import cleanup_orphans as cleanup_orphans
    from .tables import compact as compact
    from .tables import describe_table as describe_table
    from .tables import gc as gc
    from .tables import get_arrow as get_arrow
    from .tables import get_dataframe as get_dataframe
    from .tables import list_tables as list_tables
    from .tables import remove_table as remove_table
    from .tables import send_dataframe as send_dataframe
    from .tables import store_path as store_path
    from .tables import watch as watch

logging.getLogger(__name__).addHandler(logging.NullHandler())

#: The public names and the capability subpackage of each, imported on first use (pandas
#: and pyarrow take about half a second to import, which ``adc --version`` and ``adc
#: --help`` need not pay).
_LAZY = {
    **{n: "tables" for n in (
        "send_dataframe", "get_dataframe", "get_arrow", "list_tables", "gc", "cleanup_orphans", "compact",
        "describe_table", "remove_table", "watch", "store_path",
    )},
    "Selection": "frames",
    "SharedArray": "arrays",
    "YamlConfig": "settings",
    **{n: "streams" for n in ("append", "append_log", "Writer", "LogWriter", "follow", "compact_stream")},
    **{n: "named_objects" for n in ("objects", "Objects", "namespaces", "remove_namespace", "capacity")},
    **{n: "sources" for n in ("load", "DataSource")},
    **{n: "remote" for n in ("connect", "Remote", "serve")},
}


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    module = importlib.import_module(f".{module_name}", __name__)
    value = getattr(module, name)  # AttributeError while that module itself is being imported
    globals().update({n: getattr(module, n) for n, m in _LAZY.items() if m == module_name})
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    *_LAZY,
    "errors",
    "AllyeError",
    "TableNotFoundError",
    "__version__",
]
