//! Loading from sources: a stream of batches written into one new version as they arrive.

use std::path::PathBuf;

use allye_core::protocol;
use allye_core::Error;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use pyo3_arrow::PyRecordBatchReader;

use crate::args::{store, SendArgs};
use crate::errors::to_pyerr;
use crate::records::{metadata_from_py, to_py};

/// Writes the batches of `data` (any object with `__arrow_c_stream__`) into one new
/// version of `table_name` as they arrive, without the GIL (a Python-backed stream takes
/// it for each batch), and publishes it at the end. `finish()`, called after the last
/// batch, returns a dict merged into the metadata of the `ready` line only (a source's
/// incremental state, committed with its rows). Any error (from the stream, from
/// `finish`, from the write) removes the partial payload, appends an `error` line and
/// raises: the previous version stays current. An exception `finish` raises is raised as
/// it is, and the first line of its message is the error line's reason (a source's
/// failure reaches here: see `sources/api.py`). Returns the `ready` event.
#[pyfunction]
#[pyo3(signature = (data, table_name, *, secret_dir=None, producer=protocol::DEFAULT_PRODUCER.to_string(),
    ttl_sec=None, compression=None, metadata=None, finish=None, durable=false,
    auto_gc=true, auto_gc_grace_sec=protocol::DEFAULT_AUTO_GC_GRACE_SEC, keep_versions=protocol::DEFAULT_KEEP_VERSIONS))]
#[allow(clippy::too_many_arguments)]
fn send_stream<'py>(
    py: Python<'py>,
    data: PyRecordBatchReader,
    table_name: String,
    secret_dir: Option<PathBuf>,
    producer: String,
    ttl_sec: Option<i64>,
    compression: Option<&str>,
    metadata: Option<&Bound<'py, PyDict>>,
    finish: Option<Py<PyAny>>,
    durable: bool,
    auto_gc: bool,
    auto_gc_grace_sec: u64,
    keep_versions: usize,
) -> PyResult<Bound<'py, PyAny>> {
    let opts = SendArgs {
        table_name: Some(table_name),
        producer,
        ttl_sec,
        compression,
        metadata,
        durable,
        auto_gc,
        auto_gc_grace_sec,
        keep_versions,
        ..SendArgs::default()
    }
    .options()?;
    let store = store(secret_dir)?;
    let reader = data.into_reader()?;
    let schema = reader.schema();
    let batches = reader.map(|b| b.map_err(Error::Arrow));
    // The exception `finish` raised, handed back as it is rather than as a core error.
    let mut raised: Option<PyErr> = None;
    let result = py.detach(|| {
        store.send_stream(&schema, batches, &opts, |map| {
            let Some(finish) = finish else { return Ok(()) };
            Python::attach(|py| {
                let extra = finish
                    .bind(py)
                    .call0()
                    .and_then(|d| d.cast_into::<PyDict>().map_err(PyErr::from))
                    .and_then(|d| metadata_from_py(&d));
                match extra {
                    Ok(extra) => {
                        map.extend(extra);
                        Ok(())
                    }
                    Err(e) => {
                        // The table's error reason: the exception's message, one line (its
                        // type when it has none, as a KeyboardInterrupt).
                        let text = e.value(py).str().map(|s| s.to_string()).unwrap_or_default();
                        let line = text.lines().next().unwrap_or_default().trim().to_string();
                        let msg = if line.is_empty() {
                            e.get_type(py).name().map(|n| n.to_string()).unwrap_or_default()
                        } else {
                            line
                        };
                        raised = Some(e);
                        Err(Error::InvalidArgument(msg))
                    }
                }
            })
        })
    });
    match (result, raised) {
        (Ok(ready), _) => to_py(py, &ready),
        (Err(_), Some(e)) => Err(e),
        (Err(e), None) => Err(to_pyerr(e)),
    }
}

/// A load's scratch folder in the temporary directory (`adc-<purpose>-<16 hex>`,
/// private, naming its owner process), removed by `remove()` or when the handle goes;
/// a process killed meanwhile leaves it to gc (`Store::scratch_dir`).
#[pyclass(module = "allye_data_connector._core")]
struct ScratchDir {
    inner: Option<allye_core::ScratchDir>,
    path: PathBuf,
}

#[pymethods]
impl ScratchDir {
    #[new]
    fn new(purpose: &str) -> PyResult<Self> {
        let inner = allye_core::Store::scratch_dir(purpose).map_err(to_pyerr)?;
        Ok(ScratchDir { path: inner.path().to_path_buf(), inner: Some(inner) })
    }

    /// The folder.
    #[getter]
    fn path(&self) -> String {
        self.path.to_string_lossy().into_owned()
    }

    /// Removes the folder and what it holds (again: nothing).
    fn remove(&mut self) -> PyResult<()> {
        match self.inner.take() {
            Some(dir) => dir.remove().map_err(to_pyerr),
            None => Ok(()),
        }
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<ScratchDir>()?;
    m.add_function(wrap_pyfunction!(send_stream, m)?)?;
    m.add("METADATA_LOAD", protocol::METADATA_LOAD)?;
    Ok(())
}
