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

# The submodule ``watch`` shares its name with the function ``watch``. Importing a
# submodule binds it on the package, which would leave ``adc.watch`` the module whenever
# ``api`` was imported other than through ``__getattr__`` below. Loaded now (it is small)
# and unbound, the module stays reachable as ``sys.modules[...]`` for ``api``, and the
# package attribute is always the function.
from . import watch as _watch_module  # noqa: E402

del globals()["watch"], _watch_module

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

        value = getattr(api, name)  # AttributeError while api itself is being imported
        globals().update({n: getattr(api, n) for n in _API})
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
