"""allye_data_connector: move pandas DataFrames and Arrow tables between processes on one
machine without copying them (Allye exchange protocol v1; drop-in for 0.1.2)."""

import logging

from . import errors
from ._core import __version__
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
from .errors import AllyeError, TableNotFoundError
from .shared_array import SharedArray
from .yaml_config import YamlConfig

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
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
    "errors",
    "AllyeError",
    "TableNotFoundError",
    "SharedArray",
    "YamlConfig",
    "__version__",
]
