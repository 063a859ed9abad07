//! Receiving a table from an Arrow stream whose size was announced (a Flight `DoGet`):
//! the batches are copied in place into one batch of the new version's payload.

use std::path::PathBuf;

use allye_core::protocol;
use allye_core::tables::receivable as core_receivable;
use allye_core::Announced;
use arrow_array::ffi_stream::FFI_ArrowArrayStream;
use pyo3::prelude::*;
use pyo3::types::{PyCapsule, PyDict};

use crate::args::{store, SendArgs};
use crate::errors::OrRaise;
use crate::records::to_py;

/// Receives the batches of `stream` (any object with `__arrow_c_stream__`, e.g. a Flight
/// reader's `to_reader()`), announced to hold `rows` rows, `null_counts[i]` nulls in
/// column `i` and `data_bytes[i]` bytes of values in string/bytes column `i` (`None` for
/// the others), as one new version of `table_name`: each batch is copied, as it arrives
/// and at any alignment, into its place in ONE record batch of an IPC file payload,
/// without the GIL. Only the column types `receivable` accepts. Returns the `ready`
/// event; a stream that breaks or differs from the announcement publishes nothing. The
/// auto-gc arguments apply as to a send.
#[pyfunction]
#[pyo3(signature = (stream, *, rows, null_counts, data_bytes=None, secret_dir=None, table_name=None,
    producer=protocol::DEFAULT_PRODUCER.to_string(), ttl_sec=None, metadata=None, shape=None,
    schema_sha256=None, durable=false,
    auto_gc=true, auto_gc_grace_sec=protocol::DEFAULT_AUTO_GC_GRACE_SEC, keep_versions=protocol::DEFAULT_KEEP_VERSIONS))]
#[allow(clippy::too_many_arguments)]
fn receive<'py>(
    py: Python<'py>,
    stream: &Bound<'py, PyAny>,
    rows: usize,
    null_counts: Vec<usize>,
    data_bytes: Option<Vec<Option<usize>>>,
    secret_dir: Option<PathBuf>,
    table_name: Option<String>,
    producer: String,
    ttl_sec: Option<i64>,
    metadata: Option<&Bound<'py, PyDict>>,
    shape: Option<(u64, u64)>,
    schema_sha256: Option<String>,
    durable: bool,
    auto_gc: bool,
    auto_gc_grace_sec: u64,
    keep_versions: usize,
) -> PyResult<Bound<'py, PyAny>> {
    let opts = SendArgs {
        table_name,
        producer,
        ttl_sec,
        metadata,
        shape,
        schema_sha256,
        durable,
        auto_gc,
        auto_gc_grace_sec,
        keep_versions,
        ..SendArgs::default()
    }
    .options()?;
    let store = store(secret_dir)?;
    let capsule = stream.call_method0("__arrow_c_stream__")?.cast_into::<PyCapsule>()?;
    let ptr = capsule.pointer_checked(Some(c"arrow_array_stream"))?;
    // SAFETY: a live `arrow_array_stream` capsule; `from_raw` moves the stream out and
    // leaves a released one behind, which the capsule's destructor then ignores.
    let mut ffi = unsafe { FFI_ArrowArrayStream::from_raw(ptr.as_ptr() as *mut FFI_ArrowArrayStream) };
    let data_bytes = data_bytes.unwrap_or_default();
    let announced = Announced { rows, null_counts: &null_counts, data_bytes: &data_bytes };
    let ready = py.detach(|| store.receive_stream(announced, &opts, &mut ffi)).or_raise()?;
    to_py(py, &ready)
}

/// Whether a table of this schema (anything with `__arrow_c_schema__`) can be received in
/// place: every column numbers, decimals, dates and times, booleans, strings or bytes
/// (no dictionaries, views or nested types), and, when `data_bytes` is given (one entry a
/// column, in schema order), the bytes of values of every string/bytes column announced
/// in it; without `data_bytes`, no string/bytes column.
#[pyfunction]
#[pyo3(signature = (schema, data_bytes=None))]
fn receivable(schema: pyo3_arrow::PySchema, data_bytes: Option<Vec<Option<usize>>>) -> bool {
    core_receivable(&schema.into_inner(), &data_bytes.unwrap_or_default())
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(receive, m)?)?;
    m.add_function(wrap_pyfunction!(receivable, m)?)?;
    Ok(())
}
