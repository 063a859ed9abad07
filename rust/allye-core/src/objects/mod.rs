//! Named objects: Python objects, NumPy arrays and Arrow data under a name in a
//! namespace, with the guarantees of tables (crash-safe publish, immutable versions read
//! in place, gc of superseded, orphaned and expired versions, TTL, watch).
//!
//! A namespace is a sub-store, `<store>/objects/<namespace>/`, with its own manifest and
//! payloads in protocol v1's line format, so everything the tables machinery does carries
//! over unchanged, while the store's own manifest (the one 0.1.2 and the widgets read)
//! never holds an object's line. Every object is an Arrow IPC payload; what it encodes
//! (a frame, raw array bytes, a pickle and its out-of-band buffers) is recorded under
//! `metadata.adc_object` on its lines. The encoding itself is the caller's (the Python
//! package converts objects to Arrow, as it does frames); this module owns the
//! namespaces, the quota, the privacy rule that guards pickle loads, and the accounting.
//! A small object put with `auto` is carried inside its `ready` line (an inline payload,
//! [`crate::payload::encode_inline`]): one append instead of a line, a segment and a line.

use crate::sys::fs::PathMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, LargeBinaryArray, RecordBatch};
use arrow_buffer::{Buffer, OffsetBuffer, ScalarBuffer};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::manifest::{self, Event};
use crate::payload::Decoded;
use crate::protocol::{
    check_namespace_name, check_table_name, namespace_dir_name, namespace_from_dir_name, Status, DEFAULT_NAMESPACE,
    OBJECTS_DIR, OBJECT_BYTES_COLUMN, OBJECT_DESCRIPTION, OBJECT_KIND, OBJECT_KIND_NUMPY, OBJECT_KIND_PICKLE,
    OBJECT_METADATA_KEY,
};
use crate::store::Store;
use crate::sys::fork::ForkLocal;
use crate::sys::trust::EntryKind;
use crate::tables::{self, Removal, SendOptions};
use crate::tuning::{
    LISTING_SETTLED, OBJECTS_COMPACTED_REMEMBERED, OBJECTS_COMPACT_BYTES_PER_LIVE, OBJECTS_COMPACT_MIN_BYTES,
    OBJECTS_INLINE_MAX_BYTES, OBJECTS_LISTINGS_REMEMBERED,
};

#[cfg(unix)]
mod create;
#[cfg(test)]
mod tests;

#[cfg(unix)]
pub use create::ObjectWriter;

/// How [`Namespace::put_with`] publishes, beyond the [`SendOptions`] of the payload.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PutOptions {
    /// Refuse with `StoreFull` (writing nothing) when the store's live bytes plus this
    /// object's would pass it (`max_store_bytes`).
    pub quota: Option<u64>,
    /// Without a description of its own, the new version keeps the previous one's.
    pub keep_description: bool,
}

impl PutOptions {
    /// Options with this quota and the other fields at their defaults.
    pub fn with_quota(quota: Option<u64>) -> Self {
        PutOptions { quota, ..Self::default() }
    }

    /// These options with `keep_description` set to `keep`.
    pub fn keeping_description(mut self, keep: bool) -> Self {
        self.keep_description = keep;
        self
    }
}

/// One namespace of named objects in a store.
#[derive(Debug, Clone)]
pub struct Namespace {
    parent: Store,
    name: String,
    store: Store,
}

/// Free space around a store, and its quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct Capacity {
    /// Free bytes of `/dev/shm` (`None` where it does not exist).
    pub shm_free: Option<u64>,
    /// Size of `/dev/shm`.
    pub shm_total: Option<u64>,
    /// Free bytes of the file system holding the store (`None` if the store does not exist).
    pub store_free: Option<u64>,
    /// Size of that file system.
    pub store_total: Option<u64>,
    /// Bytes held by the live versions of the store's tables and objects.
    pub used: u64,
    /// The configured quota (`max_store_bytes`), if any.
    pub quota: Option<u64>,
    /// Bytes of this user's pool segments in `/dev/shm` (every process's pool, see
    /// [`crate::pool`]): pre-mapped memory for large sends, given back when idle.
    pub pool_bytes: u64,
    /// How many pool segments that is.
    pub pool_segments: usize,
    /// This process's pool bound ([`crate::pool::default_max_bytes`] until a send sets it).
    pub pool_max_bytes: u64,
}

impl Namespace {
    /// The namespace `name` of the store `parent` (checks the name; touches nothing).
    pub fn open(parent: &Store, name: &str) -> Result<Self> {
        check_namespace_name(name)?;
        Ok(Namespace { parent: parent.clone(), name: name.to_string(), store: sub_store(parent, name) })
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The sub-store holding this namespace's log and payloads (watch it to wait for a
    /// new version).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The store the namespace belongs to.
    pub fn parent(&self) -> &Store {
        &self.parent
    }

    /// Publishes a new version of `name` (the previous one stays readable by whoever
    /// holds it). `opts.metadata` must carry `adc_object` with the object's `kind`. With
    /// a `quota`, refuses with `StoreFull` (writing nothing) when the store's live bytes
    /// plus this object's would pass it.
    pub fn put(
        &self,
        name: &str,
        schema: &SchemaRef,
        batches: &[RecordBatch],
        opts: &SendOptions,
        quota: Option<u64>,
    ) -> Result<Event> {
        self.put_with(name, schema, batches, opts, &PutOptions { quota, keep_description: false })
    }

    /// [`put`](Self::put) with [`PutOptions`]: with `keep_description`, a version put
    /// without `metadata.adc_object.description` takes the previous version's (brain-plasma's
    /// rule: a new description replaces the old one, none keeps it), found in the same
    /// index the put reads anyway rather than by a separate lookup from the caller.
    pub fn put_with(
        &self,
        name: &str,
        schema: &SchemaRef,
        batches: &[RecordBatch],
        opts: &SendOptions,
        put: &PutOptions,
    ) -> Result<Event> {
        self.put_owned(name, schema, batches, opts.clone(), put)
    }

    /// [`put_with`](Self::put_with), with the caller's own copy of the options.
    fn put_owned(
        &self,
        name: &str,
        schema: &SchemaRef,
        batches: &[RecordBatch],
        mut opts: SendOptions,
        put: &PutOptions,
    ) -> Result<Event> {
        check_table_name(name)
            .map_err(|e| Error::InvalidArgument(e.to_string().replace("table name", "object name")))?;
        if kind_of_metadata(&opts.metadata).is_none() {
            return Err(Error::InvalidArgument(format!(
                "object {name:?}: metadata.{OBJECT_METADATA_KEY}.{OBJECT_KIND} is missing; say what the payload encodes"
            )));
        }
        // The store's directory checked, and the namespace's walked beneath it, once for
        // the whole put (see `Store::pin`): the quota's count and the put share them.
        // Missing ones are made after the quota's check (a refused put makes nothing).
        let parent = self.parent.pin(false)?;
        let existing = sub_store(&parent, &self.name).pin(false)?;
        // The quota's count and the previous description's lookup read the namespace's
        // log once between them (see `manifest::one_look`).
        let store = manifest::one_look(|| -> Result<Store> {
            if let Some(quota) = put.quota {
                let needed: u64 = batches.iter().map(|b| b.get_array_memory_size() as u64).sum();
                let used = store_used_sharing(&parent, Some((&self.name, &existing)))?;
                if used.saturating_add(needed) > quota {
                    return Err(Error::StoreFull { store: self.parent.root().to_path_buf(), used, needed, quota });
                }
            }
            let store = existing.pin(true)?;
            if put.keep_description {
                inherit_description(&store, name, &mut opts.metadata)?;
            }
            Ok(store)
        })?;
        opts.table_name = Some(name.to_string());
        // A small object travels inside its line (`Auto` only: an explicit transport is
        // the caller's to choose).
        opts.inline_max_bytes = OBJECTS_INLINE_MAX_BYTES;
        // An object's batches are its encoding (a pickle's stream, then each out-of-band
        // buffer): kept as given, never joined into one batch as a table's are.
        opts.chunk_rows = Some(0);
        let (ready, log_len) = tables::send_sized(&store, schema, batches, &opts)?;
        self.compact_if_long(&store, log_len);
        Ok(ready)
    }

    /// Compacts the log when it has grown well past what its live objects need (best
    /// effort: a failure leaves the longer log, which is still correct).
    ///
    /// A compaction keeps the lines of every version whose payload still exists (versions
    /// inside the auto-gc grace, or with auto-gc off), so a log can stay long after one:
    /// this process then waits for the log to double what that compaction left before it
    /// tries again, instead of rewriting the whole log on every put of a loop.
    ///
    /// `log_len` is the log's length just after the put's line (other writers' later
    /// lines are counted at the next put).
    fn compact_if_long(&self, store: &Store, log_len: u64) {
        static LEFT: ForkLocal<Mutex<PathMap<u64>>> = ForkLocal::new(Default::default);
        let path = store.manifest_path();
        let left =
            LEFT.get().lock().unwrap_or_else(|p| p.into_inner()).get(crate::sys::fs::key(&path)).copied().unwrap_or(0);
        if log_len < OBJECTS_COMPACT_MIN_BYTES.max(left.saturating_mul(2)) {
            return;
        }
        let live = self.len().unwrap_or(0) as u64;
        if log_len > live.saturating_mul(OBJECTS_COMPACT_BYTES_PER_LIVE) {
            if let Ok(report) = crate::gc::compact(&self.store) {
                let mut left = LEFT.get().lock().unwrap_or_else(|p| p.into_inner());
                if left.len() >= OBJECTS_COMPACTED_REMEMBERED && !left.contains_key(crate::sys::fs::key(&path)) {
                    left.clear();
                }
                left.insert(path.into(), report.bytes_after);
            }
        }
    }

    /// [`put_with`](Self::put_with) of an object stored as raw bytes (kind `numpy` or
    /// `pickle` in `opts.metadata`): one record batch of one `large_binary` value per
    /// value (a NumPy array's bytes; a pickle stream, then each out-of-band buffer), the
    /// bytes as given, not copied before the payload's write; [`raw_bytes`] reads them
    /// back. Spares a caller building Arrow batches around bytes it already has.
    pub fn put_bytes(&self, name: &str, values: &[Buffer], opts: &SendOptions, put: &PutOptions) -> Result<Event> {
        match kind_of_metadata(&opts.metadata) {
            Some(kind) if RAW_KINDS.contains(&kind) => {}
            other => {
                return Err(Error::InvalidArgument(format!(
                    "object {name:?}: raw bytes are stored for the kinds {RAW_KINDS:?}, not {other:?}; put Arrow data \
                     for the others"
                )))
            }
        }
        let (schema, hash) = bytes_schema_and_hash();
        let batches = values.iter().map(|v| bytes_batch(schema, v.clone())).collect::<Result<Vec<_>>>()?;
        let mut opts = opts.clone();
        opts.schema_sha256.get_or_insert_with(|| hash.clone());
        self.put_owned(name, schema, &batches, opts, put)
    }

    /// The current version of `name`, read in place. A pickle is served only from a
    /// private store (see [`check_private`]), and only when `allow_pickle`.
    pub fn get(&self, name: &str, allow_pickle: bool) -> Result<(Event, Decoded)> {
        let store = self.store.pin(false)?;
        // No log: the lookup finds nothing (not found); a log failing the trust rule is
        // refused by it.
        // Mapping a payload runs nothing; the checks come before the data is handed out.
        let (ev, data) = tables::get(&store, name, None, false).map_err(|e| self.object_error(name, e))?;
        if kind_of(&ev) == Some(OBJECT_KIND_PICKLE) {
            if !allow_pickle {
                return Err(pickle_refused(name));
            }
            // The store and the namespace's folders were checked when pinned, this get,
            // and the log by its lookup (owner, mode, no link): `payloads/` is left.
            match store.open_dir()? {
                Some(dir) => {
                    dir.check_entry(crate::protocol::PAYLOAD_DIR, crate::sys::trust::Kind::Dir)?;
                }
                None => check_private(&self.parent, Some(self))?,
            }
        }
        Ok((ev, data))
    }

    /// [`get`](Self::get), with an object stored as raw bytes (a NumPy array, a pickle and
    /// its out-of-band buffers: see [`raw_bytes`]) handed out as those bytes rather than as
    /// Arrow batches a caller would have to take apart.
    pub fn get_bytes(&self, name: &str, allow_pickle: bool) -> Result<(Event, ObjectData)> {
        let (ev, data) = self.get(name, allow_pickle)?;
        let out = match raw_bytes(&ev, &data) {
            Some(values) => ObjectData::Bytes(values),
            None => ObjectData::Arrow(data),
        };
        Ok((ev, out))
    }

    /// The current `ready` event of `name` without reading its payload.
    pub fn latest(&self, name: &str) -> Result<Event> {
        tables::latest(&self.store, name, None).map_err(|e| self.object_error(name, e))
    }

    /// `ObjectNotFound` for `name` in this namespace.
    fn not_found(&self, name: &str) -> Error {
        Error::ObjectNotFound {
            name: name.into(),
            namespace: self.name.clone(),
            store: self.parent.root().to_path_buf(),
        }
    }

    /// A tables error about `name` in words of objects (the namespace's log is a table log).
    fn object_error(&self, name: &str, e: Error) -> Error {
        match e {
            Error::TableNotFound { .. } => self.not_found(name),
            e => e,
        }
    }

    /// Makes the namespace exist (its directory and an empty log) without storing an
    /// object, so that it is listed by [`namespaces`] before its first object; returns
    /// false when it existed. Idempotent and safe against concurrent puts (the log is
    /// opened for appending, never truncated).
    pub fn make_exist(&self) -> Result<bool> {
        if has_log(&self.store)? {
            return Ok(false);
        }
        let dir = self.store.ensure()?;
        dir.open(crate::protocol::MANIFEST_FILE, crate::sys::trust::Open::Append)?;
        Ok(true)
    }

    /// The current version of every object, sorted by name (from the incremental index:
    /// only log bytes appended since the last look are read).
    pub fn list(&self) -> Result<Vec<Event>> {
        if !has_log(&self.store)? {
            return Ok(Vec::new());
        }
        Ok(tables::list(&self.store, None)?.into_iter().filter(|ev| !is_expired(ev)).collect())
    }

    /// How many objects the namespace holds.
    pub fn len(&self) -> Result<usize> {
        Ok(self.list()?.len())
    }

    /// True when the namespace holds no object.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Bytes held by the current versions of this namespace's objects.
    pub fn used(&self) -> Result<u64> {
        // No log yet: an empty index, nothing used.
        tables::live_bytes(&self.store, true)
    }

    /// Removes `name` (a removal line, then its payloads); `ObjectNotFound` if it never existed.
    pub fn remove(&self, name: &str) -> Result<Removal> {
        if !has_log(&self.store)? {
            return Err(self.not_found(name));
        }
        tables::remove(&self.store, name).map_err(|e| self.object_error(name, e))
    }
}

/// The sub-store of namespace `name` in `parent`, `<store>/objects/<name>/` (a pinned
/// parent's handle is inherited, see [`Store::inner`]).
fn sub_store(parent: &Store, name: &str) -> Store {
    parent.inner(Path::new(OBJECTS_DIR).join(namespace_dir_name(name)))
}

/// `<store>/objects/`.
pub fn objects_dir(parent: &Store) -> PathBuf {
    parent.root().join(OBJECTS_DIR)
}

/// True when the store has a manifest (a regular file, reached without a symbolic link).
fn has_log(store: &Store) -> Result<bool> {
    Ok(store.stat(&store.manifest_path())?.is_some_and(|s| s.kind == EntryKind::File))
}

/// The namespaces whose folder exists in `objects/`, with or without a log yet.
///
/// Every put under a quota asks. On Unix the listing is remembered per folder and reused
/// while a `stat` of the folder shows the same device, inode and modification time,
/// provided that time lay [`LISTING_SETTLED`] before the listing: a folder changed again
/// within the file system's timestamp granularity could keep its time, so a listing
/// made that soon after a change is not kept. A reused listing costs one `statat` from
/// the store's checked handle (the trust rule applied to what it says), no open.
fn namespace_folders(parent: &Store) -> Result<Vec<String>> {
    let list = |dir: &crate::sys::trust::TrustedDir| -> Result<Vec<String>> {
        Ok(dir
            .entries()?
            .into_iter()
            .filter(|entry| entry.kind == EntryKind::Dir)
            .filter_map(|entry| entry.name.to_str().and_then(namespace_from_dir_name))
            .collect())
    };
    #[cfg(unix)]
    {
        /// Device, inode and modification time (ns) of a listed folder.
        type Stamp = (u64, u64, i64);
        type Listings = PathMap<(Stamp, Vec<String>)>;
        static LISTED: ForkLocal<Mutex<Listings>> = ForkLocal::new(Default::default);
        #[allow(clippy::unnecessary_cast)] // the types of `stat`'s fields differ between platforms
        let stamp_of = |st: &rustix::fs::Stat| -> (Stamp, i128) {
            let ns = st.st_mtime as i128 * 1_000_000_000 + st.st_mtime_nsec as i128;
            ((st.st_dev as u64, st.st_ino as u64, ns as i64), ns)
        };
        let listed = LISTED.get();
        let Some(root) = parent.open_dir()? else { return Ok(Vec::new()) };
        let path = root.path().join(OBJECTS_DIR);
        // A directory passing the rule whose stamp is the listing's: the listing. Anything
        // else (no listing yet, a change, no folder, a link) goes through the checked open,
        // which says what is wrong.
        if let Some(st) = root.dir_stat(OBJECTS_DIR)? {
            if let Some((seen, names)) =
                listed.lock().unwrap_or_else(|p| p.into_inner()).get(crate::sys::fs::key(&path))
            {
                if *seen == stamp_of(&st).0 {
                    return Ok(names.clone());
                }
            }
        }
        let Some(dir) = parent.dir_at(Path::new(OBJECTS_DIR), false)? else { return Ok(Vec::new()) };
        let (stamp, modified_ns) = stamp_of(&dir.metadata()?);
        let names = list(&dir)?;
        let now_ns =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i128);
        if now_ns - modified_ns > LISTING_SETTLED.as_nanos() as i128 {
            let mut map = listed.lock().unwrap_or_else(|p| p.into_inner());
            if map.len() >= OBJECTS_LISTINGS_REMEMBERED {
                map.clear();
            }
            map.insert(path.into(), (stamp, names.clone()));
        }
        Ok(names)
    }
    #[cfg(not(unix))]
    {
        let Some(dir) = parent.dir_at(Path::new(OBJECTS_DIR), false)? else { return Ok(Vec::new()) };
        list(&dir)
    }
}

/// The namespaces that exist in the store (those with a log), sorted.
pub fn namespaces(parent: &Store) -> Result<Vec<String>> {
    let Some(dir) = parent.dir_at(Path::new(OBJECTS_DIR), false)? else { return Ok(Vec::new()) };
    let mut out: Vec<String> = Vec::new();
    for entry in dir.entries()? {
        if entry.kind != EntryKind::Dir {
            continue;
        }
        let Some(name) = entry.name.to_str().and_then(namespace_from_dir_name) else { continue };
        let Some(ns) = dir.open_dir(&entry.name)? else { continue };
        if ns.stat(crate::protocol::MANIFEST_FILE)?.is_some_and(|s| s.kind == EntryKind::File) {
            out.push(name);
        }
    }
    out.sort();
    Ok(out)
}

/// Removes a namespace: every object in it, then its directory. The default namespace
/// cannot be removed; an unknown one is `InvalidArgument`. Returns how many objects it held.
pub fn remove_namespace(parent: &Store, name: &str) -> Result<usize> {
    if name == DEFAULT_NAMESPACE {
        return Err(Error::InvalidArgument(format!(
            "the {DEFAULT_NAMESPACE:?} namespace cannot be removed; delete its objects one by one instead"
        )));
    }
    let ns = Namespace::open(parent, name)?;
    if !has_log(&ns.store)? {
        return Err(Error::InvalidArgument(format!(
            "namespace {name:?} does not exist in {}; adc.namespaces() lists those that do",
            parent.root().display()
        )));
    }
    let names: Vec<String> = manifest::latest_per_table(&ns.store)?.into_keys().collect();
    let mut live = 0;
    for n in &names {
        if ns.latest(n).is_ok() {
            live += 1;
        }
        // Removal frees the payloads this log names (segments included) before the
        // directory goes, so nothing is left for the orphan scanner.
        let _ = tables::remove(&ns.store, n)?;
    }
    if let Some(dir) = parent.dir_at(Path::new(OBJECTS_DIR), false)? {
        dir.remove_dir_all(namespace_dir_name(name))?;
    }
    Ok(live)
}

/// Bytes held by the live versions of the store's tables and of every namespace's
/// objects (the quantity `max_store_bytes` bounds). Its cost depends on the number of
/// live names, not on the number of versions ever written (the per-process index reads
/// only what was appended since the last look).
pub fn store_used(parent: &Store) -> Result<u64> {
    // Checked once for the whole count (see `Store::pin`).
    store_used_sharing(&parent.pin(false)?, None)
}

/// [`store_used`], counting namespace `known.0` through `known.1`, its sub-store as the
/// caller has pinned it already (a put's quota check).
fn store_used_sharing(parent: &Store, known: Option<(&str, &Store)>) -> Result<u64> {
    let mut total = 0u64;
    if has_log(parent)? {
        total += tables::live_bytes(parent, false)?;
    }
    // Every namespace folder, a log or not: one without a log uses nothing, and looking
    // for the log apart would open each folder once more on every put under a quota.
    for ns in namespace_folders(parent)? {
        total += match known {
            Some((name, store)) if name == ns => tables::live_bytes(store, true)?,
            _ => Namespace::open(parent, &ns)?.used()?,
        };
    }
    Ok(total)
}

/// Free space of `/dev/shm` and of the store's file system, the bytes in use and the quota.
pub fn capacity(parent: &Store, quota: Option<u64>) -> Result<Capacity> {
    let (shm_free, shm_total) = statvfs(Path::new("/dev/shm"));
    let (store_free, store_total) = statvfs(parent.root());
    let (pool_bytes, pool_segments) = crate::pool::machine_held();
    let stats = crate::pool::stats();
    let pool_max_bytes = if stats.max_bytes > 0 { stats.max_bytes } else { crate::pool::default_max_bytes() };
    Ok(Capacity {
        shm_free,
        shm_total,
        store_free,
        store_total,
        used: store_used(parent)?,
        quota,
        pool_bytes,
        pool_segments,
        pool_max_bytes,
    })
}

#[cfg(unix)]
fn statvfs(path: &Path) -> (Option<u64>, Option<u64>) {
    match rustix::fs::statvfs(path) {
        Ok(s) => (Some(s.f_bavail.saturating_mul(s.f_frsize)), Some(s.f_blocks.saturating_mul(s.f_frsize))),
        Err(_) => (None, None),
    }
}

#[cfg(not(unix))]
fn statvfs(_path: &Path) -> (Option<u64>, Option<u64>) {
    (None, None)
}

/// What [`Namespace::get_bytes`] reads: the bytes of an object stored as raw bytes, or
/// the Arrow data of any other.
#[derive(Debug)]
pub enum ObjectData {
    /// One buffer per record batch (a pickle's stream, then each out-of-band buffer; an
    /// array's bytes), each a slice of the mapped payload that keeps the mapping alive.
    Bytes(Vec<Buffer>),
    /// The payload's Arrow data, read in place.
    Arrow(Decoded),
}

/// The kinds whose payload is one `large_binary` value per batch in
/// [`OBJECT_BYTES_COLUMN`]: what the Python package reads back as bytes.
const RAW_KINDS: [&str; 2] = [OBJECT_KIND_NUMPY, OBJECT_KIND_PICKLE];

/// The value of each batch of an object of a raw-bytes kind, as slices of the payload's
/// buffers (no copy: a slice holds the mapping, which stays mapped for as long as one
/// is held, even after the version is freed); `None` for other kinds, or a payload
/// that is not one `large_binary` value per batch (left to the Arrow reader).
pub fn raw_bytes(ev: &Event, data: &Decoded) -> Option<Vec<Buffer>> {
    if !RAW_KINDS.contains(&kind_of(ev)?) {
        return None;
    }
    let field = data.schema.fields().first()?;
    if data.schema.fields().len() != 1
        || field.name() != OBJECT_BYTES_COLUMN
        || field.data_type() != &DataType::LargeBinary
    {
        return None;
    }
    data.batches
        .iter()
        .map(|b| {
            let col = b.column(0).as_binary_opt::<i64>()?;
            if col.len() != 1 || col.is_null(0) {
                return None;
            }
            let offsets = col.value_offsets();
            let (start, end) = (usize::try_from(offsets[0]).ok()?, usize::try_from(offsets[1]).ok()?);
            Some(col.values().slice_with_length(start, end.checked_sub(start)?))
        })
        .collect()
}

/// The schema of an object stored as raw bytes: one `large_binary` column.
pub(crate) fn bytes_schema() -> SchemaRef {
    bytes_schema_and_hash().0.clone()
}

/// [`bytes_schema`] (one `Arc` per process) and its `schema_sha256`, made once: every put
/// of an array or a pickle would otherwise format and hash the same schema again.
pub(crate) fn bytes_schema_and_hash() -> &'static (SchemaRef, String) {
    static MADE: ForkLocal<(SchemaRef, String)> = ForkLocal::new(|| {
        let schema = Arc::new(Schema::new(vec![Field::new(OBJECT_BYTES_COLUMN, DataType::LargeBinary, true)]));
        let hash = tables::schema_sha256(&schema);
        (schema, hash)
    });
    MADE.get()
}

/// One record batch of [`bytes_schema`] holding `value` as its one value (not copied).
pub(crate) fn bytes_batch(schema: &SchemaRef, value: Buffer) -> Result<RecordBatch> {
    let offsets = OffsetBuffer::new(ScalarBuffer::from(vec![0i64, value.len() as i64]));
    let array: ArrayRef = Arc::new(LargeBinaryArray::try_new(offsets, value, None)?);
    Ok(RecordBatch::try_new(schema.clone(), vec![array])?)
}

/// The `kind` of an object line (`None` for a line without `metadata.adc_object`).
pub fn kind_of(ev: &Event) -> Option<&str> {
    kind_of_metadata(&ev.metadata)
}

fn kind_of_metadata(m: &serde_json::Map<String, Value>) -> Option<&str> {
    m.get(OBJECT_METADATA_KEY)?.get(OBJECT_KIND)?.as_str()
}

/// Copies the current version's `adc_object.description` into `metadata` when it has
/// none of its own (nothing when there is no current version or it had none).
fn inherit_description(store: &Store, name: &str, metadata: &mut serde_json::Map<String, Value>) -> Result<()> {
    let has_own =
        metadata.get(OBJECT_METADATA_KEY).and_then(|m| m.get(OBJECT_DESCRIPTION)).is_some_and(|d| !d.is_null());
    if has_own {
        return Ok(());
    }
    // No log yet: the lookup answers None (it opens the log anyway; no `stat` first).
    let previous = manifest::latest_ready_with(store, name, None, |ev| {
        ev.metadata.get(OBJECT_METADATA_KEY).and_then(|m| m.get(OBJECT_DESCRIPTION)).cloned()
    })?;
    let Some(Some(description)) = previous else { return Ok(()) };
    if let Some(Value::Object(obj)) = metadata.get_mut(OBJECT_METADATA_KEY) {
        obj.insert(OBJECT_DESCRIPTION.to_string(), description);
    }
    Ok(())
}

fn is_expired(ev: &Event) -> bool {
    ev.status == Status::Ready
        && ev.payload.as_ref().is_some_and(|p| crate::sys::time::is_expired(p.expires_at.as_deref()))
}

/// Checks that a store is private to this user before a pickle in it is loaded: the
/// store directory, `objects/`, the namespace directory, its `payloads/` and manifest
/// must be owned by this user, not writable by group or others, and not symlinks (ssh's
/// rule for `~/.ssh`, the trust rule of `crate::sys::trust` that every access applies).
/// `StoreNotPrivate` names the first offender and the command to run.
pub fn check_private(parent: &Store, ns: Option<&Namespace>) -> Result<()> {
    let Some(root) = parent.open_dir()? else { return Ok(()) };
    let Some(objects) = root.open_dir(OBJECTS_DIR)? else { return Ok(()) };
    if let Some(ns) = ns {
        let Some(dir) = objects.open_dir(namespace_dir_name(&ns.name))? else { return Ok(()) };
        check_private_below(&dir)?;
    }
    Ok(())
}

/// [`check_private`]'s checks inside a namespace's directory (itself already opened, and
/// so checked, with the folders above it): a `statat` of each entry, the trust rule
/// applied to what it says, as opening them would (every get of a pickle runs this).
fn check_private_below(dir: &crate::sys::trust::TrustedDir) -> Result<()> {
    use crate::sys::trust::Kind;
    dir.check_entry(crate::protocol::PAYLOAD_DIR, Kind::Dir)?;
    dir.check_entry(crate::protocol::MANIFEST_FILE, Kind::File)?;
    Ok(())
}

fn pickle_refused(name: &str) -> Error {
    Error::InvalidArgument(format!(
        "object {name:?} is a pickle and allow_pickle is off; set allow_pickle: true in settings.yaml (or pass allow_pickle=True) if you trust every writer of this store"
    ))
}

/// Collects the garbage of every namespace (superseded, expired and orphaned versions,
/// what dead writers left; see [`crate::gc::collect`]), each action's table named
/// `<namespace>/<object>`.
pub fn collect(parent: &Store, opts: crate::gc::GcOptions) -> Result<Vec<crate::gc::GcAction>> {
    let mut out = Vec::new();
    for name in namespaces(parent)? {
        let ns = Namespace::open(parent, &name)?;
        for mut action in crate::gc::collect(&ns.store, opts)? {
            action.table_name = format!("{name}/{}", action.table_name);
            out.push(action);
        }
    }
    Ok(out)
}
