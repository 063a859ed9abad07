//! Streaming tables (see [`crate::streams`]): append, read, follow, publish, compact,
//! remove, and the lock of an appending load.

use std::time::Duration;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

use crate::error::Result;
use crate::manifest::Event;
use crate::protocol::Compression;
use crate::store::Store;
use crate::streams::{
    self, AppendOptions, ChunkLine, CompactStreamReport, ConsolidateReport, Follower, ReadSelection, StreamRead,
};
use crate::sys::lock::ManifestLock;

impl Store {
    /// Appends a chunk to stream `table`; `None` when there were no rows (see [`streams::append`]).
    pub fn append(
        &self,
        table: &str,
        schema: &SchemaRef,
        batches: &[RecordBatch],
        opts: &AppendOptions,
    ) -> Result<Option<ChunkLine>> {
        streams::append(self, table, schema, batches, opts)
    }

    /// Appends several tables of possibly different schemas as one chunk of their merged
    /// schema (see [`streams::append_parts`]).
    pub fn append_parts(
        &self,
        table: &str,
        parts: &[(SchemaRef, Vec<RecordBatch>)],
        opts: &AppendOptions,
    ) -> Result<Option<ChunkLine>> {
        streams::append_parts(self, table, parts, opts)
    }

    /// Makes stream `table` from the plain table of that name, if the stream has no chunk
    /// yet (see [`streams::adopt`]); an append does it by itself.
    pub fn adopt_into_stream(&self, table: &str) -> Result<Option<ChunkLine>> {
        streams::adopt(self, table)
    }

    /// The schema of stream `table`, every chunk read as it (see [`streams::stream_schema`]).
    pub fn stream_schema(&self, table: &str) -> Result<Option<SchemaRef>> {
        streams::stream_schema(self, table)
    }

    /// Merges runs of small chunks of stream `table` into larger ones, at most
    /// `max_merges` (see [`streams::consolidate`]). Appending processes call it in the
    /// background (the Python package's publisher thread does).
    pub fn consolidate_stream(&self, table: &str, max_merges: usize) -> Result<ConsolidateReport> {
        streams::consolidate(self, table, max_merges)
    }

    /// Reads the selected chunks of stream `table`, zero-copy (see [`streams::read`]).
    pub fn read_stream(&self, table: &str, sel: &ReadSelection) -> Result<StreamRead> {
        streams::read(self, table, sel)
    }

    /// The chunk lines of stream `table` (empty when it is none).
    pub fn stream_chunks(&self, table: &str) -> Result<Vec<ChunkLine>> {
        streams::chunks(self, table)
    }

    /// True when `table` is a stream in this store.
    pub fn is_stream(&self, table: &str) -> bool {
        streams::exists(self, table)
    }

    /// The names of the streams in this store, sorted.
    pub fn streams(&self) -> Vec<String> {
        streams::list(self)
    }

    /// Follows stream `table` (which need not exist yet): the chunks appended from now on,
    /// or (`from_start`) all of them. `force_polling` and `poll` as for [`Store::watch`].
    pub fn follow(
        &self,
        table: &str,
        from_start: bool,
        force_polling: bool,
        poll: Option<Duration>,
    ) -> Result<Follower> {
        Follower::new(self, table, from_start, force_polling, poll)
    }

    /// Publishes stream `table` as a v1 version (see [`streams::publish`]).
    pub fn publish_stream(&self, table: &str) -> Result<Event> {
        streams::publish(self, table)
    }

    /// [`Store::publish_stream`] when the last publication is at least `interval` old
    /// (see [`streams::publish_if_due`]); `None` otherwise.
    pub fn publish_stream_if_due(&self, table: &str, interval: Duration) -> Result<Option<Event>> {
        streams::publish_if_due(self, table, interval)
    }

    /// Compacts stream `table` (see [`streams::compact`]).
    pub fn compact_stream(
        &self,
        table: &str,
        source_column: Option<&str>,
        compression: Compression,
    ) -> Result<CompactStreamReport> {
        streams::compact(self, table, source_column, compression)
    }

    /// Removes stream `table` and its v1 versions; returns the chunks freed (see [`streams::remove`]).
    pub fn remove_stream(&self, table: &str) -> Result<usize> {
        streams::remove(self, table)
    }

    /// The lock of a load appending to stream `table`, if free now; `None` when another
    /// load holds it (see [`streams::load_lock`]).
    pub fn stream_load_lock(&self, table: &str) -> Result<Option<ManifestLock>> {
        streams::load_lock(self, table)
    }
}
