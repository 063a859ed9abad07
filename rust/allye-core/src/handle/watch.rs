//! Waiting for a store to change, and reading what was appended.

use std::time::Duration;

use crate::manifest::ManifestTail;
use crate::store::Store;
use crate::watch::ManifestWatcher;

impl Store {
    /// A watcher that wakes up when the manifest changes (`poll`: the polling interval
    /// when file-system events cannot be had, or with `force_polling`).
    pub fn watch(&self, force_polling: bool, poll: Option<Duration>) -> ManifestWatcher {
        ManifestWatcher::new(self, force_polling, poll)
    }

    /// A reader of the manifest lines appended from now on (`from_start`: from the start).
    pub fn tail(&self, from_start: bool) -> ManifestTail {
        ManifestTail::new(self, from_start)
    }
}
