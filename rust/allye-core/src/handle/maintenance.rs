//! Maintenance: gc (every collector, one action type), the collection of what deleted
//! stores and dead loads left, the scratch folders of loads, compaction.

use crate::error::Result;
use crate::gc::{self, CompactReport, GcAction, GcOptions};
use crate::objects;
use crate::store::Store;
use crate::streams;
use crate::sys::scratch::ScratchDir;

impl Store {
    /// Collects every kind of garbage this store can hold, in this order, and returns one
    /// list of [`GcAction`]s (with `opts.dry_run`, what would be done):
    ///
    /// 1. the store's payloads: expired, superseded beyond `opts.keep_versions`, read once,
    ///    and what dead or failed senders left ([`gc::collect`]);
    /// 2. what is left outside any live store, whichever store this is: the segments of
    ///    this user's deleted stores, the scratch folders of loads whose process died
    ///    ([`gc::collect_orphans`]; scope `orphan`, every other step's is `store`);
    /// 3. abandoned shared arrays (Linux; [`Store::collect_arrays`]), `transport`
    ///    `shared_array`;
    /// 4. removed streams' directories and dead appenders' unnamed chunks
    ///    ([`streams::collect`]), `transport` `stream_chunk`;
    /// 5. step 1 in every namespace of named objects ([`objects::collect`]), each action's
    ///    `table_name` `<namespace>/<object>`.
    ///
    /// `keep_versions` 0 is `InvalidArgument` (before anything is done).
    pub fn gc(&self, opts: GcOptions) -> Result<Vec<GcAction>> {
        let mut actions = gc::collect(self, opts)?;
        actions.extend(gc::collect_orphans(opts.dry_run));
        #[cfg(target_os = "linux")]
        actions.extend(self.collect_arrays(opts.dry_run)?);
        actions.extend(streams::collect(self, opts.dry_run)?);
        actions.extend(objects::collect(self, opts)?);
        Ok(actions)
    }

    /// Frees (or, with `dry_run`, reports) what is left outside any live store: the
    /// segments of this user's deleted stores, the scratch folders of dead loads; needs no
    /// store (see [`gc::collect_orphans`]).
    pub fn collect_orphans(dry_run: bool) -> Vec<GcAction> {
        gc::collect_orphans(dry_run)
    }

    /// A new scratch folder in the temporary directory for a load's working files
    /// (`purpose`: lowercase letters, in its name), removed when the handle is dropped; a
    /// process killed meanwhile leaves it to [`Store::collect_orphans`] (step 2 of
    /// [`Store::gc`]). See [`crate::sys::scratch`].
    pub fn scratch_dir(purpose: &str) -> Result<ScratchDir> {
        ScratchDir::create(purpose)
    }

    /// Frees (or, with `dry_run`, reports) this store's abandoned shared arrays, step 3 of
    /// [`Store::gc`] (see [`crate::arrays::collect`]).
    #[cfg(target_os = "linux")]
    pub fn collect_arrays(&self, dry_run: bool) -> Result<Vec<GcAction>> {
        crate::arrays::collect(self, dry_run)
    }

    /// Rewrites the manifest keeping only live lines (see [`gc::compact`]).
    pub fn compact(&self) -> Result<CompactReport> {
        gc::compact(self)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::gc::test_support::{send, TempStore};
    use crate::gc::{GcOptions, GcTransport};
    use crate::protocol::{GcActionKind, GcScope, TransportChoice, OBJECT_KIND, OBJECT_METADATA_KEY};
    use crate::streams::test_support::{rows, schema};
    use crate::streams::{stream_dir, AppendOptions};
    use crate::tables::SendOptions;

    #[test]
    fn gc_runs_every_collector_in_order_with_one_action_type() {
        let (_t, store) = TempStore::new();
        // 1. A superseded version of a table (sends that leave gc to gc).
        let old = send(&store, "t", 1, TransportChoice::Shm, false);
        send(&store, "t", 2, TransportChoice::Shm, false);
        // 3. A shared array's marker whose segment is gone, old enough to be collected.
        #[cfg(target_os = "linux")]
        {
            let dir = store.root().join("arrays");
            std::fs::create_dir_all(&dir).unwrap();
            let marker = std::fs::File::create(dir.join("lost")).unwrap();
            marker.set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(600)).unwrap();
        }
        // 4. A chunk file a dead appender left, which the chunk log never named.
        store.append("s", &schema(), &[rows(0, 0, 4)], &AppendOptions::default()).unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead_pid = child.id();
        child.wait().unwrap();
        let stray = stream_dir(&store, "s").join(format!("{dead_pid}-stray.arrow"));
        std::fs::write(&stray, b"half a chunk").unwrap();
        // 5. A superseded version of an object.
        let ns = store.namespace("ns").unwrap();
        let (schema_x, batch_x) = crate::gc::test_support::table(7);
        let mut opts = SendOptions { transport: TransportChoice::File, auto_gc: None, ..Default::default() };
        opts.metadata.insert(OBJECT_METADATA_KEY.into(), json!({OBJECT_KIND: "pyarrow.Table"}));
        ns.put("x", &schema_x, &batch_x, &opts, None).unwrap();
        ns.put("x", &schema_x, &batch_x, &opts, None).unwrap();

        // Other deleted stores of the user may have left segments: step 2 reports them as
        // orphans, apart from the store's own.
        let ours = |dry_run| -> Vec<(GcActionKind, String, String)> {
            store
                .gc(GcOptions::new(dry_run, 1))
                .unwrap()
                .into_iter()
                .filter(|a| a.scope == GcScope::Store)
                .map(|a| (a.action, a.transport.as_str().to_string(), a.table_name))
                .collect()
        };
        let mut want = vec![(GcActionKind::Delete, "shm_arrow_stream_v1".to_string(), "t".to_string())];
        #[cfg(target_os = "linux")]
        want.push((GcActionKind::Delete, "shared_array".into(), "lost".into()));
        want.push((GcActionKind::Delete, "stream_chunk".into(), "s".into()));
        want.push((GcActionKind::Delete, "file_arrow_ipc_v1".into(), "ns/x".into()));
        assert_eq!(ours(true), want);
        assert!(stray.exists(), "a dry run deletes nothing");
        assert_eq!(ours(false), want);
        assert!(!stray.exists() && !crate::gc::test_support::target(&old).exists(&store));
        #[cfg(target_os = "linux")]
        assert!(!store.root().join("arrays").join("lost").exists());
        assert_eq!(ours(false), vec![], "nothing is left to do");
        // Its serialised form is what the bindings hand to Python.
        let a = crate::gc::GcAction::delete(GcTransport::StreamChunk, "/p".into(), "s".into(), "why".into());
        assert_eq!(
            serde_json::to_value(&a).unwrap(),
            json!({"action": "delete", "transport": "stream_chunk", "locator": "/p", "table_name": "s",
                   "reason": "why", "id": "", "scope": "store"})
        );
        assert!(matches!(store.gc(GcOptions::new(true, 0)), Err(crate::Error::InvalidArgument(_))));
    }
}
