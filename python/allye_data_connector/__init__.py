"""allye_data_connector: move pandas DataFrames and Arrow tables between processes on one
machine without copying them (Allye exchange protocol v1; drop-in for 0.1.2)."""

import logging
from typing import TYPE_CHECKING, Any

from . import errors
from ._core import __version__
from .errors import AllyeError, TableNotFoundError

if TYPE_CHECKING:  # the names __getattr__ below imports on first use
    from .api import cleanup_orphans as cleanup_orphans
    from .api import compact as compact
    from .api import describe_table as describe_table
    from .api import gc as gc
    from .api import get_arrow as get_arrow
    from .api import get_dataframe as get_dataframe
    from .api import list_tables as list_tables
    from .api import remove_table as remove_table
    from .api import send_dataframe as send_dataframe
    from .api import store_path as store_path
    from .api import watch as watch
    from .named_objects import Objects as Objects
    from .named_objects import capacity as capacity
    from .named_objects import namespaces as namespaces
    from .named_objects import objects as objects
    from .named_objects import remove_namespace as remove_namespace
    from .partial import Selection as Selection
    from .remote import Remote as Remote
    from .remote import connect as connect
    from .serving import serve as serve
    from .shared_array import SharedArray as SharedArray
    from .streams import Writer as Writer
    from .streams import append as append
    from .streams import append_log as append_log
    from .streams import compact_stream as compact_stream
    from .streams import follow as follow
    from .streams import LogWriter as LogWriter
    from .yaml_config import YamlConfig as YamlConfig
    from .loading import load as load
    from .sources import DataSource as DataSource

logging.getLogger(__name__).addHandler(logging.NullHandler())

#: The public names and the module of each, imported on first use (pandas and pyarrow take
#: about half a second to import, which ``adc --version`` and ``adc --help`` need not pay).
_API = (
    "send_dataframe",
    "get_dataframe",
    "get_arrow",
    "list_tables",
    "gc",
    "cleanup_orphans",
    "compact",
    "describe_table",
    "remove_table",
    "watch",
    "store_path",
)
_LAZY = {
    **{n: "api" for n in _API},
    "Selection": "partial",
    "SharedArray": "shared_array",
    "YamlConfig": "yaml_config",
    **{n: "streams" for n in ("append", "append_log", "Writer", "LogWriter", "follow", "compact_stream")},
    **{n: "named_objects" for n in ("objects", "Objects", "namespaces", "remove_namespace", "capacity")},
    "load": "loading",
    "DataSource": "sources",
    "connect": "remote",
    "Remote": "remote",
    "serve": "serving",
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
