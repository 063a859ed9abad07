//! Following a stream: each new chunk as it lands, woken by file-system notifications on
//! the stream's directory (the manifest watcher's code, pointed at `chunks.jsonl`).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use crate::error::Result;
use crate::payload::Decoded;
use crate::protocol::STREAM_LOG_FILE;
use crate::store::Store;
use crate::streams::view::view_of;
use crate::streams::{stream_dir, ChunkLine};
use crate::watch::ManifestWatcher;

/// Wakes up when a stream's chunk log changes.
pub type StreamWatcher = ManifestWatcher;

/// Yields the chunks of a stream that it has not yielded yet, in log order.
pub struct Follower {
    store: Store,
    table: String,
    seen: HashSet<String>,
    generation: u64,
    next: usize,
    watcher: StreamWatcher,
}

impl std::fmt::Debug for Follower {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Follower").field("table", &self.table).field("next", &self.next).finish()
    }
}

impl Follower {
    /// Follows stream `table` (which need not exist yet). `from_start`: the chunks already
    /// there are yielded first; else only those appended from now on.
    pub fn new(
        store: &Store,
        table: &str,
        from_start: bool,
        force_polling: bool,
        poll: Option<Duration>,
    ) -> Result<Self> {
        let dir = stream_dir(store, table);
        let mut watcher = ManifestWatcher::on_file(&dir, STREAM_LOG_FILE, force_polling, poll);
        watcher.mark_seen();
        let mut f = Follower {
            store: store.clone(),
            table: table.into(),
            seen: HashSet::new(),
            generation: 0,
            next: 0,
            watcher,
        };
        let view = view_of(store, table);
        let mut v = view.lock().unwrap_or_else(|e| e.into_inner());
        v.refresh(store, table)?;
        f.generation = v.generation;
        if !from_start {
            f.next = v.chunks.len();
            f.seen.extend(v.chunks.iter().map(|c| c.line.chunk.clone()));
        }
        Ok(f)
    }

    /// The chunks appended since the last call, without waiting.
    pub fn poll(&mut self) -> Result<Vec<(ChunkLine, Decoded)>> {
        let view = view_of(&self.store, &self.table);
        let mut v = view.lock().unwrap_or_else(|e| e.into_inner());
        v.refresh(&self.store, &self.table)?;
        let after_reset = v.generation != self.generation;
        if after_reset {
            // The log was replaced (compaction): its compacted chunks hold rows this
            // follower has already been given; the chunks appended since are new.
            self.generation = v.generation;
            self.next = 0;
        }
        let mut out = Vec::new();
        while self.next < v.chunks.len() {
            let line = v.chunks[self.next].line.clone();
            if self.seen.contains(&line.chunk) || (after_reset && line.compacted.is_some()) {
                self.seen.insert(line.chunk);
                self.next += 1;
                continue;
            }
            if !v.load(&self.store, &self.table, self.next)? {
                break; // replaced meanwhile: the next poll starts over
            }
            out.push((line.clone(), v.decoded(self.next).expect("loaded").clone()));
            self.seen.insert(line.chunk);
            self.next += 1;
        }
        Ok(out)
    }

    /// Waits (at most `timeout`) for new chunks and returns them (empty on timeout).
    pub fn next_chunks(&mut self, timeout: Duration) -> Result<Vec<(ChunkLine, Decoded)>> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.poll()?;
            if !got.is_empty() {
                return Ok(got);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(got);
            }
            self.watcher.wait(deadline - now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::streams::test_support::{rows, schema, store};
    use crate::streams::{append, compact, AppendOptions};

    #[test]
    fn follower_yields_each_chunk_once_across_a_compaction() {
        let (_t, s) = store();
        append(&s, "f", &schema(), &[rows(0, 0, 3)], &AppendOptions::default()).unwrap();
        let mut from_now = Follower::new(&s, "f", false, false, None).unwrap();
        let mut all = Follower::new(&s, "f", true, false, None).unwrap();
        assert_eq!(all.poll().unwrap().len(), 1);
        assert!(from_now.poll().unwrap().is_empty());
        let s2 = s.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            append(&s2, "f", &schema(), &[rows(0, 3, 2)], &AppendOptions::default()).unwrap();
        });
        let t0 = Instant::now();
        let got = from_now.next_chunks(Duration::from_secs(5)).unwrap();
        assert!(t0.elapsed() < Duration::from_secs(2));
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0.rows, 2);
        t.join().unwrap();
        compact(&s, "f", None, crate::protocol::Compression::Zstd).unwrap();
        append(&s, "f", &schema(), &[rows(0, 5, 1)], &AppendOptions::default()).unwrap();
        let got = from_now.poll().unwrap();
        assert_eq!(got.iter().map(|g| g.0.rows).collect::<Vec<_>>(), vec![1]);
        let got = all.poll().unwrap();
        assert_eq!(got.iter().map(|g| g.0.rows).collect::<Vec<_>>(), vec![1]);
    }
}
