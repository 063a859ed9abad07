//! Reading a stream: a per-process view of its chunk log that reads only the bytes
//! appended since the last look and keeps the chunks it has mapped (they never change).

use crate::sys::fs::PathMap;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

use crate::error::{Error, Result};
use crate::payload::{buffer_from_mapping, decode_file, map_file, Decoded};
use crate::store::Store;
use crate::streams::{log_path, not_a_stream, schema, stream_dir, ChunkLine, LogCursor, NewLines};
use crate::sys::fork::ForkLocal;
use crate::sys::trust::Open;

/// Which rows a read wants; the chunks outside are not touched.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ReadSelection {
    /// Rows `[start, end)` of the stream (in append order).
    pub rows: Option<(u64, u64)>,
    /// Chunks whose recorded time range meets `[start, end]` (either end open); chunks
    /// without a recorded range are always read.
    pub time: Option<(Option<i64>, Option<i64>)>,
}

impl ReadSelection {
    /// A selection of rows and/or a time range.
    pub fn new(rows: Option<(u64, u64)>, time: Option<(Option<i64>, Option<i64>)>) -> Self {
        ReadSelection { rows, time }
    }
}

/// What a read returns: the selected chunks' batches, whose buffers point into the
/// mapped chunk files.
#[derive(Debug, Clone)]
pub struct StreamRead {
    /// The stream's schema.
    pub schema: SchemaRef,
    /// One or more batches per chunk, in log order.
    pub batches: Vec<RecordBatch>,
    /// Rows in `batches`.
    pub rows: u64,
    /// The stream row number of the first row of `batches`.
    pub first_row: u64,
    /// Chunks read.
    pub chunks: usize,
    /// Chunks in the stream.
    pub total_chunks: usize,
    /// Rows in the stream.
    pub total_rows: u64,
}

pub(crate) struct Loaded {
    pub(crate) line: ChunkLine,
    pub(crate) row_offset: u64,
    data: Option<Decoded>,
    /// `data`'s batches read as the stream's schema (the schema they were made for).
    conformed: Option<(SchemaRef, Vec<RecordBatch>)>,
}

#[derive(Default)]
pub(crate) struct View {
    cursor: LogCursor,
    pub(crate) chunks: Vec<Loaded>,
    pub(crate) total_rows: u64,
    /// Incremented whenever the log was replaced (compaction) and the view started over.
    pub(crate) generation: u64,
    /// The last schema a line of the log records.
    recorded: Option<SchemaRef>,
    /// The batches of a whole read, small chunks coalesced (see [`coalesce`]); covers
    /// the first `groups_cover` chunks, read as `groups_schema`.
    groups: Vec<Group>,
    groups_cover: usize,
    groups_schema: Option<SchemaRef>,
    /// Chunks mapped before the log was replaced, by name (see [`View::restart`]).
    carry: HashMap<String, Decoded>,
}

/// Batches standing for consecutive chunks: either one large chunk's own batches (zero
/// copy) or many small chunks concatenated into one batch (copied once, then kept).
struct Group {
    batches: Vec<RecordBatch>,
    rows: usize,
    bytes: usize,
    /// Chunks in this group (0 for a large chunk's own batches: never extended).
    small_chunks: usize,
}

/// Chunks smaller than this are coalesced on a whole read; larger ones stay as mapped.
pub(crate) const COALESCE_BYTES: usize = 1 << 20;
/// A coalesced batch holds at most this many rows.
pub(crate) const COALESCE_ROWS: usize = 1 << 16;

type Views = PathMap<Arc<Mutex<View>>>;
static VIEWS: ForkLocal<Mutex<Views>> = ForkLocal::new(Default::default);

pub(crate) fn view_of(store: &Store, table: &str) -> Arc<Mutex<View>> {
    let dir = stream_dir(store, table);
    VIEWS.get().lock().unwrap_or_else(|e| e.into_inner()).entry(dir.into()).or_default().clone()
}

pub(crate) fn forget_view(store: &Store, table: &str) {
    VIEWS.get().lock().unwrap_or_else(|e| e.into_inner()).remove(crate::sys::fs::key(&stream_dir(store, table)));
}

impl View {
    /// Starts over (the log was replaced or removed). What was mapped is kept by chunk
    /// name until the next refresh, so the chunks the new log still names are not mapped
    /// again.
    fn restart(&mut self) {
        let generation = self.generation + 1;
        let cursor = self.cursor.clone();
        let mut carry = std::mem::take(&mut self.carry);
        let old = std::mem::replace(self, View { generation, cursor, ..View::default() });
        carry.extend(old.chunks.into_iter().filter_map(|c| c.data.map(|d| (c.line.chunk, d))));
        self.carry = carry;
    }

    /// Starts over and reads the log from its beginning at the next refresh.
    pub(crate) fn reset(&mut self) {
        self.restart();
        self.cursor = LogCursor::default();
    }

    /// Reads the log lines appended since the last look. `Ok(false)`: no log.
    pub(crate) fn refresh(&mut self, store: &Store, table: &str) -> Result<bool> {
        let (restarted, lines) = match self.cursor.read_new(store, &log_path(store, table))? {
            NewLines::NoLog => {
                if !self.chunks.is_empty() || self.recorded.is_some() {
                    self.restart();
                }
                self.carry.clear();
                return Ok(false);
            }
            NewLines::Lines { restarted, lines } => (restarted, lines),
        };
        if restarted && (!self.chunks.is_empty() || self.recorded.is_some()) {
            self.restart();
        }
        for line in lines {
            if let Some(text) = &line.schema {
                if let Ok(s) = schema::decode(text) {
                    self.recorded = Some(s);
                }
            }
            let row_offset = self.total_rows;
            self.total_rows += line.rows;
            let data = self.carry.remove(&line.chunk);
            self.chunks.push(Loaded { line, row_offset, data, conformed: None });
        }
        self.carry.clear();
        Ok(true)
    }

    /// Maps and decodes chunk `i` (once). `Ok(false)`: its file is gone (a compaction
    /// replaced it): the caller starts over.
    pub(crate) fn load(&mut self, store: &Store, table: &str, i: usize) -> Result<bool> {
        if self.chunks[i].data.is_some() {
            return Ok(true);
        }
        let path = stream_dir(store, table).join(&self.chunks[i].line.chunk);
        let Some(file) = store.open_file(&path, Open::Read)? else { return Ok(false) };
        let map = map_file(&file, &path)?;
        let decoded = decode_file(&buffer_from_mapping(map)).map_err(|reason| Error::PayloadCorrupt {
            table: table.into(),
            locator: path.display().to_string(),
            reason,
        })?;
        self.chunks[i].data = Some(decoded);
        Ok(true)
    }

    /// The stream's schema: the last one the log records; a log written before schemas
    /// were recorded has its first chunk's (`Ok(None)`: it is not loaded: load chunk 0).
    pub(crate) fn schema(&self) -> Option<SchemaRef> {
        self.recorded.clone().or_else(|| self.chunks.first().and_then(|c| c.data.as_ref()).map(|d| d.schema.clone()))
    }

    /// Chunk `i`'s batches (loaded) read as `schema`: its own when they have its fields,
    /// else converted ([`schema::conform`]) once and kept.
    pub(crate) fn batches(&mut self, i: usize, target: &SchemaRef) -> Result<Vec<RecordBatch>> {
        let c = &mut self.chunks[i];
        if let Some((s, b)) = &c.conformed {
            if Arc::ptr_eq(s, target) {
                return Ok(b.clone());
            }
        }
        let d = c.data.as_ref().expect("loaded");
        let out = if schema::same_fields(&d.schema, target) {
            // The same columns: only the schema (its metadata, nullability) is the stream's.
            let opts = |b: &RecordBatch| arrow_array::RecordBatchOptions::new().with_row_count(Some(b.num_rows()));
            d.batches
                .iter()
                .map(|b| RecordBatch::try_new_with_options(target.clone(), b.columns().to_vec(), &opts(b)))
                .collect::<std::result::Result<Vec<_>, _>>()?
        } else {
            d.batches.iter().map(|b| schema::conform(b, target)).collect::<Result<Vec<_>>>()?
        };
        c.conformed = Some((target.clone(), out.clone()));
        Ok(out)
    }

    /// The batches of every chunk (all loaded) as `schema`, small chunks coalesced. Each
    /// process pays the per-batch cost of readers (Arrow C interface, pandas) once per
    /// group instead of once per append: a stream of 10,000 one-row appends reads as a
    /// few batches. Groups are kept, so a later read only coalesces the chunks appended
    /// since (and the last, unfilled group again); a new schema starts them over.
    fn coalesced(&mut self, schema: &SchemaRef) -> Result<Vec<RecordBatch>> {
        if self.groups_cover > self.chunks.len() || self.groups_schema.as_ref().is_none_or(|s| !Arc::ptr_eq(s, schema))
        {
            self.groups.clear();
            self.groups_cover = 0;
            self.groups_schema = Some(schema.clone());
        }
        if self.groups_cover == self.chunks.len() {
            return Ok(self.groups.iter().flat_map(|g| g.batches.iter().cloned()).collect());
        }
        // Reopen the last group if it can take more small chunks.
        if let Some(last) = self.groups.last() {
            if last.small_chunks > 0 && last.rows < COALESCE_ROWS && last.bytes < COALESCE_BYTES {
                self.groups_cover -= last.small_chunks;
                self.groups.pop();
            }
        }
        let mut pending: Vec<RecordBatch> = Vec::new();
        let (mut rows, mut bytes, mut count) = (0usize, 0usize, 0usize);
        let flush = |groups: &mut Vec<Group>,
                     pending: &mut Vec<RecordBatch>,
                     rows: usize,
                     bytes: usize,
                     count: usize|
         -> Result<()> {
            if count == 0 {
                return Ok(());
            }
            let batch = if pending.len() == 1 {
                pending[0].clone()
            } else {
                arrow_select::concat::concat_batches(schema, pending.iter())?
            };
            groups.push(Group { batches: vec![batch], rows, bytes, small_chunks: count });
            pending.clear();
            Ok(())
        };
        for i in self.groups_cover..self.chunks.len() {
            let batches = self.batches(i, schema)?;
            // The bytes of the rows themselves: a mapped buffer's capacity is its file.
            let size: usize = batches
                .iter()
                .flat_map(|b| b.columns().iter().map(|c| c.to_data().get_slice_memory_size().unwrap_or(usize::MAX / 4)))
                .sum();
            let n: usize = batches.iter().map(|b| b.num_rows()).sum();
            if size >= COALESCE_BYTES || n >= COALESCE_ROWS {
                flush(&mut self.groups, &mut pending, rows, bytes, count)?;
                (rows, bytes, count) = (0, 0, 0);
                self.groups.push(Group { batches, rows: n, bytes: size, small_chunks: 0 });
                continue;
            }
            if count > 0 && (rows + n > COALESCE_ROWS || bytes + size > COALESCE_BYTES) {
                flush(&mut self.groups, &mut pending, rows, bytes, count)?;
                (rows, bytes, count) = (0, 0, 0);
            }
            pending.extend(batches);
            rows += n;
            bytes += size;
            count += 1;
        }
        flush(&mut self.groups, &mut pending, rows, bytes, count)?;
        self.groups_cover = self.chunks.len();
        Ok(self.groups.iter().flat_map(|g| g.batches.iter().cloned()).collect())
    }
}

fn wanted(c: &Loaded, sel: &ReadSelection) -> bool {
    if let Some((a, b)) = sel.rows {
        if c.row_offset + c.line.rows <= a || c.row_offset >= b {
            return false;
        }
    }
    if let (Some((lo, hi)), Some(tmin), Some(tmax)) = (sel.time, c.line.tmin, c.line.tmax) {
        if lo.is_some_and(|lo| tmax < lo) || hi.is_some_and(|hi| tmin > hi) {
            return false;
        }
    }
    true
}

/// Reads stream `table`: every selected chunk, in log order, as one table of many
/// batches of the stream's schema (no copy: the batches point into the mapped chunk
/// files, except the columns of older chunks that the stream has widened since, and
/// small chunks coalesced by a whole read). A stream with no chunk (or none) is
/// `TableNotFound`.
pub fn read(store: &Store, table: &str, sel: &ReadSelection) -> Result<StreamRead> {
    let view = view_of(store, table);
    let mut v = view.lock().unwrap_or_else(|e| e.into_inner());
    // A chunk named but missing was replaced by a compaction or a consolidation since the
    // log was read: read the log again (what was mapped is kept by name, so a retry costs
    // only the new files).
    for _attempt in 0..READ_ATTEMPTS {
        if !v.refresh(store, table)? || v.chunks.is_empty() {
            return Err(not_a_stream(store, table));
        }
        let picked: Vec<usize> = (0..v.chunks.len()).filter(|i| wanted(&v.chunks[*i], sel)).collect();
        // The schema of a log that records none comes from its first chunk.
        let mut complete = v.recorded.is_some() || v.load(store, table, 0)?;
        for &i in &picked {
            complete = complete && v.load(store, table, i)?;
        }
        if !complete {
            v.reset();
            continue;
        }
        let schema = v.schema().expect("recorded or loaded");
        let mut rows = 0;
        let batches = if sel.rows.is_none() && sel.time.is_none() {
            rows = v.total_rows;
            v.coalesced(&schema)?
        } else {
            let mut batches = Vec::new();
            for &i in &picked {
                rows += v.chunks[i].line.rows;
                batches.extend(v.batches(i, &schema)?);
            }
            batches
        };
        let first_row = picked.first().map(|i| v.chunks[*i].row_offset).unwrap_or(0);
        return Ok(StreamRead {
            schema,
            batches,
            rows,
            first_row,
            chunks: picked.len(),
            total_chunks: v.chunks.len(),
            total_rows: v.total_rows,
        });
    }
    Err(Error::PayloadMissing {
        table: table.into(),
        transport: "stream".into(),
        locator: stream_dir(store, table).display().to_string(),
        reason: format!("its chunks were replaced {READ_ATTEMPTS} times while being read"),
    })
}

/// How many times a read starts over when chunks it was about to map were replaced.
const READ_ATTEMPTS: usize = 50;

/// The chunk lines of stream `table` (empty when it is not a stream).
pub fn chunks(store: &Store, table: &str) -> Result<Vec<ChunkLine>> {
    let view = view_of(store, table);
    let mut v = view.lock().unwrap_or_else(|e| e.into_inner());
    v.refresh(store, table)?;
    Ok(v.chunks.iter().map(|c| c.line.clone()).collect())
}

/// The schema of stream `table` (every chunk is read as it: the union of what was
/// appended, widened); `None` when it has no chunk.
pub fn stream_schema(store: &Store, table: &str) -> Result<Option<SchemaRef>> {
    let tracker = crate::streams::append::tracker_of(store, table);
    let mut t = tracker.lock().unwrap_or_else(|e| e.into_inner());
    t.refresh(store, table)?;
    t.schema(store, table)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::streams::test_support::{rows, schema, store};
    use crate::streams::{append, AppendOptions};
    use arrow_array::cast::AsArray;
    use arrow_array::types::Int64Type;

    fn seq(r: &StreamRead) -> Vec<i64> {
        r.batches.iter().flat_map(|b| b.column(1).as_primitive::<Int64Type>().values().to_vec()).collect()
    }

    #[test]
    fn a_whole_read_coalesces_small_chunks_and_extends_incrementally() {
        let (_t, s) = store();
        for i in 0..300 {
            append(&s, "c", &schema(), &[rows(0, i, 1)], &AppendOptions::default()).unwrap();
        }
        let r = read(&s, "c", &ReadSelection::default()).unwrap();
        assert_eq!(r.batches.len(), 1);
        assert_eq!(seq(&r), (0..300).collect::<Vec<_>>());
        // Reads between appends re-coalesce only the unfilled last group.
        for i in 300..310 {
            append(&s, "c", &schema(), &[rows(0, i, 1)], &AppendOptions::default()).unwrap();
            let r = read(&s, "c", &ReadSelection::default()).unwrap();
            assert_eq!(r.batches.len(), 1);
            assert_eq!(r.rows, i as u64 + 1);
        }
        // Partial reads keep one batch per chunk, untouched.
        let p = read(&s, "c", &ReadSelection::new(Some((10, 13)), None)).unwrap();
        assert_eq!((p.batches.len(), p.first_row), (3, 10));
    }

    #[test]
    fn large_chunks_stay_zero_copy_in_a_whole_read() {
        let (_t, s) = store();
        append(&s, "z", &schema(), &[rows(0, 0, 5)], &AppendOptions::default()).unwrap();
        append(&s, "z", &schema(), &[rows(0, 5, 100_000)], &AppendOptions::default()).unwrap();
        append(&s, "z", &schema(), &[rows(0, 100_005, 5)], &AppendOptions::default()).unwrap();
        let r = read(&s, "z", &ReadSelection::default()).unwrap();
        assert_eq!(r.batches.iter().map(|b| b.num_rows()).collect::<Vec<_>>(), vec![5, 100_000, 5]);
        let big = read(&s, "z", &ReadSelection::new(Some((5, 6)), None)).unwrap();
        let mapped = big.batches[0].column(1).to_data().buffers()[0].as_ptr();
        assert_eq!(r.batches[1].column(1).to_data().buffers()[0].as_ptr(), mapped, "the large chunk is not copied");
        assert_eq!(seq(&r), (0..100_010).collect::<Vec<_>>());
    }
}
