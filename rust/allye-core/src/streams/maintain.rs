//! A stream's life besides appends: its v1 publication, removal, and gc of what dead
//! appenders and removals left.

use std::collections::HashSet;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use serde_json::json;

use crate::error::{Error, IoContext, Result};
use crate::gc::{GcAction, GcTransport};
use crate::manifest::Event;
use crate::protocol::{
    METADATA_STREAM, STREAMS_DIR, STREAM_LOG_FILE, STREAM_PUBLISHED_FILE, STREAM_PUBLISH_LOCK_FILE, STREAM_TRANSPORT,
};
use crate::store::Store;
use crate::streams::append::forget_schema;
use crate::streams::view::{forget_view, view_of};
use crate::streams::{not_a_stream, read, stream_dir, ReadSelection};
use crate::sys::lock::ManifestLock;
use crate::sys::process::WriterIdentity;
use crate::sys::trust::{EntryKind, Open, TrustedDir};
use crate::tables::{self, SendOptions};

/// Publishes every row of stream `table` so far as an ordinary v1 `ready` version of the
/// same name (what 0.1.2 and the widgets read). Costs one send of the whole stream: the
/// chunks are written again, into one payload.
pub fn publish(store: &Store, table: &str) -> Result<Event> {
    let dir_path = stream_dir(store, table);
    let dir = store.dir_at(&dir_path, false)?.ok_or_else(|| not_a_stream(store, table))?;
    // Two publications at once (a process's background one, another's close) could each
    // read the stream, then land in the other order: the older read last, hiding rows
    // from v1 readers. Held from the read to the `ready` line, the lock orders them.
    let _one_at_a_time = ManifestLock::acquire(&dir, STREAM_PUBLISH_LOCK_FILE)?;
    let r = read(store, table, &ReadSelection::default())?;
    #[cfg(test)]
    after_read::run();
    let marker = dir_path.join(STREAM_PUBLISHED_FILE);
    let mut f = store.open_file(&marker, Open::Truncate)?.expect("a truncating open creates the file");
    f.write_all(r.total_rows.to_string().as_bytes()).ctx(|| format!("cannot write {}", marker.display()))?;
    drop(f);
    let mut opts = SendOptions::named(table);
    opts.metadata.insert(METADATA_STREAM.into(), json!({"chunks": r.total_chunks, "rows": r.total_rows}));
    tables::send(store, &r.schema, &r.batches, &opts)
}

/// [`publish`] when the last publication of the stream (by any process) is at least
/// `interval` old, or never was; `None` otherwise.
pub fn publish_if_due(store: &Store, table: &str, interval: Duration) -> Result<Option<Event>> {
    let marker = stream_dir(store, table).join(STREAM_PUBLISHED_FILE);
    let due = match store.stat(&marker)? {
        Some(m) => m.modified.elapsed().map(|e| e >= interval).unwrap_or(true),
        None => true,
    };
    if due {
        publish(store, table).map(Some)
    } else {
        Ok(None)
    }
}

/// A stream as listings show it (`list_tables`, `describe_table`, `adc ls`), so that they
/// agree with what a get reads: `ready` (its v1 publication, if any) with the stream's
/// rows, columns and chunk bytes, transport [`STREAM_TRANSPORT`] and the stream directory
/// as locator; without a publication, an event of its own (empty id, the time of the
/// last append). `None` when `table` is not a stream with a chunk.
pub fn listing(store: &Store, table: &str, ready: Option<&Event>) -> Result<Option<Event>> {
    let lines = crate::streams::chunks(store, table)?;
    let Some(last) = lines.iter().max_by_key(|l| l.appended_ns) else { return Ok(None) };
    let Some(schema) = crate::streams::stream_schema(store, table)? else { return Ok(None) };
    let rows: u64 = lines.iter().map(|l| l.rows).sum();
    let bytes: u64 = lines.iter().map(|l| l.bytes).sum();
    let at = {
        let secs = (last.appended_ns / 1_000_000_000) as i64;
        chrono::DateTime::from_timestamp(secs, 0)
            .map(|t| t.with_timezone(&chrono::Local).format(crate::protocol::TIMESTAMP_FORMAT).to_string())
            .unwrap_or_default()
    };
    let mut ev = match ready {
        Some(ev) => ev.clone(),
        None => Event {
            version: 1,
            id: String::new(),
            table_name: table.into(),
            producer: crate::protocol::DEFAULT_PRODUCER.into(),
            status: crate::protocol::Status::Ready,
            created_at: at.clone(),
            ttl_sec: None,
            payload: None,
            metadata: serde_json::Map::new(),
        },
    };
    ev.payload = Some(crate::manifest::PayloadRef {
        transport: crate::protocol::Transport::from_wire(STREAM_TRANSPORT),
        locator: stream_dir(store, table).display().to_string(),
        data_size: bytes,
        shape: [rows, schema.fields().len() as u64],
        schema_sha256: ev.payload.as_ref().map(|p| p.schema_sha256.clone()).unwrap_or_default(),
        created_at: at,
        expires_at: None,
    });
    ev.metadata.insert(METADATA_STREAM.into(), json!({"chunks": lines.len(), "rows": rows}));
    Ok(Some(ev))
}

/// Removes stream `table`: its directory (chunks and log) goes, then its v1 versions
/// (a removal line, as `remove_table`). Returns the number of chunks freed; `TableNotFound`
/// when it is neither a stream nor a table.
pub fn remove(store: &Store, table: &str) -> Result<usize> {
    let dir = stream_dir(store, table);
    let name = dir.file_name().expect("a stream directory has a name").to_os_string();
    let streams = store.dir_at(Path::new(STREAMS_DIR), false)?;
    let mut freed = 0;
    let was_stream = match &streams {
        Some(s) => s.stat(&name)?.is_some_and(|st| st.kind == EntryKind::Dir),
        None => false,
    };
    if let (true, Some(streams)) = (was_stream, &streams) {
        freed = crate::streams::chunks(store, table)?.len();
        // Renamed first, so appenders and readers stop finding it at once.
        let gone = format!(".removed-{}", crate::sys::ids::new_v4().simple());
        streams.rename(&name, streams, &gone)?;
        streams.remove_dir_all(&gone)?;
    }
    forget_view(store, table);
    forget_schema(store, table);
    match tables::remove(store, table) {
        Ok(_) => Ok(freed),
        Err(Error::TableNotFound { .. }) if was_stream => Ok(freed),
        Err(e) => Err(e),
    }
}

/// A `delete` of a stream's file or directory (dry or not: gc's spelling).
fn chunk_action(path: &Path, table_name: String, reason: String) -> GcAction {
    GcAction::delete(GcTransport::StreamChunk, path.to_string_lossy().into_owned(), table_name, reason)
}

fn pid_of(name: &str) -> Option<u32> {
    if let Some(i) = name.rfind(".tmp-") {
        return name[i + 5..].parse().ok();
    }
    name.split('-').next()?.parse().ok()
}

fn dead(pid: u32) -> bool {
    WriterIdentity { pid, start: None, boot_id: None }.is_alive() == Some(false)
}

/// Frees what no reader can reach: directories of removed streams, and in each stream the
/// chunk files (and temporary files) of appenders and compactions that died before
/// their line was appended. A live process's files are never touched.
pub fn collect(store: &Store, dry_run: bool) -> Result<Vec<GcAction>> {
    let mut actions = Vec::new();
    let Some(streams) = store.dir_at(Path::new(STREAMS_DIR), false)? else { return Ok(actions) };
    for d in streams.entries()? {
        let dname = d.name.to_string_lossy().into_owned();
        let path = streams.path().join(&d.name);
        if dname.starts_with(".removed-") {
            if !dry_run {
                let _ = streams.remove_dir_all(&d.name);
            }
            actions.push(chunk_action(&path, String::new(), "a removed stream".into()));
            continue;
        }
        if d.kind != EntryKind::Dir {
            continue;
        }
        let Some(dir) = streams.open_dir(&d.name)? else { continue };
        let Ok(Some(table)) = dir.read(crate::protocol::STREAM_NAME_FILE) else { continue };
        actions.extend(collect_one(store, &String::from_utf8_lossy(&table), &dir, dry_run)?);
    }
    Ok(actions)
}

fn collect_one(store: &Store, table: &str, dir: &TrustedDir, dry_run: bool) -> Result<Vec<GcAction>> {
    let mut out = Vec::new();
    // Lines first, then the directory: a chunk whose line lands meanwhile is in neither
    // list's "unnamed" set only if its appender is alive, and live appenders are skipped.
    let view = view_of(store, table);
    let (named, replaced): (HashSet<String>, HashSet<String>) = {
        let mut v = view.lock().unwrap_or_else(|e| e.into_inner());
        v.refresh(store, table)?;
        let named = v.chunks.iter().map(|c| c.line.chunk.clone()).collect();
        let replaced = v.chunks.iter().filter_map(|c| c.line.merged.as_ref()).flat_map(|m| m.chunks.clone()).collect();
        (named, replaced)
    };
    for f in dir.entries()? {
        let name = f.name.to_string_lossy().into_owned();
        let is_chunk = name.ends_with(".arrow") && !named.contains(&name);
        let is_tmp = name.contains(".tmp-");
        if !(is_chunk || is_tmp) || name == STREAM_LOG_FILE {
            continue;
        }
        // A chunk a consolidated line says it replaced: its consolidation stopped before
        // deleting it. No line names it, and none will (its name is never reused).
        let reason = if is_chunk && replaced.contains(&name) {
            "replaced by a consolidated chunk".to_string()
        } else {
            let Some(pid) = pid_of(&name) else { continue };
            if !dead(pid) {
                continue;
            }
            format!("left by process {pid}, which died before the chunk log named it")
        };
        if !dry_run {
            let _ = dir.remove_file(&f.name);
        }
        out.push(chunk_action(&dir.path().join(&f.name), table.into(), reason));
    }
    Ok(out)
}

/// Test-only pause between a publication's read and its send, per thread.
#[cfg(test)]
mod after_read {
    use std::cell::RefCell;

    thread_local! {
        static HOOK: RefCell<Option<Box<dyn FnOnce()>>> = RefCell::new(None);
    }

    pub(super) fn set(hook: Box<dyn FnOnce()>) {
        HOOK.with(|h| *h.borrow_mut() = Some(hook));
    }

    pub(super) fn run() {
        if let Some(h) = HOOK.with(|h| h.borrow_mut().take()) {
            h()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::streams::test_support::{rows, schema, store};
    use crate::streams::{append, log_path, AppendOptions};

    #[test]
    fn publish_sends_every_row_as_a_v1_version() {
        let (_t, s) = store();
        for i in 0..3 {
            append(&s, "p", &schema(), &[rows(0, i * 4, 4)], &AppendOptions::default()).unwrap();
        }
        let ev = publish(&s, "p").unwrap();
        assert_eq!(ev.payload.as_ref().unwrap().shape, [12, 4]);
        assert_eq!(ev.metadata[METADATA_STREAM]["rows"], 12);
        let (_, d) = s.get("p", None).unwrap();
        assert_eq!(d.batches.iter().map(|b| b.num_rows()).sum::<usize>(), 12);
        assert!(publish_if_due(&s, "p", Duration::from_secs(60)).unwrap().is_none());
        assert!(publish_if_due(&s, "p", Duration::ZERO).unwrap().is_some());
    }

    /// A publication that read the stream before an append and is slow to land never
    /// becomes the last version over one that read after: the second waits for the first.
    #[test]
    fn a_slow_publication_never_lands_over_a_later_one() {
        let (_t, s) = store();
        append(&s, "race", &schema(), &[rows(0, 0, 1)], &AppendOptions::default()).unwrap();
        let (read_done, has_read) = std::sync::mpsc::channel();
        let slow = {
            let s = s.clone();
            std::thread::spawn(move || {
                after_read::set(Box::new(move || {
                    read_done.send(()).unwrap();
                    std::thread::sleep(Duration::from_millis(300));
                }));
                publish(&s, "race").unwrap();
            })
        };
        has_read.recv().unwrap(); // the slow one has read 1 row and holds its publication
        append(&s, "race", &schema(), &[rows(0, 1, 1)], &AppendOptions::default()).unwrap();
        publish(&s, "race").unwrap();
        slow.join().unwrap();
        let (_, d) = s.get("race", None).unwrap();
        assert_eq!(d.batches.iter().map(|b| b.num_rows()).sum::<usize>(), 2, "the last version lost a row");
    }

    #[test]
    fn remove_frees_the_directory_and_the_v1_versions() {
        let (_t0, s0) = store();
        assert!(matches!(remove(&s0, "never"), Err(Error::TableNotFound { .. })));
        let (_t, s) = store();
        append(&s, "r", &schema(), &[rows(0, 0, 4)], &AppendOptions::default()).unwrap();
        publish(&s, "r").unwrap();
        assert_eq!(remove(&s, "r").unwrap(), 1);
        assert!(!stream_dir(&s, "r").exists());
        assert!(matches!(s.get("r", None), Err(Error::TableNotFound { .. })));
        assert!(matches!(read(&s, "r", &ReadSelection::default()), Err(Error::TableNotFound { .. })));
    }

    #[test]
    fn gc_frees_dead_appenders_unnamed_chunks_only() {
        let (_t, s) = store();
        append(&s, "g", &schema(), &[rows(0, 0, 4)], &AppendOptions::default()).unwrap();
        let dir = stream_dir(&s, "g");
        // A dead process's chunk without a line and its temporary file; a live one's.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead_pid = child.id();
        child.wait().unwrap();
        std::fs::write(dir.join(format!("{dead_pid}-abc.arrow")), b"x").unwrap();
        std::fs::write(dir.join(format!("{dead_pid}-def.arrow.tmp-{dead_pid}")), b"x").unwrap();
        let live = format!("{}-live.arrow", std::process::id());
        std::fs::write(dir.join(&live), b"x").unwrap();
        let dry = collect(&s, true).unwrap();
        assert_eq!(dry.len(), 2, "{dry:?}");
        assert!(dir.join(format!("{dead_pid}-abc.arrow")).exists());
        collect(&s, false).unwrap();
        assert!(!dir.join(format!("{dead_pid}-abc.arrow")).exists());
        assert!(dir.join(&live).exists());
        assert!(log_path(&s, "g").exists());
        assert_eq!(read(&s, "g", &ReadSelection::default()).unwrap().rows, 4);
    }
}
