//! Reading a stream: a per-process view of its chunk log that reads only the bytes
//! appended since the last look and keeps the chunks it has mapped (they never change).

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

use crate::error::{Error, IoContext, Result};
use crate::payload::{buffer_from_mapping, decode_file, map_file, Decoded};
use crate::store::Store;
use crate::streams::{log_path, not_a_stream, stream_dir, ChunkLine};
use crate::sys::fs::{identity, FileIdentity};

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
}

#[derive(Default)]
pub(crate) struct View {
    ident: Option<FileIdentity>,
    offset: u64,
    pub(crate) chunks: Vec<Loaded>,
    pub(crate) total_rows: u64,
    /// Incremented whenever the log was replaced (compaction) and the view started over.
    pub(crate) generation: u64,
}

type Views = HashMap<PathBuf, Arc<Mutex<View>>>;
static VIEWS: Mutex<Option<Views>> = Mutex::new(None);

pub(crate) fn view_of(store: &Store, table: &str) -> Arc<Mutex<View>> {
    let dir = stream_dir(store, table);
    VIEWS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert_with(HashMap::new)
        .entry(dir)
        .or_default()
        .clone()
}

pub(crate) fn forget_view(store: &Store, table: &str) {
    if let Some(m) = VIEWS.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
        m.remove(&stream_dir(store, table));
    }
}

impl View {
    fn reset(&mut self) {
        let generation = self.generation + 1;
        *self = View { generation, ..View::default() };
    }

    /// Reads the log lines appended since the last look. `Ok(false)`: no log.
    pub(crate) fn refresh(&mut self, store: &Store, table: &str) -> Result<bool> {
        let path = log_path(store, table);
        let mut file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if self.ident.is_some() {
                    self.reset();
                }
                return Ok(false);
            }
            Err(e) => return Err(Error::io(format!("cannot open {}", path.display()), e)),
        };
        let meta = file.metadata().ctx(|| format!("cannot stat {}", path.display()))?;
        let ident = identity(&meta);
        if self.ident != Some(ident) || meta.len() < self.offset {
            if self.ident.is_some() {
                self.reset();
            }
            self.ident = Some(ident);
        }
        if meta.len() == self.offset {
            return Ok(true);
        }
        file.seek(SeekFrom::Start(self.offset)).ctx(|| format!("cannot seek {}", path.display()))?;
        let mut bytes = Vec::with_capacity((meta.len() - self.offset) as usize);
        file.read_to_end(&mut bytes).ctx(|| format!("cannot read {}", path.display()))?;
        let Some(end) = memchr::memrchr(b'\n', &bytes) else { return Ok(true) };
        for raw in bytes[..=end].split(|b| *b == b'\n') {
            // A torn line (a killed appender) parses as garbage and is skipped.
            let Ok(line) = serde_json::from_slice::<ChunkLine>(raw) else { continue };
            let row_offset = self.total_rows;
            self.total_rows += line.rows;
            self.chunks.push(Loaded { line, row_offset, data: None });
        }
        self.offset += end as u64 + 1;
        Ok(true)
    }

    /// Maps and decodes chunk `i` (once). `Ok(false)`: its file is gone (a compaction
    /// replaced it): the caller starts over.
    pub(crate) fn load(&mut self, store: &Store, table: &str, i: usize) -> Result<bool> {
        if self.chunks[i].data.is_some() {
            return Ok(true);
        }
        let path = stream_dir(store, table).join(&self.chunks[i].line.chunk);
        let Some(map) = map_file(&path)? else { return Ok(false) };
        let decoded = decode_file(&buffer_from_mapping(map)).map_err(|reason| Error::PayloadCorrupt {
            table: table.into(),
            locator: path.display().to_string(),
            reason,
        })?;
        self.chunks[i].data = Some(decoded);
        Ok(true)
    }

    pub(crate) fn decoded(&self, i: usize) -> Option<&Decoded> {
        self.chunks[i].data.as_ref()
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
/// batches (no copy: the batches point into the mapped chunk files). A stream with no
/// chunk (or none) is `TableNotFound`.
pub fn read(store: &Store, table: &str, sel: &ReadSelection) -> Result<StreamRead> {
    let view = view_of(store, table);
    let mut v = view.lock().unwrap_or_else(|e| e.into_inner());
    for _attempt in 0..5 {
        if !v.refresh(store, table)? || v.chunks.is_empty() {
            return Err(not_a_stream(store, table));
        }
        let picked: Vec<usize> = (0..v.chunks.len()).filter(|i| wanted(&v.chunks[*i], sel)).collect();
        // The schema comes from the first chunk, read even when no chunk is selected.
        let mut complete = v.load(store, table, 0)?;
        for &i in &picked {
            complete = complete && v.load(store, table, i)?;
        }
        if !complete {
            v.reset();
            continue;
        }
        let schema = v.decoded(0).expect("loaded").schema.clone();
        let mut batches = Vec::new();
        let mut rows = 0;
        for &i in &picked {
            let d = v.decoded(i).expect("loaded");
            rows += v.chunks[i].line.rows;
            batches.extend(d.batches.iter().cloned());
        }
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
        reason: "its chunks were replaced five times while being read".into(),
    })
}

/// The chunk lines of stream `table` (empty when it is not a stream).
pub fn chunks(store: &Store, table: &str) -> Result<Vec<ChunkLine>> {
    let view = view_of(store, table);
    let mut v = view.lock().unwrap_or_else(|e| e.into_inner());
    v.refresh(store, table)?;
    Ok(v.chunks.iter().map(|c| c.line.clone()).collect())
}

/// The schema of a stream's first chunk; `None` when it has none yet.
pub(crate) fn first_schema(store: &Store, table: &str) -> Result<Option<SchemaRef>> {
    match read(store, table, &ReadSelection::new(Some((0, 0)), None)) {
        Ok(r) => Ok(Some(r.schema)),
        Err(Error::TableNotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}
