//! A payload by transport and locator: whether it lies inside the store, whether it
//! exists, and deleting it. gc and table removal delete through this and nothing else.

use std::path::Path;

use crate::error::Result;
use crate::manifest::PayloadRef;
use crate::protocol::Transport;
use crate::store::Store;
use crate::sys::shm;
use crate::sys::trust::{EntryKind, TrustedDir};

/// One payload: a segment name or a file path, with its transport.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Target {
    pub(crate) transport: Transport,
    pub(crate) locator: String,
}

impl Target {
    pub(crate) fn of(p: &PayloadRef) -> Self {
        // An inline payload is its line: nothing elsewhere to name (and its locator, the
        // data itself, is not worth copying and hashing as a key).
        let locator = if p.transport == Transport::Inline { String::new() } else { p.locator.clone() };
        Target { transport: p.transport.clone(), locator }
    }

    pub(crate) fn file(path: &Path) -> Self {
        Target { transport: Transport::File, locator: path.to_string_lossy().into_owned() }
    }

    /// `Some(true)`: ours to delete; `Some(false)`: outside the store (report, do not
    /// follow); `None`: nothing to delete (an inline payload, which is its line) or a
    /// transport we do not know (leave alone).
    pub(crate) fn inside(&self, store: &Store) -> Option<bool> {
        inside(store, &self.transport, &self.locator)
    }

    /// True when the payload exists where this store keeps it: an entry of that name in
    /// its `payloads/` (a symbolic link counts: gc deletes the link itself, a get refuses
    /// it), or this user's segment of that name.
    pub(crate) fn exists(&self, store: &Store) -> bool {
        match self.transport {
            Transport::File => file_exists(payload_dir(store).as_ref(), &self.locator),
            Transport::Shm => shm::exists(&self.locator),
            Transport::Inline => true,
            _ => false,
        }
    }

    /// [`Target::exists`] with the store's `payloads/` already opened (`None`: it does
    /// not exist), for callers that look at many payloads.
    pub(crate) fn exists_in(&self, payloads: Option<&TrustedDir>) -> bool {
        match self.transport {
            Transport::File => file_exists(payloads, &self.locator),
            Transport::Shm => shm::exists(&self.locator),
            Transport::Inline => true,
            _ => false,
        }
    }

    /// Deletes the payload (a segment's read marker with it); a payload already gone is
    /// fine. A file is deleted as the entry of its name in the store's `payloads/` (never
    /// through a symbolic link); callers check [`Target::inside`] first.
    pub(crate) fn delete(&self, store: &Store) -> Result<()> {
        match self.transport {
            Transport::File => {
                let Some(name) = Path::new(&self.locator).file_name() else { return Ok(()) };
                match store.dir_at(&store.payload_dir(), false)? {
                    Some(dir) => dir.remove_file(name).map(drop),
                    None => Ok(()),
                }
            }
            Transport::Shm => {
                // This process's pool may take the segment instead (renamed out of its
                // name, reused once nobody maps it): to a reader, the same as an unlink.
                if !crate::pool::retire(&self.locator) {
                    shm::unlink(&self.locator)?;
                }
                let _ = store.remove_file(&store.reads_dir().join(&self.locator));
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// The store's `payloads/`, opened and checked; `None` when it (or the store) is missing
/// or refused (callers that delete call [`check_payload_dir`] first, to be told why).
pub(crate) fn payload_dir(store: &Store) -> Option<TrustedDir> {
    store.dir_at(&store.payload_dir(), false).ok().flatten()
}

/// Applies the trust rule to the store's `payloads/` (if it exists): gc and removal call
/// it before they decide anything, so that a refused directory is an error, not a
/// payload that looks gone.
pub(crate) fn check_payload_dir(store: &Store) -> Result<()> {
    store.dir_at(&store.payload_dir(), false).map(drop)
}

fn file_exists(payloads: Option<&TrustedDir>, locator: &str) -> bool {
    let (Some(dir), Some(name)) = (payloads, Path::new(locator).file_name()) else { return false };
    matches!(dir.stat(name), Ok(Some(s)) if s.kind != EntryKind::Dir)
}

/// [`Target::inside`] for a payload given by reference. A file whose parent is literally
/// the store's `payloads/` is inside without asking the file system; other paths are
/// compared canonically.
fn inside(store: &Store, transport: &Transport, locator: &str) -> Option<bool> {
    match transport {
        Transport::File => {
            let path = Path::new(locator);
            let literal = path.parent() == Some(store.payload_dir().as_path())
                && path.file_name().is_some_and(|n| n != ".." && n != ".");
            Some(literal || store.owns_payload_file(path))
        }
        Transport::Shm => Some(shm::check_name(locator).is_ok()),
        _ => None,
    }
}
