//! Garbage collection and manifest compaction.
//!
//! [`collect`] frees what no reader can be served any more, and only that:
//! * payloads whose TTL has run out (`expires_at` in the past; such versions are not served);
//! * superseded versions: for every `(table_name, producer)` the latest `keep_versions`
//!   `ready` versions are kept, older ones are freed (a reader that already maps one keeps
//!   valid data on POSIX; a reader that looked one up just before gc retries, see
//!   [`crate::connector::get`]);
//! * shared-memory segments flagged `shm_unlink_on_read` once a reader of ours has read
//!   them (readers leave a marker in `<store>/reads/`);
//! * leftovers of dead writers: a transfer with a `writing` line but no `ready`/`error`
//!   line whose writer process is gone (pid, start time and boot id are recorded in the
//!   `writing` line's `metadata.adc`). Its planned segment or file and its temporary file
//!   are removed and an `error` line is appended so the table's state says what happened.
//!   A live writer's work is never touched; a writer whose liveness cannot be told is left;
//! * leftovers of failed sends (an `error` line whose payload still exists).
//!
//! gc deletes only files directly inside this store's `payloads/` and segments with a
//! valid name that this store's manifest names; a locator elsewhere is reported as
//! `skip` and never followed.
//!
//! [`compact`] rewrites the manifest, under the writers' lock, keeping only the lines that
//! still mean something: `ready` lines of live payloads, the latest `error` line per
//! table, and `writing` lines of transfers that have not finished. The kept lines are
//! copied byte for byte (unknown fields survive); the new file is written under a
//! temporary name, fsync'ed and renamed over the old one. Lock-free readers see either
//! the old or the new file; writers (ours and 0.1.2's) open the manifest only while
//! holding the lock, so no append can land in the replaced file.

use std::collections::{HashMap, HashSet};
use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use crate::connector::METADATA_KEY;
use crate::error::{Error, IoContext, Result};
use crate::lock::ManifestLock;
use crate::manifest::{self, Event, PayloadRef, STATUS_ERROR, STATUS_READY, STATUS_WRITING, TRANSPORT_FILE, TRANSPORT_SHM};
use crate::process::WriterIdentity;
use crate::store::Store;
use crate::time;

/// Directory (inside the store) of read markers for `shm_unlink_on_read` segments.
pub const READS_DIR: &str = "reads";

/// What gc is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GcOptions {
    /// Only report what would be done.
    pub dry_run: bool,
    /// Ready versions kept per `(table_name, producer)`, at least 1.
    pub keep_versions: usize,
}

impl Default for GcOptions {
    fn default() -> Self {
        GcOptions { dry_run: true, keep_versions: 1 }
    }
}

/// One thing gc did or would do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GcAction {
    /// `"delete"`; `"skip"` for a payload gc will not touch (outside this store);
    /// `"record"` for an `error` line appended for a dead writer's transfer.
    pub action: String,
    pub transport: String,
    pub locator: String,
    pub table_name: String,
    /// Why, in words.
    pub reason: String,
    /// The transfer (`id` of the manifest lines) the payload belongs to.
    pub id: String,
}

/// The `metadata.adc` entry our writers put on every line of a transfer.
#[derive(Debug, Clone, Default)]
struct Planned {
    writer: Option<WriterIdentity>,
    transport: Option<String>,
    locator: Option<String>,
}

fn planned(ev: &Event) -> Planned {
    let Some(Value::Object(adc)) = ev.metadata.get(METADATA_KEY) else {
        return Planned::default();
    };
    Planned {
        writer: adc.get("writer").and_then(|w| serde_json::from_value(w.clone()).ok()),
        transport: adc.get("transport").and_then(Value::as_str).map(Into::into),
        locator: adc.get("locator").and_then(Value::as_str).map(Into::into),
    }
}

/// Where a read marker for segment `locator` lives.
pub fn read_marker(store: &Store, locator: &str) -> PathBuf {
    store.root().join(READS_DIR).join(locator)
}

/// Records that a reader has read segment `locator` (for `shm_unlink_on_read`). Best
/// effort: a store the reader cannot write to just keeps the segment until its TTL or a
/// newer version frees it.
pub fn mark_read(store: &Store, locator: &str) {
    if crate::shm::check_name(locator).is_err() {
        return;
    }
    let path = read_marker(store, locator);
    let create = || {
        let mut opts = OpenOptions::new();
        opts.write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        opts.open(&path).map(drop)
    };
    let result = create().or_else(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            let mut b = fs::DirBuilder::new();
            #[cfg(unix)]
            {
                use std::os::unix::fs::DirBuilderExt;
                b.mode(0o700);
            }
            b.create(store.root().join(READS_DIR)).or_else(|e| {
                if e.kind() == std::io::ErrorKind::AlreadyExists { Ok(()) } else { Err(e) }
            })?;
            create()
        } else {
            Err(e)
        }
    });
    if let Err(e) = result {
        log::debug!("cannot record the read of segment {locator:?} in {}: {e}", path.display());
    }
}

/// True when `ev` was sent with `shm_unlink_on_read=True`.
pub(crate) fn unlink_on_read(ev: &Event) -> bool {
    ev.metadata.get("shm_unlink_on_read").and_then(Value::as_bool) == Some(true)
}

/// A payload by transport and locator: whether it lies inside the store, whether it
/// exists, and deleting it. gc and table removal delete through this and nothing else.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Target {
    transport: String,
    locator: String,
}

impl Target {
    pub(crate) fn of(p: &PayloadRef) -> Self {
        Target { transport: p.transport.clone(), locator: p.locator.clone() }
    }
    fn file(path: &Path) -> Self {
        Target { transport: TRANSPORT_FILE.into(), locator: path.to_string_lossy().into_owned() }
    }

    /// `Some(true)`: ours to delete; `Some(false)`: outside the store (report, do not
    /// follow); `None`: a transport we do not know (leave alone).
    pub(crate) fn inside(&self, store: &Store) -> Option<bool> {
        match self.transport.as_str() {
            TRANSPORT_FILE => Some(store.owns_payload_file(Path::new(&self.locator))),
            TRANSPORT_SHM => Some(crate::shm::check_name(&self.locator).is_ok()),
            _ => None,
        }
    }

    pub(crate) fn exists(&self) -> bool {
        match self.transport.as_str() {
            TRANSPORT_FILE => Path::new(&self.locator).exists(),
            TRANSPORT_SHM => crate::shm::exists(&self.locator),
            _ => false,
        }
    }

    pub(crate) fn delete(&self, store: &Store) -> Result<()> {
        match self.transport.as_str() {
            TRANSPORT_FILE => match fs::remove_file(&self.locator) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(Error::io(format!("cannot remove {}", self.locator), e)),
            },
            TRANSPORT_SHM => {
                crate::shm::unlink(&self.locator)?;
                let _ = fs::remove_file(read_marker(store, &self.locator));
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// All we know of one transfer (one `id`).
#[derive(Debug, Default)]
struct Transfer {
    writing: Option<Event>,
    /// The last `ready` or `error` line.
    terminal: Option<Event>,
}

/// Collects garbage (see the module docs); returns what was done (or, with `dry_run`,
/// what would be done), in manifest order.
pub fn collect(store: &Store, opts: GcOptions) -> Result<Vec<GcAction>> {
    if opts.keep_versions == 0 {
        return Err(Error::InvalidArgument(
            "keep_versions must be at least 1: gc never frees the current version of a table".into(),
        ));
    }
    let events = manifest::read_all(store)?;

    // Transfers by id, in order of first appearance.
    let mut order: Vec<String> = Vec::new();
    let mut transfers: HashMap<String, Transfer> = HashMap::new();
    for ev in &events {
        let t = transfers.entry(ev.id.clone()).or_insert_with(|| {
            order.push(ev.id.clone());
            Transfer::default()
        });
        match ev.status.as_str() {
            STATUS_WRITING => {
                t.writing.get_or_insert_with(|| ev.clone());
            }
            STATUS_READY | STATUS_ERROR => t.terminal = Some(ev.clone()),
            _ => {}
        }
    }

    // The ready versions each (table, producer) keeps: its last `keep_versions`.
    let mut per_key: HashMap<(&str, &str), Vec<&Event>> = HashMap::new();
    for ev in events.iter().filter(|e| e.is_ready()) {
        per_key.entry((&ev.table_name, &ev.producer)).or_default().push(ev);
    }
    let mut kept: HashSet<Target> = HashSet::new();
    let mut superseded: Vec<&Event> = Vec::new();
    for versions in per_key.values() {
        let cut = versions.len().saturating_sub(opts.keep_versions);
        superseded.extend(&versions[..cut]);
        for ev in &versions[cut..] {
            kept.insert(Target::of(ev.payload.as_ref().expect("ready has payload")));
        }
    }
    let superseded_ids: HashSet<&str> = superseded.iter().map(|e| e.id.as_str()).collect();

    let mut actions = Vec::new();
    let mut done: HashSet<Target> = HashSet::new();
    let mut consider = |target: Target, ev: &Event, reason: String, protect: bool, actions: &mut Vec<GcAction>| -> Result<()> {
        if (protect && kept.contains(&target)) || done.contains(&target) {
            return Ok(());
        }
        let action = |what: &str, reason: String| GcAction {
            action: what.into(),
            transport: target.transport.clone(),
            locator: target.locator.clone(),
            table_name: ev.table_name.clone(),
            reason,
            id: ev.id.clone(),
        };
        match target.inside(store) {
            None => return Ok(()),
            Some(false) => {
                done.insert(target.clone());
                actions.push(action("skip", format!("{reason}, but the locator is outside this store; not followed")));
                return Ok(());
            }
            Some(true) => {}
        }
        if !target.exists() {
            return Ok(());
        }
        if !opts.dry_run {
            target.delete(store)?;
        }
        done.insert(target.clone());
        actions.push(action("delete", reason));
        Ok(())
    };

    let mut records: Vec<Event> = Vec::new();
    for id in &order {
        let t = &transfers[id];
        let plan = t.writing.as_ref().map(planned).unwrap_or_default();
        match &t.terminal {
            Some(ev) if ev.is_ready() => {
                let p = ev.payload.as_ref().expect("ready has payload");
                let target = Target::of(p);
                if time::is_expired(p.expires_at.as_deref()) {
                    let reason = format!("expired at {}", p.expires_at.as_deref().unwrap_or(""));
                    consider(target.clone(), ev, reason, false, &mut actions)?;
                } else if superseded_ids.contains(ev.id.as_str()) {
                    let reason = format!(
                        "superseded: newer versions of table {:?} from producer {:?} exist (keeping the latest {})",
                        ev.table_name, ev.producer, opts.keep_versions
                    );
                    consider(target.clone(), ev, reason, true, &mut actions)?;
                } else if p.transport == TRANSPORT_SHM && unlink_on_read(ev) && read_marker(store, &p.locator).exists() {
                    let reason = "read once and flagged shm_unlink_on_read".to_string();
                    consider(target.clone(), ev, reason, false, &mut actions)?;
                }
                // A planned payload the transfer did not end up using (auto fell back from
                // a full /dev/shm to a file).
                if let (Some(tr), Some(loc)) = (&plan.transport, &plan.locator) {
                    let unused = Target { transport: tr.clone(), locator: loc.clone() };
                    if unused != target {
                        consider(unused, ev, "planned payload the send did not use".into(), true, &mut actions)?;
                    }
                }
            }
            Some(ev) => {
                // An `error` line: nothing of this transfer should exist any more.
                for target in leftovers(store, id, &plan) {
                    consider(target, ev, "left over by a failed send".into(), true, &mut actions)?;
                }
            }
            None => {
                let Some(writing) = &t.writing else { continue };
                let Some(writer) = &plan.writer else { continue }; // not ours (0.1.2): undiscoverable
                if writer.is_alive() != Some(false) {
                    continue; // a live writer's work, or we cannot tell: never touched
                }
                let reason = format!("orphan of writer pid {} that died before finishing", writer.pid);
                for target in leftovers(store, id, &plan) {
                    consider(target, writing, reason.clone(), true, &mut actions)?;
                }
                let mut error = writing.clone();
                error.status = STATUS_ERROR.into();
                error.metadata.insert(
                    "error".into(),
                    Value::String(format!("the sending process (pid {}) died before finishing; gc removed what it left", writer.pid)),
                );
                actions.push(GcAction {
                    action: "record".into(),
                    transport: plan.transport.clone().unwrap_or_default(),
                    locator: plan.locator.clone().unwrap_or_default(),
                    table_name: writing.table_name.clone(),
                    reason: format!("{reason}: append an error line"),
                    id: id.clone(),
                });
                records.push(error);
            }
        }
    }
    if !opts.dry_run {
        for ev in &records {
            manifest::append(store, ev, false)?;
        }
        prune_read_markers(store);
    }
    Ok(actions)
}

/// What a transfer that never became ready may have left: its planned segment or file,
/// the file a send with `auto` falls back to, and their temporary files.
fn leftovers(store: &Store, id: &str, plan: &Planned) -> Vec<Target> {
    let mut out = Vec::new();
    if let (Some(tr), Some(loc)) = (&plan.transport, &plan.locator) {
        out.push(Target { transport: tr.clone(), locator: loc.clone() });
    }
    // Locators are absolute, canonical paths (as `connector::send` writes them).
    let dir = fs::canonicalize(store.payload_dir()).unwrap_or_else(|_| store.payload_dir());
    out.push(Target::file(&dir.join(format!("{id}.arrow"))));
    let prefix = format!("{id}.arrow.tmp-");
    if let Ok(entries) = fs::read_dir(&dir) {
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(&prefix) {
                out.push(Target::file(&entry.path()));
            }
        }
    }
    out.dedup();
    out
}

/// Removes read markers of segments that no longer exist.
fn prune_read_markers(store: &Store) {
    let Ok(entries) = fs::read_dir(store.root().join(READS_DIR)) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !crate::shm::exists(&name) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// What [`compact`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CompactReport {
    pub lines_before: usize,
    pub lines_after: usize,
    pub bytes_before: u64,
    pub bytes_after: u64,
}

/// Rewrites the manifest keeping only the lines that still mean something (see the
/// module docs), atomically, under the writers' lock.
pub fn compact(store: &Store) -> Result<CompactReport> {
    let path = store.manifest_path();
    if !path.exists() {
        return Ok(CompactReport { lines_before: 0, lines_after: 0, bytes_before: 0, bytes_after: 0 });
    }
    let _lock = ManifestLock::acquire(store)?;
    let mut buf = Vec::new();
    fs::File::open(&path)
        .and_then(|mut f| f.read_to_end(&mut buf))
        .ctx(|| format!("cannot read manifest {}", path.display()))?;
    // Under the lock no writer is mid-line: a tail without '\n' is a dead writer's garbage.
    let end = buf.iter().rposition(|&b| b == b'\n').map_or(0, |e| e + 1);
    let lines: Vec<&[u8]> = buf[..end].split(|&b| b == b'\n').filter(|l| !l.is_empty()).collect();
    let events: Vec<Option<Event>> = lines.iter().map(|l| Event::parse(l)).collect();

    let mut finished: HashSet<&str> = HashSet::new();
    let mut last_error: HashMap<&str, usize> = HashMap::new();
    for (i, ev) in events.iter().enumerate() {
        let Some(ev) = ev else { continue };
        match ev.status.as_str() {
            STATUS_READY | STATUS_ERROR => {
                finished.insert(&ev.id);
            }
            _ => {}
        }
        if ev.status == STATUS_ERROR {
            last_error.insert(&ev.table_name, i);
        }
    }
    let keep = |i: usize, ev: &Event| -> bool {
        match ev.status.as_str() {
            STATUS_READY => match &ev.payload {
                None => false,
                Some(p) => {
                    !time::is_expired(p.expires_at.as_deref())
                        && match p.transport.as_str() {
                            TRANSPORT_FILE | TRANSPORT_SHM => Target::of(p).exists(),
                            _ => true, // unknown to us: keep, a newer reader may know it
                        }
                }
            },
            STATUS_ERROR => last_error.get(ev.table_name.as_str()) == Some(&i),
            STATUS_WRITING => !finished.contains(ev.id.as_str()),
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
    let tmp = path.with_file_name(format!("{}.compact-{}", crate::store::MANIFEST_FILE, std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut opts = OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp)?;
        f.write_all(&out)?;
        f.sync_all()?;
        fs::rename(&tmp, &path)?;
        #[cfg(unix)]
        if let Ok(d) = fs::File::open(store.root()) {
            let _ = d.sync_all();
        }
        Ok(())
    };
    if let Err(e) = write() {
        let _ = fs::remove_file(&tmp);
        return Err(Error::io(format!("cannot rewrite manifest {}", path.display()), e));
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
    use crate::connector::{self, SendOptions, TransportChoice};
    use arrow_array::{ArrayRef, Int64Array, RecordBatch};
    use arrow_schema::{DataType, Field, Schema, SchemaRef};
    use serde_json::json;
    use std::sync::Arc;

    fn table(v: i64) -> (SchemaRef, Vec<RecordBatch>) {
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
        let col: ArrayRef = Arc::new(Int64Array::from(vec![v; 100]));
        (schema.clone(), vec![RecordBatch::try_new(schema, vec![col]).unwrap()])
    }

    fn send(store: &Store, name: &str, v: i64, transport: TransportChoice, flag: bool) -> Event {
        let (schema, batches) = table(v);
        let mut metadata = serde_json::Map::new();
        metadata.insert("shm_unlink_on_read".into(), json!(flag));
        let opts = SendOptions { table_name: Some(name.into()), transport, metadata, ..Default::default() };
        connector::send(store, &schema, &batches, &opts).unwrap()
    }

    fn target(ev: &Event) -> Target {
        Target::of(ev.payload.as_ref().unwrap())
    }

    fn value(store: &Store, name: &str) -> i64 {
        let (_, d) = connector::get(store, name, None).unwrap();
        d.batches[0].column(0).as_any().downcast_ref::<Int64Array>().unwrap().value(0)
    }

    fn cleanup(store: &Store) {
        for ev in manifest::read_all(store).unwrap() {
            for loc in [planned(&ev).locator, ev.payload.map(|p| p.locator)].into_iter().flatten() {
                if crate::shm::check_name(&loc).is_ok() {
                    let _ = crate::shm::unlink(&loc);
                }
            }
        }
    }

    #[test]
    fn keeps_the_latest_versions_per_table_and_producer() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::at(tmp.path());
        let a: Vec<Event> = (0..4).map(|v| send(&store, "a", v, TransportChoice::Shm, false)).collect();
        let f: Vec<Event> = (0..3).map(|v| send(&store, "f", v, TransportChoice::File, false)).collect();
        let b = send(&store, "b", 9, TransportChoice::Shm, false);
        let dry = collect(&store, GcOptions { dry_run: true, keep_versions: 2 }).unwrap();
        let deleted: Vec<&str> = dry.iter().filter(|x| x.action == "delete").map(|x| x.locator.as_str()).collect();
        assert_eq!(deleted, vec![target(&a[0]).locator.as_str(), target(&a[1]).locator.as_str(), target(&f[0]).locator.as_str()]);
        assert!(dry.iter().all(|x| x.reason.starts_with("superseded")), "{dry:?}");
        assert!(target(&a[0]).exists(), "dry run deletes nothing");
        assert!(matches!(collect(&store, GcOptions { dry_run: false, keep_versions: 0 }), Err(Error::InvalidArgument(_))));
        let done = collect(&store, GcOptions { dry_run: false, keep_versions: 1 }).unwrap();
        assert_eq!(done.len(), 5, "{done:?}");
        for ev in a[..3].iter().chain(&f[..2]) {
            assert!(!target(ev).exists());
        }
        for ev in [&a[3], &f[2], &b] {
            assert!(target(ev).exists());
        }
        assert_eq!((value(&store, "a"), value(&store, "f"), value(&store, "b")), (3, 2, 9));
        assert!(collect(&store, GcOptions { dry_run: false, keep_versions: 1 }).unwrap().is_empty());
        cleanup(&store);
    }

    #[test]
    fn a_mapped_version_stays_valid_after_gc_and_a_stale_lookup_retries() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::at(tmp.path());
        send(&store, "t", 1, TransportChoice::Shm, false);
        let (_, held) = connector::get(&store, "t", None).unwrap();
        send(&store, "t", 2, TransportChoice::Shm, false);
        collect(&store, GcOptions { dry_run: false, keep_versions: 1 }).unwrap();
        let col = held.batches[0].column(0).as_any().downcast_ref::<Int64Array>().unwrap();
        assert!(col.values().iter().all(|&v| v == 1), "unlinked mapping still reads version 1");
        assert_eq!(value(&store, "t"), 2);
        cleanup(&store);
    }

    #[test]
    fn unlink_on_read_segments_go_once_read() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::at(tmp.path());
        let once = send(&store, "once", 1, TransportChoice::Shm, true);
        let keep = send(&store, "keep", 1, TransportChoice::Shm, false);
        assert!(collect(&store, GcOptions { dry_run: false, keep_versions: 1 }).unwrap().is_empty(), "not read yet");
        value(&store, "once");
        value(&store, "keep");
        assert!(read_marker(&store, &target(&once).locator).exists());
        assert!(!read_marker(&store, &target(&keep).locator).exists());
        let done = collect(&store, GcOptions { dry_run: false, keep_versions: 1 }).unwrap();
        assert_eq!(done.len(), 1, "{done:?}");
        assert!(done[0].reason.contains("shm_unlink_on_read"));
        assert!(!target(&once).exists() && target(&keep).exists());
        assert!(!read_marker(&store, &target(&once).locator).exists(), "marker removed with the segment");
        let err = connector::get(&store, "once", None).unwrap_err();
        assert!(err.to_string().contains("shm_unlink_on_read=False"), "{err}");
        cleanup(&store);
    }

    /// A `writing` line as a writer that then died would have left, with its payload.
    fn orphan(store: &Store, name: &str, transport: &str, writer: WriterIdentity) -> (Event, Vec<Target>) {
        store.ensure().unwrap();
        let id = uuid::Uuid::new_v4().to_string();
        let payload_dir = fs::canonicalize(store.payload_dir()).unwrap();
        let (locator, extra) = if transport == TRANSPORT_SHM {
            let name = crate::shm::new_segment_name();
            let mut f = crate::shm::create(&name).unwrap();
            f.write_all(b"half a stream").unwrap();
            (name, None)
        } else {
            let final_path = payload_dir.join(format!("{id}.arrow"));
            let tmp = payload_dir.join(format!("{id}.arrow.tmp-{}", writer.pid));
            fs::write(&tmp, b"ARROW1 half").unwrap();
            (final_path.to_string_lossy().into_owned(), Some(Target::file(&tmp)))
        };
        let mut metadata = serde_json::Map::new();
        metadata.insert(METADATA_KEY.into(), json!({"writer": writer, "transport": transport, "locator": locator}));
        let ev = Event {
            version: 1,
            id,
            table_name: name.into(),
            producer: "python".into(),
            status: STATUS_WRITING.into(),
            created_at: time::now_iso(),
            ttl_sec: None,
            payload: None,
            metadata,
        };
        manifest::append(store, &ev, false).unwrap();
        let mut targets = vec![Target { transport: transport.into(), locator }];
        targets.extend(extra);
        (ev, targets)
    }

    #[test]
    fn orphans_of_dead_writers_are_collected_and_live_writers_left_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::at(tmp.path());
        let me = WriterIdentity::current();
        let dead = WriterIdentity { start: Some(me.start.unwrap() + 1), ..me.clone() }; // our pid, reused
        let (_, dead_shm) = orphan(&store, "t", TRANSPORT_SHM, dead.clone());
        let (_, dead_file) = orphan(&store, "t", TRANSPORT_FILE, dead.clone());
        let (_, live) = orphan(&store, "t", TRANSPORT_SHM, me.clone());
        for t in [&dead_shm[0], &dead_file[1], &live[0]] {
            assert!(t.exists(), "{t:?}");
        }
        let done = collect(&store, GcOptions { dry_run: false, keep_versions: 1 }).unwrap();
        let deletes = done.iter().filter(|a| a.action == "delete").count();
        let records = done.iter().filter(|a| a.action == "record").count();
        assert_eq!((deletes, records), (2, 2), "{done:?}");
        assert!(!dead_shm[0].exists() && !dead_file[1].exists());
        assert!(live[0].exists(), "a live writer's segment is never touched");
        // The dead transfers now end with an error line saying why.
        let errors: Vec<Event> = manifest::read_all(&store).unwrap().into_iter().filter(|e| e.status == STATUS_ERROR).collect();
        assert_eq!(errors.len(), 2);
        assert!(errors[0].metadata["error"].as_str().unwrap().contains("died"));
        // A second run finds nothing more to do.
        assert!(collect(&store, GcOptions { dry_run: false, keep_versions: 1 }).unwrap().is_empty());
        cleanup(&store);
    }

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
