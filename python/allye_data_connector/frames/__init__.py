"""DataFrames as Arrow data: pandas -> Arrow for a send (:mod:`.to_arrow`), Arrow ->
pandas for a get (:mod:`.to_pandas`), what pyarrow's round trip loses kept and put back
(:mod:`.fidelity`), where the index and the column labels are in the table
(:mod:`.fields`), and the part of a table a partial load picks (:mod:`.partial`). No
store access: the capabilities above (tables, streams, named objects, remote) convert
with this and hand the Arrow data to ``_core``."""

from .fidelity import FIDELITY_KEY, restore_arrow
from .fields import LABELS_KEY, data_fields, index_fields
from .partial import Selection, slice_rows
from .to_arrow import CONVERT_CHUNK_ROWS, Encoded, arrow_input, dataframe_to_arrow, encode, schema_sha256
from .to_pandas import DtypeBackend, arrow_to_dataframe, check_dtype_backend, copy_on_first_write

__all__ = [
    "CONVERT_CHUNK_ROWS",
    "FIDELITY_KEY",
    "LABELS_KEY",
    "DtypeBackend",
    "Encoded",
    "Selection",
    "arrow_input",
    "arrow_to_dataframe",
    "check_dtype_backend",
    "copy_on_first_write",
    "data_fields",
    "dataframe_to_arrow",
    "encode",
    "index_fields",
    "restore_arrow",
    "schema_sha256",
    "slice_rows",
]
