//! Tables: send, the streamed send of a load, the in-place receive of a pull, the one
//! get, listing, describing, removing.

use arrow_array::ffi_stream::FFI_ArrowArrayStream;
use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

use crate::error::Result;
use crate::manifest::Event;
use crate::payload::Decoded;
use crate::store::Store;
use crate::tables::{self, Announced, Removal, SendOptions, TableInfo};

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

    /// Receives the batches of an Arrow C stream whose size was announced (a Flight
    /// `DoGet`) in place, as one new version (see [`tables::receive_stream`]). `opts`
    /// applies as to a send, its auto-gc included.
    pub fn receive_stream(
        &self,
        announced: Announced<'_>,
        opts: &SendOptions,
        stream: &mut FFI_ArrowArrayStream,
    ) -> Result<Event> {
        tables::receive_stream(self, announced, opts, stream)
    }

    /// [`Store::receive_stream`] of batches already decoded (see [`tables::receive_batches`]).
    pub fn receive_batches(
        &self,
        schema: &SchemaRef,
        announced: Announced<'_>,
        opts: &SendOptions,
        batches: impl IntoIterator<Item = Result<RecordBatch>>,
    ) -> Result<Event> {
        tables::receive_batches(self, schema, announced, opts, batches)
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

    /// The current `ready` event of every table a get can read, sorted by name: removed
    /// tables, expired versions and read-once versions already read and freed are left
    /// out ([`Store::states`] lists every table with its state).
    pub fn list(&self, producer: Option<&str>) -> Result<Vec<Event>> {
        tables::list_readable(self, producer)
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
}
