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
    m.add_class::<imp::LockedView>()?;
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
    use std::sync::atomic::{AtomicBool, Ordering};

    use allye_core::arrays::{Acquired, Init, SharedArray};
    use allye_core::ArrayInfo;
    use allye_core::Error;
    use pyo3::prelude::*;
    use pyo3::sync::PyOnceLock;
    use pyo3::types::{PyDict, PyInt, PyList, PyTuple};

    use crate::args::store;
    use crate::errors::{to_pyerr, OrRaise};
    use crate::records::list_to_py;

    /// One open shared array. `close()` unregisters this process; the mapping lives as
    /// long as this object (NumPy views hold it).
    #[pyclass(frozen, module = "allye_data_connector._core")]
    pub struct SharedArrayHandle {
        inner: SharedArray,
        /// Set once this handle took the lock over from a holder that died holding it.
        holder_died: AtomicBool,
        /// Element type of a 1-D array whose `add` by int index runs natively.
        counter: Counter,
        len: usize,
        /// A structured dtype: one element read is a `numpy.void` view, copied like an array.
        records: bool,
    }

    /// Counter dtypes of `add`'s native path.
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Counter {
        I4,
        I8,
        U4,
        U8,
        F4,
        F8,
        /// Other dtypes and shapes: NumPy adds.
        No,
    }

    impl SharedArrayHandle {
        fn new(inner: SharedArray) -> Self {
            let counter = match (inner.shape().len(), inner.typestr()) {
                (1, "<i4") => Counter::I4,
                (1, "<i8") => Counter::I8,
                (1, "<u4") => Counter::U4,
                (1, "<u8") => Counter::U8,
                (1, "<f4") => Counter::F4,
                (1, "<f8") => Counter::F8,
                _ => Counter::No,
            };
            let len = inner.shape().first().copied().unwrap_or(0);
            let records = allye_core::arrays::dtype::is_structured(inner.typestr());
            SharedArrayHandle { inner, holder_died: AtomicBool::new(false), counter, len, records }
        }

        /// `view[index] += value` without NumPy for an int index of a 1-D counter array and
        /// a value of the element type: `Ok(None)` when NumPy must do it (other index or
        /// value types, a value out of the type's range: NumPy then raises as `+=` does).
        /// Integers wrap on overflow, as NumPy's do.
        fn add_native(
            &self,
            py: Python<'_>,
            a: &SharedArray,
            index: &Bound<'_, PyAny>,
            value: &Bound<'_, PyAny>,
            lock: bool,
        ) -> PyResult<Option<bool>> {
            if self.counter == Counter::No || !index.is_exact_instance_of::<PyInt>() {
                return Ok(None);
            }
            let Ok(i) = index.extract::<isize>() else { return Ok(None) };
            let n = self.len as isize;
            let i = if i < 0 { i + n } else { i };
            if i < 0 || i >= n {
                return Ok(None); // NumPy raises the IndexError
            }
            let p = a.data_ptr();
            macro_rules! go {
                ($t:ty, $op:expr) => {{
                    let Ok(v) = value.extract::<$t>() else { return Ok(None) };
                    let died = lock && self.acquire(py, a)?;
                    // SAFETY: i < len elements of this dtype inside the mapping, under the
                    // lock; volatile as other processes access the same memory.
                    unsafe {
                        let e = (p as *mut $t).add(i as usize);
                        e.write_volatile($op(e.read_volatile(), v));
                    }
                    if lock {
                        a.unlock().or_raise()?;
                    }
                    Ok(Some(died))
                }};
            }
            match self.counter {
                Counter::I4 => go!(i32, i32::wrapping_add),
                Counter::I8 => go!(i64, i64::wrapping_add),
                Counter::U4 => go!(u32, u32::wrapping_add),
                Counter::U8 => go!(u64, u64::wrapping_add),
                Counter::F4 => go!(f32, |x: f32, y: f32| x + y),
                Counter::F8 => go!(f64, |x: f64, y: f64| x + y),
                Counter::No => Ok(None),
            }
        }

        fn open_inner(&self) -> PyResult<&SharedArray> {
            if self.inner.is_open() {
                Ok(&self.inner)
            } else {
                Err(to_pyerr(Error::ArrayClosed { name: self.inner.name().into() }))
            }
        }

        /// Takes the lock: at once when free, else waiting without the GIL. True when the
        /// previous holder died holding it.
        fn acquire(&self, py: Python<'_>, a: &SharedArray) -> PyResult<bool> {
            let got = match a.try_lock().or_raise()? {
                Some(got) => got,
                None => py.detach(|| a.lock()).or_raise()?,
            };
            Ok(got == Acquired::OwnerDied)
        }

        /// Runs `f` holding the lock (unless `lock` is false), releases it, then announces
        /// a takeover if the previous holder died; `f`'s result is returned after that.
        fn under_lock<T>(
            &self,
            py: Python<'_>,
            a: &SharedArray,
            lock: bool,
            f: impl FnOnce() -> PyResult<T>,
        ) -> PyResult<T> {
            let died = lock && self.acquire(py, a)?;
            let done = f();
            if lock {
                a.unlock().or_raise()?;
            }
            if died {
                self.told(py)?;
            }
            done
        }

        /// Records and announces a takeover (`HolderDiedWarning`; an error when warnings
        /// are errors). Called with the lock released or about to be released by the caller.
        fn told(&self, py: Python<'_>) -> PyResult<()> {
            self.holder_died.store(true, Ordering::Release);
            static CATEGORY: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
            let category = CATEGORY.get_or_try_init(py, || {
                py.import("allye_data_connector.shared_array")?.getattr("HolderDiedWarning").map(Bound::unbind)
            })?;
            let msg = format!(
                "shared array {:?}: the previous lock holder died holding it; this process took the lock over, \
                 and the data it guarded may be half-written",
                self.inner.name()
            );
            let msg = std::ffi::CString::new(msg).unwrap_or_default();
            PyErr::warn(py, category.bind(py), &msg, 2)
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
                    return Err(to_pyerr(Error::InvalidArgument("pass fill or data, not both".into())))
                }
                (Some(f), None) => Init::Fill(f),
                (None, Some(d)) => Init::Data(d),
                (None, None) => Init::Keep,
            };
            let (inner, reclaimed) =
                py.detach(|| store.create_array(name, typestr, &shape, exist_ok, init)).or_raise()?;
            Ok((SharedArrayHandle::new(inner), reclaimed))
        }

        /// Opens array `name`; ArrayNotFoundError when it does not exist.
        #[staticmethod]
        #[pyo3(signature = (name, *, secret_dir=None))]
        fn open(py: Python<'_>, name: &str, secret_dir: Option<PathBuf>) -> PyResult<Self> {
            let store = store(secret_dir)?;
            let inner = py.detach(|| store.open_array(name)).or_raise()?;
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
            // A structured dtype is handed over as raw records of its item size; the Python
            // layer views them with the fields (NumPy's array-interface `descr` would turn
            // padding into named fields).
            if allye_core::arrays::dtype::is_structured(a.typestr()) {
                d.set_item("typestr", format!("|V{}", a.itemsize()))?;
            } else {
                d.set_item("typestr", a.typestr())?;
            }
            d.set_item("data", (a.data_ptr() as usize, false))?;
            d.set_item("strides", py.None())?;
            Ok(d)
        }

        /// Takes the cross-process lock, waiting without the GIL. When the previous holder
        /// died holding it, sets `holder_died` and warns `HolderDiedWarning` (if that
        /// raises, the lock is released first).
        fn lock(&self, py: Python<'_>) -> PyResult<()> {
            let a = self.open_inner()?;
            if self.acquire(py, a)? {
                if let Err(e) = self.told(py) {
                    a.unlock().or_raise()?;
                    return Err(e);
                }
            }
            Ok(())
        }

        /// As `lock()`, waiting at most `timeout_sec`; False when it ran out.
        fn lock_timeout(&self, py: Python<'_>, timeout_sec: f64) -> PyResult<bool> {
            let a = self.open_inner()?;
            let timeout = std::time::Duration::from_secs_f64(timeout_sec.max(0.0));
            match py.detach(|| a.lock_timeout(timeout)).or_raise()? {
                None => Ok(false),
                Some(Acquired::Clean) => Ok(true),
                Some(Acquired::OwnerDied) => {
                    if let Err(e) = self.told(py) {
                        a.unlock().or_raise()?;
                        return Err(e);
                    }
                    Ok(true)
                }
            }
        }

        /// `view[index]` under the lock (unless `lock=False`), an array result copied before
        /// the lock is released. `view` is this handle's NumPy view (it is passed in: the
        /// handle holding it would be a reference cycle).
        #[pyo3(signature = (view, index, lock=true))]
        fn read<'py>(
            &self,
            py: Python<'py>,
            view: &Bound<'py, PyAny>,
            index: &Bound<'py, PyAny>,
            lock: bool,
        ) -> PyResult<Bound<'py, PyAny>> {
            let a = self.open_inner()?;
            self.under_lock(py, a, lock, || {
                view.get_item(index).and_then(|v| {
                    // An array, or a structured record (`numpy.void`), is a view of the
                    // shared data: copy it before the lock is released.
                    if self.records || v.get_type().is(view.get_type()) {
                        v.call_method0("copy")
                    } else {
                        Ok(v)
                    }
                })
            })
        }

        /// `view[index] = value` under the lock (unless `lock=False`); as `read`.
        #[pyo3(signature = (view, index, value, lock=true))]
        fn write(
            &self,
            py: Python<'_>,
            view: &Bound<'_, PyAny>,
            index: &Bound<'_, PyAny>,
            value: &Bound<'_, PyAny>,
            lock: bool,
        ) -> PyResult<()> {
            let a = self.open_inner()?;
            self.under_lock(py, a, lock, || view.set_item(index, value))
        }

        /// `view[index] += value` under the lock (unless `lock=False`); as `read`.
        #[pyo3(signature = (view, index, value, lock=true))]
        fn add(
            &self,
            py: Python<'_>,
            view: &Bound<'_, PyAny>,
            index: &Bound<'_, PyAny>,
            value: &Bound<'_, PyAny>,
            lock: bool,
        ) -> PyResult<()> {
            let a = self.open_inner()?;
            if let Some(died) = self.add_native(py, a, index, value, lock)? {
                return if died { self.told(py) } else { Ok(()) };
            }
            self.under_lock(py, a, lock, || {
                view.get_item(index).and_then(|cur| cur.add(value)).and_then(|new| view.set_item(index, new))
            })
        }

        /// True once this handle took the lock over from a holder that died holding it.
        #[getter]
        fn holder_died(&self) -> bool {
            self.holder_died.load(Ordering::Acquire)
        }

        /// Releases the lock this thread holds.
        fn unlock(&self) -> PyResult<()> {
            self.inner.unlock().or_raise()
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
            py.detach(|| self.inner.destroy()).or_raise()
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

    /// `with LockedView(handle, view) as v:` holds the array's lock around the block and
    /// gives `view`: the whole block in two native calls (a counter's `v[0] += 1` under
    /// the lock costs little more than the `+=`). With `lock=False` the block takes no
    /// lock. Calling it, `ctx(with_lock=...)`, gives the context of that kind (itself when
    /// it is of that kind), so one native object serves as a method `array(with_lock=)`.
    /// It holds the handle and the view, never the Python object that made it, so it
    /// makes no reference cycle.
    #[pyclass(frozen, module = "allye_data_connector._core")]
    pub struct LockedView {
        handle: Py<SharedArrayHandle>,
        view: Py<PyAny>,
        lock: bool,
    }

    #[pymethods]
    impl LockedView {
        #[new]
        #[pyo3(signature = (handle, view, lock=true))]
        fn new(handle: Py<SharedArrayHandle>, view: Py<PyAny>, lock: bool) -> Self {
            LockedView { handle, view, lock }
        }

        /// The context of kind `with_lock`: this one, or a new one over the same view.
        #[pyo3(signature = (*, with_lock=true))]
        fn __call__(slf: &Bound<'_, Self>, with_lock: bool) -> PyResult<Py<LockedView>> {
            let me = slf.get();
            if me.lock == with_lock {
                return Ok(slf.clone().unbind());
            }
            let py = slf.py();
            Py::new(py, LockedView { handle: me.handle.clone_ref(py), view: me.view.clone_ref(py), lock: with_lock })
        }

        /// This context's call, `ctx(with_lock=...)`, as a builtin function bound to it
        /// that Python calls with the vectorcall convention: `f(with_lock=True)` costs a
        /// third of calling the context itself (whose keyword arrives in a new dict, the
        /// only way a class instance is called in this module's ABI). Same arguments,
        /// results and errors.
        fn as_method(slf: &Bound<'_, Self>) -> PyResult<Py<PyAny>> {
            fast_call::bind(slf)
        }

        /// Takes the lock (as `SharedArrayHandle.lock`) unless `lock=False`, and returns the view.
        fn __enter__(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
            if self.lock {
                self.handle.get().lock(py)?;
            } else {
                self.handle.get().open_inner()?;
            }
            Ok(self.view.clone_ref(py))
        }

        /// Releases the lock; never swallows the block's exception.
        fn __exit__(
            &self,
            _kind: &Bound<'_, PyAny>,
            _value: &Bound<'_, PyAny>,
            _traceback: &Bound<'_, PyAny>,
        ) -> PyResult<bool> {
            if self.lock {
                self.handle.get().inner.unlock().or_raise()?;
            }
            Ok(false)
        }
    }

    fn info_dict<'py>(py: Python<'py>, i: &ArrayInfo) -> PyResult<Bound<'py, PyDict>> {
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
        let infos = py.detach(|| store.arrays()).or_raise()?;
        let items = infos.iter().map(|i| info_dict(py, i)).collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, items)
    }

    /// Frees abandoned shared arrays (`Store::collect_arrays`, step 3 of gc); returns gc
    /// actions (`transport` `"shared_array"`).
    #[pyfunction]
    #[pyo3(signature = (*, secret_dir=None, dry_run=true))]
    pub fn collect_arrays<'py>(
        py: Python<'py>,
        secret_dir: Option<PathBuf>,
        dry_run: bool,
    ) -> PyResult<Bound<'py, PyList>> {
        let store = store(secret_dir)?;
        let actions = py.detach(|| store.collect_arrays(dry_run)).or_raise()?;
        list_to_py(py, &actions)
    }

    /// The vectorcall entry of [`LockedView::as_method`].
    mod fast_call {
        use std::cell::UnsafeCell;
        use std::ffi::c_int;

        use pyo3::exceptions::PyRuntimeError;
        use pyo3::ffi;
        use pyo3::prelude::*;
        use pyo3::types::{PyDict, PyTuple};

        use super::LockedView;

        /// `METH_FASTCALL` (PEP 590's convention): in the stable ABI from Python 3.10, and
        /// accepted with this value by every CPython since 3.7, so by the 3.9 whose ABI this
        /// module is built for (pyo3 only names the flag for 3.10 builds).
        const METH_FASTCALL: c_int = 0x0080;

        type FastWithKeywords = unsafe extern "C" fn(
            *mut ffi::PyObject,
            *const *mut ffi::PyObject,
            ffi::Py_ssize_t,
            *mut ffi::PyObject,
        ) -> *mut ffi::PyObject;

        struct Def(UnsafeCell<ffi::PyMethodDef>);
        // SAFETY: never written after it is made; CPython only reads a method definition.
        unsafe impl Sync for Def {}

        static DEF: Def = Def(UnsafeCell::new(ffi::PyMethodDef {
            ml_name: c"array".as_ptr(),
            // SAFETY: CPython calls `ml_meth` with the signature its flags name
            // (FASTCALL | KEYWORDS: `call`'s); the union's field only carries the pointer.
            ml_meth: ffi::PyMethodDefPointer {
                PyCFunction: unsafe { std::mem::transmute::<FastWithKeywords, ffi::PyCFunction>(call) },
            },
            ml_flags: METH_FASTCALL | ffi::METH_KEYWORDS,
            ml_doc: c"array(*, with_lock=True): the context of that kind over the shared array".as_ptr(),
        }));

        pub(super) fn bind(slf: &Bound<'_, LockedView>) -> PyResult<Py<PyAny>> {
            // SAFETY: DEF lives as long as the program; the new function holds a reference
            // to `slf`, its `self`.
            unsafe {
                Bound::from_owned_ptr_or_err(
                    slf.py(),
                    ffi::PyCFunction_NewEx(DEF.0.get(), slf.as_ptr(), std::ptr::null_mut()),
                )
            }
            .map(Bound::unbind)
        }

        /// `f(*args, **kwargs)`: no argument, or `with_lock=` a bool, answered here; any
        /// other call goes to `LockedView.__call__`, which parses it (and raises) as ever.
        unsafe extern "C" fn call(
            slf: *mut ffi::PyObject,
            args: *const *mut ffi::PyObject,
            nargs: ffi::Py_ssize_t,
            kwnames: *mut ffi::PyObject,
        ) -> *mut ffi::PyObject {
            // SAFETY: CPython calls a builtin function holding the GIL.
            let py = unsafe { Python::assume_attached() };
            let run = std::panic::AssertUnwindSafe(|| unsafe { dispatch(py, slf, args, nargs, kwnames) });
            match std::panic::catch_unwind(run) {
                Ok(Ok(obj)) => obj.into_ptr(),
                Ok(Err(e)) => {
                    e.restore(py);
                    std::ptr::null_mut()
                }
                Err(_) => {
                    PyRuntimeError::new_err("internal error in a shared array's array() call").restore(py);
                    std::ptr::null_mut()
                }
            }
        }

        /// # Safety
        /// The arguments of a FASTCALL | KEYWORDS call: `args` holds `nargs` positional
        /// values, then one value per name of the tuple `kwnames` (null: no keywords).
        unsafe fn dispatch<'py>(
            py: Python<'py>,
            slf: *mut ffi::PyObject,
            args: *const *mut ffi::PyObject,
            nargs: ffi::Py_ssize_t,
            kwnames: *mut ffi::PyObject,
        ) -> PyResult<Bound<'py, PyAny>> {
            let me = unsafe { Bound::from_borrowed_ptr(py, slf) }.cast_into::<LockedView>()?;
            let names = if kwnames.is_null() {
                None
            } else {
                Some(unsafe { Bound::from_borrowed_ptr(py, kwnames) }.cast_into::<PyTuple>()?)
            };
            let nkw = names.as_ref().map_or(0, |n| n.len());
            let nargs = usize::try_from(nargs).unwrap_or(0);
            let values: &[*mut ffi::PyObject] =
                if nargs + nkw == 0 { &[] } else { unsafe { std::slice::from_raw_parts(args, nargs + nkw) } };
            if nargs == 0 {
                let with_lock = match &names {
                    None => Some(true),
                    Some(names) if nkw == 1 => {
                        let key = names.get_item(0)?;
                        let value = values[0];
                        // The name compared without making a UTF-8 copy of it.
                        let named =
                            unsafe { ffi::PyUnicode_CompareWithASCIIString(key.as_ptr(), c"with_lock".as_ptr()) } == 0;
                        if named && value == unsafe { ffi::Py_True() } {
                            Some(true)
                        } else if named && value == unsafe { ffi::Py_False() } {
                            Some(false)
                        } else {
                            None
                        }
                    }
                    Some(_) => None,
                };
                if let Some(with_lock) = with_lock {
                    return LockedView::__call__(&me, with_lock).map(|v| v.into_bound(py).into_any());
                }
            }
            let positional = values[..nargs].iter().map(|&p| unsafe { Bound::from_borrowed_ptr(py, p) });
            let positional = PyTuple::new(py, positional)?;
            let keywords = PyDict::new(py);
            if let Some(names) = &names {
                for (i, name) in names.iter().enumerate() {
                    keywords.set_item(name, unsafe { Bound::from_borrowed_ptr(py, values[nargs + i]) })?;
                }
            }
            me.call(positional, Some(&keywords))
        }
    }
}
