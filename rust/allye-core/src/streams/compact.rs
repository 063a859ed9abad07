//! Compaction (ataraxis' `compress_logs`): the chunks so far are rewritten into one
//! Arrow IPC file per source (zstd-compressed, or uncompressed to keep reads zero-copy), verified, then swapped into the log in
//! one rename; appenders are never blocked (they take the lock only for the swap's
//! instant) and a failed check deletes nothing.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;

use arrow_array::cast::AsArray;
use arrow_array::types::*;
use arrow_array::{ArrayRef, BooleanArray, RecordBatch};
use arrow_schema::{DataType, SchemaRef};

use crate::error::{Error, IoContext, Result};
use crate::payload::{buffer_from_mapping, decode_file, map_file, write_file};
use crate::protocol::{Compression, DEFAULT_COMPRESSED_CHUNK_ROWS, STREAM_LOCK_FILE, STREAM_LOG_FILE};
use crate::store::Store;
use crate::streams::append::time_range;
use crate::streams::view::view_of;
use crate::streams::{not_a_stream, now_ns, stream_dir, ChunkLine};
use crate::sys::lock::ManifestLock;
use crate::sys::process::WriterIdentity;
use crate::sys::trust::Open;

/// What a compaction did.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CompactStreamReport {
    /// Chunks rewritten (and deleted).
    pub chunks_before: usize,
    /// Files written, one per source.
    pub files: Vec<CompactedFile>,
    /// Rows rewritten.
    pub rows: u64,
}

/// One file a compaction wrote.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CompactedFile {
    /// The source its rows came from (as text), or "" for all.
    pub source: String,
    /// The chunk file.
    pub path: PathBuf,
    /// Rows in it.
    pub rows: u64,
    /// Its size in bytes.
    pub bytes: u64,
}

/// The source of each row as text (integers and strings).
fn keys(col: &ArrayRef, column: &str) -> Result<Vec<String>> {
    macro_rules! ints {
        ($t:ty) => {
            col.as_primitive::<$t>().iter().map(|v| v.map(|v| v.to_string()).unwrap_or_default()).collect()
        };
    }
    Ok(match col.data_type() {
        DataType::UInt8 => ints!(UInt8Type),
        DataType::UInt16 => ints!(UInt16Type),
        DataType::UInt32 => ints!(UInt32Type),
        DataType::UInt64 => ints!(UInt64Type),
        DataType::Int8 => ints!(Int8Type),
        DataType::Int16 => ints!(Int16Type),
        DataType::Int32 => ints!(Int32Type),
        DataType::Int64 => ints!(Int64Type),
        DataType::Utf8 => col.as_string::<i32>().iter().map(|v| v.unwrap_or_default().to_string()).collect(),
        DataType::LargeUtf8 => col.as_string::<i64>().iter().map(|v| v.unwrap_or_default().to_string()).collect(),
        other => {
            return Err(Error::InvalidArgument(format!(
                "source column {column:?} has type {other}; compaction by source needs an integer or string column"
            )))
        }
    })
}

/// Splits the rows by source (in order of first appearance), each source's rows in order.
fn by_source(schema: &SchemaRef, batches: &[RecordBatch], source: Option<&str>) -> Result<Vec<(String, RecordBatch)>> {
    let all = arrow_select::concat::concat_batches(schema, batches)?;
    let Some(column) = source else { return Ok(vec![(String::new(), all)]) };
    let idx = schema.index_of(column).map_err(|_| {
        Error::InvalidArgument(format!("the stream has no column {column:?} to compact by; pass source_column=None"))
    })?;
    let ks = keys(all.column(idx), column)?;
    let mut order: Vec<String> = Vec::new();
    let mut seen: HashMap<&str, ()> = HashMap::new();
    for k in &ks {
        if seen.insert(k, ()).is_none() {
            order.push(k.clone());
        }
    }
    let mut out = Vec::new();
    for k in order {
        let mask = BooleanArray::from(ks.iter().map(|x| *x == k).collect::<Vec<bool>>());
        out.push((k, arrow_select::filter::filter_record_batch(&all, &mask)?));
    }
    Ok(out)
}

/// Compacts stream `table`: the chunks appended so far become one zstd Arrow IPC file
/// per value of `source_column` (one file in all when `None`). Each file is read back and
/// compared with the rows it replaces before anything changes; then the log is replaced
/// (compacted lines, followed by the lines appended meanwhile) in one rename, and only
/// then are the old chunks deleted. Rows of one source keep their order; the stream's
/// rows are grouped by source afterwards.
pub fn compact(
    store: &Store,
    table: &str,
    source_column: Option<&str>,
    compression: Compression,
) -> Result<CompactStreamReport> {
    let dir_path = stream_dir(store, table);
    let dir = store.dir_at(&dir_path, false)?.ok_or_else(|| not_a_stream(store, table))?;
    // No consolidation meanwhile (it replaces the log too): wait for one in progress.
    let _no_merges = ManifestLock::acquire(&dir, crate::protocol::STREAM_CONSOLIDATE_LOCK_FILE)?;
    // 1. Snapshot: the chunks so far, mapped.
    let view = view_of(store, table);
    let (snapshot, schema, batches, time_column) = {
        let mut v = view.lock().unwrap_or_else(|e| e.into_inner());
        if !v.refresh(store, table)? || v.chunks.is_empty() {
            return Err(not_a_stream(store, table));
        }
        for i in 0..v.chunks.len() {
            if !v.load(store, table, i)? {
                return Err(Error::InvalidArgument(format!(
                    "stream {table:?} is being compacted by another process; try again when it is done"
                )));
            }
        }
        // Every chunk read as the stream's schema: the compacted files hold it.
        let schema = v.schema().expect("loaded");
        let mut batches = Vec::new();
        for i in 0..v.chunks.len() {
            batches.extend(v.batches(i, &schema)?);
        }
        let lines: Vec<ChunkLine> = v.chunks.iter().map(|c| c.line.clone()).collect();
        let tc = lines.iter().find_map(|l| l.time_column.clone());
        (lines, schema, batches, tc)
    };
    if snapshot.len() == 1 && snapshot[0].compacted.is_some() && source_column.is_none() {
        return Ok(CompactStreamReport { chunks_before: 1, files: Vec::new(), rows: snapshot[0].rows });
    }
    let rows: u64 = snapshot.iter().map(|l| l.rows).sum();
    // 2. Write one file per source, then read each back and compare.
    let groups = by_source(&schema, &batches, source_column)?;
    // Uncompressed: one batch per file, read without a copy; compressed: batches of
    // DEFAULT_COMPRESSED_CHUNK_ROWS, decompressed one at a time.
    let chunk_rows = if compression == Compression::None { 0 } else { DEFAULT_COMPRESSED_CHUNK_ROWS };
    let me = WriterIdentity::cached();
    let mut written: Vec<(ChunkLine, String)> = Vec::new();
    let cleanup = |written: &[(ChunkLine, String)]| {
        for (_, name) in written {
            let _ = dir.remove_file(name);
        }
    };
    for (key, batch) in &groups {
        let name = format!("{}-compact-{}.arrow", me.pid, crate::sys::ids::new_v4().simple());
        let path = dir_path.join(&name);
        let result = (|| -> Result<ChunkLine> {
            let bytes = write_file(&dir, &name, &schema, std::slice::from_ref(batch), chunk_rows, compression, true)?;
            #[cfg(test)]
            hooks::after_write(&path);
            check_reads_back(
                &dir,
                &name,
                &path,
                table,
                &schema,
                batch,
                "the compacted file does not read back as the rows it replaces; nothing was deleted",
            )?;
            let range = match &time_column {
                Some(c) => time_range(std::slice::from_ref(batch), c)?,
                None => None,
            };
            Ok(ChunkLine {
                chunk: name.clone(),
                rows: batch.num_rows() as u64,
                bytes,
                writer: me.clone(),
                appended_ns: now_ns(),
                time_column: range.and(time_column.clone()),
                tmin: range.map(|r| r.0),
                tmax: range.map(|r| r.1),
                compacted: Some(key.clone()),
                load: None,
                schema: None,
                adopted: None,
                merged: None,
                durable: true,
            })
        })();
        match result {
            Ok(line) => written.push((line, name)),
            Err(e) => {
                let _ = dir.remove_file(&name);
                cleanup(&written);
                return Err(e);
            }
        }
    }
    // A load resumes from the state on the last chunk line it wrote: the latest state of
    // the compacted lines goes on the last compacted line, so it survives the swap.
    if let (Some(state), Some((last, _))) = (snapshot.iter().rev().find_map(|l| l.load.clone()), written.last_mut()) {
        last.load = Some(state);
    }
    // The first line records the stream's schema (the lines appended meanwhile record
    // their changes after it) and the plain version the stream was made from.
    if let Some((first, _)) = written.first_mut() {
        first.schema = Some(crate::streams::schema::encode(&schema)?);
        first.adopted = snapshot[0].adopted.clone();
    }
    // 3. Swap the log under the lock: compacted lines + whatever was appended meanwhile.
    #[cfg(test)]
    hooks::before_swap();
    let swap = (|| -> Result<()> {
        let _lock = ManifestLock::acquire(&dir, STREAM_LOCK_FILE)?;
        let bytes = dir.read(STREAM_LOG_FILE)?.ok_or_else(|| not_a_stream(store, table))?;
        let mut cut = 0usize;
        let mut seen = 0usize;
        while seen < snapshot.len() {
            let Some(nl) = memchr::memchr(b'\n', &bytes[cut..]) else { break };
            if let Ok(line) = serde_json::from_slice::<ChunkLine>(&bytes[cut..cut + nl]) {
                if line.chunk != snapshot[seen].chunk {
                    break;
                }
                seen += 1;
            }
            cut += nl + 1;
        }
        if seen != snapshot.len() {
            return Err(Error::InvalidArgument(format!(
                "stream {table:?} was compacted or removed by another process meanwhile; nothing was changed"
            )));
        }
        let mut out = Vec::new();
        for (line, _) in &written {
            out.extend(serde_json::to_vec(line)?);
            out.push(b'\n');
        }
        out.extend_from_slice(&bytes[cut..]);
        let tmp_name = format!("{STREAM_LOG_FILE}.compacting.tmp-{}", std::process::id());
        let tmp = dir_path.join(&tmp_name);
        let written_tmp = (|| -> Result<()> {
            let mut f = dir.open(&tmp_name, Open::CreateNew)?.expect("an exclusive create makes the file");
            f.write_all(&out).ctx(|| format!("cannot write {}", tmp.display()))?;
            f.sync_all().ctx(|| format!("cannot fsync {}", tmp.display()))?;
            drop(f);
            dir.rename(&tmp_name, &dir, STREAM_LOG_FILE)
        })();
        if let Err(e) = written_tmp {
            let _ = dir.remove_file(&tmp_name);
            return Err(e);
        }
        dir.sync();
        Ok(())
    })();
    if let Err(e) = swap {
        cleanup(&written);
        return Err(e);
    }
    // 4. Only now the old chunks go (a reader that mapped them keeps its mapping).
    for line in &snapshot {
        let _ = dir.remove_file(&line.chunk);
    }
    Ok(CompactStreamReport {
        chunks_before: snapshot.len(),
        files: written
            .into_iter()
            .map(|(l, name)| CompactedFile {
                source: l.compacted.unwrap_or_default(),
                path: dir.path().join(name),
                rows: l.rows,
                bytes: l.bytes,
            })
            .collect(),
        rows,
    })
}

/// Checks that the file `name` (at `path`) of `dir`, just written, reads back as
/// `expected`: a rewrite of chunks (compaction, consolidation) replaces them only then.
/// Else `PayloadCorrupt` with `mismatch` as its reason.
pub(super) fn check_reads_back(
    dir: &crate::sys::trust::TrustedDir,
    name: &str,
    path: &std::path::Path,
    table: &str,
    schema: &SchemaRef,
    expected: &RecordBatch,
    mismatch: &str,
) -> Result<()> {
    let file =
        dir.open(name, Open::Read)?.ok_or_else(|| Error::InvalidArgument(format!("{} vanished", path.display())))?;
    let map = map_file(&file, path)?;
    let corrupt =
        |reason: String| Error::PayloadCorrupt { table: table.into(), locator: path.display().to_string(), reason };
    let back = decode_file(&buffer_from_mapping(map)).map_err(corrupt)?;
    let back = arrow_select::concat::concat_batches(schema, &back.batches)?;
    if back != *expected {
        return Err(corrupt(mismatch.into()));
    }
    Ok(())
}

/// Test-only interruptions of a compaction (a corrupt write, a log changed underneath),
/// per thread: tests run in parallel threads.
#[cfg(test)]
mod hooks {
    use std::cell::RefCell;
    use std::path::Path;

    type Hook = Box<dyn Fn(&Path)>;
    thread_local! {
        pub(super) static AFTER_WRITE: RefCell<Option<Hook>> = RefCell::new(None);
        pub(super) static BEFORE_SWAP: RefCell<Option<Box<dyn FnOnce()>>> = RefCell::new(None);
    }

    pub(super) fn after_write(path: &Path) {
        AFTER_WRITE.with(|h| {
            if let Some(h) = h.borrow().as_ref() {
                h(path)
            }
        })
    }

    pub(super) fn before_swap() {
        if let Some(h) = BEFORE_SWAP.with(|h| h.borrow_mut().take()) {
            h()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::streams::log_path;
    use crate::streams::test_support::{rows, schema, store};
    use crate::streams::{append, read, AppendOptions, ReadSelection};

    fn seqs_of(r: &crate::streams::StreamRead, w: i64) -> Vec<i64> {
        let mut out = Vec::new();
        for b in &r.batches {
            let ws = b.column(0).as_primitive::<Int64Type>();
            let ss = b.column(1).as_primitive::<Int64Type>();
            for i in 0..b.num_rows() {
                if ws.value(i) == w {
                    out.push(ss.value(i));
                }
            }
        }
        out
    }

    #[test]
    fn compaction_by_source_keeps_every_row_and_deletes_old_chunks() {
        let (_t, s) = store();
        for i in 0..10 {
            append(&s, "c", &schema(), &[rows(i % 3, i * 5, 5)], &AppendOptions::with_time_column(Some("ts".into())))
                .unwrap();
        }
        let before = read(&s, "c", &ReadSelection::default()).unwrap();
        let rep = compact(&s, "c", Some("writer"), Compression::Zstd).unwrap();
        assert_eq!((rep.chunks_before, rep.files.len(), rep.rows), (10, 3, 50));
        let after = read(&s, "c", &ReadSelection::default()).unwrap();
        assert_eq!(after.rows, 50);
        assert_eq!(after.total_chunks, 3);
        for w in 0..3 {
            assert_eq!(seqs_of(&before, w), seqs_of(&after, w));
        }
        let files = std::fs::read_dir(stream_dir(&s, "c"))
            .unwrap()
            .filter(|f| f.as_ref().unwrap().file_name().to_string_lossy().ends_with(".arrow"))
            .count();
        assert_eq!(files, 3);
        // Appends continue after a compaction.
        append(&s, "c", &schema(), &[rows(0, 100, 2)], &AppendOptions::default()).unwrap();
        assert_eq!(read(&s, "c", &ReadSelection::default()).unwrap().rows, 52);
    }

    #[test]
    fn compaction_with_concurrent_appends_loses_nothing() {
        let (_t, s) = store();
        append(&s, "cc", &schema(), &[rows(9, 0, 1)], &AppendOptions::default()).unwrap();
        let appenders: Vec<_> = (0..2)
            .map(|w| {
                let s = s.clone();
                std::thread::spawn(move || {
                    for i in 0..100 {
                        append(&s, "cc", &schema(), &[rows(w, i, 1)], &AppendOptions::default()).unwrap();
                    }
                })
            })
            .collect();
        for _ in 0..5 {
            compact(&s, "cc", Some("writer"), Compression::Zstd).unwrap();
        }
        for a in appenders {
            a.join().unwrap();
        }
        compact(&s, "cc", None, Compression::None).unwrap();
        let r = read(&s, "cc", &ReadSelection::default()).unwrap();
        assert_eq!(r.rows, 201);
        for w in 0..2 {
            assert_eq!(seqs_of(&r, w), (0..100).collect::<Vec<_>>());
        }
    }

    fn arrow_files(s: &Store, table: &str) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(stream_dir(s, table))
            .unwrap()
            .map(|f| f.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".arrow"))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_failed_check_or_a_changed_log_deletes_and_changes_nothing() {
        let (_t, s) = store();
        for i in 0..4 {
            append(&s, "x", &schema(), &[rows(i % 2, i * 3, 3)], &AppendOptions::default()).unwrap();
        }
        let before_files = arrow_files(&s, "x");
        let before_log = std::fs::read(log_path(&s, "x")).unwrap();
        // (a) the written file does not read back as the rows (a byte flipped on disk).
        hooks::AFTER_WRITE.with(|h| {
            *h.borrow_mut() = Some(Box::new(|p: &std::path::Path| {
                // Overwrite the values of the first record batch (its body follows the
                // schema message): the file still parses, the rows differ.
                let mut b = std::fs::read(p).unwrap();
                let at = b.len() / 3;
                for x in &mut b[at..at + 16] {
                    *x ^= 0x5a;
                }
                std::fs::write(p, b).unwrap();
            }))
        });
        let err = compact(&s, "x", Some("writer"), Compression::None);
        hooks::AFTER_WRITE.with(|h| *h.borrow_mut() = None);
        assert!(err.is_err(), "a corrupt compacted file must fail the check");
        assert_eq!(arrow_files(&s, "x"), before_files);
        assert_eq!(std::fs::read(log_path(&s, "x")).unwrap(), before_log);
        // (b) the log no longer begins with the snapshot (another compaction won).
        let s2 = s.clone();
        hooks::BEFORE_SWAP.with(|h| {
            *h.borrow_mut() = Some(Box::new(move || {
                let log = log_path(&s2, "x");
                let text = std::fs::read_to_string(&log).unwrap();
                let rest: Vec<&str> = text.lines().skip(1).collect();
                std::fs::write(&log, format!("{}\n", rest.join("\n"))).unwrap();
            }))
        });
        let err = compact(&s, "x", None, Compression::Zstd).unwrap_err();
        assert!(err.to_string().contains("nothing was changed"), "{err}");
        assert_eq!(arrow_files(&s, "x"), before_files, "the new files are deleted, the old ones kept");
        assert_eq!(read(&s, "x", &ReadSelection::default()).unwrap().rows, 9);
    }

    #[test]
    fn the_latest_load_state_is_carried_onto_the_compacted_lines() {
        let (_t, s) = store();
        let state = |last: i64| {
            let mut m = serde_json::Map::new();
            m.insert("last".into(), last.into());
            AppendOptions { load: Some(m), ..AppendOptions::default() }
        };
        append(&s, "l", &schema(), &[rows(0, 0, 5)], &state(4)).unwrap();
        append(&s, "l", &schema(), &[rows(1, 0, 5)], &state(9)).unwrap();
        append(&s, "l", &schema(), &[rows(2, 0, 5)], &AppendOptions::default()).unwrap();
        compact(&s, "l", Some("writer"), Compression::Zstd).unwrap();
        let lines = crate::streams::chunks(&s, "l").unwrap();
        assert_eq!(lines.len(), 3);
        let states: Vec<_> = lines.iter().map(|l| l.load.as_ref().and_then(|m| m.get("last")).cloned()).collect();
        assert_eq!(states, vec![None, None, Some(9.into())], "the last state, on the last line");
    }
}
