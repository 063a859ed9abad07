use super::segment::Segment;
use super::*;
use crate::sys::shm;

#[test]
fn a_segment_held_open_elsewhere_is_never_reported_unused() {
    let _g = test_serial();
    let seg = Segment::create(None, 1 << 20).unwrap();
    assert!(seg.unused_elsewhere().unwrap(), "its own mapping does not count");
    let other = shm::open_map(&seg.name, 4096).unwrap().unwrap();
    assert!(!seg.unused_elsewhere().unwrap(), "another mapping counts");
    drop(other);
    assert!(seg.unused_elsewhere().unwrap());
    seg.destroy();
}

#[test]
fn gc_frees_pool_segments_no_live_process_holds() {
    let _g = test_serial();
    let live = Segment::create(Some("0123456789"), 1 << 20).unwrap();
    let dead = Segment::create(Some("0123456789"), 1 << 20).unwrap();
    let dead_name = dead.name.clone();
    // What a killed owner leaves: the name, without its descriptor (hence its lock).
    drop(dead);
    let dry = collect_abandoned(true);
    assert!(dry.iter().any(|(n, _)| *n == dead_name), "{dry:?}");
    assert!(!dry.iter().any(|(n, _)| *n == live.name), "a live pool's segment is kept");
    assert!(shm::exists(&dead_name), "a dry run frees nothing");
    let done = collect_abandoned(false);
    assert!(done.iter().any(|(n, b)| *n == dead_name && *b >= 1 << 20), "{done:?}");
    assert!(!shm::exists(&dead_name));
    assert!(shm::exists(&live.name));
    live.destroy();
}
