//! Tables: send, the streamed send of a load, the in-place receive of a pull, the one
//! get, listing, describing, removing.

use arrow_array::ffi_stream::FFI_ArrowArrayStream;
use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

use crate::error::{Error, Result};
use crate::manifest::Event;
use crate::payload::Decoded;
use crate::protocol::{TableStateKind, DEFAULT_PRODUCER};
use crate::store::Store;
use crate::streams;
use crate::tables::{self, Announced, Removal, SendOptions, TableInfo};

impl Store {
    /// Refuses a plain version onto the name of a streaming table: readers read the
    /// stream's chunks, so the version would be hidden (a stream's own publication is
    /// sent by `streams::publish`, not through here).
    fn refuse_stream_name(&self, opts: &SendOptions) -> Result<()> {
        match &opts.table_name {
            Some(table) if streams::exists(self, table) => Err(Error::InvalidArgument(format!(
                "{table:?} is a streaming table (made by append, a Writer or an appending load): a table sent under \
                 its name would be hidden, since readers read the stream. Append these rows to it (append, \
                 load(mode=\"append\")), send them under another name, or remove_table({table:?}) first to replace \
                 the stream with a plain table"
            ))),
            _ => Ok(()),
        }
    }

    /// Sends a table (see [`tables::send`]); returns its `ready` event. Refused onto the
    /// name of a streaming table.
    pub fn send(&self, schema: &SchemaRef, batches: &[RecordBatch], opts: &SendOptions) -> Result<Event> {
        self.refuse_stream_name(opts)?;
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
        self.refuse_stream_name(opts)?;
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
        self.refuse_stream_name(opts)?;
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
        self.refuse_stream_name(opts)?;
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
    /// out ([`Store::states`] lists every table with its state). A streaming table is
    /// listed as a get reads it ([`streams::listing`]: its rows and columns now, whether
    /// or not it was published yet).
    pub fn list(&self, producer: Option<&str>) -> Result<Vec<Event>> {
        let events = tables::list_readable(self, producer)?;
        self.with_streams(
            events,
            producer,
            |e| e.table_name.as_str(),
            |name, current| streams::listing(self, name, current),
        )
    }

    /// Every table the manifest mentions, with its latest state, and every streaming
    /// table as a get reads it.
    pub fn states(&self, producer: Option<&str>) -> Result<Vec<TableInfo>> {
        let infos = tables::states(self, producer)?;
        self.with_streams(
            infos,
            producer,
            |i| i.table_name.as_str(),
            |name, current| self.stream_info(name, current.cloned()),
        )
    }

    /// `items` (one per table) with each streaming table's entry replaced, or added, by
    /// `as_read(name, current entry)`, sorted by name: listings show a stream as a get
    /// reads it. A stream with no entry is added only for the default producer's listing.
    fn with_streams<T>(
        &self,
        mut items: Vec<T>,
        producer: Option<&str>,
        name_of: impl Fn(&T) -> &str,
        mut as_read: impl FnMut(&str, Option<&T>) -> Result<Option<T>>,
    ) -> Result<Vec<T>> {
        for name in streams::list(self) {
            let at = items.iter().position(|t| name_of(t) == name);
            if at.is_none() && producer.is_some_and(|p| p != DEFAULT_PRODUCER) {
                continue;
            }
            if let Some(item) = as_read(&name, at.map(|i| &items[i]))? {
                match at {
                    Some(i) => items[i] = item,
                    None => items.push(item),
                }
            }
        }
        items.sort_by(|a, b| name_of(a).cmp(name_of(b)));
        Ok(items)
    }

    /// One table's state (`TableNotFound` when the manifest never mentions it and it is
    /// not a stream); a streaming table as a get reads it.
    pub fn describe(&self, table: &str, producer: Option<&str>) -> Result<TableInfo> {
        let info = match tables::state(self, table, producer) {
            Ok(info) => Some(info),
            Err(Error::TableNotFound { .. }) => None,
            Err(e) => return Err(e),
        };
        if streams::exists(self, table) {
            if let Some(info) = self.stream_info(table, info.clone())? {
                return Ok(info);
            }
        }
        info.ok_or_else(|| Error::table_not_found(self.root(), table, producer))
    }

    /// A table's state with its current version replaced by the stream's listing (a
    /// stream appended to after a removal is ready again).
    fn stream_info(&self, table: &str, info: Option<TableInfo>) -> Result<Option<TableInfo>> {
        let removed = info.as_ref().is_some_and(|i| i.state == TableStateKind::Removed);
        let ready = info.as_ref().filter(|_| !removed).and_then(|i| i.ready.as_ref());
        let Some(ev) = streams::listing(self, table, ready)? else { return Ok(info) };
        Ok(Some(match info {
            Some(mut i) if !removed => {
                if i.state == TableStateKind::Consumed || i.expired {
                    i.state = TableStateKind::Ready;
                }
                i.expired = false;
                i.ready = Some(ev);
                i
            }
            _ => TableInfo::stream(table, ev),
        }))
    }

    /// Removes a table (see [`tables::remove`]).
    pub fn remove(&self, table: &str) -> Result<Removal> {
        tables::remove(self, table)
    }
}

#[cfg(test)]
mod tests {
    use crate::gc::test_support::TempStore;
    use crate::streams::test_support::{rows, schema};
    use crate::streams::{AppendOptions, ReadSelection};
    use crate::tables::SendOptions;
    use crate::Error;

    #[test]
    fn a_send_onto_a_stream_is_refused_and_listings_agree_with_the_read() {
        let (_t, s) = TempStore::new();
        s.append("st", &schema(), &[rows(0, 0, 3)], &AppendOptions::default()).unwrap();
        // Never published: listed all the same, as the get reads it.
        let listed = s.list(None).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].payload.as_ref().unwrap().shape, [3, 4]);
        s.publish_stream("st").unwrap();
        s.append("st", &schema(), &[rows(0, 3, 2)], &AppendOptions::default()).unwrap();
        let err = s.send(&schema(), &[rows(1, 0, 9)], &SendOptions::named("st")).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)) && err.to_string().contains("remove_table"), "{err}");
        let read = s.read_stream("st", &ReadSelection::default()).unwrap();
        assert_eq!(read.rows, 5);
        for ev in [
            s.list(None).unwrap()[0].clone(),
            s.describe("st", None).unwrap().ready.unwrap(),
            s.states(None).unwrap()[0].ready.clone().unwrap(),
        ] {
            let p = ev.payload.unwrap();
            assert_eq!((p.shape, p.transport.as_str()), ([5, 4], "stream"));
        }
        // A plain table elsewhere is listed as before.
        s.send(&schema(), &[rows(1, 0, 9)], &SendOptions::named("plain")).unwrap();
        assert_eq!(s.describe("plain", None).unwrap().ready.unwrap().payload.unwrap().shape, [9, 4]);
    }
}
