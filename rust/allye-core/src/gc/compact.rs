//! Rewriting the manifest keeping only the lines that still mean something (see the
//! module docs of [`crate::gc`]).

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};

use serde::Serialize;

use crate::error::{Error, IoContext, Result};
use crate::manifest::Event;
use crate::payload::Target;
use crate::protocol::{Status, Transport, LOCK_FILE, MANIFEST_FILE};
use crate::store::Store;
use crate::sys::lock::ManifestLock;
use crate::sys::time;
use crate::sys::trust::Open;

/// What [`compact`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct CompactReport {
    /// Lines before.
    pub lines_before: usize,
    /// Lines kept.
    pub lines_after: usize,
    /// Bytes before.
    pub bytes_before: u64,
    /// Bytes after.
    pub bytes_after: u64,
}

/// Rewrites the manifest keeping only the lines that still mean something (see the
/// module docs), atomically, under the writers' lock.
pub fn compact(store: &Store) -> Result<CompactReport> {
    let path = store.manifest_path();
    let empty = CompactReport { lines_before: 0, lines_after: 0, bytes_before: 0, bytes_after: 0 };
    let Some(dir) = store.open_dir()? else { return Ok(empty) };
    if dir.stat(MANIFEST_FILE)?.is_none() {
        return Ok(empty);
    }
    let _lock = ManifestLock::acquire(&dir, LOCK_FILE)?;
    let mut buf = Vec::new();
    dir.open(MANIFEST_FILE, Open::Read)?
        .ok_or_else(|| {
            Error::io(format!("cannot read manifest {}", path.display()), std::io::ErrorKind::NotFound.into())
        })?
        .read_to_end(&mut buf)
        .ctx(|| format!("cannot read manifest {}", path.display()))?;
    let payloads = crate::payload::payload_dir(store);
    // Under the lock no writer is mid-line: a tail without '\n' is a dead writer's garbage.
    let end = buf.iter().rposition(|&b| b == b'\n').map_or(0, |e| e + 1);
    let lines: Vec<&[u8]> = buf[..end].split(|&b| b == b'\n').filter(|l| !l.is_empty()).collect();
    let events: Vec<Option<Event>> = lines.iter().map(|l| Event::parse(l)).collect();

    let mut finished: HashSet<&str> = HashSet::new();
    let mut last_error: HashMap<&str, usize> = HashMap::new();
    let mut last_ready: HashMap<&str, usize> = HashMap::new();
    let mut last_removal: HashMap<&str, usize> = HashMap::new();
    for (i, ev) in events.iter().enumerate() {
        let Some(ev) = ev else { continue };
        if matches!(ev.status, Status::Ready | Status::Error) {
            finished.insert(&ev.id);
        }
        if ev.status == Status::Error {
            last_error.insert(&ev.table_name, i);
        }
        if ev.is_removal() {
            last_removal.insert(&ev.table_name, i);
        }
        if ev.status == Status::Ready {
            last_ready.insert(&ev.table_name, i);
        }
    }
    let keep = |i: usize, ev: &Event| -> bool {
        match ev.status {
            Status::Ready => match &ev.payload {
                None => false,
                Some(p) => {
                    !time::is_expired(p.expires_at.as_deref())
                        && match p.transport {
                            Transport::File | Transport::Shm => Target::of(p).exists_in(payloads.as_ref()),
                            // The line is the payload: kept while it is the current
                            // version (an older one has no reader left to serve: a
                            // reader holds the line it looked up, data included).
                            Transport::Inline => {
                                let table = ev.table_name.as_str();
                                last_ready.get(table) == Some(&i) && last_removal.get(table).is_none_or(|&r| r < i)
                            }
                            _ => true, // unknown to us: keep, a newer reader may know it
                        }
                }
            },
            // The last error, and the last removal (a failed send after it must not
            // outlive it: the table stays removed).
            Status::Error => {
                last_error.get(ev.table_name.as_str()) == Some(&i)
                    || last_removal.get(ev.table_name.as_str()) == Some(&i)
            }
            Status::Writing => !finished.contains(ev.id.as_str()),
            _ => false,
        }
    };
    let mut out = Vec::with_capacity(buf.len());
    let mut kept = 0;
    for (i, (line, ev)) in lines.iter().zip(&events).enumerate() {
        if ev.as_ref().is_some_and(|ev| keep(i, ev)) {
            out.extend_from_slice(line);
            out.push(b'\n');
            kept += 1;
        }
    }
    let tmp = format!("{}.compact-{}", MANIFEST_FILE, std::process::id());
    let write = || -> Result<()> {
        let mut f = dir.open(&tmp, Open::Truncate)?.expect("a truncating open creates the file");
        let ctx = || format!("cannot rewrite manifest {}", path.display());
        f.write_all(&out).ctx(ctx)?;
        f.sync_all().ctx(ctx)?;
        dir.rename(&tmp, &dir, MANIFEST_FILE)?;
        dir.sync();
        Ok(())
    };
    if let Err(e) = write() {
        let _ = dir.remove_file(&tmp);
        return Err(e);
    }
    log::info!("compacted {}: {} -> {} lines", path.display(), lines.len(), kept);
    Ok(CompactReport {
        lines_before: lines.len(),
        lines_after: kept,
        bytes_before: buf.len() as u64,
        bytes_after: out.len() as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gc::test_support::{cleanup, send, value};
    use crate::gc::{collect, GcOptions};
    use crate::manifest;
    use crate::protocol::TransportChoice;
    use std::fs::{self, OpenOptions};

    #[test]
    fn compact_keeps_live_lines_byte_for_byte_and_readers_follow() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::at(tmp.path());
        for v in 0..5 {
            send(&store, "a", v, TransportChoice::File, false);
        }
        send(&store, "b", 7, TransportChoice::Shm, false);
        assert_eq!(value(&store, "a"), 4); // warms this process's index
                                           // A foreign line with unknown fields, a failed send, garbage, a torn tail.
        let foreign = r#"{"version":1,"id":"x","table_name":"c","producer":"allye","status":"ready","created_at":"2025-12-18T12:34:56+0900","ttl_sec":null,"payload":{"transport":"carrier_pigeon_v9","locator":"coop","data_size":1,"shape":[1,1],"schema_sha256":"","created_at":"","expires_at":null},"metadata":{},"extra":[1,2]}"#;
        let err1 = r#"{"version":1,"id":"e1","table_name":"a","producer":"python","status":"error","created_at":"2025-12-18T12:34:56+0900","ttl_sec":null,"payload":null,"metadata":{"error":"first"}}"#;
        let err2 = err1.replace("e1", "e2").replace("first", "second");
        let path = store.manifest_path();
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        write!(f, "{foreign}\n{err1}\nnot json\n{err2}\n{{\"torn").unwrap();
        drop(f);
        collect(&store, GcOptions { dry_run: false, keep_versions: 1 }).unwrap();
        let report = compact(&store).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(report.lines_after, lines.len());
        assert_eq!(lines.len(), 4, "{text}"); // a's ready, b's ready, the foreign line, the latest error
        assert!(lines.contains(&foreign));
        assert!(lines.contains(&err2.as_str()) && !lines.contains(&err1));
        assert!(report.bytes_after < report.bytes_before);
        // Readers (warm index or not) and writers carry on with the new file.
        assert_eq!((value(&store, "a"), value(&store, "b")), (4, 7));
        send(&store, "a", 5, TransportChoice::File, false);
        assert_eq!(value(&store, "a"), 5);
        assert_eq!(manifest::read_all(&store).unwrap().len(), 6);
        cleanup(&store);
    }
}
