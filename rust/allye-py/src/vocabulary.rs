//! The protocol vocabulary as module attributes and checks: the core's defaults (the
//! protocol's and the tuning ones), its accepted spellings and its name rule, so Python
//! never re-declares them.

use allye_core::protocol::{self, Compression, TransportChoice};
use allye_core::tuning;
use pyo3::prelude::*;
use pyo3::types::{PyString, PyTuple};

use crate::errors::{invalid_argument, OrRaise};

/// The canonical compression name for `value`, or None for "no compression" (None, "",
/// "none", "uncompressed", any case, surrounding blanks); anything else raises
/// `InvalidArgumentError`.
#[pyfunction]
fn normalize_compression(value: Option<&Bound<'_, PyAny>>) -> PyResult<Option<&'static str>> {
    let Some(value) = value.filter(|v| !v.is_none()) else {
        return Ok(None);
    };
    let text = value.cast::<PyString>().map_err(|_| {
        invalid_argument(format!(
            "compression must be a str or None, got {}; use None (or 'none'), 'zstd' or 'lz4'",
            type_name(value)
        ))
    })?;
    Ok(Compression::parse(&text.to_cow()?).or_raise()?.name())
}

/// Returns `name` when it is a valid table name, else raises `InvalidArgumentError`.
#[pyfunction]
fn check_table_name<'py>(name: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyString>> {
    let text = name
        .cast::<PyString>()
        .map_err(|_| invalid_argument(format!("table_name must be a str, got {}", type_name(name))))?;
    protocol::check_table_name(&text.to_cow()?).or_raise()?;
    Ok(text.clone())
}

/// Returns `name` when it is a valid name for a table served over the network (the
/// send's rule, and no path-like name), else raises `InvalidArgumentError`.
#[pyfunction]
fn check_remote_table_name<'py>(name: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyString>> {
    let text = name
        .cast::<PyString>()
        .map_err(|_| invalid_argument(format!("a table name must be a str, got {}", type_name(name))))?;
    protocol::check_remote_table_name(&text.to_cow()?).or_raise()?;
    Ok(text.clone())
}

/// Returns `value` when it is one of `TRANSPORTS`, else raises `InvalidArgumentError`.
#[pyfunction]
fn check_transport<'py>(value: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyString>> {
    let bad = || {
        invalid_argument(format!(
            "unknown transport {}: use 'auto', 'shm' or 'file'",
            value.repr().map(|r| r.to_string()).unwrap_or_default()
        ))
    };
    let text = value.cast::<PyString>().map_err(|_| bad())?;
    if !protocol::TRANSPORT_CHOICES.contains(&&*text.to_cow()?) {
        return Err(bad());
    }
    // The choices and the parser agree (both are the core's).
    TransportChoice::parse(&text.to_cow()?).or_raise()?;
    Ok(text.clone())
}

fn type_name(v: &Bound<'_, PyAny>) -> String {
    v.get_type().qualname().map(|n| n.to_string()).unwrap_or_else(|_| "?".into())
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("DEFAULT_MAX_SHM_BYTES", protocol::DEFAULT_MAX_SHM_BYTES)?;
    m.add("DEFAULT_COMPRESSED_CHUNK_ROWS", protocol::DEFAULT_COMPRESSED_CHUNK_ROWS)?;
    m.add("DEFAULT_KEEP_VERSIONS", protocol::DEFAULT_KEEP_VERSIONS)?;
    m.add("DEFAULT_AUTO_GC_GRACE_SEC", protocol::DEFAULT_AUTO_GC_GRACE_SEC)?;
    m.add("DEFAULT_POLL_SEC", tuning::DEFAULT_WATCH_POLL_MS as f64 / 1000.0)?;
    m.add("DEFAULT_PRODUCER", protocol::DEFAULT_PRODUCER)?;
    m.add("TRANSPORTS", PyTuple::new(py, protocol::TRANSPORT_CHOICES)?)?;
    m.add("COMPRESSIONS", PyTuple::new(py, protocol::COMPRESSIONS)?)?;
    m.add("GC_SCOPES", PyTuple::new(py, protocol::GC_SCOPES)?)?;
    m.add("METADATA_KEY", protocol::METADATA_KEY)?;
    m.add("DEFAULT_LOAD_BATCH_ROWS", tuning::DEFAULT_LOAD_BATCH_ROWS)?;
    m.add("DEFAULT_SQL_CONNECT_TIMEOUT_SEC", tuning::DEFAULT_SQL_CONNECT_TIMEOUT_SEC)?;
    m.add("DEFAULT_REMOTE_PORT", tuning::DEFAULT_REMOTE_PORT)?;
    m.add("DEFAULT_MAX_MESSAGE_BYTES", tuning::DEFAULT_MAX_MESSAGE_BYTES)?;
    m.add("DEFAULT_CHECK_TTL_SEC", tuning::DEFAULT_CHECK_TTL_SEC)?;
    m.add("DEFAULT_REMOTE_TIMEOUT_SEC", tuning::DEFAULT_REMOTE_TIMEOUT_SEC)?;
    m.add("MAX_REMOTE_REQUEST_BYTES", tuning::MAX_REMOTE_REQUEST_BYTES)?;
    m.add("DEFAULT_KEEPALIVE_MS", tuning::DEFAULT_KEEPALIVE_MS)?;
    m.add("DEFAULT_MAX_FULL_PULL_BYTES", tuning::DEFAULT_MAX_FULL_PULL_BYTES)?;
    m.add_function(wrap_pyfunction!(normalize_compression, m)?)?;
    m.add_function(wrap_pyfunction!(check_table_name, m)?)?;
    m.add_function(wrap_pyfunction!(check_remote_table_name, m)?)?;
    m.add_function(wrap_pyfunction!(check_transport, m)?)?;
    Ok(())
}
