//! Read markers: a reader of a segment sent with `shm_unlink_on_read` leaves
//! `<store>/reads/<segment>`, and gc unlinks a segment once its marker exists.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Mutex;

use serde_json::Value;

use crate::manifest::Event;
use crate::protocol::METADATA_SHM_UNLINK_ON_READ;
use crate::store::Store;
use crate::sys::fork::ForkLocal;
use crate::sys::shm;
use crate::sys::trust::{EntryKind, Open};

/// Where a read marker for segment `locator` lives.
pub fn read_marker(store: &Store, locator: &str) -> PathBuf {
    store.reads_dir().join(locator)
}

/// Records that a reader has read segment `locator` (for `shm_unlink_on_read`). Best
/// effort: a store the reader cannot write to just keeps the segment until its TTL or a
/// newer version frees it.
///
/// A process remembers the markers it left (at most [`MARKED_REMEMBERED`]): a table read
/// again and again (a dashboard polling it) marks its segment once, not on every get. A
/// marker is only removed with its version (`prune_read_markers`, or the segment's
/// deletion, after which gc leaves it again with [`leave_marker`]), so a remembered marker
/// is never missing while a get can still read its segment.
pub fn mark_read(store: &Store, locator: &str) {
    if shm::check_name(locator).is_err() {
        return;
    }
    let key = (store.root().to_path_buf(), locator.to_string());
    if marked().lock().unwrap_or_else(|e| e.into_inner()).contains(&key) {
        return;
    }
    if write_marker(store, locator) {
        let mut marked = marked().lock().unwrap_or_else(|e| e.into_inner());
        if marked.len() >= MARKED_REMEMBERED {
            marked.clear();
        }
        marked.insert(key);
    }
}

/// Leaves the read marker of segment `locator` whether or not this process left it
/// before: gc's, after deleting a consumed current version's segment (its marker says why
/// it is gone).
pub(crate) fn leave_marker(store: &Store, locator: &str) {
    if shm::check_name(locator).is_ok() {
        write_marker(store, locator);
    }
}

fn write_marker(store: &Store, locator: &str) -> bool {
    let result = store
        .dir_at(&store.reads_dir(), true)
        .and_then(|dir| dir.expect("created").open(locator, Open::Append).map(drop));
    if let Err(e) = &result {
        log::debug!("cannot record the read of segment {locator:?} in {}: {e}", store.reads_dir().display());
    }
    result.is_ok()
}

/// How many read markers a process remembers leaving (all forgotten when full).
const MARKED_REMEMBERED: usize = 1024;

/// The read markers this process left: (store root, segment name).
fn marked() -> &'static Mutex<HashSet<(PathBuf, String)>> {
    static MARKED: ForkLocal<Mutex<HashSet<(PathBuf, String)>>> = ForkLocal::new(Default::default);
    MARKED.get()
}

/// True when the read marker of segment `locator` exists (a file, not a symbolic link).
pub fn marker_exists(store: &Store, locator: &str) -> bool {
    shm::check_name(locator).is_ok()
        && matches!(store.stat(&read_marker(store, locator)), Ok(Some(s)) if s.kind == EntryKind::File)
}

/// True when `ev` was sent with `shm_unlink_on_read=True`.
pub(crate) fn unlink_on_read(ev: &Event) -> bool {
    ev.metadata.get(METADATA_SHM_UNLINK_ON_READ).and_then(Value::as_bool) == Some(true)
}

/// True when a reader of ours has loaded `ev` in full and it was sent to be read once:
/// the version is `consumed` (its marker outlives the segment, so that a get can say why
/// the segment is gone).
pub fn is_consumed(store: &Store, ev: &Event) -> bool {
    ev.payload.as_ref().is_some_and(|p| {
        p.transport == crate::protocol::Transport::Shm && unlink_on_read(ev) && marker_exists(store, &p.locator)
    })
}

/// Removes the read markers of segments that are not the payload of a version gc keeps
/// (`kept`: segment names): a current version's marker stays, even once its segment is
/// unlinked, because it is what says the version was consumed.
pub(crate) fn prune_read_markers(store: &Store, kept: &HashSet<String>) {
    let Ok(Some(dir)) = store.dir_at(&store.reads_dir(), false) else { return };
    for entry in dir.entries().unwrap_or_default() {
        if !kept.contains(entry.name.to_string_lossy().as_ref()) {
            let _ = dir.remove_file(&entry.name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_leaves_a_read_marker_once_and_gc_leaves_it_again() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::at(tmp.path());
        let seg = shm::new_segment_name();
        mark_read(&store, &seg);
        assert!(marker_exists(&store, &seg));
        // Deleted as a segment's deletion deletes it: a later get of this process does not
        // leave it again (it remembers), gc's leave_marker does.
        std::fs::remove_file(read_marker(&store, &seg)).unwrap();
        mark_read(&store, &seg);
        assert!(!marker_exists(&store, &seg));
        leave_marker(&store, &seg);
        assert!(marker_exists(&store, &seg));
        // Another store's marker of the same name is its own.
        let other_tmp = tempfile::tempdir().unwrap();
        let other = Store::at(other_tmp.path());
        mark_read(&other, &seg);
        assert!(marker_exists(&other, &seg));
    }
}
