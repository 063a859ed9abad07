//! A payload by transport and locator: whether it lies inside the store, whether it
//! exists, and deleting it. gc and table removal delete through this and nothing else.

use std::fs;
use std::path::Path;

use crate::error::{Error, Result};
use crate::manifest::PayloadRef;
use crate::protocol::Transport;
use crate::store::Store;
use crate::sys::shm;

/// One payload: a segment name or a file path, with its transport.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Target {
    pub(crate) transport: Transport,
    pub(crate) locator: String,
}

impl Target {
    pub(crate) fn of(p: &PayloadRef) -> Self {
        Target { transport: p.transport.clone(), locator: p.locator.clone() }
    }

    pub(crate) fn file(path: &Path) -> Self {
        Target { transport: Transport::File, locator: path.to_string_lossy().into_owned() }
    }

    /// `Some(true)`: ours to delete; `Some(false)`: outside the store (report, do not
    /// follow); `None`: a transport we do not know (leave alone).
    pub(crate) fn inside(&self, store: &Store) -> Option<bool> {
        inside(store, &self.transport, &self.locator)
    }

    pub(crate) fn exists(&self) -> bool {
        match self.transport {
            Transport::File => Path::new(&self.locator).exists(),
            Transport::Shm => shm::exists(&self.locator),
            _ => false,
        }
    }

    /// Deletes the payload (a segment's read marker with it); a payload already gone is fine.
    pub(crate) fn delete(&self, store: &Store) -> Result<()> {
        match self.transport {
            Transport::File => match fs::remove_file(&self.locator) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(Error::io(format!("cannot remove {}", self.locator), e)),
            },
            Transport::Shm => {
                // This process's pool may take the segment instead (renamed out of its
                // name, reused once nobody maps it): to a reader, the same as an unlink.
                if !crate::pool::retire(&self.locator) {
                    shm::unlink(&self.locator)?;
                }
                let _ = fs::remove_file(store.reads_dir().join(&self.locator));
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// [`Target::inside`] for a payload given by reference (the get path, which builds no
/// `Target`). A file whose parent is literally the store's `payloads/` is inside without
/// asking the file system; other paths are compared canonically.
pub(crate) fn inside(store: &Store, transport: &Transport, locator: &str) -> Option<bool> {
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
