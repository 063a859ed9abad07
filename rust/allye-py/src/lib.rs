//! `allye_data_connector._core`: thin PyO3 bindings of `allye-core`.
//!
//! Only type conversion lives here: Arrow data arrives and leaves through the Arrow
//! PyCapsule interface (`__arrow_c_stream__`, via pyo3-arrow), events and reports leave
//! as dicts and lists built here, and each core error becomes its exception class (made
//! here too, see [`errors`]). Every call that touches a store is a method of the core's
//! `Store`; arguments are converted in one place ([`args`]). The GIL is
//! released for all I/O. One file per area; `docs/ARCHITECTURE.md` lists them.

mod args;
mod arrays;
mod errors;
mod maintenance;
mod objects;
mod pool;
mod receive;
mod records;
mod sources;
mod streams;
mod tables;
mod trust;
mod vocabulary;
mod watch;

use pyo3::prelude::*;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    errors::register(m)?;
    vocabulary::register(m)?;
    tables::register(m)?;
    maintenance::register(m)?;
    watch::register(m)?;
    arrays::register(m)?;
    streams::register(m)?;
    objects::register(m)?;
    sources::register(m)?;
    receive::register(m)?;
    trust::register(m)?;
    pool::register(m)?;
    Ok(())
}
