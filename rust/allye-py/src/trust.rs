//! The store's trust rule for what Python keeps in a store (the settings file, the
//! Flight server's token under `remote/`, the canvas' API file): created, read and written
//! through the core's checked handles, never by path from Python.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::args::store;
use crate::errors::OrRaise;

/// Creates the store (and the directory `name` inside it) private to this user if
/// missing, checks both against the trust rule (`StoreNotPrivateError`), and returns the
/// directory's path.
#[pyfunction]
#[pyo3(signature = (name=None, *, secret_dir=None))]
fn ensure_store_dir(py: Python<'_>, name: Option<&str>, secret_dir: Option<PathBuf>) -> PyResult<OsString> {
    let store = store(secret_dir)?;
    let dir = py.detach(|| store.dir_at(Path::new(name.unwrap_or("")), true)).or_raise()?;
    Ok(dir.expect("created").path().as_os_str().to_owned())
}

/// The bytes of the file `name` (a path relative to the store) read under the trust
/// rule; `None` when it (or the store) does not exist.
#[pyfunction]
#[pyo3(signature = (name, *, secret_dir=None))]
fn read_store_file<'py>(
    py: Python<'py>,
    name: &str,
    secret_dir: Option<PathBuf>,
) -> PyResult<Option<Bound<'py, PyBytes>>> {
    let store = store(secret_dir)?;
    let data = py.detach(|| store.read_file(Path::new(name))).or_raise()?;
    Ok(data.map(|d| PyBytes::new(py, &d)))
}

/// Writes `data` to the file `name` (relative to the store) atomically, 0600, its
/// directories made private if missing. With `exclusive`, an existing file is kept and
/// False returned.
#[pyfunction]
#[pyo3(signature = (name, data, *, secret_dir=None, exclusive=false))]
fn write_store_file(
    py: Python<'_>,
    name: &str,
    data: &[u8],
    secret_dir: Option<PathBuf>,
    exclusive: bool,
) -> PyResult<bool> {
    let store = store(secret_dir)?;
    py.detach(|| store.write_file(Path::new(name), data, exclusive)).or_raise()
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(ensure_store_dir, m)?)?;
    m.add_function(wrap_pyfunction!(read_store_file, m)?)?;
    m.add_function(wrap_pyfunction!(write_store_file, m)?)?;
    m.add("SETTINGS_FILE", allye_core::protocol::SETTINGS_FILE)?;
    m.add("REMOTE_DIR", allye_core::protocol::REMOTE_DIR)?;
    Ok(())
}
