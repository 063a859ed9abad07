//! Read markers: a reader of a segment sent with `shm_unlink_on_read` leaves
//! `<store>/reads/<segment>`, and gc unlinks a segment once its marker exists.

use std::collections::HashSet;
use std::fs::{self, OpenOptions};
use std::path::PathBuf;

use serde_json::Value;

use crate::manifest::Event;
use crate::protocol::METADATA_SHM_UNLINK_ON_READ;
use crate::store::Store;
use crate::sys::fs::create_private_dir;
use crate::sys::shm;

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
            create_private_dir(&store.reads_dir())?;
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
    ev.metadata.get(METADATA_SHM_UNLINK_ON_READ).and_then(Value::as_bool) == Some(true)
}

/// True when a reader of ours has loaded `ev` in full and it was sent to be read once:
/// the version is `consumed` (its marker outlives the segment, so that a get can say why
/// the segment is gone).
pub fn is_consumed(store: &Store, ev: &Event) -> bool {
    ev.payload.as_ref().is_some_and(|p| {
        p.transport == crate::protocol::Transport::Shm && unlink_on_read(ev) && read_marker(store, &p.locator).exists()
    })
}

/// Removes the read markers of segments that are not the payload of a version gc keeps
/// (`kept`: segment names): a current version's marker stays, even once its segment is
/// unlinked, because it is what says the version was consumed.
pub(crate) fn prune_read_markers(store: &Store, kept: &HashSet<String>) {
    let Ok(entries) = fs::read_dir(store.reads_dir()) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !kept.contains(&name) {
            let _ = fs::remove_file(entry.path());
        }
    }
}
