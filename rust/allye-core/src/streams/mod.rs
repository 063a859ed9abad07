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
mod follow;
mod maintain;
mod view;

pub use append::{append, load_lock, AppendOptions};
pub use compact::{compact, CompactStreamReport, CompactedFile};
pub use follow::{Follower, StreamWatcher};
pub use maintain::{collect, publish, publish_if_due, remove};
pub use view::{chunks, read, ReadSelection, StreamRead};

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::Error;
use crate::protocol::{STREAMS_DIR, STREAM_LOG_FILE, STREAM_NAME_FILE};
use crate::store::Store;
use crate::sys::process::WriterIdentity;
use crate::sys::trust::EntryKind;

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

/// True when `table` is a stream in this store (its chunk log exists, as a file reached
/// without a symbolic link).
pub fn exists(store: &Store, table: &str) -> bool {
    matches!(store.stat(&log_path(store, table)), Ok(Some(s)) if s.kind == EntryKind::File)
}

/// The names of every stream in the store, sorted.
pub fn list(store: &Store) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(Some(streams)) = store.dir_at(Path::new(STREAMS_DIR), false) else { return out };
    for d in streams.entries().unwrap_or_default() {
        let Ok(Some(dir)) = streams.open_dir(&d.name) else { continue };
        if !matches!(dir.stat(STREAM_LOG_FILE), Ok(Some(s)) if s.kind == EntryKind::File) {
            continue;
        }
        if let Ok(Some(name)) = dir.read(STREAM_NAME_FILE) {
            out.push(String::from_utf8_lossy(&name).into_owned());
        }
    }
    out.sort();
    out
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
