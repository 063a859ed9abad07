//! The pool ([`crate::pool`]) on the send path: sends through filled segments, recycling
//! under readers, the bound.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::{ArrayRef, Float64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};

use crate::pool::{pool_tag, release, retire, stats, take, test_serial};
use crate::protocol::TransportChoice;
use crate::store::Store;
use crate::sys::shm;
use crate::tables::{self, SendOptions};

fn table(rows: usize, value: f64) -> (SchemaRef, Vec<RecordBatch>) {
    let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Float64, false)]));
    let x: ArrayRef = Arc::new(Float64Array::from_iter_values((0..rows).map(|r| r as f64 + value)));
    (schema.clone(), vec![RecordBatch::try_new(schema, vec![x]).unwrap()])
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !cond() {
        assert!(t0.elapsed() < Duration::from_secs(20), "timed out waiting for {what}: {:?}", stats());
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn opts(name: &str) -> SendOptions {
    let mut o = SendOptions::named(name);
    o.transport = TransportChoice::Shm;
    o.auto_gc = None;
    o.pool_max_bytes = Some(1 << 30);
    o
}

fn shm_size(name: &str) -> u64 {
    std::fs::metadata(format!("/dev/shm/{name}")).unwrap().len()
}

#[test]
fn large_sends_go_through_filled_segments_of_exactly_their_size() {
    let _g = test_serial();
    release();
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::at(tmp.path());
    // 12 MiB: above the pooled minimum and the parallel-copy threshold.
    let (schema, batches) = table(12 << 17, 0.5);
    let first = tables::send(&store, &schema, &batches, &opts("t")).unwrap();
    wait_for("a free segment", || stats().free_segments >= 1);
    let before = stats();
    let (schema2, batches2) = table(12 << 17, 7.0);
    let second = tables::send(&store, &schema2, &batches2, &opts("t")).unwrap();
    assert_eq!(stats().hits, before.hits + 1, "{:?}", stats());
    let p = second.payload.as_ref().unwrap();
    assert_eq!(shm_size(&p.locator), p.data_size, "the segment is exactly the payload");
    assert_eq!(p.data_size, first.payload.as_ref().unwrap().data_size);
    let (_, data) = tables::get(&store, "t", None, false).unwrap();
    assert_eq!(data.batches, batches2);
    assert!(pool_tag(&p.locator).is_none(), "published under its v1 name");
    release();
    assert_eq!(stats().free_segments, 0);
    for ev in [first, second] {
        shm::unlink(&ev.payload.unwrap().locator).unwrap();
    }
}

#[test]
fn a_freed_segment_is_reused_only_once_no_mapping_of_it_remains() {
    let _g = test_serial();
    release();
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::at(tmp.path());
    let (schema, batches) = table(1 << 20, 1.0); // 8 MiB
    let old = tables::send(&store, &schema, &batches, &opts("t")).unwrap();
    let old_seg = old.payload.as_ref().unwrap().locator.clone();
    // A reader maps the version, as a get does.
    let (reader, data_size) = {
        let (_, d) = tables::get(&store, "t", None, false).unwrap();
        (d, old.payload.as_ref().unwrap().data_size)
    };
    let expect: Vec<f64> =
        reader.batches[0].column(0).as_any().downcast_ref::<Float64Array>().unwrap().values().to_vec();
    wait_for("the pool to want this size", || stats().free_segments >= 1);
    // Take the free segment so that the pool wants the retired one.
    let taken = take(data_size).expect("a free segment");
    assert!(retire(&old_seg), "the pool takes the freed segment");
    assert!(!shm::exists(&old_seg), "out of its v1 name at once");
    std::thread::sleep(Duration::from_millis(300));
    let s = stats();
    assert_eq!((s.quarantined_segments, s.recycled), (1, 0), "held by the reader: {s:?}");
    drop(reader);
    wait_for("the segment to be recycled", || stats().recycled == 1);
    assert_eq!(stats().quarantined_segments, 0);
    // Recycled, it carries new data without touching what the reader saw.
    let (schema2, batches2) = table(1 << 20, 99.0);
    taken.give_back();
    let a = tables::send(&store, &schema2, &batches2, &opts("u")).unwrap();
    let b = tables::send(&store, &schema2, &batches2, &opts("v")).unwrap();
    assert!(stats().hits >= 2, "{:?}", stats());
    assert_eq!(tables::get(&store, "v", None, false).unwrap().1.batches, batches2);
    assert_eq!(expect[0], 1.0);
    release();
    for ev in [a, b] {
        shm::unlink(&ev.payload.unwrap().locator).unwrap();
    }
}

#[test]
fn no_pool_when_its_bound_is_zero_or_the_payload_small() {
    let _g = test_serial();
    release();
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::at(tmp.path());
    let (schema, batches) = table(1 << 20, 1.0);
    let mut o = opts("t");
    o.pool_max_bytes = Some(0);
    let before = stats();
    let a = tables::send(&store, &schema, &batches, &o).unwrap();
    let (schema_s, batches_s) = table(1000, 1.0);
    let b = tables::send(&store, &schema_s, &batches_s, &opts("s")).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let after = stats();
    assert_eq!((after.free_segments, after.hits, after.misses), (0, before.hits, before.misses), "{after:?}");
    for ev in [a, b] {
        shm::unlink(&ev.payload.unwrap().locator).unwrap();
    }
}

#[test]
fn pool_segments_carry_the_keyed_store_tag_are_private_and_a_loosened_segment_is_never_adopted() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let _g = test_serial();
    release();
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::at(tmp.path().join("s"));
    let (schema, batches) = table(1 << 20, 1.0); // 8 MiB
    let old = tables::send(&store, &schema, &batches, &opts("t")).unwrap();
    let old_seg = old.payload.as_ref().unwrap().locator.clone();
    wait_for("a free segment", || stats().free_segments >= 1);
    // The tag is the keyed one (`.adc_key` is in the store now), so another user cannot
    // name the pool's segments in advance; the rest of the name is random.
    let tag = crate::gc::store_tag(&store).expect("a tag");
    assert!(store.root().join(crate::protocol::STORE_KEY_FILE).exists());
    let ours: Vec<_> = std::fs::read_dir("/dev/shm")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| pool_tag(n) == Some(tag.as_str()))
        .collect();
    assert_eq!(ours.len(), 1, "one free segment carrying the store's tag: {ours:?}");
    let meta = std::fs::symlink_metadata(format!("/dev/shm/{}", ours[0])).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o777), (crate::sys::trust::current_uid(), 0o600));
    // A freed segment whose mode someone loosened is not this user's private segment any
    // more: the pool never adopts it (the usual unlink handles it).
    let taken = take(old.payload.as_ref().unwrap().data_size).expect("the free segment");
    std::fs::set_permissions(format!("/dev/shm/{old_seg}"), std::fs::Permissions::from_mode(0o644)).unwrap();
    assert!(!retire(&old_seg), "a segment readable by others is not adopted");
    assert!(std::fs::symlink_metadata(format!("/dev/shm/{old_seg}")).is_ok(), "left under its name");
    std::fs::set_permissions(format!("/dev/shm/{old_seg}"), std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(retire(&old_seg), "the same segment, private again, is");
    taken.give_back();
    release();
}

/// `table` with a NaN at row `at`.
fn table_with_nan(rows: usize, at: usize) -> (SchemaRef, Vec<RecordBatch>) {
    let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Float64, false)]));
    let x: ArrayRef = Arc::new(Float64Array::from_iter_values((0..rows).map(|r| if r == at { f64::NAN } else { 1.0 })));
    (schema.clone(), vec![RecordBatch::try_new(schema, vec![x]).unwrap()])
}

#[test]
fn a_nan_in_a_rejecting_column_is_refused_before_any_line_through_the_pool_or_not() {
    let _g = test_serial();
    release();
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::at(tmp.path());
    let rows = 12 << 17; // 12 MiB: pooled, copied by several threads
    let mut o = opts("t");
    o.reject_nan = vec![0];
    // The first send finds no pool segment: the core looks in one pass first.
    let err = tables::send(&store, &table_with_nan(rows, rows - 1).0, &table_with_nan(rows, rows - 1).1, &o);
    assert!(matches!(err, Err(crate::error::Error::NanFound { column: 0 })), "{err:?}");
    let clean = tables::send(&store, &table(rows, 0.0).0, &table(rows, 0.0).1, &o).unwrap();
    wait_for("a free segment", || stats().free_segments >= 1);
    let lines = std::fs::read_to_string(store.manifest_path()).unwrap();
    // Then through a pool segment, the NaN anywhere: first value, a piece boundary, last.
    for at in [0, rows / 2, rows / 2 + 1, rows - 1] {
        wait_for("a free segment", || stats().free_segments >= 1);
        let before = stats();
        let (schema, batches) = table_with_nan(rows, at);
        let err = tables::send(&store, &schema, &batches, &o);
        assert!(matches!(err, Err(crate::error::Error::NanFound { column: 0 })), "NaN at {at}: {err:?}");
        assert_eq!(stats().hits, before.hits + 1, "NaN at {at} went through the pool");
        assert!(stats().free_segments >= before.free_segments, "the segment went back to the pool");
    }
    assert_eq!(std::fs::read_to_string(store.manifest_path()).unwrap(), lines, "no line for a refused send");
    let (_, data) = tables::get(&store, "t", None, false).unwrap();
    assert_eq!(data.batches, table(rows, 0.0).1, "the version before is the current one");
    // Without reject_nan the NaN is sent as it is (a caller's Arrow data is its own).
    o.reject_nan.clear();
    let (schema, batches) = table_with_nan(rows, 5);
    let sent = tables::send(&store, &schema, &batches, &o).unwrap();
    let (_, data) = tables::get(&store, "t", None, false).unwrap();
    assert_eq!(data.batches, batches);
    // A column that is not a float column cannot be named.
    let mut bad = opts("t");
    bad.reject_nan = vec![3];
    assert!(matches!(tables::send(&store, &schema, &batches, &bad), Err(crate::error::Error::InvalidArgument(_))));
    release();
    for ev in [clean, sent] {
        shm::unlink(&ev.payload.unwrap().locator).unwrap();
    }
}
