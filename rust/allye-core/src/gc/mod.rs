//! Garbage collection and manifest compaction.
//!
//! [`collect`] frees what no reader can be served any more, and only that:
//! * payloads whose TTL has run out (`expires_at` in the past; such versions are not served);
//! * superseded versions: for every `(table_name, producer)` the latest `keep_versions`
//!   `ready` versions are kept, older ones are freed (a reader that already maps one keeps
//!   valid data on POSIX; a reader that looked one up just before gc retries, see
//!   [`crate::tables::get`]);
//! * shared-memory segments flagged `shm_unlink_on_read` once a reader of ours has read
//!   them (readers leave a marker in `<store>/reads/`);
//! * leftovers of dead writers: a transfer with a `writing` line but no `ready`/`error`
//!   line whose writer process is gone (pid, start time and boot id are recorded in the
//!   `writing` line's `metadata.adc`). Its planned segment or file and its temporary file
//!   are removed and an `error` line is appended so the table's state says what happened.
//!   A live writer's work is never touched; a writer whose liveness cannot be told is left;
//! * leftovers of failed sends (an `error` line whose payload still exists).
//!
//! [`collect_orphans`] frees what is left outside any live store: the segments of this
//! user's deleted stores, and the scratch folders of loads whose process died. Every collector
//! (these two, the shared arrays', the streams' and the named objects') reports the one
//! [`GcAction`] type; [`crate::Store::gc`] runs them all, in a fixed order.
//!
//! [`collect_superseded`] is the bounded step each send takes after its `ready` line:
//! superseded versions are freed a grace period after their successor appeared, without
//! anyone calling gc (see its module docs).
//!
//! gc deletes only files directly inside this store's `payloads/` and segments with a
//! valid name that this store's manifest names; a locator elsewhere is reported as
//! `skip` and never followed.
//!
//! [`compact`] rewrites the manifest, under the writers' lock, keeping only the lines that
//! still mean something: `ready` lines of live payloads, the latest `error` line per
//! table, and `writing` lines of transfers that have not finished. The kept lines are
//! copied byte for byte (unknown fields survive); the new file is written under a
//! temporary name, fsync'ed and renamed over the old one. Lock-free readers see either
//! the old or the new file; writers (ours and 0.1.2's) open the manifest only while
//! holding the lock, so no append can land in the replaced file.

mod collect;
mod compact;
mod markers;
mod orphans;
mod superseded;

pub use collect::collect;
pub use compact::{compact, CompactReport};
pub(crate) use markers::unlink_on_read;
pub use markers::{is_consumed, mark_read, marker_exists, read_marker};
pub use orphans::{collect_orphans, store_tag, RECORD_PREFIX, TAG_LEN};
pub use superseded::{collect_superseded, AutoGc, MAX_FREED_PER_SEND, START_WINDOW};

use serde::Serialize;

use crate::protocol::{GcActionKind, GcScope, Transport, DEFAULT_KEEP_VERSIONS};

/// What gc is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct GcOptions {
    /// Only report what would be done.
    pub dry_run: bool,
    /// Ready versions kept per `(table_name, producer)`, at least 1.
    pub keep_versions: usize,
}

impl Default for GcOptions {
    fn default() -> Self {
        GcOptions { dry_run: true, keep_versions: DEFAULT_KEEP_VERSIONS }
    }
}

impl GcOptions {
    /// Options that delete (`dry_run: false`) or only report, keeping `keep_versions`.
    pub fn new(dry_run: bool, keep_versions: usize) -> Self {
        GcOptions { dry_run, keep_versions }
    }
}

/// What a [`GcAction`] is about, spelled as its `transport`: a payload of protocol v1
/// (by its wire transport; empty for a dead writer that planned none), a shared array's
/// segment, or a stream's chunk file or removed directory.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GcTransport {
    /// A table's or an object's payload.
    Payload(Transport),
    /// A shared array's segment (`locator` is the segment, `table_name` the array).
    SharedArray,
    /// A stream's chunk or temporary file, or a removed stream's directory (`locator` is
    /// the path).
    StreamChunk,
    /// A load's scratch folder in the temporary directory (`locator` is the path).
    Scratch,
}

impl GcTransport {
    /// The spelling of a shared array's actions.
    pub const SHARED_ARRAY: &'static str = "shared_array";
    /// The spelling of a stream's actions.
    pub const STREAM_CHUNK: &'static str = "stream_chunk";
    /// The spelling of a scratch folder's actions.
    pub const SCRATCH: &'static str = "scratch";

    /// The spelling the bindings and the CLI show.
    pub fn as_str(&self) -> &str {
        match self {
            GcTransport::Payload(t) => t.as_str(),
            GcTransport::SharedArray => Self::SHARED_ARRAY,
            GcTransport::StreamChunk => Self::STREAM_CHUNK,
            GcTransport::Scratch => Self::SCRATCH,
        }
    }
}

impl From<Transport> for GcTransport {
    fn from(t: Transport) -> Self {
        GcTransport::Payload(t)
    }
}

impl PartialEq<&str> for GcTransport {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Serialize for GcTransport {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// One thing gc did or would do, whichever collector found it (see [`crate::Store::gc`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct GcAction {
    /// Delete, skip (outside this store) or record (an `error` line for a dead writer).
    pub action: GcActionKind,
    /// What is freed: a payload (by its transport), a shared array or a stream's file.
    pub transport: GcTransport,
    /// The payload's segment name or file path; the array's segment; the stream file's path.
    pub locator: String,
    /// The table (or `<namespace>/<object>`, or array) the thing belongs to; empty when
    /// unknown (a deleted store's segment, a removed stream's directory).
    pub table_name: String,
    /// Why, in words.
    pub reason: String,
    /// The transfer (`id` of the manifest lines) the payload belongs to; empty for
    /// anything that is not a transfer's payload.
    pub id: String,
    /// Whether it is the store's own, or a leftover outside any live store (reported
    /// apart: the gc of one store frees what every deleted store of the user left).
    pub scope: GcScope,
}

impl GcAction {
    /// A `delete` of something of the store that is not a transfer's payload (no `id`).
    pub fn delete(transport: GcTransport, locator: String, table_name: String, reason: String) -> Self {
        GcAction {
            action: GcActionKind::Delete,
            transport,
            locator,
            table_name,
            reason,
            id: String::new(),
            scope: GcScope::Store,
        }
    }

    /// A `delete` of a leftover outside any live store (see [`GcScope::Orphan`]).
    pub fn orphan(transport: GcTransport, locator: String, table_name: String, reason: String) -> Self {
        GcAction { scope: GcScope::Orphan, ..Self::delete(transport, locator, table_name, reason) }
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use crate::manifest::{self, Event};
    use crate::payload::Target;
    use crate::protocol::{TransportChoice, METADATA_SHM_UNLINK_ON_READ};
    use crate::store::Store;
    use crate::tables::{self, SendOptions};
    use arrow_array::{ArrayRef, Int64Array, RecordBatch};
    use arrow_schema::{DataType, Field, Schema, SchemaRef};
    use serde_json::json;
    use std::sync::Arc;

    pub(crate) fn table(v: i64) -> (SchemaRef, Vec<RecordBatch>) {
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
        let col: ArrayRef = Arc::new(Int64Array::from(vec![v; 100]));
        (schema.clone(), vec![RecordBatch::try_new(schema, vec![col]).unwrap()])
    }

    pub(crate) fn send(store: &Store, name: &str, v: i64, transport: TransportChoice, flag: bool) -> Event {
        let (schema, batches) = table(v);
        let mut metadata = serde_json::Map::new();
        metadata.insert(METADATA_SHM_UNLINK_ON_READ.into(), json!(flag));
        // gc's tests decide when to collect: no collection inside sends.
        let opts =
            SendOptions { table_name: Some(name.into()), transport, metadata, auto_gc: None, ..Default::default() };
        tables::send(store, &schema, &batches, &opts).unwrap()
    }

    pub(crate) fn target(ev: &Event) -> Target {
        Target::of(ev.payload.as_ref().unwrap())
    }

    pub(crate) fn value(store: &Store, name: &str) -> i64 {
        let (_, d) = tables::get(store, name, None, true).unwrap();
        d.batches[0].column(0).as_any().downcast_ref::<Int64Array>().unwrap().value(0)
    }

    /// A test's temporary store whose segments (its own and its namespaces') are unlinked
    /// when it is dropped: segments live outside the directory and would outlive it.
    pub(crate) struct TempStore {
        // Dropped after `drop` below has unlinked the segments: then the directory goes.
        _dir: tempfile::TempDir,
        store: Store,
    }

    impl TempStore {
        pub(crate) fn new() -> (TempStore, Store) {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::at(dir.path().join("store"));
            (TempStore { _dir: dir, store: store.clone() }, store)
        }
    }

    impl Drop for TempStore {
        fn drop(&mut self) {
            cleanup(&self.store);
            if let Ok(entries) = std::fs::read_dir(self.store.root().join("objects")) {
                for e in entries.flatten() {
                    cleanup(&Store::at(e.path()));
                }
            }
        }
    }

    pub(crate) fn cleanup(store: &Store) {
        for ev in manifest::read_all(store).unwrap() {
            for loc in [super::collect::planned(&ev).locator, ev.payload.map(|p| p.locator)].into_iter().flatten() {
                if crate::sys::shm::check_name(&loc).is_ok() {
                    let _ = crate::sys::shm::unlink(&loc);
                }
            }
        }
    }
}
