use std::fs;
use std::sync::Arc;

use arrow_array::{ArrayRef, Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use serde_json::json;

use super::*;
use crate::protocol::TransportChoice;

fn batch(n: i64) -> (SchemaRef, Vec<RecordBatch>) {
    let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
    let col: ArrayRef = Arc::new(Int64Array::from_iter_values(0..n));
    (schema.clone(), vec![RecordBatch::try_new(schema, vec![col]).unwrap()])
}

fn opts(kind: &str) -> SendOptions {
    let mut o = SendOptions { transport: TransportChoice::File, ..Default::default() };
    o.metadata.insert(OBJECT_METADATA_KEY.into(), json!({OBJECT_KIND: kind}));
    o
}

fn store() -> (crate::gc::test_support::TempStore, Store) {
    crate::gc::test_support::TempStore::new()
}

#[test]
fn objects_never_reach_the_store_manifest() {
    let (_d, store) = store();
    let ns = Namespace::open(&store, DEFAULT_NAMESPACE).unwrap();
    let (schema, batches) = batch(10);
    ns.put("x", &schema, &batches, &opts("pyarrow.Table"), None).unwrap();
    assert!(!store.manifest_path().exists());
    assert_eq!(ns.len().unwrap(), 1);
    let (ev, data) = ns.get("x", true).unwrap();
    assert_eq!(kind_of(&ev), Some("pyarrow.Table"));
    assert_eq!(data.batches[0].num_rows(), 10);
}

#[test]
fn namespaces_isolate_names_and_can_be_removed_but_not_the_default() {
    let (_d, store) = store();
    let (schema, batches) = batch(3);
    let a = Namespace::open(&store, "app/1").unwrap();
    a.put("x", &schema, &batches, &opts("pyarrow.Table"), None).unwrap();
    let d = Namespace::open(&store, DEFAULT_NAMESPACE).unwrap();
    assert!(matches!(d.get("x", true), Err(Error::ObjectNotFound { .. })));
    assert_eq!(namespaces(&store).unwrap(), vec!["app/1".to_string()]);
    assert_eq!(remove_namespace(&store, "app/1").unwrap(), 1);
    assert!(namespaces(&store).unwrap().is_empty());
    assert!(matches!(remove_namespace(&store, DEFAULT_NAMESPACE), Err(Error::InvalidArgument(_))));
}

#[test]
fn namespace_dir_names_round_trip_and_stay_inside() {
    for name in ["default", "a b", "../x", ".hidden", "ü", "a%2F"] {
        let dir = namespace_dir_name(name);
        assert!(!dir.contains('/') && !dir.starts_with('.'), "{dir}");
        assert_eq!(namespace_from_dir_name(&dir).as_deref(), Some(name));
    }
    assert!(check_namespace_name(&"ü".repeat(100)).is_err());
}

#[test]
fn quota_refuses_and_writes_nothing() {
    let (_d, store) = store();
    let ns = Namespace::open(&store, DEFAULT_NAMESPACE).unwrap();
    let (schema, batches) = batch(1000);
    ns.put("a", &schema, &batches, &opts("pyarrow.Table"), Some(100_000)).unwrap();
    let used = store_used(&store).unwrap();
    assert!(used >= 8000, "{used}");
    let err = ns.put("b", &schema, &batches, &opts("pyarrow.Table"), Some(used + 100)).unwrap_err();
    assert!(matches!(err, Error::StoreFull { quota, .. } if quota == used + 100), "{err}");
    assert_eq!(ns.len().unwrap(), 1);
    assert_eq!(store_used(&store).unwrap(), used);
    // Refused in a namespace that does not exist yet: not even its directory is made.
    let fresh = Namespace::open(&store, "fresh").unwrap();
    assert!(matches!(
        fresh.put("b", &schema, &batches, &opts("pyarrow.Table"), Some(used + 100)),
        Err(Error::StoreFull { .. })
    ));
    assert!(!objects_dir(&store).join(namespace_dir_name("fresh")).exists());
    // A store that does not exist yet: refused, nothing is made; accepted under a quota,
    // the store and the namespace are made by the put (the count found nothing pinned).
    let missing = Store::at(store.root().join("not_yet"));
    let ns = Namespace::open(&missing, DEFAULT_NAMESPACE).unwrap();
    assert!(matches!(ns.put("b", &schema, &batches, &opts("pyarrow.Table"), Some(10)), Err(Error::StoreFull { .. })));
    assert!(!missing.root().exists());
    ns.put("b", &schema, &batches, &opts("pyarrow.Table"), Some(1 << 30)).unwrap();
    assert_eq!((ns.len().unwrap(), ns.get("b", false).unwrap().0.table_name.as_str()), (1, "b"));
}

#[cfg(unix)]
#[test]
fn pickles_load_only_from_a_private_store() {
    use std::os::unix::fs::PermissionsExt;
    let (_d, store) = store();
    let ns = Namespace::open(&store, DEFAULT_NAMESPACE).unwrap();
    let (schema, batches) = batch(3);
    ns.put("p", &schema, &batches, &opts(OBJECT_KIND_PICKLE), None).unwrap();
    ns.put("t", &schema, &batches, &opts("pyarrow.Table"), None).unwrap();
    assert!(ns.get("p", true).is_ok());
    assert!(matches!(ns.get("p", false), Err(Error::InvalidArgument(_))));
    fs::set_permissions(store.root(), fs::Permissions::from_mode(0o777)).unwrap();
    let err = ns.get("p", true).unwrap_err();
    assert!(matches!(err, Error::StoreNotPrivate { .. }) && err.to_string().contains("chmod 700"), "{err}");
    // The trust rule holds for every kind, Arrow data included.
    assert!(matches!(ns.get("t", true), Err(Error::StoreNotPrivate { .. })));
    assert!(matches!(check_private(&store, Some(&ns)), Err(Error::StoreNotPrivate { .. })));
    fs::set_permissions(store.root(), fs::Permissions::from_mode(0o700)).unwrap();
    assert!(ns.get("p", true).is_ok() && ns.get("t", true).is_ok());
    check_private(&store, Some(&ns)).unwrap();
}

#[cfg(unix)]
#[test]
fn a_pickles_get_checks_the_namespaces_payloads_and_log_each_time() {
    use std::os::unix::fs::PermissionsExt;
    let (_d, store) = store();
    let ns = Namespace::open(&store, DEFAULT_NAMESPACE).unwrap();
    let (schema, batches) = batch(3);
    ns.put("p", &schema, &batches, &opts(OBJECT_KIND_PICKLE), None).unwrap();
    let dir = ns.store().root().to_path_buf();
    let (payloads, log) = (dir.join("payloads"), dir.join("manifest.jsonl"));
    fs::create_dir_all(&payloads).unwrap();
    assert!(ns.get("p", true).is_ok());
    for (path, mode) in [(&payloads, 0o770), (&payloads, 0o702), (&log, 0o620), (&log, 0o666)] {
        let before = fs::metadata(path).unwrap().permissions().mode() & 0o777;
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
        let err = ns.get("p", true).unwrap_err();
        assert!(matches!(err, Error::StoreNotPrivate { .. }), "{} {mode:o}: {err}", path.display());
        assert!(err.to_string().contains(&path.display().to_string()), "names the offender: {err}");
        fs::set_permissions(path, fs::Permissions::from_mode(before)).unwrap();
        assert!(ns.get("p", true).is_ok(), "fine again once private");
    }
    // payloads/ swapped for a link to a private folder elsewhere: refused all the same.
    let elsewhere = store.root().join("elsewhere");
    fs::rename(&payloads, &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &payloads).unwrap();
    let err = ns.get("p", true).unwrap_err();
    assert!(matches!(err, Error::StoreNotPrivate { .. }) && err.to_string().contains("symbolic link"), "{err}");
    fs::remove_file(&payloads).unwrap();
    fs::rename(&elsewhere, &payloads).unwrap();
    assert!(ns.get("p", true).is_ok());
}

#[test]
fn put_without_a_kind_is_refused() {
    let (_d, store) = store();
    let ns = Namespace::open(&store, DEFAULT_NAMESPACE).unwrap();
    let (schema, batches) = batch(1);
    assert!(matches!(ns.put("x", &schema, &batches, &SendOptions::default(), None), Err(Error::InvalidArgument(_))));
}

#[test]
fn a_long_log_is_compacted_by_puts() {
    let (_d, store) = store();
    let ns = Namespace::open(&store, DEFAULT_NAMESPACE).unwrap();
    let (schema, batches) = batch(1);
    let mut o = opts("pyarrow.Table");
    o.auto_gc = Some(crate::gc::AutoGc::new(0, 1));
    for _ in 0..2000 {
        ns.put("x", &schema, &batches, &o, None).unwrap();
    }
    let size = fs::metadata(ns.store().manifest_path()).unwrap().len();
    assert!(size <= OBJECTS_COMPACT_MIN_BYTES + 4096, "{size}");
    assert_eq!(ns.len().unwrap(), 1);
    assert_eq!(ns.get("x", true).unwrap().1.batches[0].num_rows(), 1);
    let payloads = fs::read_dir(ns.store().payload_dir()).unwrap().count();
    assert!(payloads <= 2, "{payloads}");
}

/// With every version still held (auto-gc off), a compaction cannot shorten the log: the
/// puts after it must not rewrite the whole log each time, only once it has doubled.
#[cfg(unix)]
#[test]
fn a_log_compaction_cannot_shorten_is_not_redone_by_every_put() {
    use std::os::unix::fs::MetadataExt;
    let (_d, store) = store();
    let ns = Namespace::open(&store, "held").unwrap();
    let (schema, batches) = batch(1);
    let mut o = opts("pyarrow.Table");
    o.auto_gc = None;
    let log = ns.store().manifest_path();
    let mut rewrites = 0;
    let mut inode = 0;
    let mut puts = 0;
    while rewrites < 1 || puts < 3000 {
        ns.put("x", &schema, &batches, &o, None).unwrap();
        puts += 1;
        let now = fs::metadata(&log).unwrap().ino();
        if inode != 0 && now != inode {
            rewrites += 1;
        }
        inode = now;
        assert!(puts < 20_000, "the log was never compacted");
    }
    // About 2.5 MB of lines: a compaction drops the `writing` lines only, so each one
    // leaves about half the log, and the next waits for twice that (a log compacted on
    // every put past 1 MB would be rewritten well over a thousand times).
    assert!(rewrites <= 5, "compacted {rewrites} times in {puts} puts");
}

#[cfg(unix)]
#[test]
fn create_publishes_the_bytes_written_in_place() {
    use arrow_array::Array;
    let (_d, store) = store();
    let ns = Namespace::open(&store, DEFAULT_NAMESPACE).unwrap();
    let mut w = ns.create("frame", 1 << 20, &opts("numpy"), None).unwrap();
    assert!(matches!(ns.get("frame", true), Err(Error::ObjectNotFound { .. })));
    let region = unsafe { std::slice::from_raw_parts_mut(w.as_mut_ptr(), w.len()) };
    for (i, b) in region.iter_mut().enumerate() {
        *b = (i % 251) as u8;
    }
    let ev = w.commit().unwrap();
    assert_eq!(ev.payload.as_ref().unwrap().locator, w.segment());
    let (_, data) = ns.get("frame", true).unwrap();
    let col = data.batches[0].column(0).as_any().downcast_ref::<arrow_array::LargeBinaryArray>().unwrap();
    assert_eq!(col.len(), 1);
    let value = col.value(0);
    assert_eq!(value.len(), 1 << 20);
    assert!(value.iter().enumerate().all(|(i, b)| *b == (i % 251) as u8));
    assert_eq!(value.as_ptr() as usize % 8, 0, "the value is aligned");
}

#[cfg(unix)]
#[test]
fn an_abandoned_create_publishes_nothing_and_leaves_no_segment() {
    let (_d, store) = store();
    let ns = Namespace::open(&store, DEFAULT_NAMESPACE).unwrap();
    let w = ns.create("gone", 4096, &opts("numpy"), None).unwrap();
    let seg = w.segment().to_string();
    assert!(crate::sys::shm::open_map(&seg, 0).unwrap().is_some());
    drop(w);
    assert!(crate::sys::shm::open_map(&seg, 0).unwrap().is_none());
    assert!(matches!(ns.get("gone", true), Err(Error::ObjectNotFound { .. })));
    let err = ns.create("big", 1 << 20, &opts("numpy"), Some(1000)).err().unwrap();
    assert!(matches!(err, Error::StoreFull { .. }));
}

#[test]
fn a_namespace_exists_once_made_and_a_missing_object_is_named_as_one() {
    let (_d, store) = store();
    assert!(store.create_namespace("joyful").unwrap(), "new");
    assert!(!store.create_namespace("joyful").unwrap(), "idempotent");
    store.create_namespace("donuts").unwrap();
    assert_eq!(namespaces(&store).unwrap(), vec!["donuts".to_string(), "joyful".to_string()]);
    let ns = Namespace::open(&store, "donuts").unwrap();
    assert!(ns.list().unwrap().is_empty());
    let (schema, batches) = batch(3);
    ns.put("x", &schema, &batches, &opts("pyarrow.Table"), None).unwrap();
    assert!(!store.create_namespace("donuts").unwrap(), "a put's log is kept");
    assert_eq!(ns.len().unwrap(), 1);
    let e = ns.get("nothing", true).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::ObjectNotFound { .. }), "{msg}");
    assert!(msg.contains("no object \"nothing\" in namespace \"donuts\"") && !msg.contains("table"), "{msg}");
    assert!(matches!(ns.latest("nothing"), Err(Error::ObjectNotFound { .. })));
    assert!(matches!(Namespace::open(&store, "joyful").unwrap().remove("nothing"), Err(Error::ObjectNotFound { .. })));
    assert_eq!(remove_namespace(&store, "joyful").unwrap(), 0);
    assert_eq!(namespaces(&store).unwrap(), vec!["donuts".to_string()]);
}

#[test]
fn an_objects_batches_are_kept_as_given_in_a_segment_and_a_file() {
    // A pickle is its stream then one batch per out-of-band buffer: joining them would
    // lose the buffers' boundaries.
    let (_d, store) = store();
    let ns = Namespace::open(&store, DEFAULT_NAMESPACE).unwrap();
    let (schema, mut batches) = batch(4);
    batches.extend(batch(2).1);
    batches.extend(batch(7).1);
    for transport in [TransportChoice::File, TransportChoice::Shm, TransportChoice::Auto] {
        let o = SendOptions { transport, ..opts("pickle") };
        ns.put("p", &schema, &batches, &o, None).unwrap();
        let (_, data) = ns.get("p", true).unwrap();
        let rows: Vec<usize> = data.batches.iter().map(|b| b.num_rows()).collect();
        assert_eq!(rows, vec![4, 2, 7], "{transport:?}");
    }
}

#[test]
fn keep_description_carries_the_previous_one_until_a_new_one_is_given() {
    let (_d, store) = store();
    let ns = Namespace::open(&store, DEFAULT_NAMESPACE).unwrap();
    let (schema, batches) = batch(2);
    let keep = PutOptions::with_quota(None).keeping_description(true);
    let described = |text: &str| {
        let mut o = opts("pyarrow.Table");
        o.metadata.insert(OBJECT_METADATA_KEY.into(), json!({OBJECT_KIND: "pyarrow.Table", OBJECT_DESCRIPTION: text}));
        o
    };
    let description = |ev: &Event| ev.metadata[OBJECT_METADATA_KEY].get(OBJECT_DESCRIPTION).cloned();
    // No previous version: nothing to keep.
    let first = ns.put_with("x", &schema, &batches, &opts("pyarrow.Table"), &keep).unwrap();
    assert_eq!(description(&first), None);
    ns.put_with("x", &schema, &batches, &described("counts"), &keep).unwrap();
    let kept = ns.put_with("x", &schema, &batches, &opts("pyarrow.Table"), &keep).unwrap();
    assert_eq!(description(&kept), Some(json!("counts")));
    assert_eq!(description(&ns.latest("x").unwrap()), Some(json!("counts")), "as the log has it");
    let replaced = ns.put_with("x", &schema, &batches, &described("totals"), &keep).unwrap();
    assert_eq!(description(&replaced), Some(json!("totals")));
    // Without keep_description (Namespace::put), a version without one has none.
    let plain = ns.put("x", &schema, &batches, &opts("pyarrow.Table"), None).unwrap();
    assert_eq!(description(&plain), None);
    // Another name's description is never taken.
    let other = ns.put_with("y", &schema, &batches, &opts("pyarrow.Table"), &keep).unwrap();
    assert_eq!(description(&other), None);
}

#[test]
fn put_bytes_stores_each_value_as_given_and_only_for_raw_kinds() {
    let (_d, store) = store();
    let ns = Namespace::open(&store, DEFAULT_NAMESPACE).unwrap();
    let values = [Buffer::from(b"stream".to_vec()), Buffer::from(vec![0u8; 0]), Buffer::from(vec![7u8; 4096])];
    let put = PutOptions::default();
    ns.put_bytes("p", &values, &opts(OBJECT_KIND_PICKLE), &put).unwrap();
    let (_, data) = ns.get_bytes("p", true).unwrap();
    let ObjectData::Bytes(got) = data else { panic!("a pickle comes back as bytes") };
    assert_eq!(
        got.iter().map(|b| b.as_slice().to_vec()).collect::<Vec<_>>(),
        values.iter().map(|v| v.as_slice().to_vec()).collect::<Vec<_>>()
    );
    // Raw values under a kind that is Arrow data: refused, nothing written.
    let e = ns.put_bytes("t", &values, &opts("pyarrow.Table"), &put).unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
    assert!(matches!(ns.get("t", true), Err(Error::ObjectNotFound { .. })));
}

#[test]
fn the_count_sees_namespaces_made_and_removed_after_a_listing_was_remembered() {
    let (_d, store) = store();
    let (schema, batches) = batch(3);
    let a = Namespace::open(&store, "a").unwrap();
    a.put("x", &schema, &batches, &opts("pyarrow.Table"), None).unwrap();
    let one = store_used(&store).unwrap();
    assert!(one > 0);
    // Settled: the listing is remembered, and served again while the folder is unchanged.
    std::thread::sleep(crate::tuning::LISTING_SETTLED * 2);
    for _ in 0..3 {
        assert_eq!(store_used(&store).unwrap(), one);
    }
    let b = Namespace::open(&store, "b").unwrap();
    b.put("y", &schema, &batches, &opts("pyarrow.Table"), None).unwrap();
    assert_eq!(store_used(&store).unwrap(), 2 * one, "a namespace made since is counted at once");
    std::thread::sleep(crate::tuning::LISTING_SETTLED * 2);
    assert_eq!(store_used(&store).unwrap(), 2 * one);
    remove_namespace(&store, "b").unwrap();
    assert_eq!(store_used(&store).unwrap(), one, "and one removed is not");
    // A quota refuses by the current count: b's object again, then nothing more fits.
    b.put("y", &schema, &batches, &opts("pyarrow.Table"), None).unwrap();
    assert_eq!(store_used(&store).unwrap(), 2 * one);
    let refused = a.put("z", &schema, &batches, &opts("pyarrow.Table"), Some(2 * one));
    match refused {
        Err(Error::StoreFull { used, .. }) => assert_eq!(used, 2 * one),
        other => panic!("{other:?}"),
    }
    // A remembered listing is served only while `objects/` passes the trust rule.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::thread::sleep(crate::tuning::LISTING_SETTLED * 2);
        assert_eq!(store_used(&store).unwrap(), 2 * one);
        let objects = store.root().join(crate::protocol::OBJECTS_DIR);
        std::fs::set_permissions(&objects, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = store_used(&store).unwrap_err();
        assert!(matches!(e, Error::StoreNotPrivate { .. }), "{e}");
        std::fs::set_permissions(&objects, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert_eq!(store_used(&store).unwrap(), 2 * one);
    }
}

fn auto(kind: &str) -> SendOptions {
    let mut o = SendOptions { transport: TransportChoice::Auto, ..opts(kind) };
    o.auto_gc = Some(crate::gc::AutoGc::new(0, 1));
    o
}

fn transport_of(ev: &Event) -> crate::protocol::Transport {
    ev.payload.as_ref().unwrap().transport.clone()
}

#[test]
fn a_small_object_is_one_line_holding_it_and_a_large_one_a_segment_or_file() {
    use crate::protocol::Transport;
    let (_d, store) = store();
    let ns = Namespace::open(&store, DEFAULT_NAMESPACE).unwrap();
    let (schema, small) = batch(10);
    let ev = ns.put("x", &schema, &small, &auto("pyarrow.Table"), None).unwrap();
    assert_eq!(transport_of(&ev), Transport::Inline);
    let lines = crate::manifest::read_all(ns.store()).unwrap();
    assert_eq!(lines.len(), 1, "no `writing` line: the one `ready` line is the publication");
    let (got, data) = ns.get("x", true).unwrap();
    assert_eq!(got.id, ev.id);
    assert_eq!(data.batches, small);
    assert_eq!(ns.used().unwrap(), ev.payload.as_ref().unwrap().data_size, "counted as any payload");
    // Past the bound, or with a transport asked for: a payload of its own, as ever.
    let (schema_big, big) = batch(OBJECTS_INLINE_MAX_BYTES as i64 / 8 + 1);
    let ev = ns.put("big", &schema_big, &big, &auto("pyarrow.Table"), None).unwrap();
    assert_ne!(transport_of(&ev), Transport::Inline);
    let ev = ns.put("asked", &schema, &small, &opts("pyarrow.Table"), None).unwrap();
    assert_eq!(transport_of(&ev), Transport::File);
}

#[test]
fn a_removed_inline_object_is_not_served_and_a_new_put_is() {
    let (_d, store) = store();
    let ns = Namespace::open(&store, DEFAULT_NAMESPACE).unwrap();
    let (schema, small) = batch(3);
    ns.put("x", &schema, &small, &auto("pyarrow.Table"), None).unwrap();
    assert!(ns.get("x", true).is_ok());
    ns.remove("x").unwrap();
    assert!(matches!(ns.get("x", true), Err(Error::ObjectNotFound { .. })));
    assert!(matches!(ns.latest("x"), Err(Error::ObjectNotFound { .. })));
    ns.put("x", &schema, &batch(5).1, &auto("pyarrow.Table"), None).unwrap();
    assert_eq!(ns.get("x", true).unwrap().1.batches[0].num_rows(), 5);
}

#[test]
fn compaction_keeps_an_inline_object_s_current_line_only() {
    let (_d, store) = store();
    let ns = Namespace::open(&store, DEFAULT_NAMESPACE).unwrap();
    let (schema, _) = batch(1);
    let mut last = None;
    for i in 1..=5 {
        last = Some(ns.put("x", &schema, &batch(i).1, &auto("pyarrow.Table"), None).unwrap());
        ns.put("y", &schema, &batch(i).1, &auto("pyarrow.Table"), None).unwrap();
    }
    ns.put("expiring", &schema, &batch(1).1, &SendOptions { ttl_sec: Some(0), ..auto("pyarrow.Table") }, None).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    crate::gc::compact(ns.store()).unwrap();
    let lines = crate::manifest::read_all(ns.store()).unwrap();
    let names: Vec<&str> = lines.iter().map(|e| e.table_name.as_str()).collect();
    assert_eq!(names, vec!["x", "y"], "the current lines of x and y; older and expired ones dropped");
    assert_eq!(lines[0].id, last.unwrap().id);
    assert_eq!(ns.get("x", true).unwrap().1.batches[0].num_rows(), 5);
    assert_eq!(ns.get("y", true).unwrap().1.batches[0].num_rows(), 5);
}

#[cfg(unix)]
#[test]
fn a_segment_superseded_by_an_inline_version_is_freed_and_back() {
    use crate::protocol::Transport;
    let (_d, store) = store();
    let ns = Namespace::open(&store, DEFAULT_NAMESPACE).unwrap();
    let (schema, big) = batch(OBJECTS_INLINE_MAX_BYTES as i64 / 8 + 1);
    let (_, small) = batch(2);
    let shm = SendOptions { transport: TransportChoice::Shm, ..auto("pyarrow.Table") };
    let first = ns.put("x", &schema, &big, &shm, None).unwrap();
    let segment = first.payload.as_ref().unwrap().locator.clone();
    assert!(crate::sys::shm::exists(&segment));
    let inline = ns.put("x", &schema, &small, &auto("pyarrow.Table"), None).unwrap();
    assert_eq!(transport_of(&inline), Transport::Inline);
    assert!(!crate::sys::shm::exists(&segment), "the superseded segment is freed by the next put");
    let again = ns.put("x", &schema, &big, &shm, None).unwrap();
    ns.put("x", &schema, &small, &auto("pyarrow.Table"), None).unwrap();
    assert!(!crate::sys::shm::exists(&again.payload.unwrap().locator));
    assert_eq!(ns.get("x", true).unwrap().1.batches[0].num_rows(), 2);
    // An explicit gc has nothing to say about inline versions.
    let actions = crate::gc::collect(ns.store(), crate::gc::GcOptions::default()).unwrap();
    assert!(actions.iter().all(|a| a.transport != crate::gc::GcTransport::Payload(Transport::Inline)), "{actions:?}");
}

#[test]
fn a_removal_outlives_a_failed_send_after_it_even_through_compaction() {
    use std::io::Write;
    let (_d, store) = store();
    let ns = Namespace::open(&store, DEFAULT_NAMESPACE).unwrap();
    let (schema, small) = batch(3);
    ns.put("x", &schema, &small, &auto("pyarrow.Table"), None).unwrap();
    ns.remove("x").unwrap();
    // A send of x that failed after the removal: an `error` line, no new version.
    let failed = r#"{"version":1,"id":"f1","table_name":"x","producer":"python","status":"error","created_at":"2025-12-18T12:34:56+0900","ttl_sec":null,"payload":null,"metadata":{"error":"disk full"}}"#;
    let mut f = fs::OpenOptions::new().append(true).open(ns.store().manifest_path()).unwrap();
    writeln!(f, "{failed}").unwrap();
    drop(f);
    assert!(
        matches!(ns.get("x", true), Err(Error::ObjectNotFound { .. })),
        "the version before the removal stays gone"
    );
    crate::gc::compact(ns.store()).unwrap();
    assert!(matches!(ns.get("x", true), Err(Error::ObjectNotFound { .. })), "and after a compaction");
    let lines = crate::manifest::read_all(ns.store()).unwrap();
    assert!(lines.iter().any(Event::is_removal), "the removal line is kept");
    assert!(!lines.iter().any(Event::is_ready), "the removed inline version's line is dropped");
}
