//! `allye_data_connector._core`: thin PyO3 bindings of `allye-core`.
//!
//! Only type conversion lives here: Arrow data arrives and leaves through the Arrow
//! PyCapsule interface (`__arrow_c_stream__`, via pyo3-arrow), events leave as JSON
//! text (one manifest line each), and each core error becomes the matching class of
//! `allye_data_connector.errors`. The GIL is released for all I/O.

mod arrays;

use std::path::PathBuf;

use allye_core::{connector, Compression, Error, SendOptions, Store, TransportChoice};
use arrow_array::RecordBatch;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;
use pyo3_arrow::{PyRecordBatchReader, PyTable};

/// The Python exception class (in `allye_data_connector.errors`) for a core error.
fn error_class(e: &Error) -> &'static str {
    match e {
        Error::TableNotFound { .. } => "TableNotFoundError",
        Error::Expired { .. } => "TableExpiredError",
        Error::PayloadMissing { .. } => "PayloadMissingError",
        Error::PayloadCorrupt { .. } => "PayloadCorruptError",
        Error::UnknownTransport { .. } => "UnknownTransportError",
        Error::InvalidArgument(_) | Error::Json(_) => "InvalidArgumentError",
        Error::StoreUnusable { .. } => "StoreUnusableError",
        e @ Error::Io { .. } if e.is_no_space() => "StorageFullError",
        Error::Io { .. } => "StoreIOError",
        Error::Arrow(_) => "ArrowDataError",
        Error::ArrayExists { .. } => "ArrayExistsError",
        Error::ArrayNotFound { .. } => "ArrayNotFoundError",
        Error::ArrayLayout { .. } => "ArrayLayoutError",
        Error::ArrayClosed { .. } => "ArrayClosedError",
    }
}

fn to_pyerr(e: Error) -> PyErr {
    Python::attach(|py| {
        static ERRORS: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
        let class = ERRORS
            .get_or_try_init(py, || py.import("allye_data_connector.errors").map(Bound::unbind))
            .and_then(|m| m.bind(py).getattr(error_class(&e)))
            .and_then(|c| c.cast_into::<PyType>().map_err(PyErr::from));
        match class {
            Ok(cls) => PyErr::from_type(cls, e.to_string()),
            Err(_) => PyRuntimeError::new_err(e.to_string()),
        }
    })
}

trait IntoPy<T> {
    fn py(self) -> PyResult<T>;
}
impl<T> IntoPy<T> for allye_core::Result<T> {
    fn py(self) -> PyResult<T> {
        self.map_err(to_pyerr)
    }
}

fn store(secret_dir: Option<PathBuf>) -> PyResult<Store> {
    Store::resolve(secret_dir.as_deref()).py()
}

fn json<T: serde::Serialize>(v: &T) -> PyResult<String> {
    serde_json::to_string(v).map_err(|e| PyRuntimeError::new_err(e.to_string()))
}

/// The store directory that `secret_dir` resolves to, as a `str` (every send resolves
/// it; building a `pathlib.Path` costs more than the resolution).
#[pyfunction]
#[pyo3(signature = (secret_dir=None))]
fn resolve_store(secret_dir: Option<PathBuf>) -> PyResult<std::ffi::OsString> {
    Ok(store(secret_dir)?.root().as_os_str().to_owned())
}

/// Sends Arrow data (any object with `__arrow_c_stream__`); returns the `ready` line.
#[pyfunction]
#[pyo3(signature = (data, *, secret_dir=None, table_name=None, producer="python".to_string(),
    transport="auto", max_shm_bytes=connector::DEFAULT_MAX_SHM_BYTES,
    chunk_rows=None, ttl_sec=None, compression=None,
    metadata_json=None, shape=None, schema_sha256=None, durable=false))]
#[allow(clippy::too_many_arguments)]
fn send(
    py: Python<'_>,
    data: PyRecordBatchReader,
    secret_dir: Option<PathBuf>,
    table_name: Option<String>,
    producer: String,
    transport: &str,
    max_shm_bytes: u64,
    chunk_rows: Option<usize>,
    ttl_sec: Option<i64>,
    compression: Option<&str>,
    metadata_json: Option<&str>,
    shape: Option<(u64, u64)>,
    schema_sha256: Option<String>,
    durable: bool,
) -> PyResult<String> {
    let metadata = match metadata_json {
        None => Default::default(),
        Some(text) => serde_json::from_str(text)
            .map_err(|e| to_pyerr(Error::InvalidArgument(format!("metadata is not a JSON object: {e}"))))?,
    };
    let opts = SendOptions {
        table_name,
        producer,
        transport: TransportChoice::parse(transport).py()?,
        max_shm_bytes,
        chunk_rows,
        ttl_sec,
        compression: Compression::parse(compression.unwrap_or("")).py()?,
        metadata,
        shape: shape.map(|(r, c)| [r, c]),
        schema_sha256,
        durable,
    };
    let store = store(secret_dir)?;
    // Pull the batches while holding the GIL (zero-copy imports), then write without it.
    let reader = data.into_reader()?;
    let schema = reader.schema();
    let batches: Vec<RecordBatch> = reader
        .collect::<Result<_, _>>()
        .map_err(|e| to_pyerr(Error::Arrow(e)))?;
    let ready = py.detach(|| connector::send(&store, &schema, &batches, &opts)).py()?;
    ready.to_line().py()
}

/// The current `ready` line of a table (raises if none, or expired).
#[pyfunction]
#[pyo3(signature = (table_name, *, secret_dir=None, producer=None))]
fn latest(py: Python<'_>, table_name: &str, secret_dir: Option<PathBuf>, producer: Option<&str>) -> PyResult<String> {
    let store = store(secret_dir)?;
    let ev = py.detach(|| connector::latest(&store, table_name, producer)).py()?;
    ev.to_line().py()
}

/// The current `ready` line of every table, as a JSON array, sorted by name.
#[pyfunction]
#[pyo3(signature = (*, secret_dir=None, producer=None))]
fn list_tables(py: Python<'_>, secret_dir: Option<PathBuf>, producer: Option<&str>) -> PyResult<String> {
    let store = store(secret_dir)?;
    let events = py.detach(|| connector::list(&store, producer)).py()?;
    json(&events)
}

/// Collects this store's garbage (see `allye_core::gc`); returns the actions as a JSON array.
#[pyfunction]
#[pyo3(signature = (*, secret_dir=None, dry_run=true, keep_versions=1))]
fn gc(py: Python<'_>, secret_dir: Option<PathBuf>, dry_run: bool, keep_versions: usize) -> PyResult<String> {
    let store = store(secret_dir)?;
    let opts = allye_core::GcOptions { dry_run, keep_versions };
    let actions = py.detach(|| allye_core::gc::collect(&store, opts)).py()?;
    json(&actions)
}

/// Rewrites the manifest keeping only live lines; returns the report as JSON.
#[pyfunction]
#[pyo3(signature = (*, secret_dir=None))]
fn compact(py: Python<'_>, secret_dir: Option<PathBuf>) -> PyResult<String> {
    let store = store(secret_dir)?;
    let report = py.detach(|| allye_core::gc::compact(&store)).py()?;
    json(&report)
}

// ---- Issue 4: table states, removal, watching -------------------------------------

/// Every table with its latest state, as a JSON array (see `allye_core::tables`).
#[pyfunction]
#[pyo3(signature = (*, secret_dir=None, producer=None))]
fn table_states(py: Python<'_>, secret_dir: Option<PathBuf>, producer: Option<&str>) -> PyResult<String> {
    let store = store(secret_dir)?;
    let states = py.detach(|| allye_core::tables::states(&store, producer)).py()?;
    json(&states)
}

/// The state of one table as JSON (raises TableNotFoundError when never mentioned).
#[pyfunction]
#[pyo3(signature = (table_name, *, secret_dir=None, producer=None))]
fn table_state(py: Python<'_>, table_name: &str, secret_dir: Option<PathBuf>, producer: Option<&str>) -> PyResult<String> {
    let store = store(secret_dir)?;
    let st = py.detach(|| allye_core::tables::state(&store, table_name, producer)).py()?;
    json(&st)
}

/// The current version of a table: `(ready line, Arrow table)`, the table's buffers
/// pointing into the mapped segment or file. A removed table is TableNotFoundError;
/// `record_read=False` for a look that is not a load (it does not count for
/// `shm_unlink_on_read`).
#[pyfunction]
#[pyo3(signature = (table_name, *, secret_dir=None, producer=None, record_read=true))]
fn get_live(
    py: Python<'_>,
    table_name: &str,
    secret_dir: Option<PathBuf>,
    producer: Option<&str>,
    record_read: bool,
) -> PyResult<(String, PyTable)> {
    let store = store(secret_dir)?;
    let (ev, data) = py
        .detach(|| allye_core::tables::get_live(&store, table_name, producer, record_read))
        .py()?;
    Ok((ev.to_line().py()?, PyTable::try_new(data.batches, data.schema)?))
}

/// Removes a table (removal line, then its payloads in this store); returns a JSON report.
#[pyfunction]
#[pyo3(signature = (table_name, *, secret_dir=None))]
fn remove_table(py: Python<'_>, table_name: &str, secret_dir: Option<PathBuf>) -> PyResult<String> {
    let store = store(secret_dir)?;
    let r = py.detach(|| allye_core::tables::remove(&store, table_name)).py()?;
    json(&r)
}

/// Wakes up when the store's manifest changes (file-system events, else polling).
#[pyclass(module = "allye_data_connector._core")]
struct ManifestWatcher {
    inner: std::sync::Mutex<allye_core::watch::ManifestWatcher>,
}

#[pymethods]
impl ManifestWatcher {
    #[new]
    #[pyo3(signature = (*, secret_dir=None, force_polling=false, poll_interval_sec=None))]
    fn new(secret_dir: Option<PathBuf>, force_polling: bool, poll_interval_sec: Option<f64>) -> PyResult<Self> {
        let store = store(secret_dir)?;
        let poll = poll_interval_sec.map(|s| std::time::Duration::from_secs_f64(s.max(0.001)));
        Ok(ManifestWatcher {
            inner: std::sync::Mutex::new(allye_core::watch::ManifestWatcher::new(&store, force_polling, poll)),
        })
    }

    /// `"events"` or `"polling"`.
    #[getter]
    fn mode(&self) -> String {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).mode().as_str().into()
    }

    /// Marks the manifest's current state as seen.
    fn mark_seen(&self) {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).mark_seen()
    }

    /// Blocks (without the GIL) until the manifest may have changed or `timeout_sec`
    /// passed; returns whether it changed. Keep timeouts short (~0.1 s) to stay
    /// interruptible by Ctrl-C.
    fn wait(&self, py: Python<'_>, timeout_sec: f64) -> bool {
        let timeout = std::time::Duration::from_secs_f64(timeout_sec.max(0.0));
        py.detach(|| self.inner.lock().unwrap_or_else(|p| p.into_inner()).wait(timeout))
    }
}

/// Reads the manifest lines appended since the last call.
#[pyclass(module = "allye_data_connector._core")]
struct ManifestTail {
    inner: std::sync::Mutex<allye_core::watch::ManifestTail>,
}

#[pymethods]
impl ManifestTail {
    #[new]
    #[pyo3(signature = (*, secret_dir=None, from_start=false))]
    fn new(secret_dir: Option<PathBuf>, from_start: bool) -> PyResult<Self> {
        let store = store(secret_dir)?;
        Ok(ManifestTail {
            inner: std::sync::Mutex::new(allye_core::watch::ManifestTail::new(&store, from_start)),
        })
    }

    /// The new complete lines as a JSON array of events.
    fn read_new(&self, py: Python<'_>) -> PyResult<String> {
        let events = py.detach(|| self.inner.lock().unwrap_or_else(|p| p.into_inner()).read_new()).py()?;
        json(&events)
    }
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(resolve_store, m)?)?;
    m.add_function(wrap_pyfunction!(send, m)?)?;
    m.add_function(wrap_pyfunction!(latest, m)?)?;
    m.add_function(wrap_pyfunction!(list_tables, m)?)?;
    m.add_function(wrap_pyfunction!(gc, m)?)?;
    m.add_function(wrap_pyfunction!(compact, m)?)?;
    m.add_function(wrap_pyfunction!(table_states, m)?)?;
    m.add_function(wrap_pyfunction!(table_state, m)?)?;
    m.add_function(wrap_pyfunction!(get_live, m)?)?;
    m.add_function(wrap_pyfunction!(remove_table, m)?)?;
    m.add_class::<ManifestWatcher>()?;
    m.add_class::<ManifestTail>()?;
    arrays::register(m)?;
    Ok(())
}
