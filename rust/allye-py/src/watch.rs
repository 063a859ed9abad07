//! Waiting for the manifest to change and reading what was appended.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::PyList;

use crate::args::store;
use crate::errors::OrRaise;
use crate::records::list_to_py;

/// Wakes up when the store's manifest changes (file-system events, else polling).
#[pyclass(module = "allye_data_connector._core")]
struct ManifestWatcher {
    inner: Mutex<allye_core::ManifestWatcher>,
}

#[pymethods]
impl ManifestWatcher {
    #[new]
    #[pyo3(signature = (*, secret_dir=None, force_polling=false, poll_interval_sec=None))]
    fn new(secret_dir: Option<PathBuf>, force_polling: bool, poll_interval_sec: Option<f64>) -> PyResult<Self> {
        let store = store(secret_dir)?;
        let poll = poll_interval_sec.map(|s| Duration::from_secs_f64(s.max(0.001)));
        Ok(ManifestWatcher { inner: Mutex::new(store.watch(force_polling, poll)) })
    }

    /// `"events"` or `"polling"`.
    #[getter]
    fn mode(&self) -> &'static str {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).mode().as_str()
    }

    /// Marks the manifest's current state as seen.
    fn mark_seen(&self) {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).mark_seen()
    }

    /// Blocks (without the GIL) until the manifest may have changed or `timeout_sec`
    /// passed; returns whether it changed. Keep timeouts short (~0.1 s) to stay
    /// interruptible by Ctrl-C.
    fn wait(&self, py: Python<'_>, timeout_sec: f64) -> bool {
        let timeout = Duration::from_secs_f64(timeout_sec.max(0.0));
        py.detach(|| self.inner.lock().unwrap_or_else(|p| p.into_inner()).wait(timeout))
    }
}

/// Reads the manifest lines appended since the last call.
#[pyclass(module = "allye_data_connector._core")]
struct ManifestTail {
    inner: Mutex<allye_core::ManifestTail>,
}

#[pymethods]
impl ManifestTail {
    #[new]
    #[pyo3(signature = (*, secret_dir=None, from_start=false))]
    fn new(secret_dir: Option<PathBuf>, from_start: bool) -> PyResult<Self> {
        let store = store(secret_dir)?;
        Ok(ManifestTail { inner: Mutex::new(store.tail(from_start)) })
    }

    /// The new complete lines' events, as dicts.
    fn read_new<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let events = py.detach(|| self.inner.lock().unwrap_or_else(|p| p.into_inner()).read_new()).or_raise()?;
        list_to_py(py, &events)
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<ManifestWatcher>()?;
    m.add_class::<ManifestTail>()?;
    Ok(())
}
