//! The store's trust rule through the public API, as one user: a store others can write
//! is refused for every kind, nothing inside a store is reached through a symbolic link
//! (sends, gets, gc and removal), and shared memory is used only when it is this user's
//! and private. The attacks of a real second user are in the Python suite
//! `tests/security` (it creates users).
#![cfg(target_os = "linux")]

use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;
use std::sync::Arc;

use allye_core::protocol::TransportChoice;
use allye_core::sys::shm;
use allye_core::{Error, GcOptions, SendOptions, SharedArray, Store};
use arrow_array::{ArrayRef, Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};

fn table(v: i64) -> (SchemaRef, Vec<RecordBatch>) {
    let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
    let col: ArrayRef = Arc::new(Int64Array::from_iter_values([v, v + 1, v + 2]));
    (schema.clone(), vec![RecordBatch::try_new(schema, vec![col]).unwrap()])
}

fn send(store: &Store, name: &str, v: i64, transport: TransportChoice) -> Result<allye_core::Event, Error> {
    let (schema, batches) = table(v);
    let mut opts = SendOptions::named(name);
    opts.transport = transport;
    store.send(&schema, &batches, &opts)
}

fn first(store: &Store, name: &str) -> i64 {
    let (_, d) = store.get(name, None).unwrap();
    d.batches[0].column(0).as_any().downcast_ref::<Int64Array>().unwrap().value(0)
}

fn delete_all() -> GcOptions {
    let mut o = GcOptions::default();
    o.dry_run = false;
    o.keep_versions = 1;
    o
}

fn chmod(p: &Path, m: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
}

fn not_private<T: std::fmt::Debug>(r: Result<T, Error>) -> String {
    match r {
        Err(e @ Error::StoreNotPrivate { .. }) => e.to_string(),
        other => panic!("expected StoreNotPrivate, got {other:?}"),
    }
}

fn unlink_segments(store: &Store) {
    if let Ok(text) = std::fs::read_to_string(store.manifest_path()) {
        for line in text.lines() {
            if let Some(i) = line.find("\"adc_") {
                let name: String = line[i + 1..].chars().take_while(|c| *c != '"').collect();
                let _ = shm::unlink(&name);
            }
        }
    }
}

#[test]
fn a_store_others_can_write_is_refused_for_every_kind_and_nothing_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::at(tmp.path().join("store"));
    send(&store, "t", 1, TransportChoice::Shm).unwrap();
    for mode in [0o777, 0o770, 0o733] {
        chmod(store.root(), mode);
        let before = std::fs::read(store.manifest_path()).unwrap();
        let text = not_private(send(&store, "t", 2, TransportChoice::File));
        assert!(text.contains("chmod 700") && text.contains(&store.root().display().to_string()), "{text}");
        not_private(store.get("t", None));
        not_private(store.list(None));
        not_private(store.gc(GcOptions::default()));
        not_private(store.remove("t"));
        not_private(SharedArray::create(&store, "a", "<i8", &[2], false, allye_core::arrays::Init::Keep));
        assert_eq!(std::fs::read(store.manifest_path()).unwrap(), before, "nothing was written");
    }
    // Fixed as the message says: everything is back.
    chmod(store.root(), 0o700);
    assert_eq!(first(&store, "t"), 1);
    unlink_segments(&store);
}

#[test]
fn a_store_made_readable_by_0_1_2_still_works() {
    // 0.1.2 creates its store with the umask: 0755 directories and 0644 files.
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::at(tmp.path().join("store"));
    send(&store, "t", 5, TransportChoice::File).unwrap();
    chmod(store.root(), 0o755);
    chmod(&store.payload_dir(), 0o755);
    chmod(&store.manifest_path(), 0o644);
    assert_eq!(first(&store, "t"), 5);
    send(&store, "t", 6, TransportChoice::File).unwrap();
    assert_eq!(first(&store, "t"), 6);
}

#[test]
fn a_symlinked_payloads_dir_is_neither_written_through_nor_deleted_through() {
    let tmp = tempfile::tempdir().unwrap();
    let important = tmp.path().join("important");
    std::fs::create_dir(&important).unwrap();
    std::fs::write(important.join("file"), b"precious").unwrap();
    let store = Store::at(tmp.path().join("store"));
    let v1 = send(&store, "t", 1, TransportChoice::File).unwrap();
    // payloads/ swapped for a link to ~/important, with two `ready` lines naming
    // important/file through it (a superseded one, for gc to free).
    std::fs::rename(store.payload_dir(), tmp.path().join("saved")).unwrap();
    symlink(&important, store.payload_dir()).unwrap();
    let mut planted = v1.clone();
    let through = store.payload_dir().join("file").to_string_lossy().into_owned();
    for id in ["p1", "p2"] {
        planted.id = id.into();
        planted.payload.as_mut().unwrap().locator = through.clone();
        let line = serde_json::to_string(&planted).unwrap();
        let mut text = std::fs::read_to_string(store.manifest_path()).unwrap();
        text.push_str(&line);
        text.push('\n');
        std::fs::write(store.manifest_path(), text).unwrap();
    }
    assert!(not_private(store.gc(delete_all())).contains("symbolic link"));
    assert!(not_private(store.remove("t")).contains("symbolic link"));
    assert!(not_private(send(&store, "t", 2, TransportChoice::File)).contains("symbolic link"));
    assert!(not_private(store.get("t", None)).contains("symbolic link"));
    assert_eq!(std::fs::read(important.join("file")).unwrap(), b"precious");
    assert_eq!(std::fs::read_dir(&important).unwrap().count(), 1, "nothing was written there");
}

#[test]
fn a_payload_file_that_is_a_symlink_is_not_read() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::at(tmp.path().join("store"));
    let v1 = send(&store, "t", 1, TransportChoice::File).unwrap();
    let path = v1.payload.as_ref().unwrap().locator.clone();
    let elsewhere = tmp.path().join("elsewhere.arrow");
    std::fs::rename(&path, &elsewhere).unwrap();
    symlink(&elsewhere, &path).unwrap();
    assert!(not_private(store.get("t", None)).contains("symbolic link"));
    // gc deletes the link itself, never its target.
    send(&store, "t", 2, TransportChoice::File).unwrap();
    store.gc(delete_all()).unwrap();
    assert!(elsewhere.is_file() && std::fs::symlink_metadata(&path).is_err());
    assert_eq!(first(&store, "t"), 2);
}

#[test]
fn shared_memory_that_others_could_read_or_write_is_not_used() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::at(tmp.path().join("store"));
    let v1 = send(&store, "t", 1, TransportChoice::Shm).unwrap();
    let segment = v1.payload.as_ref().unwrap().locator.clone();
    let dev = Path::new("/dev/shm").join(&segment);
    assert_eq!(std::fs::metadata(&dev).unwrap().permissions().mode() & 0o777, 0o600);
    chmod(&dev, 0o644);
    let text = not_private(store.get("t", None));
    assert!(text.contains(&segment) && text.contains("0644"), "{text}");
    chmod(&dev, 0o600);
    assert_eq!(first(&store, "t"), 1);
    // A symbolic link where a segment should be: refused, never followed.
    let (schema, batches) = table(7);
    let target = tmp.path().join("victim.arrow");
    std::fs::write(&target, b"not yours").unwrap();
    shm::unlink(&segment).unwrap();
    symlink(&target, &dev).unwrap();
    assert!(not_private(store.get("t", None)).contains("symbolic link"));
    std::fs::remove_file(&dev).unwrap();
    assert_eq!(std::fs::read(&target).unwrap(), b"not yours");
    let mut opts = SendOptions::named("t");
    opts.transport = TransportChoice::Shm;
    store.send(&schema, &batches, &opts).unwrap();
    assert_eq!(first(&store, "t"), 7);
    unlink_segments(&store);
}

#[test]
fn a_shared_array_segment_that_is_not_private_is_refused() {
    use allye_core::arrays::Init;
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::at(tmp.path().join("store"));
    let (a, _) = SharedArray::create(&store, "counts", "<i8", &[4], false, Init::Keep).unwrap();
    let dev = Path::new("/dev/shm").join(a.segment());
    assert_eq!(std::fs::metadata(&dev).unwrap().permissions().mode() & 0o777, 0o600);
    // The name comes from the store's key: not the old, predictable hash of path and name.
    let root = std::fs::canonicalize(store.root()).unwrap();
    let key = store.key(false).unwrap().unwrap();
    let tag = allye_core::gc::store_tag(&store).unwrap();
    assert_eq!(a.segment(), allye_core::arrays::segment_name(&key, &root, &tag, "counts"));
    assert_ne!(a.segment(), allye_core::arrays::segment_name(&[0; 32], &root, &tag, "counts"));
    chmod(&dev, 0o666);
    let text = not_private(SharedArray::open(&store, "counts"));
    assert!(text.contains(a.segment()), "{text}");
    not_private(SharedArray::create(&store, "counts", "<i8", &[4], true, Init::Keep));
    chmod(&dev, 0o600);
    SharedArray::open(&store, "counts").unwrap().close();
    a.destroy().unwrap();
}

#[test]
fn an_array_made_before_the_store_key_keeps_its_segment() {
    use allye_core::arrays::Init;
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::at(tmp.path().join("store"));
    let (a, _) = SharedArray::create(&store, "old", "<i8", &[3], false, Init::Fill(&7i64.to_le_bytes())).unwrap();
    // As an earlier version made it: the segment under the old name, the marker naming it.
    let root = std::fs::canonicalize(store.root()).unwrap();
    let old_name = {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(root.as_os_str().as_encoded_bytes());
        h.update([0u8]);
        h.update(b"old");
        let hex: String = h.finalize().iter().take(12).map(|b| format!("{b:02x}")).collect();
        format!("adca_{hex}")
    };
    std::fs::rename(Path::new("/dev/shm").join(a.segment()), Path::new("/dev/shm").join(&old_name)).unwrap();
    std::fs::write(store.root().join("arrays/old"), &old_name).unwrap();
    let b = SharedArray::open(&store, "old").unwrap();
    assert_eq!(b.segment(), old_name);
    b.close();
    let (c, reclaimed) = SharedArray::create(&store, "old", "<i8", &[3], true, Init::Keep).unwrap();
    assert!(reclaimed && c.segment() == old_name, "create meets the existing array, not a second one");
    c.destroy().unwrap();
    drop(a);
}
