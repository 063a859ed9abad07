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
//! * leftovers of failed sends (an `error` line whose payload still exists);
//! * segments of this user's deleted stores ([`collect_orphans`]).
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

use crate::protocol::{GcActionKind, Transport, DEFAULT_KEEP_VERSIONS};

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

/// One thing gc did or would do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct GcAction {
    /// Delete, skip (outside this store) or record (an `error` line for a dead writer).
    pub action: GcActionKind,
    /// The payload's transport (empty for a dead writer that planned none).
    pub transport: Transport,
    /// The payload's segment name or file path.
    pub locator: String,
    /// The table the payload belongs to.
    pub table_name: String,
    /// Why, in words.
    pub reason: String,
    /// The transfer (`id` of the manifest lines) the payload belongs to.
    pub id: String,
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
