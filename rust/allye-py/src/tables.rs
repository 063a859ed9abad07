//! Sending, getting, listing and removing tables.

use std::path::PathBuf;

use allye_core::protocol;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use pyo3_arrow::{PyRecordBatchReader, PyTable};

use crate::args::{batches, store, SendArgs};
use crate::errors::OrRaise;
use crate::records::{list_to_py, to_py};

/// The store directory that `secret_dir` resolves to, as a `str` (every send resolves
/// it; building a `pathlib.Path` costs more than the resolution).
#[pyfunction]
#[pyo3(signature = (secret_dir=None))]
fn resolve_store(secret_dir: Option<PathBuf>) -> PyResult<std::ffi::OsString> {
    Ok(store(secret_dir)?.root().as_os_str().to_owned())
}

/// [`resolve_store`] and the stamp of the store's `settings.yaml` (`(mtime_ns, size,
/// inode)`, `None` without one) in one call: every send, put and get asks both (the
/// settings are cached by the stamp, which must see another process's edit).
#[pyfunction]
#[pyo3(signature = (secret_dir=None))]
#[allow(clippy::type_complexity)]
fn store_and_settings_stamp(secret_dir: Option<PathBuf>) -> PyResult<(std::ffi::OsString, Option<(i64, u64, u64)>)> {
    let store = store(secret_dir)?;
    let stamp = allye_core::sys::fs::stamp(&store.root().join(protocol::SETTINGS_FILE));
    Ok((store.root().as_os_str().to_owned(), stamp))
}

/// Sends Arrow data (any object with `__arrow_c_stream__`); returns the `ready` event
/// (`None` with `record=False`).
#[pyfunction]
#[pyo3(signature = (data, *, secret_dir=None, table_name=None, producer=protocol::DEFAULT_PRODUCER.to_string(),
    transport="auto", max_shm_bytes=protocol::DEFAULT_MAX_SHM_BYTES,
    chunk_rows=None, ttl_sec=None, compression=None,
    metadata=None, shape=None, schema_sha256=None, durable=false,
    auto_gc=true, auto_gc_grace_sec=protocol::DEFAULT_AUTO_GC_GRACE_SEC, keep_versions=protocol::DEFAULT_KEEP_VERSIONS,
    pool_max_bytes=None, reject_nan=Vec::new(), record=true))]
#[allow(clippy::too_many_arguments)]
fn send<'py>(
    py: Python<'py>,
    data: PyRecordBatchReader,
    secret_dir: Option<PathBuf>,
    table_name: Option<String>,
    producer: String,
    transport: &str,
    max_shm_bytes: u64,
    chunk_rows: Option<usize>,
    ttl_sec: Option<i64>,
    compression: Option<&str>,
    metadata: Option<&Bound<'py, PyDict>>,
    shape: Option<(u64, u64)>,
    schema_sha256: Option<String>,
    durable: bool,
    auto_gc: bool,
    auto_gc_grace_sec: u64,
    keep_versions: usize,
    pool_max_bytes: Option<u64>,
    reject_nan: Vec<usize>,
    record: bool,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let opts = SendArgs {
        table_name,
        producer,
        transport,
        max_shm_bytes,
        chunk_rows,
        ttl_sec,
        compression,
        metadata,
        shape,
        schema_sha256,
        durable,
        auto_gc,
        auto_gc_grace_sec,
        keep_versions,
        pool_max_bytes,
        reject_nan,
    }
    .options()?;
    let store = store(secret_dir)?;
    let (schema, batches) = batches(data)?;
    let ready = py.detach(|| store.send(&schema, &batches, &opts)).or_raise()?;
    // A caller that names the table and throws the record away asks for none.
    record.then(|| to_py(py, &ready)).transpose()
}

/// The current `ready` event of a table (raises if none, removed, or expired).
#[pyfunction]
#[pyo3(signature = (table_name, *, secret_dir=None, producer=None))]
fn latest<'py>(
    py: Python<'py>,
    table_name: &str,
    secret_dir: Option<PathBuf>,
    producer: Option<&str>,
) -> PyResult<Bound<'py, PyAny>> {
    let store = store(secret_dir)?;
    let ev = py.detach(|| store.latest(table_name, producer)).or_raise()?;
    to_py(py, &ev)
}

/// The current `ready` event of every table, sorted by name (removed tables left out).
#[pyfunction]
#[pyo3(signature = (*, secret_dir=None, producer=None))]
fn list_tables<'py>(
    py: Python<'py>,
    secret_dir: Option<PathBuf>,
    producer: Option<&str>,
) -> PyResult<Bound<'py, PyList>> {
    let store = store(secret_dir)?;
    let events = py.detach(|| store.list(producer)).or_raise()?;
    list_to_py(py, &events)
}

/// Every table with its latest state.
#[pyfunction]
#[pyo3(signature = (*, secret_dir=None, producer=None))]
fn table_states<'py>(
    py: Python<'py>,
    secret_dir: Option<PathBuf>,
    producer: Option<&str>,
) -> PyResult<Bound<'py, PyList>> {
    let store = store(secret_dir)?;
    let states = py.detach(|| store.states(producer)).or_raise()?;
    list_to_py(py, &states)
}

/// The state of one table (raises TableNotFoundError when never mentioned).
#[pyfunction]
#[pyo3(signature = (table_name, *, secret_dir=None, producer=None))]
fn table_state<'py>(
    py: Python<'py>,
    table_name: &str,
    secret_dir: Option<PathBuf>,
    producer: Option<&str>,
) -> PyResult<Bound<'py, PyAny>> {
    let store = store(secret_dir)?;
    let st = py.detach(|| store.describe(table_name, producer)).or_raise()?;
    to_py(py, &st)
}

/// The current version of a table: `(ready event, Arrow table)`, the table's buffers
/// pointing into the mapped segment or file. A removed table is TableNotFoundError;
/// `record_read=False` for a look that is not a load (it does not count for
/// `shm_unlink_on_read`).
#[pyfunction]
#[pyo3(signature = (table_name, *, secret_dir=None, producer=None, record_read=true))]
fn get_live<'py>(
    py: Python<'py>,
    table_name: &str,
    secret_dir: Option<PathBuf>,
    producer: Option<&str>,
    record_read: bool,
) -> PyResult<(Bound<'py, PyAny>, PyTable)> {
    let (ev, data) = read(py, table_name, secret_dir, producer, record_read)?;
    Ok((to_py(py, &ev)?, PyTable::try_new(data.batches, data.schema)?))
}

/// `get_live` without its event: only the Arrow table (a get that has no use for the
/// version's record does not pay for building it).
#[pyfunction]
#[pyo3(signature = (table_name, *, secret_dir=None, producer=None, record_read=true))]
fn read_live(
    py: Python<'_>,
    table_name: &str,
    secret_dir: Option<PathBuf>,
    producer: Option<&str>,
    record_read: bool,
) -> PyResult<PyTable> {
    let (_, data) = read(py, table_name, secret_dir, producer, record_read)?;
    PyTable::try_new(data.batches, data.schema)
}

/// The current version read in place, without the GIL: a load (`Store::get`) or, without
/// `record_read`, a look (`Store::peek`).
fn read(
    py: Python<'_>,
    table_name: &str,
    secret_dir: Option<PathBuf>,
    producer: Option<&str>,
    record_read: bool,
) -> PyResult<(allye_core::Event, allye_core::Decoded)> {
    let store = store(secret_dir)?;
    py.detach(|| if record_read { store.get(table_name, producer) } else { store.peek(table_name, producer) })
        .or_raise()
}

/// Removes a table (removal line, then its payloads in this store); returns a report.
#[pyfunction]
#[pyo3(signature = (table_name, *, secret_dir=None))]
fn remove_table<'py>(py: Python<'py>, table_name: &str, secret_dir: Option<PathBuf>) -> PyResult<Bound<'py, PyAny>> {
    let store = store(secret_dir)?;
    let r = py.detach(|| store.remove(table_name)).or_raise()?;
    to_py(py, &r)
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(resolve_store, m)?)?;
    m.add_function(wrap_pyfunction!(store_and_settings_stamp, m)?)?;
    m.add_function(wrap_pyfunction!(send, m)?)?;
    m.add_function(wrap_pyfunction!(latest, m)?)?;
    m.add_function(wrap_pyfunction!(list_tables, m)?)?;
    m.add_function(wrap_pyfunction!(table_states, m)?)?;
    m.add_function(wrap_pyfunction!(table_state, m)?)?;
    m.add_function(wrap_pyfunction!(get_live, m)?)?;
    m.add_function(wrap_pyfunction!(read_live, m)?)?;
    m.add_function(wrap_pyfunction!(remove_table, m)?)?;
    Ok(())
}
