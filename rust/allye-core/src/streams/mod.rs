//! Streaming tables: tables that grow by appends (PROTOCOL.md 8.13).
//!
//! A stream lives in `<store>/streams/<hash of the name>/`: immutable chunk files (Arrow
//! IPC files, each written completely under a temporary name and renamed) and a chunk
//! log `chunks.jsonl` naming them, one JSON line per chunk, appended under the stream's
//! own lock by the manifest's append code ([`crate::manifest::append_line`]). A chunk is
//! visible once its line exists, and its file is complete before that: readers see whole
//! appends only, and a killed appender leaves at most a chunk file no line names (gc frees
//! it) or a torn last line (skipped, and closed off by the next append).
//!
//! Readers map the chunks and build one table of many batches; the chunk files never
//! change, so a process keeps what it mapped and reads only the log bytes appended since
//! its last look ([`read`]). 0.1.2 and the widgets see the stream through an ordinary v1
//! `ready` version holding every row, published by [`publish`].

mod append;
mod compact;
mod consolidate;
mod follow;
mod maintain;
pub mod schema;
mod view;

pub use append::{adopt, append, append_parts, load_lock, AppendOptions};
pub use compact::{compact, CompactStreamReport, CompactedFile};
pub use consolidate::{consolidate, ConsolidateReport};
pub use follow::{Follower, StreamWatcher};
pub use maintain::{collect, listing, publish, publish_if_due, remove};
pub use schema::FieldConflict;
pub use view::{chunks, read, stream_schema, ReadSelection, StreamRead};

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::Error;
use crate::protocol::{STREAMS_DIR, STREAM_LOG_FILE, STREAM_NAME_FILE};
use crate::store::Store;
use crate::sys::process::WriterIdentity;
use crate::sys::trust::{EntryKind, EntryStat};

/// One line of a chunk log: one chunk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChunkLine {
    /// The chunk file's name inside the stream directory.
    pub chunk: String,
    /// Rows in the chunk.
    pub rows: u64,
    /// Size of the chunk file in bytes.
    pub bytes: u64,
    /// Who appended it.
    pub writer: WriterIdentity,
    /// When it was appended (Unix nanoseconds).
    pub appended_ns: u64,
    /// The column whose range `tmin`..`tmax` is, when the appender named one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_column: Option<String>,
    /// Smallest value of `time_column` (as i64: ns for timestamps and uint64 stamps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tmin: Option<i64>,
    /// Largest value of `time_column`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tmax: Option<i64>,
    /// Set on the chunks a compaction wrote: the source they hold (as text), or "" for all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compacted: Option<String>,
    /// The state of the load that appended this chunk ([`crate::protocol::METADATA_LOAD`]:
    /// cursor, last value, rows), committed in the same line as the rows it describes.
    #[serde(rename = "allye_load", default, skip_serializing_if = "Option::is_none")]
    pub load: Option<serde_json::Map<String, serde_json::Value>>,
    /// The stream's schema after this chunk, when it changed here (and on the first line):
    /// see [`schema::encode`]. Readers read every chunk as the last one the log records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// On the first chunk of a stream made from a plain table: that version's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adopted: Option<String>,
    /// On a chunk written by a consolidation: the chunks it replaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged: Option<Merged>,
    /// The chunk was fsynced before its line was (an append with `durable`, or a
    /// consolidation of such chunks): a consolidation of it fsyncs what it writes too.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub durable: bool,
}

/// What a consolidated chunk replaced (see [`consolidate`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Merged {
    /// 1 + the largest level of the chunks it replaced (appends are level 0).
    pub level: u32,
    /// The chunk files it replaced, in log order.
    pub chunks: Vec<String>,
}

impl ChunkLine {
    /// The consolidation level of the chunk (0: an append).
    pub fn level(&self) -> u32 {
        self.merged.as_ref().map_or(0, |m| m.level)
    }
}

/// The directory of stream `table`: `<store>/streams/<first 32 hex of sha256(name)>`.
/// Names are free text (slashes included), so the directory is named by a hash and the
/// name itself is kept in the file `name` inside it.
pub fn stream_dir(store: &Store, table: &str) -> PathBuf {
    let digest = Sha256::digest(table.as_bytes());
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    store.root().join(STREAMS_DIR).join(hex)
}

/// `<stream dir>/chunks.jsonl`.
pub fn log_path(store: &Store, table: &str) -> PathBuf {
    stream_dir(store, table).join(STREAM_LOG_FILE)
}

/// True when `table` is a stream in this store: its chunk log is a file reached without a
/// symbolic link and holds a line. The first append creates the log and then writes its
/// line; a log still empty is not a stream yet, so that a reader told "it exists" finds
/// a chunk to read.
pub fn exists(store: &Store, table: &str) -> bool {
    matches!(store.stat(&log_path(store, table)), Ok(Some(s)) if is_started_log(&s))
}

fn is_started_log(s: &EntryStat) -> bool {
    s.kind == EntryKind::File && s.len > 0
}

/// The names of every stream in the store, sorted.
pub fn list(store: &Store) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(Some(streams)) = store.dir_at(Path::new(STREAMS_DIR), false) else { return out };
    for d in streams.entries().unwrap_or_default() {
        let Ok(Some(dir)) = streams.open_dir(&d.name) else { continue };
        if !matches!(dir.stat(STREAM_LOG_FILE), Ok(Some(s)) if is_started_log(&s)) {
            continue;
        }
        if let Ok(Some(name)) = dir.read(STREAM_NAME_FILE) {
            out.push(String::from_utf8_lossy(&name).into_owned());
        }
    }
    out.sort();
    out
}

/// Where a process has read a stream's log to: the log file's identity and the offset
/// after its last whole line. Chunk logs only grow, except that a compaction or a
/// consolidation replaces the file (a new identity) and a removal deletes it.
#[derive(Debug, Default, Clone)]
pub(crate) struct LogCursor {
    ident: Option<crate::sys::fs::FileIdentity>,
    offset: u64,
}

/// What [`LogCursor::read_new`] found.
pub(crate) enum NewLines {
    /// No log (a stream removed, or not made yet).
    NoLog,
    /// The whole lines appended since the last look; `restarted`: the log was replaced
    /// (or first read), so these are all its lines and what was read before is void.
    Lines { restarted: bool, lines: Vec<ChunkLine> },
}

impl LogCursor {
    /// Reads the lines appended to `path` since the last call (torn or foreign lines
    /// skipped).
    pub(crate) fn read_new(&mut self, store: &Store, path: &Path) -> crate::error::Result<NewLines> {
        use crate::error::IoContext;
        use std::io::{Read, Seek, SeekFrom};
        let Some((mut file, meta)) = store.open_file_meta(path, crate::sys::trust::Open::Read)? else {
            *self = LogCursor::default();
            return Ok(NewLines::NoLog);
        };
        let ident = crate::sys::fs::identity(&meta);
        let mut restarted = false;
        if self.ident != Some(ident) || meta.len() < self.offset {
            restarted = true;
            *self = LogCursor { ident: Some(ident), offset: 0 };
        }
        if meta.len() == self.offset {
            return Ok(NewLines::Lines { restarted, lines: Vec::new() });
        }
        file.seek(SeekFrom::Start(self.offset)).ctx(|| format!("cannot seek {}", path.display()))?;
        let mut bytes = Vec::with_capacity((meta.len() - self.offset) as usize);
        file.read_to_end(&mut bytes).ctx(|| format!("cannot read {}", path.display()))?;
        let Some(end) = memchr::memrchr(b'\n', &bytes) else {
            return Ok(NewLines::Lines { restarted, lines: Vec::new() });
        };
        // A torn line (a killed appender) parses as garbage and is skipped.
        let lines = bytes[..=end].split(|b| *b == b'\n').filter_map(|raw| serde_json::from_slice(raw).ok()).collect();
        self.offset += end as u64 + 1;
        Ok(NewLines::Lines { restarted, lines })
    }
}

fn now_ns() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
}

fn not_a_stream(store: &Store, table: &str) -> Error {
    Error::table_not_found(store.root(), table, None)
}

#[cfg(test)]
pub(crate) mod test_support {
    use std::sync::Arc;

    use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray, UInt64Array};
    use arrow_schema::{DataType, Field, Schema, SchemaRef};

    use crate::store::Store;

    pub(crate) fn store() -> (crate::gc::test_support::TempStore, Store) {
        crate::gc::test_support::TempStore::new()
    }

    pub(crate) fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("writer", DataType::Int64, false),
            Field::new("seq", DataType::Int64, false),
            Field::new("ts", DataType::UInt64, false),
            Field::new("s", DataType::Utf8, true),
        ]))
    }

    /// `n` rows of writer `w`, sequence numbers from `from`, time stamps `1000 * seq`.
    pub(crate) fn rows(w: i64, from: i64, n: i64) -> RecordBatch {
        let seq: Vec<i64> = (from..from + n).collect();
        let cols: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(vec![w; n as usize])),
            Arc::new(Int64Array::from(seq.clone())),
            Arc::new(UInt64Array::from_iter_values(seq.iter().map(|s| *s as u64 * 1000))),
            Arc::new(StringArray::from_iter_values(seq.iter().map(|s| format!("w{w}-{s}")))),
        ];
        RecordBatch::try_new(schema(), cols).unwrap()
    }
}
