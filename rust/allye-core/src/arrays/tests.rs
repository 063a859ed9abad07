use super::*;
use std::path::PathBuf;
use std::sync::Arc;

fn store() -> (tempfile::TempDir, Store) {
    let tmp = tempfile::tempdir().unwrap();
    let s = Store::at(tmp.path().join("store"));
    (tmp, s)
}

fn marker_path(store: &Store, name: &str) -> PathBuf {
    store.root().join(ARRAYS_DIR).join(name)
}

fn seg_exists(segment: &str) -> bool {
    std::path::Path::new("/dev/shm").join(segment).exists()
}

/// Reads element `i` of a u64 array.
fn get(a: &SharedArray, i: usize) -> u64 {
    assert!(i * 8 < a.data_len());
    unsafe { (a.data_ptr() as *const u64).add(i).read_volatile() }
}
fn set(a: &SharedArray, i: usize, v: u64) {
    assert!(i * 8 < a.data_len());
    unsafe { (a.data_ptr() as *mut u64).add(i).write_volatile(v) }
}

/// The identity of a process that has exited.
fn dead_identity() -> WriterIdentity {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    WriterIdentity { pid, start: Some(1), boot_id: WriterIdentity::current().boot_id }
}

#[test]
fn create_open_share_data_and_destroy() {
    let (_t, s) = store();
    let (a, reclaimed) = SharedArray::create(&s, "counts", "<u8", &[2, 3], false, Init::Keep).unwrap();
    assert!(!reclaimed);
    assert_eq!((a.typestr(), a.shape(), a.data_len()), ("<u8", &[2usize, 3][..], 48));
    assert!(seg_exists(a.segment()));
    assert_eq!(fs::read_to_string(marker_path(&s, "counts")).unwrap(), a.segment());
    assert_eq!(get(&a, 5), 0, "new arrays are zeroed");
    set(&a, 4, 42);
    let b = SharedArray::open(&s, "counts").unwrap();
    assert_eq!(b.segment(), a.segment());
    assert_eq!(get(&b, 4), 42, "a second mapping sees the first one's writes");
    set(&b, 0, 7);
    assert_eq!(get(&a, 0), 7);
    let infos = list(&s).unwrap();
    assert_eq!(infos.len(), 1);
    assert_eq!(infos[0].openers, vec![std::process::id(); 2]);
    assert_eq!(infos[0].creator.as_ref().unwrap().pid, std::process::id());
    assert_eq!(
        (infos[0].dtype.as_str(), infos[0].shape.clone(), infos[0].state.as_str()),
        ("<u8", vec![2, 3], "ready")
    );
    b.close();
    assert_eq!(list(&s).unwrap()[0].openers.len(), 1, "close unregisters");
    a.destroy().unwrap();
    assert!(!seg_exists(a.segment()));
    assert!(!marker_path(&s, "counts").exists());
    assert!(a.is_destroyed() && b.is_destroyed());
    assert_eq!(get(&b, 4), 42, "a mapping outlives the destroyed array");
    assert!(matches!(SharedArray::open(&s, "counts"), Err(Error::ArrayNotFound { .. })));
    assert!(list(&s).unwrap().is_empty());
}

#[test]
fn two_stores_never_collide() {
    let (_t1, s1) = store();
    let (_t2, s2) = store();
    let (a, _) = SharedArray::create(&s1, "x", "|u1", &[4], false, Init::Fill(&[1])).unwrap();
    let (b, _) = SharedArray::create(&s2, "x", "|u1", &[4], false, Init::Fill(&[2])).unwrap();
    assert_ne!(a.segment(), b.segment());
    assert!(matches!(SharedArray::open(&Store::at("/nonexistent/store"), "x"), Err(Error::ArrayNotFound { .. })));
    a.destroy().unwrap();
    b.destroy().unwrap();
}

#[test]
fn init_fill_and_data() {
    let (_t, s) = store();
    let (a, _) = SharedArray::create(&s, "f", "<u8", &[3], false, Init::Fill(&9u64.to_ne_bytes())).unwrap();
    assert_eq!((0..3).map(|i| get(&a, i)).collect::<Vec<_>>(), vec![9, 9, 9]);
    a.destroy().unwrap();
    let data: Vec<u8> = [1u64, 2, 3].iter().flat_map(|v| v.to_ne_bytes()).collect();
    let (a, _) = SharedArray::create(&s, "d", "<u8", &[3], false, Init::Data(&data)).unwrap();
    assert_eq!((0..3).map(|i| get(&a, i)).collect::<Vec<_>>(), vec![1, 2, 3]);
    a.destroy().unwrap();
}

#[test]
fn exist_ok_reclaims_matching_and_refuses_mismatch() {
    let (_t, s) = store();
    let (a, _) = SharedArray::create(&s, "r", "<u8", &[4], false, Init::Keep).unwrap();
    set(&a, 1, 5);
    let err = SharedArray::create(&s, "r", "<u8", &[4], false, Init::Keep).unwrap_err();
    assert!(matches!(err, Error::ArrayExists { .. }), "{err}");
    let (b, reclaimed) = SharedArray::create(&s, "r", "<u8", &[4], true, Init::Keep).unwrap();
    assert!(reclaimed);
    assert_eq!(get(&b, 1), 5, "Init::Keep keeps a reclaimed array's data");
    let (c, _) = SharedArray::create(&s, "r", "<u8", &[4], true, Init::Fill(&[0; 8])).unwrap();
    assert_eq!(get(&a, 1), 0, "a fill is applied to a reclaimed array");
    for (ts, shape) in [("<f8", vec![4]), ("<u8", vec![5]), ("<u8", vec![2, 2])] {
        let err = SharedArray::create(&s, "r", ts, &shape, true, Init::Keep).unwrap_err();
        assert!(matches!(err, Error::ArrayLayout { .. }), "{err}");
        assert!(err.to_string().contains("<u8") && err.to_string().contains("[4]"), "{err}");
    }
    drop((b, c));
    a.destroy().unwrap();
}

#[test]
fn bad_arguments_and_failed_creates_leave_nothing() {
    let (_t, s) = store();
    for name in ["", ".hidden", "a/b", "sp ace", &"x".repeat(129)] {
        assert!(
            matches!(SharedArray::create(&s, name, "<u8", &[1], false, Init::Keep), Err(Error::InvalidArgument(_))),
            "{name:?}"
        );
    }
    for ts in ["|O", "|O8", "<U0", "<i3", "f8", "[('a', '|O')]"] {
        assert!(
            matches!(SharedArray::create(&s, "a", ts, &[1], false, Init::Keep), Err(Error::InvalidArgument(_))),
            "{ts}"
        );
    }
    assert!(SharedArray::create(&s, "a", "<u8", &[1; 17], false, Init::Keep).is_err());
    assert!(SharedArray::create(&s, "a", "<u8", &[usize::MAX, 2], false, Init::Keep).is_err());
    assert!(SharedArray::create(&s, "a", "<u8", &[2], false, Init::Fill(&[1, 2])).is_err());
    assert!(SharedArray::create(&s, "a", "<u8", &[2], false, Init::Data(&[0; 15])).is_err());
    // Larger than /dev/shm: fallocate refuses up front, the segment and marker go.
    let total = rustix::fs::statvfs("/dev/shm").map(|v| v.f_blocks * v.f_frsize).unwrap();
    let err = SharedArray::create(&s, "big", "|u1", &[total as usize + (1 << 30)], false, Init::Keep).unwrap_err();
    assert!(err.is_no_space() || matches!(err, Error::Io { .. }), "{err}");
    let root = fs::canonicalize(s.root()).unwrap();
    let key = s.key(false).unwrap().expect("the first create made the store's key");
    let tag = crate::gc::store_tag(&s).unwrap();
    assert!(!seg_exists(&segment_name(&key, &root, &tag, "big")));
    assert!(!seg_exists(&segment_name(&key, &root, &tag, "a")));
    assert_eq!(fs::read_dir(s.root().join(ARRAYS_DIR)).unwrap().count(), 0);
}

#[test]
fn open_checks_the_header() {
    let (_t, s) = store();
    s.ensure().unwrap();
    let root = fs::canonicalize(s.root()).unwrap();
    let tag = crate::gc::store_tag(&s).unwrap();
    let segment = segment_name(&s.key(true).unwrap().unwrap(), &root, &tag, "junk");
    let f = crate::sys::shm::create(&segment).unwrap();
    f.set_len(HEADER_LEN as u64 + 64).unwrap();
    let err = SharedArray::open(&s, "junk").unwrap_err();
    assert!(matches!(err, Error::ArrayLayout { .. }) && err.to_string().contains("magic"), "{err}");
    crate::sys::shm::unlink(&segment).unwrap();
    let (a, _) = SharedArray::create(&s, "v", "<u8", &[8], false, Init::Keep).unwrap();
    a.header().set32(off::VERSION, 99);
    let err = SharedArray::open(&s, "v").unwrap_err();
    assert!(err.to_string().contains("version 99"), "{err}");
    a.header().set32(off::VERSION, LAYOUT_VERSION);
    a.header().set64(off::SHAPE, 1000);
    let err = SharedArray::open(&s, "v").unwrap_err();
    assert!(err.to_string().contains("corrupt"), "{err}");
    a.header().set64(off::SHAPE, 8);
    SharedArray::open(&s, "v").unwrap();
    a.destroy().unwrap();
}

#[test]
fn lock_excludes_threads_and_counts_exactly() {
    let (_t, s) = store();
    let (a, _) = SharedArray::create(&s, "c", "<u8", &[1], false, Init::Keep).unwrap();
    let a = Arc::new(a);
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let s = s.clone();
            std::thread::spawn(move || {
                let b = SharedArray::open(&s, "c").unwrap();
                for _ in 0..2000 {
                    let _g = b.locked().unwrap();
                    let v = get(&b, 0);
                    std::thread::yield_now();
                    set(&b, 0, v + 1);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(get(&a, 0), 8000);
    a.destroy().unwrap();
}

#[test]
fn the_spin_reads_glibcs_lock_word_free_as_0_and_held_as_the_holders_thread() {
    // The spin in lock::lock tries only when the word reads 0: were the word elsewhere in
    // this C library's mutex, waiters would never try while spinning (slower, still correct).
    let (_t, s) = store();
    let (a, _) = SharedArray::create(&s, "w", "<u8", &[1], false, Init::Keep).unwrap();
    // SAFETY: the array's mutex is initialised and mapped while `a` lives.
    let word = unsafe { lock::lock_word(a.header().mutex()) };
    assert_eq!(word.load(std::sync::atomic::Ordering::Relaxed), 0);
    let g = a.locked().unwrap();
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::gettid() };
    assert_eq!(word.load(std::sync::atomic::Ordering::Relaxed) & libc::FUTEX_TID_MASK as i32, tid);
    drop(g);
    assert_eq!(word.load(std::sync::atomic::Ordering::Relaxed), 0);
    a.destroy().unwrap();
}

#[test]
fn nested_lock_is_an_error_not_a_deadlock() {
    let (_t, s) = store();
    let (a, _) = SharedArray::create(&s, "n", "|b1", &[], false, Init::Keep).unwrap();
    let g = a.locked().unwrap();
    let err = a.lock().unwrap_err();
    assert!(err.to_string().contains("already holds"), "{err}");
    assert_eq!(a.try_lock().unwrap_or(None), None);
    drop(g);
    assert!(a.unlock().unwrap_err().to_string().contains("does not hold"));
    a.destroy().unwrap();
}

#[test]
fn a_dead_holder_does_not_block_and_the_next_is_told() {
    let (_t, s) = store();
    let (a, _) = SharedArray::create(&s, "d", "<u8", &[1], false, Init::Keep).unwrap();
    let s2 = s.clone();
    // A thread that exits holding the lock is "dead" to the robust mutex, as a killed process is.
    std::thread::spawn(move || {
        let b = SharedArray::open(&s2, "d").unwrap();
        assert_eq!(b.lock().unwrap(), Acquired::Clean);
        std::mem::forget(b);
    })
    .join()
    .unwrap();
    let acquired = a.lock_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(acquired, Some(Acquired::OwnerDied));
    assert_eq!(a.lock_recoveries(), 1);
    a.unlock().unwrap();
    let g = a.locked().unwrap();
    assert!(!g.owner_died(), "the lock is consistent again");
    drop(g);
    a.destroy().unwrap();
}

#[test]
fn gc_frees_abandoned_arrays_only() {
    let (_t, s) = store();
    let (live, _) = SharedArray::create(&s, "live", "<u8", &[1], false, Init::Keep).unwrap();
    let (held, _) = SharedArray::create(&s, "held", "<u8", &[1], false, Init::Keep).unwrap();
    let (gone, _) = SharedArray::create(&s, "gone", "<u8", &[1], false, Init::Keep).unwrap();
    let dead = dead_identity();
    held.header().set_creator(&dead);
    gone.header().set_creator(&dead);
    let gone_segment = gone.segment().to_string();
    drop(gone);
    // A dead opener's slot does not hold an array.
    let h = held.header();
    h.slot_start(200).store(1, Ordering::Release);
    h.slot_pid(200).store(dead.pid, Ordering::Release);
    let report = collect(&s, true).unwrap();
    assert_eq!(report.iter().map(|a| a.table_name.as_str()).collect::<Vec<_>>(), vec!["gone"]);
    assert!(seg_exists(&gone_segment), "dry run deletes nothing");
    let report = collect(&s, false).unwrap();
    assert_eq!(report.len(), 1);
    assert_eq!(report[0].locator, gone_segment);
    assert!(report[0].reason.contains("creator"), "{}", report[0].reason);
    assert!(!seg_exists(&gone_segment) && !marker_path(&s, "gone").exists());
    assert!(matches!(SharedArray::open(&s, "gone"), Err(Error::ArrayNotFound { .. })));
    assert_eq!(h.slot_pid(200).load(Ordering::Acquire), 0, "gc pruned the dead opener");
    // The held one goes once its last (live) opener closes.
    held.close();
    let report = collect(&s, false).unwrap();
    assert_eq!(report.iter().map(|a| a.table_name.as_str()).collect::<Vec<_>>(), vec!["held"]);
    assert!(held.is_destroyed());
    // A live creator's array stays even with no opener.
    live.close();
    assert!(collect(&s, false).unwrap().is_empty());
    assert_eq!(list(&s).unwrap().iter().map(|i| i.name.as_str()).collect::<Vec<_>>(), vec!["live"]);
    live.destroy().unwrap();
}

#[test]
fn exist_ok_recreates_a_half_created_leftover() {
    let (_t, s) = store();
    let (a, _) = SharedArray::create(&s, "h", "<u8", &[2], false, Init::Keep).unwrap();
    a.header().set32(off::STATE, STATE_INIT);
    a.header().set_creator(&dead_identity());
    let err = SharedArray::open(&s, "h").unwrap_err();
    assert!(matches!(err, Error::ArrayNotFound { .. }) && err.to_string().contains("died"), "{err}");
    let (b, reclaimed) = SharedArray::create(&s, "h", "<u8", &[3], true, Init::Keep).unwrap();
    assert!(!reclaimed, "a dead half-made segment is replaced, not reclaimed");
    assert_eq!(b.shape(), &[3]);
    b.destroy().unwrap();
}

#[test]
fn a_forked_child_closing_an_inherited_handle_keeps_the_parents_slot() {
    let (_t, s) = store();
    let (a, _) = SharedArray::create(&s, "fork", "<u8", &[1], false, Init::Keep).unwrap();
    // SAFETY: the child only closes the handle, writes through it and exits.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        a.close();
        unsafe { libc::_exit(0) };
    }
    let mut status = 0;
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(list(&s).unwrap()[0].openers, vec![std::process::id()]);
    a.destroy().unwrap();
}

#[test]
fn string_bytes_and_structured_dtypes_round_trip_through_the_header() {
    let (_t, s) = store();
    let rec = "[('id', '<i4'), ('', '|V4'), ('pos', '<f8', (3,)), ('tag', '|S8')]";
    for (name, ts, item) in [("chars", "<U1", 4), ("raw", "|S8", 8), ("when", "<M8[ns]", 8), ("recs", rec, 40)] {
        let (a, _) = SharedArray::create(&s, name, ts, &[5], false, Init::Keep).unwrap();
        assert_eq!((a.typestr(), a.itemsize(), a.data_len()), (ts, item, 5 * item), "{name}");
        let b = SharedArray::open(&s, name).unwrap();
        assert_eq!((b.typestr(), b.itemsize()), (ts, item), "{name}: another handle reads the same dtype");
        let info = list(&s).unwrap().into_iter().find(|i| i.name == name).unwrap();
        assert_eq!(info.dtype, ts);
        // The same size under another dtype is another layout.
        let other = if item == 8 { "<i8" } else { "<U2" };
        let e = SharedArray::create(&s, name, other, &[5], true, Init::Keep).unwrap_err();
        assert!(matches!(e, Error::ArrayLayout { .. }), "{name}: {e}");
        let (c, reclaimed) = SharedArray::create(&s, name, ts, &[5], true, Init::Keep).unwrap();
        assert!(reclaimed && c.typestr() == ts);
        a.destroy().unwrap();
    }
}

#[test]
fn the_array_of_a_store_deleted_with_rm_rf_is_an_orphan_gc_frees() {
    let (t, s) = store();
    let (a, _) = SharedArray::create(&s, "counts", "<u8", &[4], false, Init::Fill(&7u64.to_ne_bytes())).unwrap();
    let segment = a.segment().to_string();
    let tag = crate::gc::store_tag(&s).unwrap();
    assert!(segment.starts_with(&format!("{ARRAY_SEGMENT_PREFIX}{tag}")), "{segment} carries the store's tag");
    drop(a);
    // While the store exists, the orphan collection leaves its array alone.
    assert!(!crate::gc::collect_orphans(true).iter().any(|x| x.locator == segment));
    drop(t); // rm -rf of the store
             // Other tests' gcs, running meanwhile, free this user's orphans too (slowly when
             // /dev/shm holds many), so one may free this array around the dry run: the dry run's
             // report is checked whenever the array is there before and after it.
    let before = seg_exists(&segment);
    let found: Vec<_> = crate::gc::collect_orphans(true).into_iter().filter(|x| x.locator == segment).collect();
    if before && seg_exists(&segment) {
        assert_eq!(found.len(), 1, "a dry run reports the array and frees nothing");
        assert_eq!(found[0].transport, GcTransport::SharedArray);
    }
    crate::gc::collect_orphans(false);
    assert!(!seg_exists(&segment), "gc of any store frees it");
    assert!(!crate::gc::collect_orphans(true).iter().any(|x| x.locator == segment), "a second gc finds nothing");
}
