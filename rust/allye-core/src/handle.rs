//! The [`Store`] handle's operations: everything a native program (and the Python
//! bindings, which call exactly these) does with a store.

use std::time::Duration;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

use crate::error::Result;
use crate::gc::{self, CompactReport, GcAction, GcOptions};
use crate::manifest::{Event, ManifestTail};
use crate::payload::Decoded;
use crate::store::Store;
use crate::tables::{self, Removal, SendOptions, TableInfo};
use crate::watch::ManifestWatcher;

impl Store {
    /// Sends a table (see [`tables::send`]); returns its `ready` event.
    pub fn send(&self, schema: &SchemaRef, batches: &[RecordBatch], opts: &SendOptions) -> Result<Event> {
        tables::send(self, schema, batches, opts)
    }

    /// Sends batches as they arrive into one new version, published at the end, with
    /// `finish` adding to the `ready` line's metadata (see [`tables::send_stream`]).
    pub fn send_stream(
        &self,
        schema: &SchemaRef,
        batches: impl Iterator<Item = Result<RecordBatch>>,
        opts: &SendOptions,
        finish: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>) -> Result<()>,
    ) -> Result<Event> {
        tables::send_stream(self, schema, batches, opts, finish)
    }

    /// The current version of a table, read in place and recorded as read: the one get,
    /// removal- and expiry-aware (see [`tables::get`]).
    pub fn get(&self, table: &str, producer: Option<&str>) -> Result<(Event, Decoded)> {
        tables::get(self, table, producer, true)
    }

    /// [`Store::get`] that does not count as a load for `shm_unlink_on_read` (a look at
    /// the schema, say).
    pub fn peek(&self, table: &str, producer: Option<&str>) -> Result<(Event, Decoded)> {
        tables::get(self, table, producer, false)
    }

    /// The current `ready` event of a table, without reading its payload.
    pub fn latest(&self, table: &str, producer: Option<&str>) -> Result<Event> {
        tables::latest(self, table, producer)
    }

    /// The current `ready` event of every table, sorted by name (removed tables left out).
    pub fn list(&self, producer: Option<&str>) -> Result<Vec<Event>> {
        tables::list(self, producer)
    }

    /// Every table the manifest mentions, with its latest state.
    pub fn states(&self, producer: Option<&str>) -> Result<Vec<TableInfo>> {
        tables::states(self, producer)
    }

    /// One table's state (`TableNotFound` when the manifest never mentions it).
    pub fn describe(&self, table: &str, producer: Option<&str>) -> Result<TableInfo> {
        tables::state(self, table, producer)
    }

    /// Removes a table (see [`tables::remove`]).
    pub fn remove(&self, table: &str) -> Result<Removal> {
        tables::remove(self, table)
    }

    /// Collects garbage (see [`gc::collect`]), then the segments of this user's deleted
    /// stores (see [`gc::collect_orphans`]), whichever store this is.
    pub fn gc(&self, opts: GcOptions) -> Result<Vec<GcAction>> {
        let mut actions = gc::collect(self, opts)?;
        actions.extend(gc::collect_orphans(opts.dry_run));
        Ok(actions)
    }

    /// Frees (or, with `dry_run`, reports) the segments of this user's deleted stores; needs
    /// no store (see [`gc::collect_orphans`]).
    pub fn collect_orphans(dry_run: bool) -> Vec<GcAction> {
        gc::collect_orphans(dry_run)
    }

    /// Rewrites the manifest keeping only live lines (see [`gc::compact`]).
    pub fn compact(&self) -> Result<CompactReport> {
        gc::compact(self)
    }

    /// A watcher that wakes up when the manifest changes (`poll`: the polling interval
    /// when file-system events cannot be had, or with `force_polling`).
    pub fn watch(&self, force_polling: bool, poll: Option<Duration>) -> ManifestWatcher {
        ManifestWatcher::new(self, force_polling, poll)
    }

    /// A reader of the manifest lines appended from now on (`from_start`: from the start).
    pub fn tail(&self, from_start: bool) -> ManifestTail {
        ManifestTail::new(self, from_start)
    }
}
