//! The exception classes of `allye_data_connector`, created here (so a core error maps to
//! its class variant by variant, checked by the compiler) and re-exported by
//! `allye_data_connector.errors`.
//!
//! Several classes derive from two bases (`TableNotFoundError(AllyeError, KeyError)`), which
//! `create_exception!` cannot express, so each class is made by calling `type(name, bases,
//! namespace)` once, when the module is initialised.

use allye_core::Error;
use pyo3::exceptions::{
    PyConnectionError, PyException, PyFileExistsError, PyFileNotFoundError, PyImportError, PyKeyError, PyOSError,
    PyRuntimeError, PyTimeoutError, PyTypeError, PyValueError,
};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple, PyType};

/// Where the classes say they live (the module users import them from).
const ERRORS_MODULE: &str = "allye_data_connector.errors";

macro_rules! classes {
    ($($field:ident: $name:literal ($($base:ident),+) $(+ $str:ident)? = $doc:literal;)*) => {
        /// Every exception class of the package.
        pub(crate) struct Classes {
            $(pub(crate) $field: Py<PyType>,)*
        }

        impl Classes {
            fn create(py: Python<'_>) -> PyResult<Self> {
                $(
                    let $field = {
                        let bases = [$(classes!(@base py, $base)),+];
                        new_class(py, $name, &bases, $doc, classes!(@str $($str)?))?
                    };
                )*
                Ok(Classes { $($field: $field.unbind(),)* })
            }

            fn register(&self, m: &Bound<'_, PyModule>) -> PyResult<()> {
                let py = m.py();
                $(m.add($name, self.$field.bind(py))?;)*
                Ok(())
            }
        }
    };
    (@base $py:ident, Exception) => { $py.get_type::<PyException>() };
    (@base $py:ident, KeyError) => { $py.get_type::<PyKeyError>() };
    (@base $py:ident, ValueError) => { $py.get_type::<PyValueError>() };
    (@base $py:ident, TypeError) => { $py.get_type::<PyTypeError>() };
    (@base $py:ident, OSError) => { $py.get_type::<PyOSError>() };
    (@base $py:ident, FileNotFoundError) => { $py.get_type::<PyFileNotFoundError>() };
    (@base $py:ident, TimeoutError) => { $py.get_type::<PyTimeoutError>() };
    (@base $py:ident, FileExistsError) => { $py.get_type::<PyFileExistsError>() };
    (@base $py:ident, RuntimeError) => { $py.get_type::<PyRuntimeError>() };
    (@base $py:ident, ConnectionError) => { $py.get_type::<PyConnectionError>() };
    (@base $py:ident, ImportError) => { $py.get_type::<PyImportError>() };
    (@base $py:ident, $own:ident) => { $own.clone() };
    (@str) => { false };
    (@str plain_str) => { true };
}

classes! {
    allye: "AllyeError" (Exception) = "Base class of every error raised by allye_data_connector.";
    table_not_found: "TableNotFoundError" (allye, KeyError) + plain_str =
        "No ready version of the table exists (0.1.2 raised a plain ``KeyError``).";
    object_not_found: "ObjectNotFoundError" (table_not_found) + plain_str =
        "No current object of that name in the namespace (a ``TableNotFoundError``, hence a ``KeyError``, too).";
    table_expired: "TableExpiredError" (table_not_found) =
        "The current version's ``ttl_sec`` has run out; it is no longer served.";
    payload: "PayloadError" (allye) = "The manifest names a payload that cannot be read.";
    payload_missing: "PayloadMissingError" (payload, FileNotFoundError) =
        "The payload (segment or file) no longer exists.";
    payload_corrupt: "PayloadCorruptError" (payload, ValueError) =
        "The payload is not valid Arrow IPC data (truncated, overwritten, garbage).";
    unknown_transport: "UnknownTransportError" (payload, ValueError) =
        "A ``ready`` line names a transport this version does not know.";
    invalid_argument: "InvalidArgumentError" (allye, ValueError) =
        "An argument has a value that cannot be used (table name, transport, TTL, ...).";
    invalid_input: "InvalidInputError" (allye, TypeError) =
        "The data to send is not something we can send (not a DataFrame, ...).";
    conversion: "ConversionError" (allye, TypeError) =
        "A DataFrame column cannot be converted to Arrow (mixed-type objects, ...).";
    arrow_data: "ArrowDataError" (allye, ValueError) = "Arrow refused to encode or decode the data.";
    nan_found: "NanFoundError" (arrow_data) =
        "A float column a send was told holds no NaN (``reject_nan``) holds one; nothing was written.";
    store: "StoreError" (allye, OSError) = "The store directory or its files cannot be used.";
    store_unusable: "StoreUnusableError" (store) = "The store path is not a writable directory.";
    store_io: "StoreIOError" (store) = "An I/O operation on the store failed.";
    storage_full: "StorageFullError" (store_io) = "The device (``/dev/shm`` or the disk) is full.";
    cancelled: "CancelledError" (allye) =
        "A send or load was cancelled through its cancel token; nothing was left behind.";
    wait_timeout: "WaitTimeoutError" (table_not_found, TimeoutError) =
        "A wait for a table (or a new version) ran out of time; a ``TableNotFoundError`` too, so code \
         that caught the missing table of a timed-out wait keeps working.";
    array: "ArrayError" (allye) =
        "A shared array (:class:`~allye_data_connector.SharedArray`) cannot be used as asked.";
    array_exists: "ArrayExistsError" (array, FileExistsError) =
        "A shared array of this name already exists (create without ``exist_ok=True``).";
    array_not_found: "ArrayNotFoundError" (array, FileNotFoundError) =
        "No shared array of this name exists in the store (never created, destroyed, or freed by gc).";
    array_layout: "ArrayLayoutError" (array, ValueError) =
        "The segment is not a shared array of the expected layout, shape or dtype.";
    array_closed: "ArrayClosedError" (array, RuntimeError) =
        "The shared array was closed (or destroyed) in this process; open it again.";
    store_full: "StoreFullError" (store) =
        "A put would pass the store's ``max_store_bytes`` quota; nothing was written.";
    store_not_private: "StoreNotPrivateError" (store_unusable) =
        "The store, a directory or file in it, or a shared-memory segment it uses is not private to \
         you (another user's, writable by others, or a symbolic link): nothing was read or written. \
         The message names the path, its owner and mode, and the command that fixes it.";
    source: "SourceError" (allye) =
        "A data source failed while loading (its file, query or connection, or its own ``read()``); \
         the table's previous version is intact.";
    remote_unavailable: "RemoteUnavailableError" (allye, ConnectionError) =
        "No peer could serve the table in time (down, unreachable, refused), and no cached version \
         may be served instead (``stale_ok=False``).";
    schema_conflict: "SchemaConflictError" (invalid_argument) =
        "An append to a streaming table holds values a column cannot take without changing a value \
         (a string into a number column): those rows (and only those) were refused. ``table``, \
         ``conflicts`` (each ``{field, value_type, column_type}``), ``refused`` (the refused records, \
         or an Arrow table of the refused rows) and ``stored`` (rows stored by the same call) say which.";
    missing_dependency: "MissingDependencyError" (allye, ImportError) =
        "An optional dependency of the feature asked for is not installed; the message names the \
         extra that installs it (``pip install 'allye_data_connector[sql]'``).";
}

fn new_class<'py>(
    py: Python<'py>,
    name: &str,
    bases: &[Bound<'py, PyType>],
    doc: &str,
    plain_str: bool,
) -> PyResult<Bound<'py, PyType>> {
    let namespace = PyDict::new(py);
    namespace.set_item("__module__", ERRORS_MODULE)?;
    namespace.set_item("__doc__", doc)?;
    if plain_str {
        // KeyError's __str__ would repr() the message; BaseException's prints it.
        namespace.set_item("__str__", py.get_type::<PyException>().getattr("__str__")?)?;
    }
    let class = py.get_type::<PyType>().call1((name, PyTuple::new(py, bases)?, namespace))?;
    Ok(class.cast_into::<PyType>()?)
}

static CLASSES: PyOnceLock<Classes> = PyOnceLock::new();

/// The classes, created on first use.
pub(crate) fn classes(py: Python<'_>) -> PyResult<&Classes> {
    CLASSES.get_or_try_init(py, || Classes::create(py))
}

/// Adds every class to the module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    classes(m.py())?.register(m)
}

/// The class of a core error.
fn class_of<'a>(c: &'a Classes, e: &Error) -> &'a Py<PyType> {
    match e {
        Error::TableNotFound { .. } => &c.table_not_found,
        Error::ObjectNotFound { .. } => &c.object_not_found,
        Error::Expired { .. } => &c.table_expired,
        Error::PayloadMissing { .. } => &c.payload_missing,
        Error::PayloadCorrupt { .. } => &c.payload_corrupt,
        Error::UnknownTransport { .. } => &c.unknown_transport,
        Error::InvalidArgument(_) | Error::Json(_) => &c.invalid_argument,
        Error::StoreUnusable { .. } => &c.store_unusable,
        e @ Error::Io { .. } if e.is_no_space() => &c.storage_full,
        Error::Io { .. } => &c.store_io,
        Error::Arrow(_) => &c.arrow_data,
        Error::NanFound { .. } => &c.nan_found,
        Error::ArrayExists { .. } => &c.array_exists,
        Error::ArrayNotFound { .. } => &c.array_not_found,
        Error::ArrayLayout { .. } => &c.array_layout,
        Error::ArrayClosed { .. } => &c.array_closed,
        Error::StoreFull { .. } => &c.store_full,
        Error::StoreNotPrivate { .. } => &c.store_not_private,
        Error::StreamBroken { .. } => &c.remote_unavailable,
        Error::SchemaConflict { .. } => &c.schema_conflict,
    }
}

/// The Python exception for a core error. A schema conflict also carries what it is
/// about as attributes (`table`, `conflicts`; `refused` and `stored` are the Python
/// layer's to fill).
pub(crate) fn to_pyerr(e: Error) -> PyErr {
    Python::attach(|py| match classes(py) {
        Ok(c) => {
            let class = class_of(c, &e).bind(py).clone();
            if let Error::SchemaConflict { table, conflicts } = &e {
                if let Ok(err) = schema_conflict(py, &class, &e.to_string(), table, conflicts) {
                    return err;
                }
            }
            PyErr::from_type(class, e.to_string())
        }
        Err(_) => PyRuntimeError::new_err(e.to_string()),
    })
}

fn schema_conflict(
    py: Python<'_>,
    class: &Bound<'_, PyType>,
    message: &str,
    table: &str,
    conflicts: &[allye_core::FieldConflict],
) -> PyResult<PyErr> {
    let exc = class.call1((message,))?;
    exc.setattr("table", table)?;
    let list = pyo3::types::PyList::empty(py);
    for c in conflicts {
        let d = PyDict::new(py);
        d.set_item("field", &c.field)?;
        d.set_item("value_type", &c.value_type)?;
        d.set_item("column_type", &c.column_type)?;
        d.set_item("part", c.part)?;
        list.append(d)?;
    }
    exc.setattr("conflicts", list)?;
    exc.setattr("refused", py.None())?;
    exc.setattr("stored", py.None())?;
    Ok(PyErr::from_value(exc))
}

/// `InvalidArgumentError(message)`.
pub(crate) fn invalid_argument(message: impl Into<String>) -> PyErr {
    to_pyerr(Error::InvalidArgument(message.into()))
}

/// Turns a core result into a Python one.
pub(crate) trait OrRaise<T> {
    /// The value, or the matching Python exception.
    fn or_raise(self) -> PyResult<T>;
}

impl<T> OrRaise<T> for allye_core::Result<T> {
    fn or_raise(self) -> PyResult<T> {
        self.map_err(to_pyerr)
    }
}
