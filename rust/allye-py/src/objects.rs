//! Named objects in namespaces (`allye_core::objects`): put, get, list, remove, the
//! namespaces, the store's use and capacity. The Python package encodes an object as
//! Arrow data (`__arrow_c_stream__`) and describes it in `metadata.adc_object`.

use std::path::PathBuf;

use allye_core::protocol;
use allye_core::tuning;
use allye_core::{Namespace, ObjectData, PutOptions};
use arrow_buffer::Buffer;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};
use pyo3_arrow::{PyRecordBatchReader, PyTable};

use crate::args::{batches, store, SendArgs};
use crate::errors::OrRaise;
use crate::records::{list_to_py, to_py, value_to_py};

fn namespace(secret_dir: Option<PathBuf>, namespace: &str) -> PyResult<Namespace> {
    store(secret_dir)?.namespace(namespace).or_raise()
}

/// Publishes a new version of object `name`; returns its `ready` event. `data` is Arrow
/// data (the C stream interface), or, for the raw-bytes kinds (`numpy`, `pickle`), a list
/// of `bytes` and contiguous `uint8` arrays (see [`value_buffer`]), each stored as it is
/// (`Namespace::put_bytes`: no Arrow wrapping on either side). `metadata` must hold
/// `adc_object` with the object's `kind`; `quota` is `max_store_bytes`. `auto` uses
/// shared memory at any size (no 0.1.2 reader to spare), a file when /dev/shm is full.
/// `keep_description`: without a description of its own, the version keeps the previous one's.
/// `record=False` returns `None` instead of the event.
#[pyfunction]
#[pyo3(signature = (data, name, *, namespace=protocol::DEFAULT_NAMESPACE, secret_dir=None, metadata=None,
    transport="auto", max_shm_bytes=u64::MAX, ttl_sec=None, durable=false, quota=None,
    auto_gc=true, auto_gc_grace_sec=protocol::DEFAULT_AUTO_GC_GRACE_SEC, keep_versions=protocol::DEFAULT_KEEP_VERSIONS,
    pool_max_bytes=None, reject_nan=Vec::new(), keep_description=false, record=true))]
#[allow(clippy::too_many_arguments)]
fn put_object<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyAny>,
    name: &str,
    namespace: &str,
    secret_dir: Option<PathBuf>,
    metadata: Option<&Bound<'py, PyDict>>,
    transport: &str,
    max_shm_bytes: u64,
    ttl_sec: Option<i64>,
    durable: bool,
    quota: Option<u64>,
    auto_gc: bool,
    auto_gc_grace_sec: u64,
    keep_versions: usize,
    pool_max_bytes: Option<u64>,
    reject_nan: Vec<usize>,
    keep_description: bool,
    record: bool,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let ns = self::namespace(secret_dir, namespace)?;
    let opts = SendArgs {
        metadata,
        transport,
        max_shm_bytes,
        ttl_sec,
        durable,
        auto_gc,
        auto_gc_grace_sec,
        keep_versions,
        pool_max_bytes,
        reject_nan,
        ..SendArgs::default()
    }
    .options()?;
    let put = PutOptions::with_quota(quota).keeping_description(keep_description);
    let ready = if let Ok(values) = data.cast::<PyList>() {
        // The buffers stay referenced (and their Python objects alive) until after the put.
        let values: Vec<Buffer> = values.iter().map(|v| value_buffer(&v)).collect::<PyResult<_>>()?;
        py.detach(|| ns.put_bytes(name, &values, &opts, &put)).or_raise()?
    } else {
        let (schema, batches) = batches(data.extract::<PyRecordBatchReader>()?)?;
        py.detach(|| ns.put_with(name, &schema, &batches, &opts, &put)).or_raise()?
    };
    // `objs[name] = obj` throws the record away: not built for it.
    record.then(|| to_py(py, &ready)).transpose()
}

/// The current version of object `name`: `(ready event, Arrow table)` whose buffers point
/// into the mapping. A pickle is served only when `allow_pickle` and the store is private.
#[pyfunction]
#[pyo3(signature = (name, *, namespace=protocol::DEFAULT_NAMESPACE, secret_dir=None, allow_pickle=tuning::DEFAULT_ALLOW_PICKLE))]
fn get_object<'py>(
    py: Python<'py>,
    name: &str,
    namespace: &str,
    secret_dir: Option<PathBuf>,
    allow_pickle: bool,
) -> PyResult<(Bound<'py, PyAny>, PyTable)> {
    let ns = self::namespace(secret_dir, namespace)?;
    let (ev, data) = py.detach(|| ns.get(name, allow_pickle)).or_raise()?;
    Ok((to_py(py, &ev)?, PyTable::try_new(data.batches, data.schema)?))
}

/// The current version of object `name` as `(its metadata.adc_object, data)` (what a
/// decoder needs of the event, not the whole record): for an object stored as
/// raw bytes (a NumPy array, a pickle), `data` is a list of [`MappedBytes`], one per
/// record batch, each over the mapping (no copy: `np.asarray` of one keeps it, hence the
/// mapping, alive), or of `bytes` for an object inside its log line; for Arrow data, the
/// Arrow table as [`get_object`] returns it. A one-value table through the C stream and
/// pyarrow costs several times the lookup.
#[pyfunction]
#[pyo3(signature = (name, *, namespace=protocol::DEFAULT_NAMESPACE, secret_dir=None, allow_pickle=tuning::DEFAULT_ALLOW_PICKLE))]
fn get_object_bytes<'py>(
    py: Python<'py>,
    name: &str,
    namespace: &str,
    secret_dir: Option<PathBuf>,
    allow_pickle: bool,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    let ns = self::namespace(secret_dir, namespace)?;
    let (ev, data) = py.detach(|| ns.get_bytes(name, allow_pickle)).or_raise()?;
    let data = match data {
        // An inline payload was decoded from its line into a private buffer of at most a
        // few KiB: a `bytes` copy of it costs less than NumPy's array interface would.
        ObjectData::Bytes(values)
            if ev.payload.as_ref().is_some_and(|p| p.transport == protocol::Transport::Inline) =>
        {
            PyList::new(py, values.iter().map(|buf| PyBytes::new(py, buf.as_slice())))?.into_any()
        }
        ObjectData::Bytes(values) => PyList::new(py, values.into_iter().map(|buf| MappedBytes { buf }))?.into_any(),
        ObjectData::Arrow(data) => PyTable::try_new(data.batches, data.schema)?.into_pyobject(py)?.into_any(),
    };
    let object = match ev.metadata.get(protocol::OBJECT_METADATA_KEY) {
        Some(v) => value_to_py(py, v)?,
        None => PyDict::new(py).into_any(),
    };
    Ok((object, data))
}

/// A Python object kept alive by the Arrow buffer over its memory.
struct Owner(#[allow(dead_code)] Py<PyAny>);

/// The bytes of one value of a raw-bytes put, as an Arrow buffer over the Python object's
/// memory (no copy; the buffer holds the object): a `bytes` (a pickle stream), or an object
/// exposing NumPy's array interface over contiguous `|u1` data (an array's bytes, a pickle's
/// out-of-band buffer). The limited API this module is built for (abi3, Python 3.9) has no
/// buffer protocol, hence the array interface, which `MappedBytes` gives on the way out.
fn value_buffer(v: &Bound<'_, PyAny>) -> PyResult<Buffer> {
    let (ptr, len) = if let Ok(b) = v.cast::<PyBytes>() {
        let bytes = b.as_bytes();
        (bytes.as_ptr() as usize, bytes.len())
    } else {
        let bad = || {
            pyo3::exceptions::PyTypeError::new_err(format!(
                "a raw-bytes value must be bytes or a contiguous uint8 NumPy array, got {}",
                v.get_type().name().map(|n| n.to_string()).unwrap_or_default()
            ))
        };
        let ai = v.getattr("__array_interface__").map_err(|_| bad())?;
        let ai = ai.cast::<PyDict>().map_err(|_| bad())?;
        let typestr: String = ai.get_item("typestr")?.ok_or_else(bad)?.extract()?;
        let shape: Vec<usize> = ai.get_item("shape")?.ok_or_else(bad)?.extract()?;
        let contiguous = ai.get_item("strides")?.is_none_or(|s| s.is_none());
        if typestr != "|u1" || shape.len() != 1 || !contiguous {
            return Err(bad());
        }
        let (ptr, _read_only): (usize, bool) = ai.get_item("data")?.ok_or_else(bad)?.extract()?;
        (ptr, shape[0])
    };
    let (ptr, len) = match std::ptr::NonNull::new(ptr as *mut u8) {
        Some(ptr) => (ptr, len),
        None if len == 0 => (std::ptr::NonNull::dangling(), 0),
        None => return Err(pyo3::exceptions::PyValueError::new_err("a raw-bytes value has no data pointer")),
    };
    let owner = std::sync::Arc::new(Owner(v.clone().unbind()));
    // SAFETY: `ptr` and `len` describe memory the object owns (a `bytes`' contents, an
    // array's data), which lives as long as the object, which `owner` keeps referenced.
    Ok(unsafe { Buffer::from_custom_allocation(ptr, len, owner) })
}

// The owner is never looked into, only dropped: a panic cannot leave it half-changed.
impl std::panic::RefUnwindSafe for Owner {}

/// NumPy's array interface (version 3) of `len` bytes at `ptr`, as `|u1`.
fn bytes_interface(py: Python<'_>, ptr: usize, len: usize, read_only: bool) -> PyResult<Bound<'_, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("version", 3)?;
    d.set_item("shape", (len,))?;
    d.set_item("typestr", "|u1")?;
    d.set_item("data", (ptr, read_only))?;
    d.set_item("strides", py.None())?;
    Ok(d)
}

/// Read-only bytes of a mapped payload: `np.asarray(b)` is a `uint8` view of them whose
/// base is this object, which holds the mapping.
#[pyclass(frozen, module = "allye_data_connector._core")]
struct MappedBytes {
    buf: Buffer,
}

#[pymethods]
impl MappedBytes {
    /// NumPy's array interface (version 3): the bytes, `|u1`, read-only.
    #[getter]
    fn __array_interface__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        bytes_interface(py, self.buf.as_ptr() as usize, self.buf.len(), true)
    }

    fn __len__(&self) -> usize {
        self.buf.len()
    }
}

/// The current `ready` event of object `name` (ObjectNotFoundError if none).
#[pyfunction]
#[pyo3(signature = (name, *, namespace=protocol::DEFAULT_NAMESPACE, secret_dir=None))]
fn object_latest<'py>(
    py: Python<'py>,
    name: &str,
    namespace: &str,
    secret_dir: Option<PathBuf>,
) -> PyResult<Bound<'py, PyAny>> {
    let ns = self::namespace(secret_dir, namespace)?;
    let ev = py.detach(|| ns.latest(name)).or_raise()?;
    to_py(py, &ev)
}

/// The current version of every object in the namespace, sorted by name.
#[pyfunction]
#[pyo3(signature = (*, namespace=protocol::DEFAULT_NAMESPACE, secret_dir=None))]
fn list_objects<'py>(py: Python<'py>, namespace: &str, secret_dir: Option<PathBuf>) -> PyResult<Bound<'py, PyList>> {
    let ns = self::namespace(secret_dir, namespace)?;
    let events = py.detach(|| ns.list()).or_raise()?;
    list_to_py(py, &events)
}

/// Removes object `name` (ObjectNotFoundError if it never existed); returns a report.
#[pyfunction]
#[pyo3(signature = (name, *, namespace=protocol::DEFAULT_NAMESPACE, secret_dir=None))]
fn remove_object<'py>(
    py: Python<'py>,
    name: &str,
    namespace: &str,
    secret_dir: Option<PathBuf>,
) -> PyResult<Bound<'py, PyAny>> {
    let ns = self::namespace(secret_dir, namespace)?;
    let r = py.detach(|| ns.remove(name)).or_raise()?;
    to_py(py, &r)
}

/// Bytes held by the live versions of a namespace's objects, or (`namespace=None`) of
/// the whole store: its tables and every namespace.
#[pyfunction]
#[pyo3(signature = (*, namespace=None, secret_dir=None))]
fn objects_used(py: Python<'_>, namespace: Option<&str>, secret_dir: Option<PathBuf>) -> PyResult<u64> {
    let parent = store(secret_dir)?;
    match namespace {
        Some(n) => {
            let ns = parent.namespace(n).or_raise()?;
            py.detach(|| ns.used()).or_raise()
        }
        None => py.detach(|| parent.used_bytes()).or_raise(),
    }
}

/// The namespaces of the store (those holding a log), sorted.
#[pyfunction]
#[pyo3(signature = (*, secret_dir=None))]
fn namespaces(py: Python<'_>, secret_dir: Option<PathBuf>) -> PyResult<Vec<String>> {
    let parent = store(secret_dir)?;
    py.detach(|| parent.namespaces()).or_raise()
}

/// Makes a namespace exist before its first object; False when it existed.
#[pyfunction]
#[pyo3(signature = (name, *, secret_dir=None))]
fn create_namespace(py: Python<'_>, name: &str, secret_dir: Option<PathBuf>) -> PyResult<bool> {
    let parent = store(secret_dir)?;
    py.detach(|| parent.create_namespace(name)).or_raise()
}

/// Removes a namespace and its objects; returns how many objects it held.
#[pyfunction]
#[pyo3(signature = (name, *, secret_dir=None))]
fn remove_namespace(py: Python<'_>, name: &str, secret_dir: Option<PathBuf>) -> PyResult<usize> {
    let parent = store(secret_dir)?;
    py.detach(|| parent.remove_namespace(name)).or_raise()
}

/// The namespace's own store directory (its log and payloads), for watching.
#[pyfunction]
#[pyo3(signature = (namespace, *, secret_dir=None))]
fn namespace_store(namespace: &str, secret_dir: Option<PathBuf>) -> PyResult<std::ffi::OsString> {
    Ok(self::namespace(secret_dir, namespace)?.store().root().as_os_str().to_owned())
}

/// Free bytes of /dev/shm and of the store's file system, bytes in use, the quota.
#[pyfunction]
#[pyo3(signature = (*, secret_dir=None, quota=None))]
fn capacity<'py>(py: Python<'py>, secret_dir: Option<PathBuf>, quota: Option<u64>) -> PyResult<Bound<'py, PyAny>> {
    let parent = store(secret_dir)?;
    let c = py.detach(|| parent.capacity(quota)).or_raise()?;
    to_py(py, &c)
}

/// Raises StoreNotPrivateError unless the store (and the namespace's folders) are
/// private to this user.
#[pyfunction]
#[pyo3(signature = (*, namespace=None, secret_dir=None))]
fn check_store_private(namespace: Option<&str>, secret_dir: Option<PathBuf>) -> PyResult<()> {
    let parent = store(secret_dir)?;
    let ns = namespace.map(|n| parent.namespace(n)).transpose().or_raise()?;
    parent.check_private(ns.as_ref()).or_raise()
}

/// Returns `name` when it is a valid namespace name, else raises `InvalidArgumentError`.
#[pyfunction]
fn check_namespace_name(name: &str) -> PyResult<String> {
    protocol::check_namespace_name(name).or_raise()?;
    Ok(name.to_string())
}

/// An object being written in place (`create_object`): `np.asarray(writer)` is a
/// writable `uint8` view of its bytes in the segment (keeping the writer, hence the
/// mapping, alive); `commit()` publishes it, `abort()` (or dropping it) removes it.
#[cfg(unix)]
#[pyclass(module = "allye_data_connector._core")]
struct ObjectWriter {
    inner: std::sync::Mutex<allye_core::ObjectWriter>,
    ptr: usize,
    len: usize,
}

#[cfg(unix)]
#[pymethods]
impl ObjectWriter {
    /// NumPy's array interface (version 3): the object's bytes, `|u1`, writable.
    #[getter]
    fn __array_interface__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        bytes_interface(py, self.ptr, self.len, false)
    }

    #[getter]
    fn nbytes(&self) -> usize {
        self.len
    }

    /// Publishes the object; returns its `ready` event.
    fn commit<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let ev = py.detach(|| self.inner.lock().unwrap_or_else(|p| p.into_inner()).commit()).or_raise()?;
        to_py(py, &ev)
    }

    /// Removes the segment and records the transfer as failed.
    fn abort(&self, py: Python<'_>, reason: &str) {
        py.detach(|| self.inner.lock().unwrap_or_else(|p| p.into_inner()).abort(reason));
    }
}

/// Starts object `name` of `nbytes` bytes written in place in a new segment; `metadata`
/// holds its `adc_object`. Publish it with `ObjectWriter.commit()`.
#[cfg(unix)]
#[pyfunction]
#[pyo3(signature = (name, nbytes, *, namespace=protocol::DEFAULT_NAMESPACE, secret_dir=None, metadata=None,
    ttl_sec=None, durable=false, quota=None, auto_gc=true, auto_gc_grace_sec=protocol::DEFAULT_AUTO_GC_GRACE_SEC,
    keep_versions=protocol::DEFAULT_KEEP_VERSIONS))]
#[allow(clippy::too_many_arguments)]
fn create_object(
    py: Python<'_>,
    name: &str,
    nbytes: usize,
    namespace: &str,
    secret_dir: Option<PathBuf>,
    metadata: Option<&Bound<'_, PyDict>>,
    ttl_sec: Option<i64>,
    durable: bool,
    quota: Option<u64>,
    auto_gc: bool,
    auto_gc_grace_sec: u64,
    keep_versions: usize,
) -> PyResult<ObjectWriter> {
    let ns = self::namespace(secret_dir, namespace)?;
    let opts =
        SendArgs { metadata, ttl_sec, durable, auto_gc, auto_gc_grace_sec, keep_versions, ..SendArgs::default() }
            .options()?;
    let mut w = py.detach(|| ns.create(name, nbytes, &opts, quota)).or_raise()?;
    let (ptr, len) = (w.as_mut_ptr() as usize, w.len());
    Ok(ObjectWriter { inner: std::sync::Mutex::new(w), ptr, len })
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    #[cfg(unix)]
    {
        m.add_class::<ObjectWriter>()?;
        m.add_function(wrap_pyfunction!(create_object, m)?)?;
    }
    m.add("DEFAULT_NAMESPACE", protocol::DEFAULT_NAMESPACE)?;
    m.add("DEFAULT_ALLOW_PICKLE", tuning::DEFAULT_ALLOW_PICKLE)?;
    m.add("OBJECT_METADATA_KEY", protocol::OBJECT_METADATA_KEY)?;
    m.add("OBJECT_BYTES_COLUMN", protocol::OBJECT_BYTES_COLUMN)?;
    m.add("OBJECT_KINDS", protocol::OBJECT_KINDS.to_vec())?;
    m.add_function(wrap_pyfunction!(put_object, m)?)?;
    m.add_function(wrap_pyfunction!(get_object, m)?)?;
    m.add_function(wrap_pyfunction!(get_object_bytes, m)?)?;
    m.add_class::<MappedBytes>()?;
    m.add_function(wrap_pyfunction!(object_latest, m)?)?;
    m.add_function(wrap_pyfunction!(list_objects, m)?)?;
    m.add_function(wrap_pyfunction!(remove_object, m)?)?;
    m.add_function(wrap_pyfunction!(objects_used, m)?)?;
    m.add_function(wrap_pyfunction!(namespaces, m)?)?;
    m.add_function(wrap_pyfunction!(create_namespace, m)?)?;
    m.add_function(wrap_pyfunction!(remove_namespace, m)?)?;
    m.add_function(wrap_pyfunction!(namespace_store, m)?)?;
    m.add_function(wrap_pyfunction!(capacity, m)?)?;
    m.add_function(wrap_pyfunction!(check_store_private, m)?)?;
    m.add_function(wrap_pyfunction!(check_namespace_name, m)?)?;
    Ok(())
}
