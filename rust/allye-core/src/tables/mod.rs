//! Tables: sending a version, the one get, listing and describing, removing.
//!
//! ## Removing a table
//! Protocol v1 has no "removed" event. [`remove`] appends an `error` line for the table
//! (a new transfer id, `metadata.error = "removed by user"`, `metadata.adc.removed =
//! true`) — a line every reader already tolerates — and then deletes the payloads of
//! every version of that table that this store owns (files directly inside
//! `payloads/`, segments named by this manifest). What readers see afterwards:
//! * ours: the table's state is `removed`, `list` leaves it out, and a get raises
//!   `TableNotFound` (see [`is_removed`]) until a new version is sent;
//! * 0.1.2 and the widgets: the last `ready` line still exists, but its payload is gone,
//!   so a load fails with their "payload missing" error, and the latest state they may
//!   show is `error` with the reason "removed by user".

mod get;
#[cfg(all(test, target_os = "linux"))]
mod pool_tests;
mod receive;
mod remove;
mod send;
mod send_stream;
mod state;

pub use get::{get, latest, record_read};
pub use receive::{receivable, receive, receive_batches, receive_stream, Announced};
pub use remove::{remove, Removal};
pub(crate) use send::send_sized;
pub use send::{arrow_data_size, schema_sha256, send, SendOptions};
pub use send_stream::send_stream;
pub use state::{is_removed, list, list_readable, live_bytes, readable, state, states, TableInfo};

#[cfg(test)]
pub(crate) mod test_support {
    use crate::store::Store;

    /// The names in the store's payload folder, sorted (what a failed write must not leave).
    pub(crate) fn payload_files(store: &Store) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(store.payload_dir())
            .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        names.sort();
        names
    }
}
