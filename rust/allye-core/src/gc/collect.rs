//! Collecting garbage: which payloads no reader can be served any more (see the module
//! docs of [`crate::gc`]), in manifest order, deleted only inside this store.

use std::collections::{HashMap, HashSet};
use std::fs;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::gc::markers::{leave_marker, marker_exists, prune_read_markers, unlink_on_read};
use crate::gc::{GcAction, GcOptions};
use crate::manifest::{self, Event};
use crate::payload::Target;
use crate::protocol::{
    GcActionKind, GcScope, Status, Transport, ADC_LOCATOR, ADC_TRANSPORT, ADC_WRITER, METADATA_ERROR, METADATA_KEY,
};
use crate::store::Store;
use crate::sys::process::WriterIdentity;
use crate::sys::time;

/// The `metadata.adc` entry our writers put on every line of a transfer.
#[derive(Debug, Clone, Default)]
pub(crate) struct Planned {
    pub(crate) writer: Option<WriterIdentity>,
    pub(crate) transport: Option<Transport>,
    pub(crate) locator: Option<String>,
}

impl Planned {
    /// The payload the transfer planned, when it says.
    fn target(&self) -> Option<Target> {
        match (&self.transport, &self.locator) {
            (Some(transport), Some(locator)) => Some(Target { transport: transport.clone(), locator: locator.clone() }),
            _ => None,
        }
    }
}

pub(crate) fn planned(ev: &Event) -> Planned {
    let Some(Value::Object(adc)) = ev.metadata.get(METADATA_KEY) else {
        return Planned::default();
    };
    Planned {
        writer: adc.get(ADC_WRITER).and_then(|w| serde_json::from_value(w.clone()).ok()),
        transport: adc.get(ADC_TRANSPORT).and_then(Value::as_str).map(Transport::from_wire),
        locator: adc.get(ADC_LOCATOR).and_then(Value::as_str).map(Into::into),
    }
}

/// All we know of one transfer (one `id`).
#[derive(Debug, Default)]
struct Transfer {
    writing: Option<Event>,
    /// The last `ready` or `error` line.
    terminal: Option<Event>,
}

/// Transfers by id, in order of first appearance.
fn transfers(events: &[Event]) -> (Vec<&str>, HashMap<&str, Transfer>) {
    let mut order = Vec::new();
    let mut by_id: HashMap<&str, Transfer> = HashMap::new();
    for ev in events {
        let t = by_id.entry(&ev.id).or_insert_with(|| {
            order.push(ev.id.as_str());
            Transfer::default()
        });
        match ev.status {
            Status::Writing => {
                t.writing.get_or_insert_with(|| ev.clone());
            }
            Status::Ready | Status::Error => t.terminal = Some(ev.clone()),
            _ => {}
        }
    }
    (order, by_id)
}

/// The payloads of the versions each `(table, producer)` keeps (its last
/// `keep_versions` ready ones), and the ids of the versions superseded.
fn kept_and_superseded(events: &[Event], keep_versions: usize) -> (HashSet<Target>, HashSet<&str>) {
    let mut per_key: HashMap<(&str, &str), Vec<&Event>> = HashMap::new();
    for ev in events.iter().filter(|e| e.is_ready()) {
        per_key.entry((&ev.table_name, &ev.producer)).or_default().push(ev);
    }
    let mut kept = HashSet::new();
    let mut superseded = HashSet::new();
    for versions in per_key.values() {
        let cut = versions.len().saturating_sub(keep_versions);
        superseded.extend(versions[..cut].iter().map(|e| e.id.as_str()));
        for ev in &versions[cut..] {
            kept.extend(ev.payload.as_ref().map(Target::of));
        }
    }
    (kept, superseded)
}

/// One gc run: what it keeps, what it has already handled, what it did.
struct Collector<'a> {
    store: &'a Store,
    opts: GcOptions,
    kept: HashSet<Target>,
    done: HashSet<Target>,
    actions: Vec<GcAction>,
    /// `error` lines to append for dead writers' transfers.
    records: Vec<Event>,
}

impl Collector<'_> {
    /// Deletes `target` (of transfer `ev`) for `reason`, unless a kept version uses it
    /// (`protect`), it was handled already, it lies outside the store (reported as a
    /// skip), its transport is unknown, or it is gone.
    fn consider(&mut self, target: Target, ev: &Event, reason: String, protect: bool) -> Result<()> {
        if (protect && self.kept.contains(&target)) || self.done.contains(&target) {
            return Ok(());
        }
        let action = |kind, reason| GcAction {
            action: kind,
            transport: target.transport.clone().into(),
            locator: target.locator.clone(),
            table_name: ev.table_name.clone(),
            reason,
            id: ev.id.clone(),
            scope: GcScope::Store,
        };
        match target.inside(self.store) {
            None => return Ok(()),
            Some(false) => {
                let skip = action(
                    GcActionKind::Skip,
                    format!("{reason}, but the locator is outside this store; not followed"),
                );
                self.actions.push(skip);
                self.done.insert(target);
                return Ok(());
            }
            Some(true) => {}
        }
        if !target.exists(self.store) {
            return Ok(());
        }
        if !self.opts.dry_run {
            // A consumed current version keeps its read marker (it says why it is gone).
            let keep_marker = protect_marker(&target, &self.kept);
            target.delete(self.store)?;
            if keep_marker {
                leave_marker(self.store, &target.locator);
            }
        }
        self.actions.push(action(GcActionKind::Delete, reason));
        self.done.insert(target);
        Ok(())
    }

    /// A transfer that ended `ready`: expired, superseded or read-once payloads, and a
    /// planned payload the send did not use (auto fell back from a full /dev/shm to a file).
    fn ready(&mut self, ev: &Event, plan: &Planned, superseded: bool) -> Result<()> {
        let Some(p) = ev.payload.as_ref() else { return Ok(()) };
        let target = Target::of(p);
        if time::is_expired(p.expires_at.as_deref()) {
            let reason = format!("expired at {}", p.expires_at.as_deref().unwrap_or(""));
            self.consider(target.clone(), ev, reason, false)?;
        } else if superseded {
            let reason = format!(
                "superseded: newer versions of table {:?} from producer {:?} exist (keeping the latest {})",
                ev.table_name, ev.producer, self.opts.keep_versions
            );
            self.consider(target.clone(), ev, reason, true)?;
        } else if p.transport == Transport::Shm && unlink_on_read(ev) && marker_exists(self.store, &p.locator) {
            self.consider(target.clone(), ev, "read once and flagged shm_unlink_on_read".into(), false)?;
        }
        if let Some(unused) = plan.target().filter(|t| *t != target) {
            self.consider(unused, ev, "planned payload the send did not use".into(), true)?;
        }
        Ok(())
    }

    /// A transfer that ended `error`: nothing of it should exist any more.
    fn failed(&mut self, ev: &Event, plan: &Planned) -> Result<()> {
        for target in leftovers(self.store, &ev.id, plan) {
            self.consider(target, ev, "left over by a failed send".into(), true)?;
        }
        Ok(())
    }

    /// A transfer with no end: if its writer is known to be dead, free what it left and
    /// record an `error` line. A live writer's work, or one we cannot tell, is never touched.
    fn unfinished(&mut self, writing: &Event, plan: &Planned) -> Result<()> {
        let Some(writer) = &plan.writer else { return Ok(()) }; // not ours (0.1.2): undiscoverable
        if writer.is_alive() != Some(false) {
            return Ok(());
        }
        let reason = format!("orphan of writer pid {} that died before finishing", writer.pid);
        for target in leftovers(self.store, &writing.id, plan) {
            self.consider(target, writing, reason.clone(), true)?;
        }
        let mut error = writing.clone();
        error.status = Status::Error;
        error.metadata.insert(
            METADATA_ERROR.into(),
            Value::String(format!(
                "the sending process (pid {}) died before finishing; gc removed what it left",
                writer.pid
            )),
        );
        self.actions.push(GcAction {
            action: GcActionKind::Record,
            transport: plan.transport.clone().unwrap_or_else(|| Transport::Other(String::new())).into(),
            locator: plan.locator.clone().unwrap_or_default(),
            table_name: writing.table_name.clone(),
            reason: format!("{reason}: append an error line"),
            id: writing.id.clone(),
            scope: GcScope::Store,
        });
        self.records.push(error);
        Ok(())
    }
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
    crate::payload::check_payload_dir(store)?;
    let (order, transfers) = transfers(&events);
    let (kept, superseded) = kept_and_superseded(&events, opts.keep_versions);
    let mut gc = Collector { store, opts, kept, done: HashSet::new(), actions: Vec::new(), records: Vec::new() };
    for id in order {
        let t = &transfers[id];
        let plan = t.writing.as_ref().map(planned).unwrap_or_default();
        match (&t.terminal, &t.writing) {
            (Some(ev), _) if ev.is_ready() => gc.ready(ev, &plan, superseded.contains(id))?,
            (Some(ev), _) => gc.failed(ev, &plan)?,
            (None, Some(writing)) => gc.unfinished(writing, &plan)?,
            (None, None) => {}
        }
    }
    if !opts.dry_run {
        for ev in &gc.records {
            manifest::append(store, ev, false)?;
        }
        let kept_segments: HashSet<String> =
            gc.kept.iter().filter(|t| t.transport == Transport::Shm).map(|t| t.locator.clone()).collect();
        prune_read_markers(store, &kept_segments);
    }
    Ok(gc.actions)
}

fn protect_marker(target: &Target, kept: &HashSet<Target>) -> bool {
    target.transport == Transport::Shm && kept.contains(target)
}

/// What a transfer that never became ready may have left: its planned segment or file,
/// the file a send with `auto` falls back to, and their temporary files.
fn leftovers(store: &Store, id: &str, plan: &Planned) -> Vec<Target> {
    let mut out: Vec<Target> = plan.target().into_iter().collect();
    // Locators are absolute, canonical paths (as a send writes them).
    let dir = fs::canonicalize(store.payload_dir()).unwrap_or_else(|_| store.payload_dir());
    out.push(Target::file(&dir.join(format!("{id}.arrow"))));
    let prefix = format!("{id}.arrow.tmp-");
    if let Some(payloads) = crate::payload::payload_dir(store) {
        for entry in payloads.entries().unwrap_or_default() {
            if entry.name.to_string_lossy().starts_with(&prefix) {
                out.push(Target::file(&dir.join(&entry.name)));
            }
        }
    }
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gc::markers::read_marker;
    use crate::gc::test_support::{cleanup, send, target, value};
    use crate::protocol::{TransportChoice, TRANSPORT_FILE, TRANSPORT_SHM};
    use crate::tables;
    use arrow_array::Int64Array;
    use serde_json::json;
    use std::io::Write;

    #[test]
    fn keeps_the_latest_versions_per_table_and_producer() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::at(tmp.path());
        let a: Vec<Event> = (0..4).map(|v| send(&store, "a", v, TransportChoice::Shm, false)).collect();
        let f: Vec<Event> = (0..3).map(|v| send(&store, "f", v, TransportChoice::File, false)).collect();
        let b = send(&store, "b", 9, TransportChoice::Shm, false);
        let dry = collect(&store, GcOptions { dry_run: true, keep_versions: 2 }).unwrap();
        let deleted: Vec<&str> =
            dry.iter().filter(|x| x.action == GcActionKind::Delete).map(|x| x.locator.as_str()).collect();
        assert_eq!(
            deleted,
            vec![target(&a[0]).locator.as_str(), target(&a[1]).locator.as_str(), target(&f[0]).locator.as_str()]
        );
        assert!(dry.iter().all(|x| x.reason.starts_with("superseded")), "{dry:?}");
        assert!(target(&a[0]).exists(&store), "dry run deletes nothing");
        assert!(matches!(
            collect(&store, GcOptions { dry_run: false, keep_versions: 0 }),
            Err(Error::InvalidArgument(_))
        ));
        let done = collect(&store, GcOptions { dry_run: false, keep_versions: 1 }).unwrap();
        assert_eq!(done.len(), 5, "{done:?}");
        for ev in a[..3].iter().chain(&f[..2]) {
            assert!(!target(ev).exists(&store));
        }
        for ev in [&a[3], &f[2], &b] {
            assert!(target(ev).exists(&store));
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
        let (_, held) = tables::get(&store, "t", None, true).unwrap();
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
        assert!(!target(&once).exists(&store) && target(&keep).exists(&store));
        assert!(read_marker(&store, &target(&once).locator).exists(), "the marker says why the segment is gone");
        assert_eq!(tables::state(&store, "once", None).unwrap().state, crate::protocol::TableStateKind::Consumed);
        assert_eq!(tables::state(&store, "keep", None).unwrap().state, crate::protocol::TableStateKind::Ready);
        let err = tables::get(&store, "once", None, true).unwrap_err();
        assert!(err.to_string().contains("read once") && err.to_string().contains("shm_unlink_on_read=False"), "{err}");
        // Superseded, the version's marker goes at the next gc.
        send(&store, "once", 2, TransportChoice::Shm, true);
        collect(&store, GcOptions { dry_run: false, keep_versions: 1 }).unwrap();
        assert!(!read_marker(&store, &target(&once).locator).exists());
        assert_eq!(tables::state(&store, "once", None).unwrap().state, crate::protocol::TableStateKind::Ready);
        cleanup(&store);
    }

    /// A `writing` line as a writer that then died would have left, with its payload.
    fn orphan(store: &Store, name: &str, transport: &str, writer: WriterIdentity) -> (Event, Vec<Target>) {
        store.ensure().unwrap();
        let id = crate::sys::ids::new_v4().to_string();
        let payload_dir = fs::canonicalize(store.payload_dir()).unwrap();
        let (locator, extra) = if transport == TRANSPORT_SHM {
            let name = crate::sys::shm::new_segment_name();
            let mut f = crate::sys::shm::create(&name).unwrap();
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
            status: Status::Writing,
            created_at: time::now_iso(),
            ttl_sec: None,
            payload: None,
            metadata,
        };
        manifest::append(store, &ev, false).unwrap();
        let mut targets = vec![Target { transport: Transport::from_wire(transport), locator }];
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
            assert!(t.exists(&store), "{t:?}");
        }
        let done = collect(&store, GcOptions { dry_run: false, keep_versions: 1 }).unwrap();
        let deletes = done.iter().filter(|a| a.action == GcActionKind::Delete).count();
        let records = done.iter().filter(|a| a.action == GcActionKind::Record).count();
        assert_eq!((deletes, records), (2, 2), "{done:?}");
        assert!(!dead_shm[0].exists(&store) && !dead_file[1].exists(&store));
        assert!(live[0].exists(&store), "a live writer's segment is never touched");
        // The dead transfers now end with an error line saying why.
        let errors: Vec<Event> =
            manifest::read_all(&store).unwrap().into_iter().filter(|e| e.status == Status::Error).collect();
        assert_eq!(errors.len(), 2);
        assert!(errors[0].metadata["error"].as_str().unwrap().contains("died"));
        // A second run finds nothing more to do.
        assert!(collect(&store, GcOptions { dry_run: false, keep_versions: 1 }).unwrap().is_empty());
        cleanup(&store);
    }
}
