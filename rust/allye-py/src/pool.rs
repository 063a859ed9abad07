//! This process's pool of pre-mapped shared-memory segments (`allye_core::pool`): its
//! statistics, giving it back, and its default bound.

use pyo3::prelude::*;

use crate::records::to_py;

/// What this process's pool holds and has done (bytes and counts; see `allye_core::pool::PoolStats`).
#[pyfunction]
fn pool_stats(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    to_py(py, &allye_core::pool::stats())
}

/// Gives back, now, every segment this process's pool holds.
#[pyfunction]
fn pool_release(py: Python<'_>) {
    py.detach(allye_core::pool::release)
}

/// `(bytes, segments)` of this user's pool segments in `/dev/shm`, every process's.
#[pyfunction]
fn pool_held(py: Python<'_>) -> (u64, usize) {
    py.detach(allye_core::pool::machine_held)
}

/// The pool's default bound in bytes: 1/8 of `/dev/shm` (0 where there is none).
#[pyfunction]
fn default_pool_max_bytes() -> u64 {
    allye_core::pool::default_max_bytes()
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(pool_stats, m)?)?;
    m.add_function(wrap_pyfunction!(pool_release, m)?)?;
    m.add_function(wrap_pyfunction!(default_pool_max_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(pool_held, m)?)?;
    Ok(())
}
