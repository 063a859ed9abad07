//! Read markers: a reader of a segment sent with `shm_unlink_on_read` leaves
//! `<store>/reads/<segment>`, and gc unlinks a segment once its marker exists.

use std::collections::HashSet;
use std::path::PathBuf;

use serde_json::Value;

use crate::manifest::Event;
use crate::protocol::METADATA_SHM_UNLINK_ON_READ;
use crate::store::Store;
use crate::sys::shm;
use crate::sys::trust::{EntryKind, Open};

/// Where a read marker for segment `locator` lives.
pub fn read_marker(store: &Store, locator: &str) -> PathBuf {
    store.reads_dir().join(locator)
}

/// Records that a reader has read segment `locator` (for `shm_unlink_on_read`). Best
/// effort: a store the reader cannot write to just keeps the segment until its TTL or a
/// newer version frees it.
pub fn mark_read(store: &Store, locator: &str) {
    if shm::check_name(locator).is_err() {
        return;
    }
    let result = store
        .dir_at(&store.reads_dir(), true)
        .and_then(|dir| dir.expect("created").open(locator, Open::Append).map(drop));
    if let Err(e) = result {
        log::debug!("cannot record the read of segment {locator:?} in {}: {e}", store.reads_dir().display());
    }
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
