//! Garbage collection (every collector through `Store::gc`) and manifest compaction.

use std::path::PathBuf;

use allye_core::protocol;
use pyo3::prelude::*;
use pyo3::types::PyList;

use crate::args::store;
use crate::errors::OrRaise;
use crate::records::{list_to_py, to_py};

/// Collects every kind of garbage of this store, in `Store::gc`'s order (payloads, deleted
/// stores' segments, shared arrays, streams, named objects); returns the actions taken
/// (or, with `dry_run`, that would be taken).
#[pyfunction]
#[pyo3(signature = (*, secret_dir=None, dry_run=true, keep_versions=protocol::DEFAULT_KEEP_VERSIONS))]
fn gc<'py>(
    py: Python<'py>,
    secret_dir: Option<PathBuf>,
    dry_run: bool,
    keep_versions: usize,
) -> PyResult<Bound<'py, PyList>> {
    let store = store(secret_dir)?;
    let opts = allye_core::GcOptions::new(dry_run, keep_versions);
    let actions = py.detach(|| store.gc(opts)).or_raise()?;
    list_to_py(py, &actions)
}

/// Frees (or, with `dry_run`, reports) the shared-memory segments of this user's deleted
/// stores; touches no store.
#[pyfunction]
#[pyo3(signature = (*, dry_run=true))]
fn collect_orphans<'py>(py: Python<'py>, dry_run: bool) -> PyResult<Bound<'py, PyList>> {
    let actions = py.detach(|| allye_core::Store::collect_orphans(dry_run));
    list_to_py(py, &actions)
}

/// Rewrites the manifest keeping only live lines; returns the report.
#[pyfunction]
#[pyo3(signature = (*, secret_dir=None))]
fn compact<'py>(py: Python<'py>, secret_dir: Option<PathBuf>) -> PyResult<Bound<'py, PyAny>> {
    let store = store(secret_dir)?;
    let report = py.detach(|| store.compact()).or_raise()?;
    to_py(py, &report)
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(gc, m)?)?;
    m.add_function(wrap_pyfunction!(compact, m)?)?;
    m.add_function(wrap_pyfunction!(collect_orphans, m)?)?;
    Ok(())
}
