"""Data sources and ``load()``: the :class:`DataSource` contract (panoply's;
:mod:`.base`), the built-in sources (CSV in slices parsed in parallel, :mod:`.csv`;
Parquet and Arrow IPC, :mod:`.files`; SQL through ADBC with PostgreSQL page ranges on
parallel connections, :mod:`.sql`), the registry that maps a URI or a name to its
source (built-ins plus the entry point group ``allye_data_connector.sources``;
:mod:`.registry`), and ``load()``, which runs a source into a table or a stream
(:mod:`.api`)."""

from .api import DEFAULT_CHUNK_BYTES, MODES, cancel_event, load
from .base import DEFAULT_BATCH_ROWS, SECRET_NAMES, DataSource, config_of, params_of, redact_uri
from .csv import CsvSource
from .files import IpcSource, ParquetSource
from .registry import BUILTIN, ENTRY_POINT_GROUP, available, describe_sources, resolve
from .sql import SqlSource

# The import path users know, which `adc sources` lists as each source's class.
for _cls in (DataSource, CsvSource, ParquetSource, IpcSource, SqlSource):
    _cls.__module__ = __name__
del _cls

__all__ = [
    "BUILTIN",
    "DEFAULT_BATCH_ROWS",
    "DEFAULT_CHUNK_BYTES",
    "ENTRY_POINT_GROUP",
    "MODES",
    "SECRET_NAMES",
    "CsvSource",
    "DataSource",
    "IpcSource",
    "ParquetSource",
    "SqlSource",
    "available",
    "cancel_event",
    "config_of",
    "describe_sources",
    "load",
    "params_of",
    "redact_uri",
    "resolve",
]
