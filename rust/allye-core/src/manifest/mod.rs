//! `manifest.jsonl`: the append-only event log of protocol v1.
//!
//! Writing: one complete line per call, appended with a single `write` under the
//! exclusive [`crate::sys::lock::ManifestLock`]. If a previous writer died mid-line (a torn tail with no
//! `\n`), the next append first terminates that garbage with a `\n`, so the torn bytes
//! stay one skipped line instead of corrupting the new one.
//!
//! Reading takes no lock and only ever looks at whole `\n`-terminated lines; a line that
//! does not parse as an event is skipped.
//!
//! Lookups do not grow with the length of the manifest:
//! * [`latest_ready`], the first time this process asks for a (table, producer), scans
//!   the file **backwards** from the end in 64 KiB blocks (line breaks found with
//!   `memrchr`) and stops at the first matching `ready` line, so its cost is the distance
//!   from the end to the table's latest version, not the file length. The answer is kept
//!   in a per-file index; later lookups read only the bytes appended since.
//! * [`latest_per_table`] needs every table: it builds the complete index once (one full
//!   read per process), then refreshes it with new bytes only.
//!
//! The index is keyed by path and remembers the file identity (device, inode) and the
//! offset after the last complete line; a replaced (compacted) or truncated manifest is
//! detected by identity or size and re-indexed from the start.

mod append;
mod cursor;
mod event;
mod index;
mod scan;
mod tail;

pub use append::{append, append_line, write_line};
pub use cursor::{lines_ending, parse_lines, parse_lines_ending, Cursor};
pub use event::{Event, PayloadRef};
pub use index::{
    is_removed, latest_per_table, latest_ready, latest_ready_and_removed, latest_ready_with, one_look, read_all,
    table_state, with_tables, TableState,
};
pub use tail::ManifestTail;

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;
    use crate::protocol::{Status, Transport};
    use crate::store::Store;
    use serde_json::Map;

    pub(crate) fn event(table: &str, status: Status, producer: &str, n: u64) -> Event {
        Event {
            version: 1,
            id: format!("id-{n}"),
            table_name: table.into(),
            producer: producer.into(),
            status: status.clone(),
            created_at: "2025-12-18T12:34:56+0900".into(),
            ttl_sec: None,
            payload: (status == Status::Ready).then(|| PayloadRef {
                transport: Transport::File,
                locator: format!("/x/{n}.arrow"),
                data_size: n,
                shape: [n, 1],
                schema_sha256: String::new(),
                created_at: "2025-12-18T12:34:56+0900".into(),
                expires_at: None,
            }),
            metadata: Map::new(),
        }
    }

    pub(crate) fn store() -> (tempfile::TempDir, Store) {
        let tmp = tempfile::tempdir().unwrap();
        let s = Store::at(tmp.path());
        s.ensure().unwrap();
        (tmp, s)
    }
}
