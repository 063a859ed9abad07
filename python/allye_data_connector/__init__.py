"""allye_data_connector: move pandas DataFrames and Arrow tables between processes on one
machine without copying them (Allye exchange protocol v1; drop-in for 0.1.2)."""

import logging
from typing import TYPE_CHECKING, Any

from . import errors
from ._core import __version__
from .errors import AllyeError, TableNotFoundError

if TYPE_CHECKING:
    from .api import (
        compact,
        describe_table,
        gc,
        get_arrow,
        get_dataframe,
        list_tables,
        remove_table,
        send_dataframe,
        store_path,
        watch,
    )

logging.getLogger(__name__).addHandler(logging.NullHandler())

#: The public calls, all in ``api``; imported on first use (pandas and pyarrow take about
#: half a second to import, which ``adc --version`` and ``adc --help`` need not pay).
_API = (
    "send_dataframe",
    "get_dataframe",
    "get_arrow",
    "list_tables",
    "gc",
    "compact",
    "describe_table",
    "remove_table",
    "watch",
    "store_path",
)


def __getattr__(name: str) -> Any:
    if name in _API:
        from . import api

        value = getattr(api, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list:
    return sorted(set(globals()) | set(_API))


__all__ = [
    *_API,
    "errors",
    "AllyeError",
    "TableNotFoundError",
    "__version__",
]
