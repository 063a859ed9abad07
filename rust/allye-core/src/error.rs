//! The one error type of the core crate. The bindings map each variant onto one
//! Python exception class, so variants are chosen by what a caller can do about them.

use std::path::PathBuf;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong, by what a caller can do about it. Deliberately not
/// `#[non_exhaustive]`: the bindings match it exhaustively, so a new variant cannot reach
/// Python without being given its exception class.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No `ready` version of the table exists (optionally for that producer).
    #[error("no ready version of table {table:?}{} in {store}; list what exists with list_tables()", producer.as_ref().map(|p| format!(" from producer {p:?}")).unwrap_or_default())]
    TableNotFound {
        /// The table asked for.
        table: String,
        /// The producer asked for, if any.
        producer: Option<String>,
        /// The store looked in.
        store: PathBuf,
    },

    /// No current object of that name in the namespace (a named object, not a table).
    #[error("no object {name:?} in namespace {namespace:?} of {store}; list its objects with adc.objects({namespace:?}).list() (adc ls --objects) and the namespaces with adc.namespaces()")]
    ObjectNotFound {
        /// The object asked for.
        name: String,
        /// The namespace looked in.
        namespace: String,
        /// The store (the parent of `objects/`).
        store: PathBuf,
    },

    /// The manifest names a payload that is gone (unlinked segment, deleted file).
    #[error(
        "the payload of table {table:?} ({transport} {locator:?}) no longer exists: {reason}; send the table again"
    )]
    PayloadMissing {
        /// The table.
        table: String,
        /// The payload's transport.
        transport: String,
        /// The payload's segment name or path.
        locator: String,
        /// What was found instead.
        reason: String,
    },

    /// The payload exists but is not valid Arrow IPC data of the announced size.
    #[error("the payload of table {table:?} ({locator:?}) is corrupt or truncated: {reason}; send the table again")]
    PayloadCorrupt {
        /// The table.
        table: String,
        /// The payload's segment name or path.
        locator: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The current version's TTL has run out; it is not served.
    #[error("table {table:?} expired at {expires_at}; send it again (with a longer ttl_sec) or run gc() to remove it")]
    Expired {
        /// The table.
        table: String,
        /// When it expired.
        expires_at: String,
    },

    /// A `ready` line names a transport this version does not know.
    #[error("table {table:?} uses unknown transport {transport:?}; known: file_arrow_ipc_v1, shm_arrow_stream_v1 (upgrade allye_data_connector?)")]
    UnknownTransport {
        /// The table.
        table: String,
        /// The transport named.
        transport: String,
    },

    /// The caller passed something unusable (bad table name, bad option value...).
    #[error("{0}")]
    InvalidArgument(String),

    /// The store directory cannot be used.
    #[error("store directory {path:?} is unusable: {reason}")]
    StoreUnusable {
        /// The directory.
        path: PathBuf,
        /// Why it cannot be used.
        reason: String,
    },

    /// An I/O error, with what we were doing when it happened.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// Arrow could not encode or decode the data.
    #[error("arrow error: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),

    /// JSON encoding of an event failed (metadata that is not JSON).
    #[error("json error: {0}")]
    Json(#[from] serde_json::Error),

    /// A shared array of this name already exists in the store (create without `exist_ok`).
    #[error(
        "shared array {name:?} already exists in {store}; open it, pass exist_ok=True to reuse it, or destroy it first"
    )]
    ArrayExists {
        /// The array's name.
        name: String,
        /// The store it was looked up in.
        store: PathBuf,
    },

    /// No shared array of this name exists in the store (never created, destroyed, or freed by gc).
    #[error("no shared array {name:?} in {store}{}; create it first (adc ls --arrays lists what exists)", reason.as_ref().map(|r| format!(" ({r})")).unwrap_or_default())]
    ArrayNotFound {
        /// The array's name.
        name: String,
        /// The store it was looked up in.
        store: PathBuf,
        /// What happened to it, when known.
        reason: Option<String>,
    },

    /// The segment is not a shared array of the expected layout, or not of the shape and
    /// dtype asked for.
    #[error("shared array {name:?}: {reason}")]
    ArrayLayout {
        /// The array's name.
        name: String,
        /// What does not match.
        reason: String,
    },

    /// The handle was closed (or the array destroyed through it); reopen the array.
    #[error("shared array {name:?} is closed in this process; open it again (SharedArray.open / connect())")]
    ArrayClosed {
        /// The array's name.
        name: String,
    },

    /// A put would take the store past its `max_store_bytes` quota; nothing was written.
    #[error("store {store} is full: {used} bytes in use + {needed} for this object would pass the quota max_store_bytes={quota}; delete objects or tables, run gc(), or raise max_store_bytes in settings.yaml")]
    StoreFull {
        /// The store directory.
        store: std::path::PathBuf,
        /// Bytes held by the live versions of the store's tables and objects.
        used: u64,
        /// Bytes the refused object needed.
        needed: u64,
        /// The quota.
        quota: u64,
    },

    /// The store, a directory or file in it, or a shared-memory segment it uses is not
    /// private to this user (owned by someone else, writable by others, or a symbolic
    /// link): another user could read, plant or delete data through it, or have a pickle
    /// loaded, so nothing was read or written (see `crate::sys::trust`).
    #[error("{} {reason}; a store and everything in it must belong to you and be writable by nobody else, so nothing was read or written ({fix})", path.display())]
    StoreNotPrivate {
        /// The directory, file or segment that is not private.
        path: std::path::PathBuf,
        /// Its owner's uid, when known.
        owner: Option<u32>,
        /// Its permission bits, when known (`None` for a symbolic link).
        mode: Option<u32>,
        /// What is wrong with it.
        reason: String,
        /// What to do about it (the command to run).
        fix: String,
    },

    /// A float column the send was told holds no NaN (`SendOptions::reject_nan`) holds
    /// one: nothing was written. The Python converter then sends the column with its NaN
    /// as nulls.
    #[error("column {column} holds NaN, and the send was told it holds none (reject_nan); nothing was written: convert NaN to nulls (pyarrow's from_pandas=True) or leave the column out of reject_nan")]
    NanFound {
        /// The column's index in the schema.
        column: usize,
    },

    /// A stream being received broke off (the sender or the connection went away):
    /// nothing was published.
    #[error("the stream broke off after {rows} rows: {reason}; nothing was stored, try again (or another replica)")]
    StreamBroken {
        /// Rows received before it broke.
        rows: u64,
        /// The stream's own error.
        reason: String,
    },

    /// An append to a streaming table holds values that a column of the stream cannot
    /// take without changing a value (a string into a number column): nothing of the
    /// rows holding them was appended.
    #[error("{}", conflict_message(table, conflicts))]
    SchemaConflict {
        /// The stream.
        table: String,
        /// Each field that could not be unified.
        conflicts: Vec<FieldConflict>,
    },
}

/// One field an append to a stream could not store: its values' type cannot share a
/// column with the column's type (PROTOCOL.md 8.13, "Schema").
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldConflict {
    /// The field (`outer.inner` for a field inside a struct).
    pub field: String,
    /// The type of the append's values.
    pub value_type: String,
    /// The type of the stream's column.
    pub column_type: String,
    /// Which part of a multi-part append holds the values (0 for a single table).
    pub part: usize,
}

impl std::fmt::Display for FieldConflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "field {:?} has {} values for a column of type {}", self.field, self.value_type, self.column_type)
    }
}

fn conflict_message(table: &str, conflicts: &[FieldConflict]) -> String {
    let each: Vec<String> = conflicts.iter().map(ToString::to_string).collect();
    format!(
        "stream {table:?}: {}; a column keeps its kind of value (numbers widen, nothing else changes): \
         convert the values, or append them to another stream. The rows holding them were not appended",
        each.join("; ")
    )
}

impl Error {
    /// `TableNotFound` for `table` (and `producer`) in the store at `store`.
    pub fn table_not_found(store: &std::path::Path, table: &str, producer: Option<&str>) -> Self {
        Error::TableNotFound { table: table.into(), producer: producer.map(Into::into), store: store.to_path_buf() }
    }

    /// Wraps an `io::Error` with a sentence saying what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io { context: context.into(), source }
    }

    /// True when the error means "the device is full" (ENOSPC / disk full).
    pub fn is_no_space(&self) -> bool {
        match self {
            Error::Io { source, .. } => {
                source.kind() == std::io::ErrorKind::StorageFull || source.raw_os_error() == Some(28)
            }
            _ => false,
        }
    }
}

/// Extension to attach context to `io::Result`s.
pub(crate) trait IoContext<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::io(context(), e))
    }
}
