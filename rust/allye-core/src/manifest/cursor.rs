//! A lock-free reader's position in the manifest, and parsing the whole lines it reads.

use std::fs::File;

use crate::manifest::Event;
use crate::sys::fs::{identity, read_at, FileIdentity};

/// How many bytes before a cursor's offset are compared to detect a replaced manifest
/// (enough for the whole last line, whose transfer UUID and payload locator make it unique).
const TAIL_CHECK: usize = 4096;

/// A lock-free reader's position in the manifest: the file (device and inode), the offset
/// just after the last whole line taken into account, and the bytes before that offset.
///
/// Appends never change bytes already written, so the file is the same one as long as its
/// identity matches, it is at least `offset` long and the bytes before `offset` are
/// unchanged. The last check matters: a compacted manifest is a new file renamed over
/// the old one, and the file system may give it the old file's inode number back.
#[derive(Debug, Default, Clone)]
pub struct Cursor {
    identity: Option<FileIdentity>,
    offset: u64,
    tail: Vec<u8>,
}

impl Cursor {
    /// Offset just after the last whole line taken into account.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The identity of the file this cursor has been reading (`None` before its first read).
    pub(crate) fn identity(&self) -> Option<FileIdentity> {
        self.identity
    }

    /// True when `file` is not the file this cursor has been reading (replaced, even under
    /// the same inode number, or truncated).
    pub fn replaced(&self, file: &File, meta: &std::fs::Metadata) -> std::io::Result<bool> {
        if self.identity != Some(identity(meta)) || meta.len() < self.offset {
            return Ok(true);
        }
        if self.tail.is_empty() {
            return Ok(false);
        }
        Ok(read_at(file, self.offset - self.tail.len() as u64, self.tail.len())? != self.tail)
    }

    /// Starts over on `file` at `offset` (0: from the start), without reading what lies before.
    pub fn restart(&mut self, file: &File, meta: &std::fs::Metadata, offset: u64) -> std::io::Result<()> {
        let n = offset.min(TAIL_CHECK as u64) as usize;
        self.tail = read_at(file, offset - n as u64, n)?;
        self.identity = Some(identity(meta));
        self.offset = offset;
        Ok(())
    }

    /// Reads the whole lines appended after the cursor (up to `len`, the file's size) and
    /// moves past them; a torn last line is left to be read again next time. The returned
    /// bytes end with `\n` unless empty.
    pub fn read_lines(&mut self, file: &File, len: u64) -> std::io::Result<Vec<u8>> {
        if len <= self.offset {
            return Ok(Vec::new());
        }
        let buf = read_at(file, self.offset, (len - self.offset) as usize)?;
        Ok(self.take_lines(buf))
    }

    /// [`read_lines`](Self::read_lines) and the check of [`replaced`](Self::replaced)'s
    /// bytes in one read, for a caller that knows `file` is the file this cursor has been
    /// reading (its identity held): `None` when the bytes before the offset changed (the
    /// file was rewritten in place), the cursor unmoved. Nothing appended: nothing read.
    pub(crate) fn read_lines_checked(&mut self, file: &File, len: u64) -> std::io::Result<Option<Vec<u8>>> {
        if len <= self.offset {
            return Ok(Some(Vec::new()));
        }
        let before = self.tail.len();
        let mut buf = read_at(file, self.offset - before as u64, (len - self.offset) as usize + before)?;
        if buf[..before] != self.tail[..] {
            return Ok(None);
        }
        buf.drain(..before);
        Ok(Some(self.take_lines(buf)))
    }

    /// Moves past `line` (whole lines just after the cursor, known without reading them:
    /// this process appended them), keeping the bytes for the next check.
    pub(crate) fn advance_over(&mut self, line: Vec<u8>) {
        self.take_lines(line);
    }

    /// Moves past the whole lines of `buf` (the bytes just after the cursor), keeping the
    /// last [`TAIL_CHECK`] bytes for the next check; returns those lines.
    fn take_lines(&mut self, mut buf: Vec<u8>) -> Vec<u8> {
        let Some(end) = memchr::memrchr(b'\n', &buf) else {
            return Vec::new();
        };
        buf.truncate(end + 1);
        let fresh = buf.len().min(TAIL_CHECK);
        let keep = (TAIL_CHECK - fresh).min(self.tail.len());
        let mut tail = self.tail[self.tail.len() - keep..].to_vec();
        tail.extend_from_slice(&buf[buf.len() - fresh..]);
        self.tail = tail;
        self.offset += buf.len() as u64;
        buf
    }
}

/// The events of whole lines (`\n`-terminated), in order; lines that do not parse are skipped.
pub fn parse_lines(buf: &[u8]) -> impl Iterator<Item = Event> + '_ {
    parse_lines_ending(buf).map(|(_, ev)| ev)
}

/// [`parse_lines`], each event with the offset in `buf` just after its line's `\n`.
pub fn parse_lines_ending(buf: &[u8]) -> impl Iterator<Item = (usize, Event)> + '_ {
    lines_ending(buf).filter_map(|(end, line)| Event::parse(line).map(|ev| (end, ev)))
}

/// The whole lines (`\n`-terminated) of `buf`, unparsed and without their `\n`, each
/// with the offset in `buf` just after it (for a reader that may not need to parse one).
pub fn lines_ending(buf: &[u8]) -> impl Iterator<Item = (usize, &[u8])> + '_ {
    let mut start = 0;
    memchr::memchr_iter(b'\n', buf).map(move |nl| {
        let line = &buf[start..nl];
        start = nl + 1;
        (start, line)
    })
}
