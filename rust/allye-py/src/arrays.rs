//! Shared arrays (`allye_core::arrays`): a handle class whose `__array_interface__` lets
//! NumPy view the segment in place (no copy; the view keeps the handle, hence the
//! mapping, alive), the cross-process lock (GIL released while waiting), and list/collect.
//!
//! `__array_interface__` rather than the buffer protocol: the extension is built for the
//! stable ABI of Python 3.9, whose limited API has no `Py_buffer` (it arrived in 3.11).

use pyo3::prelude::*;

#[cfg(target_os = "linux")]
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<imp::SharedArrayHandle>()?;
    m.add_function(wrap_pyfunction!(imp::list_arrays, m)?)?;
    m.add_function(wrap_pyfunction!(imp::collect_arrays, m)?)?;
    Ok(())
}

/// Shared arrays need robust process-shared mutexes: Linux only (see `allye_core::arrays`).
#[cfg(not(target_os = "linux"))]
pub fn register(_m: &Bound<'_, PyModule>) -> PyResult<()> {
    Ok(())
}

#[cfg(target_os = "linux")]
mod imp {
    use std::path::PathBuf;

    use allye_core::arrays::{self, Acquired, Init, SharedArray};
    use allye_core::Error;
    use pyo3::prelude::*;
    use pyo3::types::{PyDict, PyList, PyTuple};

    use crate::{store, IntoPy};

    /// One open shared array. `close()` unregisters this process; the mapping lives as
    /// long as this object (NumPy views hold it).
    #[pyclass(frozen, module = "allye_data_connector._core")]
    pub struct SharedArrayHandle {
        inner: SharedArray,
        kind: Kind,
        len: usize,
    }

    /// Element kinds with a direct Python conversion (the one-element fast path).
    #[derive(Clone, Copy)]
    enum Kind {
        B1,
        I1,
        I2,
        I4,
        I8,
        U1,
        U2,
        U4,
        U8,
        F4,
        F8,
        /// float16 and complex: NumPy converts them.
        Other,
    }

    impl Kind {
        fn of(typestr: &str) -> Kind {
            match typestr {
                "|b1" => Kind::B1,
                "|i1" => Kind::I1,
                "<i2" => Kind::I2,
                "<i4" => Kind::I4,
                "<i8" => Kind::I8,
                "|u1" => Kind::U1,
                "<u2" => Kind::U2,
                "<u4" => Kind::U4,
                "<u8" => Kind::U8,
                "<f4" => Kind::F4,
                "<f8" => Kind::F8,
                _ => Kind::Other,
            }
        }
    }

    impl SharedArrayHandle {
        fn new(inner: SharedArray) -> Self {
            let kind = Kind::of(inner.typestr());
            let len = inner.shape().iter().product();
            SharedArrayHandle { inner, kind, len }
        }

        /// Flat element index of a possibly negative `index`, or IndexError.
        fn element(&self, index: isize) -> PyResult<usize> {
            let n = self.len as isize;
            let i = if index < 0 { index + n } else { index };
            if i < 0 || i >= n {
                return Err(pyo3::exceptions::PyIndexError::new_err(format!(
                    "index {index} is out of bounds for shared array {:?} of {n} elements",
                    self.inner.name()
                )));
            }
            Ok(i as usize)
        }

        /// Runs `f` under the lock (taken without the GIL when contended); `Ok(died)`.
        fn with_lock<T>(&self, py: Python<'_>, lock: bool, f: impl FnOnce() -> T) -> PyResult<(T, bool)> {
            if !lock {
                return Ok((f(), false));
            }
            let a = &self.inner;
            let got = match a.try_lock().py()? {
                Some(got) => got,
                None => py.detach(|| a.lock()).py()?,
            };
            let out = f();
            a.unlock().py()?;
            Ok((out, got == Acquired::OwnerDied))
        }


        fn open_inner(&self) -> PyResult<&SharedArray> {
            if self.inner.is_open() {
                Ok(&self.inner)
            } else {
                Err(crate::to_pyerr(Error::ArrayClosed { name: self.inner.name().into() }))
            }
        }
    }

    #[pymethods]
    impl SharedArrayHandle {
        /// Creates array `name` (see `allye_core::arrays::SharedArray::create`); returns
        /// `(handle, reclaimed)`. `fill` is one element's bytes, `data` the whole data's.
        #[staticmethod]
        #[pyo3(signature = (name, shape, typestr, *, secret_dir=None, exist_ok=false, fill=None, data=None))]
        #[allow(clippy::too_many_arguments)]
        fn create(
            py: Python<'_>,
            name: &str,
            shape: Vec<usize>,
            typestr: &str,
            secret_dir: Option<PathBuf>,
            exist_ok: bool,
            fill: Option<&[u8]>,
            data: Option<&[u8]>,
        ) -> PyResult<(Self, bool)> {
            let store = store(secret_dir)?;
            let init = match (fill, data) {
                (Some(_), Some(_)) => {
                    return Err(crate::to_pyerr(Error::InvalidArgument("pass fill or data, not both".into())))
                }
                (Some(f), None) => Init::Fill(f),
                (None, Some(d)) => Init::Data(d),
                (None, None) => Init::Keep,
            };
            let (inner, reclaimed) = py
                .detach(|| SharedArray::create(&store, name, typestr, &shape, exist_ok, init))
                .py()?;
            Ok((SharedArrayHandle::new(inner), reclaimed))
        }

        /// Opens array `name`; ArrayNotFoundError when it does not exist.
        #[staticmethod]
        #[pyo3(signature = (name, *, secret_dir=None))]
        fn open(py: Python<'_>, name: &str, secret_dir: Option<PathBuf>) -> PyResult<Self> {
            let store = store(secret_dir)?;
            let inner = py.detach(|| SharedArray::open(&store, name)).py()?;
            Ok(SharedArrayHandle::new(inner))
        }

        #[getter]
        fn name(&self) -> &str {
            self.inner.name()
        }
        #[getter]
        fn segment(&self) -> &str {
            self.inner.segment()
        }
        /// The store directory, as a str.
        #[getter]
        fn store(&self) -> std::ffi::OsString {
            self.inner.store().root().as_os_str().to_owned()
        }
        #[getter]
        fn shape<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
            PyTuple::new(py, self.inner.shape())
        }
        #[getter]
        fn typestr(&self) -> &str {
            self.inner.typestr()
        }
        #[getter]
        fn nbytes(&self) -> usize {
            self.inner.data_len()
        }
        #[getter]
        fn closed(&self) -> bool {
            !self.inner.is_open()
        }
        #[getter]
        fn destroyed(&self) -> bool {
            self.inner.is_destroyed()
        }
        #[getter]
        fn lock_recoveries(&self) -> u64 {
            self.inner.lock_recoveries()
        }

        /// NumPy's array interface (version 3) over the segment's data: `np.asarray(handle)`
        /// is a writable view that keeps this handle alive.
        #[getter]
        fn __array_interface__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
            let a = self.open_inner()?;
            let d = PyDict::new(py);
            d.set_item("version", 3)?;
            d.set_item("shape", PyTuple::new(py, a.shape())?)?;
            d.set_item("typestr", a.typestr())?;
            d.set_item("data", (a.data_ptr() as usize, false))?;
            d.set_item("strides", py.None())?;
            Ok(d)
        }

        /// Takes the cross-process lock (waiting without the GIL); returns True when the
        /// previous holder died holding it (the data may be half-written).
        fn lock(&self, py: Python<'_>) -> PyResult<bool> {
            let a = self.open_inner()?;
            let got = match a.try_lock().py()? {
                Some(got) => got,
                None => py.detach(|| a.lock()).py()?,
            };
            Ok(got == Acquired::OwnerDied)
        }

        /// Waits for the lock at most `timeout_sec`; None when it ran out, else as `lock()`.
        fn lock_timeout(&self, py: Python<'_>, timeout_sec: f64) -> PyResult<Option<bool>> {
            let a = self.open_inner()?;
            let timeout = std::time::Duration::from_secs_f64(timeout_sec.max(0.0));
            let got = py.detach(|| a.lock_timeout(timeout)).py()?;
            Ok(got.map(|g| g == Acquired::OwnerDied))
        }

        /// Element `index` (flat, negative counts from the end) of a 1-D view as a Python
        /// int, float or bool, read under the lock unless `lock=False`: `(value, holder_died)`.
        /// `None` for dtypes NumPy must convert (float16, complex).
        #[pyo3(signature = (index, lock=true))]
        fn read_item<'py>(&self, py: Python<'py>, index: isize, lock: bool) -> PyResult<(Option<Bound<'py, PyAny>>, bool)> {
            let a = self.open_inner()?;
            let i = self.element(index)?;
            let p = a.data_ptr();
            macro_rules! rd {
                ($t:ty) => {{
                    // SAFETY: i < len elements of this dtype inside the mapping; another
                    // process may write concurrently, hence the volatile read.
                    let (v, died) = self.with_lock(py, lock, || unsafe { (p as *const $t).add(i).read_volatile() })?;
                    (Some(v.into_pyobject(py)?.to_owned().into_any()), died)
                }};
            }
            Ok(match self.kind {
                Kind::B1 => {
                    let (v, died) = self.with_lock(py, lock, || unsafe { p.add(i).read_volatile() != 0 })?;
                    (Some(pyo3::types::PyBool::new(py, v).to_owned().into_any()), died)
                }
                Kind::I1 => rd!(i8),
                Kind::I2 => rd!(i16),
                Kind::I4 => rd!(i32),
                Kind::I8 => rd!(i64),
                Kind::U1 => rd!(u8),
                Kind::U2 => rd!(u16),
                Kind::U4 => rd!(u32),
                Kind::U8 => rd!(u64),
                Kind::F4 => rd!(f32),
                Kind::F8 => rd!(f64),
                Kind::Other => (None, false),
            })
        }

        /// Sets element `index` (as `read_item`) to `value` under the lock unless
        /// `lock=False`: `(done, holder_died)`. Not done (nothing written) when the value
        /// needs NumPy's conversion rules (a float into an int array, out of range, ...).
        #[pyo3(signature = (index, value, lock=true))]
        fn write_item(&self, py: Python<'_>, index: isize, value: &Bound<'_, PyAny>, lock: bool) -> PyResult<(bool, bool)> {
            let a = self.open_inner()?;
            let i = self.element(index)?;
            let p = a.data_ptr();
            macro_rules! wr {
                ($t:ty) => {{
                    let Ok(v) = value.extract::<$t>() else { return Ok((false, false)) };
                    // SAFETY: as read_item.
                    let ((), died) = self.with_lock(py, lock, || unsafe { (p as *mut $t).add(i).write_volatile(v) })?;
                    (true, died)
                }};
            }
            Ok(match self.kind {
                Kind::B1 => {
                    let Ok(v) = value.extract::<bool>() else { return Ok((false, false)) };
                    let ((), died) = self.with_lock(py, lock, || unsafe { p.add(i).write_volatile(v as u8) })?;
                    (true, died)
                }
                Kind::I1 => wr!(i8),
                Kind::I2 => wr!(i16),
                Kind::I4 => wr!(i32),
                Kind::I8 => wr!(i64),
                Kind::U1 => wr!(u8),
                Kind::U2 => wr!(u16),
                Kind::U4 => wr!(u32),
                Kind::U8 => wr!(u64),
                Kind::F4 => wr!(f32),
                Kind::F8 => wr!(f64),
                Kind::Other => (false, false),
            })
        }

        /// Releases the lock this thread holds.
        fn unlock(&self) -> PyResult<()> {
            self.inner.unlock().py()
        }

        /// Unregisters this process as an opener (idempotent).
        fn close(&self) {
            self.inner.close()
        }

        /// Destroys the array for every process (see `SharedArray::destroy`); closes this handle.
        fn destroy(&self, py: Python<'_>) -> PyResult<()> {
            if self.inner.is_destroyed() {
                self.inner.close();
                return Ok(());
            }
            py.detach(|| self.inner.destroy()).py()
        }

        fn __repr__(&self) -> String {
            format!(
                "<SharedArrayHandle {:?} {} {:?}{}>",
                self.inner.name(),
                self.inner.typestr(),
                self.inner.shape(),
                if self.inner.is_open() { "" } else { " closed" }
            )
        }
    }

    fn info_dict<'py>(py: Python<'py>, i: &arrays::ArrayInfo) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("name", &i.name)?;
        d.set_item("segment", &i.segment)?;
        d.set_item("state", &i.state)?;
        d.set_item("dtype", &i.dtype)?;
        d.set_item("shape", PyTuple::new(py, &i.shape)?)?;
        d.set_item("nbytes", i.nbytes)?;
        d.set_item("creator_pid", i.creator.as_ref().map(|c| c.pid))?;
        d.set_item("creator_alive", i.creator.as_ref().and_then(|c| c.alive))?;
        d.set_item("openers", PyList::new(py, &i.openers)?)?;
        d.set_item("lock_recoveries", i.lock_recoveries)?;
        Ok(d)
    }

    /// Every shared array of the store: list of dicts (name, segment, state, dtype, shape,
    /// nbytes, creator_pid, creator_alive, openers, lock_recoveries).
    #[pyfunction]
    #[pyo3(signature = (*, secret_dir=None))]
    pub fn list_arrays<'py>(py: Python<'py>, secret_dir: Option<PathBuf>) -> PyResult<Bound<'py, PyList>> {
        let store = store(secret_dir)?;
        let infos = py.detach(|| arrays::list(&store)).py()?;
        let items = infos.iter().map(|i| info_dict(py, i)).collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, items)
    }

    /// Frees abandoned shared arrays (see `allye_core::arrays::collect`); returns gc
    /// actions as dicts (action, transport="shared_array", locator, table_name, reason, id).
    #[pyfunction]
    #[pyo3(signature = (*, secret_dir=None, dry_run=true))]
    pub fn collect_arrays<'py>(py: Python<'py>, secret_dir: Option<PathBuf>, dry_run: bool) -> PyResult<Bound<'py, PyList>> {
        let store = store(secret_dir)?;
        let actions = py.detach(|| arrays::collect(&store, dry_run)).py()?;
        let items = actions
            .iter()
            .map(|a| {
                let d = PyDict::new(py);
                d.set_item("action", &a.action)?;
                d.set_item("transport", &a.transport)?;
                d.set_item("locator", &a.locator)?;
                d.set_item("table_name", &a.table_name)?;
                d.set_item("reason", &a.reason)?;
                d.set_item("id", &a.id)?;
                Ok(d)
            })
            .collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, items)
    }
}
