//! Streaming tables: append, read, follow, publish, compact, remove.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use allye_core::{protocol, tuning};
use allye_core::{AppendOptions, Follower, ReadSelection};
use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use pyo3_arrow::{PyDataType, PyRecordBatchReader, PySchema, PyTable};

use crate::args::{batches, store};
use crate::errors::OrRaise;
use crate::records::{list_to_py, metadata_from_py, to_py};

/// Appends Arrow data (any object with `__arrow_c_stream__`, or a list of them whose
/// schemas may differ: one chunk of their merged schema) to a stream as one chunk;
/// returns the chunk's line, or None when there were no rows. With
/// `publish_interval_sec`, also publishes the stream as a v1 version when the last
/// publication is that old. `load` (a dict) is a load's state, written on the chunk's
/// line (`allye_load`).
#[pyfunction]
#[pyo3(signature = (data, table_name, *, secret_dir=None, time_column=None, durable=false, publish_interval_sec=None, load=None))]
#[allow(clippy::too_many_arguments)]
fn stream_append<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyAny>,
    table_name: &str,
    secret_dir: Option<PathBuf>,
    time_column: Option<String>,
    durable: bool,
    publish_interval_sec: Option<f64>,
    load: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyAny>> {
    let store = store(secret_dir)?;
    let parts: Vec<(SchemaRef, Vec<RecordBatch>)> = if let Ok(list) = data.cast::<PyList>() {
        list.iter().map(|p| batches(p.extract::<PyRecordBatchReader>()?)).collect::<PyResult<_>>()?
    } else {
        vec![batches(data.extract::<PyRecordBatchReader>()?)?]
    };
    let mut opts = AppendOptions::with_time_column(time_column);
    opts.durable = durable;
    if let Some(d) = load {
        opts.load = Some(metadata_from_py(d)?);
    }
    let line = py
        .detach(|| -> allye_core::Result<_> {
            let line = store.append_parts(table_name, &parts, &opts)?;
            if let (Some(_), Some(s)) = (&line, publish_interval_sec) {
                store.publish_stream_if_due(table_name, Duration::from_secs_f64(s.max(0.0)))?;
            }
            Ok(line)
        })
        .or_raise()?;
    match line {
        Some(l) => to_py(py, &l),
        None => Ok(py.None().into_bound(py)),
    }
}

/// The schema of a stream (every chunk is read as it), or None when it has no chunk.
#[pyfunction]
#[pyo3(signature = (table_name, *, secret_dir=None))]
fn stream_schema(py: Python<'_>, table_name: &str, secret_dir: Option<PathBuf>) -> PyResult<Option<PySchema>> {
    let store = store(secret_dir)?;
    let schema = py.detach(|| store.stream_schema(table_name)).or_raise()?;
    Ok(schema.map(PySchema::new))
}

/// The type a stream column of type `column` becomes to also hold values of type
/// `value` (the core's rule), or None when no type holds both.
#[pyfunction]
fn widen_type(column: PyDataType, value: PyDataType) -> Option<PyDataType> {
    allye_core::streams::schema::widen(column.as_ref(), value.as_ref()).map(PyDataType::new)
}

/// Makes the stream from the plain table of the same name (if there is one and the stream
/// has no chunk yet); returns the chunk line written, or None.
#[pyfunction]
#[pyo3(signature = (table_name, *, secret_dir=None))]
fn stream_adopt<'py>(py: Python<'py>, table_name: &str, secret_dir: Option<PathBuf>) -> PyResult<Bound<'py, PyAny>> {
    let store = store(secret_dir)?;
    match py.detach(|| store.adopt_into_stream(table_name)).or_raise()? {
        Some(l) => to_py(py, &l),
        None => Ok(py.None().into_bound(py)),
    }
}

/// Merges runs of small chunks of the stream into larger ones (at most `max_merges`);
/// returns `{"merges", "chunks_replaced", "rows", "busy"}`.
#[pyfunction]
#[pyo3(signature = (table_name, *, secret_dir=None, max_merges=64))]
fn stream_consolidate<'py>(
    py: Python<'py>,
    table_name: &str,
    secret_dir: Option<PathBuf>,
    max_merges: usize,
) -> PyResult<Bound<'py, PyDict>> {
    let store = store(secret_dir)?;
    let r = py.detach(|| store.consolidate_stream(table_name, max_merges)).or_raise()?;
    let d = PyDict::new(py);
    d.set_item("merges", r.merges)?;
    d.set_item("chunks_replaced", r.chunks_replaced)?;
    d.set_item("rows", r.rows)?;
    d.set_item("busy", r.busy)?;
    Ok(d)
}

/// Reads a stream: `(info, Arrow table)` of the selected chunks (rows `[row_start,
/// row_end)`, chunks meeting the time range `[t_start, t_end]`), zero-copy from the
/// mapped chunk files. `info` has `first_row`, `rows`, `chunks`, `total_chunks`, `total_rows`.
#[pyfunction]
#[pyo3(signature = (table_name, *, secret_dir=None, row_start=None, row_end=None, t_start=None, t_end=None))]
#[allow(clippy::too_many_arguments)]
fn stream_read<'py>(
    py: Python<'py>,
    table_name: &str,
    secret_dir: Option<PathBuf>,
    row_start: Option<u64>,
    row_end: Option<u64>,
    t_start: Option<i64>,
    t_end: Option<i64>,
) -> PyResult<(Bound<'py, PyDict>, PyTable)> {
    let store = store(secret_dir)?;
    let rows = match (row_start, row_end) {
        (None, None) => None,
        (a, b) => Some((a.unwrap_or(0), b.unwrap_or(u64::MAX))),
    };
    let time = (t_start.is_some() || t_end.is_some()).then_some((t_start, t_end));
    let sel = ReadSelection::new(rows, time);
    let r = py.detach(|| store.read_stream(table_name, &sel)).or_raise()?;
    let info = PyDict::new(py);
    info.set_item("first_row", r.first_row)?;
    info.set_item("rows", r.rows)?;
    info.set_item("chunks", r.chunks)?;
    info.set_item("total_chunks", r.total_chunks)?;
    info.set_item("total_rows", r.total_rows)?;
    Ok((info, PyTable::try_new(r.batches, r.schema)?))
}

/// True when the table is a stream in this store.
#[pyfunction]
#[pyo3(signature = (table_name, *, secret_dir=None))]
fn stream_exists(table_name: &str, secret_dir: Option<PathBuf>) -> PyResult<bool> {
    Ok(store(secret_dir)?.is_stream(table_name))
}

/// The names of the streams in the store.
#[pyfunction]
#[pyo3(signature = (*, secret_dir=None))]
fn list_streams(secret_dir: Option<PathBuf>) -> PyResult<Vec<String>> {
    Ok(store(secret_dir)?.streams())
}

/// The chunk lines of a stream (empty when it is none).
#[pyfunction]
#[pyo3(signature = (table_name, *, secret_dir=None))]
fn stream_chunks<'py>(py: Python<'py>, table_name: &str, secret_dir: Option<PathBuf>) -> PyResult<Bound<'py, PyList>> {
    let store = store(secret_dir)?;
    let lines = py.detach(|| store.stream_chunks(table_name)).or_raise()?;
    list_to_py(py, &lines)
}

/// Publishes the stream as a v1 `ready` version (all rows so far); with
/// `interval_sec`, only when the last publication is that old (else returns None).
#[pyfunction]
#[pyo3(signature = (table_name, *, secret_dir=None, interval_sec=None))]
fn stream_publish<'py>(
    py: Python<'py>,
    table_name: &str,
    secret_dir: Option<PathBuf>,
    interval_sec: Option<f64>,
) -> PyResult<Bound<'py, PyAny>> {
    let store = store(secret_dir)?;
    let ev = py
        .detach(|| match interval_sec {
            None => store.publish_stream(table_name).map(Some),
            Some(s) => store.publish_stream_if_due(table_name, Duration::from_secs_f64(s.max(0.0))),
        })
        .or_raise()?;
    match ev {
        Some(e) => to_py(py, &e),
        None => Ok(py.None().into_bound(py)),
    }
}

/// Removes a stream (its chunks and log) and its v1 versions; returns the chunks freed.
#[pyfunction]
#[pyo3(signature = (table_name, *, secret_dir=None))]
fn stream_remove(py: Python<'_>, table_name: &str, secret_dir: Option<PathBuf>) -> PyResult<usize> {
    let store = store(secret_dir)?;
    py.detach(|| store.remove_stream(table_name)).or_raise()
}

/// Compacts a stream into one Arrow IPC file (zstd by default; None: uncompressed) per
/// value of `source_column` (one in all when None), verified before the old chunks go.
#[pyfunction]
#[pyo3(signature = (table_name, *, secret_dir=None, source_column=None, compression=Some("zstd")))]
fn stream_compact<'py>(
    py: Python<'py>,
    table_name: &str,
    secret_dir: Option<PathBuf>,
    source_column: Option<String>,
    compression: Option<&str>,
) -> PyResult<Bound<'py, PyDict>> {
    let store = store(secret_dir)?;
    let compression = protocol::Compression::parse(compression.unwrap_or("")).or_raise()?;
    let r = py.detach(|| store.compact_stream(table_name, source_column.as_deref(), compression)).or_raise()?;
    let d = PyDict::new(py);
    d.set_item("chunks_before", r.chunks_before)?;
    d.set_item("rows", r.rows)?;
    let files = PyList::empty(py);
    for file in &r.files {
        let f = PyDict::new(py);
        f.set_item("source", &file.source)?;
        f.set_item("file", &file.path)?;
        f.set_item("rows", file.rows)?;
        f.set_item("bytes", file.bytes)?;
        files.append(f)?;
    }
    d.set_item("files", files)?;
    Ok(d)
}

/// Yields a stream's new chunks as they land (woken by file-system notifications).
#[pyclass(module = "allye_data_connector._core")]
struct StreamFollower {
    inner: Mutex<Follower>,
}

#[pymethods]
impl StreamFollower {
    #[new]
    #[pyo3(signature = (table_name, *, secret_dir=None, from_start=false, force_polling=false, poll_interval_sec=None))]
    fn new(
        table_name: &str,
        secret_dir: Option<PathBuf>,
        from_start: bool,
        force_polling: bool,
        poll_interval_sec: Option<f64>,
    ) -> PyResult<Self> {
        protocol::check_table_name(table_name).or_raise()?;
        let store = store(secret_dir)?;
        let poll = poll_interval_sec.map(|s| Duration::from_secs_f64(s.max(0.001)));
        let f = store.follow(table_name, from_start, force_polling, poll).or_raise()?;
        Ok(StreamFollower { inner: Mutex::new(f) })
    }

    /// Waits (without the GIL) at most `timeout_sec` for new chunks; returns
    /// `[(line, Arrow table)]`, empty on timeout.
    fn next_chunks<'py>(&self, py: Python<'py>, timeout_sec: f64) -> PyResult<Bound<'py, PyList>> {
        let timeout = Duration::from_secs_f64(timeout_sec.max(0.0));
        let got = py.detach(|| self.inner.lock().unwrap_or_else(|p| p.into_inner()).next_chunks(timeout)).or_raise()?;
        let out = PyList::empty(py);
        for (line, d) in got {
            let table = PyTable::try_new(d.batches, d.schema)?;
            out.append((to_py(py, &line)?, table))?;
        }
        Ok(out)
    }
}

/// The lock a load holds on a stream while it appends to it (see `stream_load_lock`).
#[pyclass(module = "allye_data_connector._core")]
struct StreamLoadLock {
    inner: Mutex<Option<allye_core::ManifestLock>>,
}

#[pymethods]
impl StreamLoadLock {
    /// Releases the lock (idempotent).
    fn release(&self) {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).take();
    }
}

/// Takes the lock of a load appending to the stream, if free now; None when another
/// load holds it (never waits).
#[pyfunction]
#[pyo3(signature = (table_name, *, secret_dir=None))]
fn stream_load_lock(table_name: &str, secret_dir: Option<PathBuf>) -> PyResult<Option<StreamLoadLock>> {
    let store = store(secret_dir)?;
    let held = store.stream_load_lock(table_name).or_raise()?;
    Ok(held.map(|l| StreamLoadLock { inner: Mutex::new(Some(l)) }))
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(stream_append, m)?)?;
    m.add_function(wrap_pyfunction!(stream_schema, m)?)?;
    m.add_function(wrap_pyfunction!(widen_type, m)?)?;
    m.add_function(wrap_pyfunction!(stream_adopt, m)?)?;
    m.add_function(wrap_pyfunction!(stream_consolidate, m)?)?;
    m.add_function(wrap_pyfunction!(stream_read, m)?)?;
    m.add_function(wrap_pyfunction!(stream_exists, m)?)?;
    m.add_function(wrap_pyfunction!(list_streams, m)?)?;
    m.add_function(wrap_pyfunction!(stream_chunks, m)?)?;
    m.add_function(wrap_pyfunction!(stream_publish, m)?)?;
    m.add_function(wrap_pyfunction!(stream_remove, m)?)?;
    m.add_function(wrap_pyfunction!(stream_compact, m)?)?;
    m.add_class::<StreamFollower>()?;
    m.add_function(wrap_pyfunction!(stream_load_lock, m)?)?;
    m.add_class::<StreamLoadLock>()?;
    m.add("DEFAULT_PUBLISH_INTERVAL_SEC", tuning::DEFAULT_PUBLISH_INTERVAL_MS as f64 / 1000.0)?;
    m.add("DEFAULT_FLUSH_INTERVAL_SEC", tuning::DEFAULT_FLUSH_INTERVAL_MS as f64 / 1000.0)?;
    m.add("DEFAULT_WRITER_MAX_ROWS", tuning::DEFAULT_WRITER_MAX_ROWS)?;
    m.add("DEFAULT_WRITER_MAX_BYTES", tuning::DEFAULT_WRITER_MAX_BYTES)?;
    m.add("DEFAULT_WRITER_IDLE_SEC", tuning::DEFAULT_WRITER_IDLE_MS as f64 / 1000.0)?;
    m.add("STREAM_TRANSPORT", protocol::STREAM_TRANSPORT)?;
    m.add("METADATA_STREAM", protocol::METADATA_STREAM)?;
    m.add("LOG_SOURCE_COLUMN", protocol::LOG_SOURCE_COLUMN)?;
    m.add("LOG_TIME_COLUMN", protocol::LOG_TIME_COLUMN)?;
    m.add("LOG_PAYLOAD_COLUMN", protocol::LOG_PAYLOAD_COLUMN)?;
    Ok(())
}
