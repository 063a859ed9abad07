//! Reading the manifest lines appended since the last call (for `watch`, which must see
//! every `ready` line, not only the latest).

use std::path::PathBuf;

use crate::error::{IoContext, Result};
use crate::manifest::{parse_lines, Cursor, Event};
use crate::store::Store;
use crate::sys::trust::Open;

/// Reads the manifest lines appended since the last call.
#[derive(Debug)]
pub struct ManifestTail {
    store: Store,
    path: PathBuf,
    /// `None` until the first read positions it (at the end, or at the start with `from_start`).
    cursor: Option<Cursor>,
    from_start: bool,
}

impl ManifestTail {
    /// A tail positioned at the current end of the manifest (`from_start`: at its start).
    pub fn new(store: &Store, from_start: bool) -> Self {
        let mut tail = ManifestTail { store: store.clone(), path: store.manifest_path(), cursor: None, from_start };
        if !from_start {
            // Position now, so that only lines appended after `new` are reported.
            let _ = tail.read_new();
        }
        tail
    }

    /// The complete lines appended since the last call, parsed (unparseable lines are
    /// skipped). A replaced (compacted, even under the same inode number) or truncated
    /// manifest is read again from its start; the caller de-duplicates by event id if it must.
    pub fn read_new(&mut self) -> Result<Vec<Event>> {
        let ctx = || format!("cannot read manifest {}", self.path.display());
        let Some((file, meta)) = self.store.open_file_meta(&self.path, Open::Read)? else {
            // A manifest created later is read from its start.
            self.cursor.get_or_insert_with(Cursor::default);
            return Ok(Vec::new());
        };
        let first = self.cursor.is_none();
        let cursor = self.cursor.get_or_insert_with(Cursor::default);
        if cursor.replaced(&file, &meta).ctx(ctx)? {
            let skip_existing = first && !self.from_start;
            let start = if skip_existing { meta.len() } else { 0 };
            // Only whole lines: a torn tail at the end is read once it is complete.
            let start = if skip_existing {
                let mut probe = Cursor::default();
                probe.restart(&file, &meta, 0).ctx(ctx)?;
                probe.read_lines(&file, start).ctx(ctx)?;
                probe.offset()
            } else {
                start
            };
            cursor.restart(&file, &meta, start).ctx(ctx)?;
        }
        let buf = cursor.read_lines(&file, meta.len()).ctx(ctx)?;
        Ok(parse_lines(&buf).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::append;
    use crate::manifest::test_support::event;
    use crate::protocol::Status;

    #[test]
    fn tail_reads_only_new_lines_and_follows_replacement() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::at(tmp.path());
        store.ensure().unwrap();
        append(&store, &event("a", Status::Writing, "python", 1), false).unwrap();
        let mut tail = ManifestTail::new(&store, false);
        assert!(tail.read_new().unwrap().is_empty());
        append(&store, &event("a", Status::Ready, "python", 2), false).unwrap();
        append(&store, &event("b", Status::Ready, "python", 3), false).unwrap();
        let ids: Vec<_> = tail.read_new().unwrap().into_iter().map(|e| e.id).collect();
        assert_eq!(ids, ["id-2", "id-3"]);
        let tmp_file = store.root().join("m.tmp");
        std::fs::write(&tmp_file, format!("{}\n", event("z", Status::Ready, "python", 9).to_line().unwrap())).unwrap();
        std::fs::rename(&tmp_file, store.manifest_path()).unwrap();
        let ids: Vec<_> = tail.read_new().unwrap().into_iter().map(|e| e.id).collect();
        assert_eq!(ids, ["id-9"]);
        assert_eq!(ManifestTail::new(&store, true).read_new().unwrap().len(), 1);
        // Rewritten under the same inode number (as a compaction may end up), longer than
        // before: read from its start, not from the old offset.
        let lines: String =
            (10..14).map(|n| format!("{}\n", event("y", Status::Ready, "python", n).to_line().unwrap())).collect();
        std::fs::write(store.manifest_path(), lines).unwrap();
        let ids: Vec<_> = tail.read_new().unwrap().into_iter().map(|e| e.id).collect();
        assert_eq!(ids, ["id-10", "id-11", "id-12", "id-13"]);
        // A torn last line is reported once it is complete.
        let mut f = std::fs::OpenOptions::new().append(true).open(store.manifest_path()).unwrap();
        let line = event("y", Status::Ready, "python", 20).to_line().unwrap();
        std::io::Write::write_all(&mut f, &line.as_bytes()[..10]).unwrap();
        assert!(tail.read_new().unwrap().is_empty());
        std::io::Write::write_all(&mut f, format!("{}\n", &line[10..]).as_bytes()).unwrap();
        let ids: Vec<_> = tail.read_new().unwrap().into_iter().map(|e| e.id).collect();
        assert_eq!(ids, ["id-20"]);
    }
}
