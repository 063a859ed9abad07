//! Following a stream: each new chunk as it lands, woken by file-system notifications on
//! the stream's directory (the manifest watcher's code, pointed at `chunks.jsonl`).

use std::time::{Duration, Instant};

use crate::error::Result;
use crate::payload::Decoded;
use crate::protocol::STREAM_LOG_FILE;
use crate::store::Store;
use crate::streams::view::{view_of, View};
use crate::streams::{stream_dir, ChunkLine};
use crate::watch::ManifestWatcher;

/// Wakes up when a stream's chunk log changes.
pub type StreamWatcher = ManifestWatcher;

/// Yields the rows of a stream appended after those it has yielded, chunk by chunk, in
/// log order.
///
/// A follower keeps its position: the number of rows of the stream before the next one
/// to yield. Consolidation and `compact_stream` without a source column keep every row's
/// position, so a follower reads on from the same row whatever was merged meanwhile
/// (slicing a merged chunk it had partly yielded). A compaction by source reorders the
/// rows it compacts: a follower whose position falls inside them skips to their end
/// (rows appended and compacted by source between two of its looks are not yielded).
pub struct Follower {
    store: Store,
    table: String,
    /// Rows before the next one to yield.
    position: u64,
    generation: u64,
    /// The next chunk to look at (valid while the view's generation is unchanged).
    next: usize,
    watcher: StreamWatcher,
}

impl std::fmt::Debug for Follower {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Follower").field("table", &self.table).field("position", &self.position).finish()
    }
}

/// The end of the run of by-source compacted chunks holding chunk `i` (a compaction by
/// source writes one chunk per source, consecutive; a single compacted chunk keeps the
/// order of its rows).
fn reordered_until(v: &View, i: usize) -> Option<u64> {
    let compacted = |j: usize| v.chunks[j].line.compacted.is_some();
    if !compacted(i) {
        return None;
    }
    let mut a = i;
    while a > 0 && compacted(a - 1) {
        a -= 1;
    }
    let mut b = i + 1;
    while b < v.chunks.len() && compacted(b) {
        b += 1;
    }
    (b - a > 1).then(|| v.chunks[b - 1].row_offset + v.chunks[b - 1].line.rows)
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
        let mut f =
            Follower { store: store.clone(), table: table.into(), position: 0, generation: 0, next: 0, watcher };
        let view = view_of(store, table);
        let mut v = view.lock().unwrap_or_else(|e| e.into_inner());
        v.refresh(store, table)?;
        f.generation = v.generation;
        if !from_start {
            f.next = v.chunks.len();
            f.position = v.total_rows;
        }
        Ok(f)
    }

    /// The chunks appended since the last call, without waiting, each read as the
    /// stream's schema.
    pub fn poll(&mut self) -> Result<Vec<(ChunkLine, Decoded)>> {
        let view = view_of(&self.store, &self.table);
        let mut v = view.lock().unwrap_or_else(|e| e.into_inner());
        v.refresh(&self.store, &self.table)?;
        if v.generation != self.generation {
            // The log was replaced (compacted, consolidated, or removed and made again):
            // find the position in the new log.
            self.generation = v.generation;
            self.next = 0;
            if v.total_rows < self.position {
                self.position = 0; // a new stream of the same name
            }
        }
        let mut out = Vec::new();
        if v.chunks.is_empty() {
            return Ok(out);
        }
        if v.schema().is_none() && !v.load(&self.store, &self.table, 0)? {
            return Ok(out); // replaced meanwhile: the next poll starts over
        }
        let schema = v.schema().expect("recorded or loaded");
        while self.next < v.chunks.len() {
            let (start, rows) = (v.chunks[self.next].row_offset, v.chunks[self.next].line.rows);
            let end = start + rows;
            if end <= self.position {
                self.next += 1;
                continue;
            }
            if start < self.position {
                if let Some(to) = reordered_until(&v, self.next) {
                    self.position = to;
                    continue;
                }
            }
            if !v.load(&self.store, &self.table, self.next)? {
                break; // replaced meanwhile: the next poll starts over
            }
            let skip = (self.position.saturating_sub(start)) as usize;
            let mut batches = v.batches(self.next, &schema)?;
            if skip > 0 {
                let mut left = skip;
                batches = batches
                    .into_iter()
                    .filter_map(|b| {
                        let cut = left.min(b.num_rows());
                        left -= cut;
                        (cut < b.num_rows()).then(|| b.slice(cut, b.num_rows() - cut))
                    })
                    .collect();
            }
            let mut line = v.chunks[self.next].line.clone();
            line.rows = end - start.max(self.position);
            out.push((line, Decoded { schema: schema.clone(), batches }));
            self.position = end;
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
    use arrow_array::cast::AsArray;
    use arrow_array::types::Int64Type;

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
        // `all` had yielded 3 rows when the 2 more were appended and compacted with them:
        // it reads on from its position, inside the compacted chunk.
        let got = all.poll().unwrap();
        assert_eq!(got.iter().map(|g| g.0.rows).collect::<Vec<_>>(), vec![2, 1]);
        let seq: Vec<i64> = got
            .iter()
            .flat_map(|(_, d)| d.batches.iter().flat_map(|b| b.column(1).as_primitive::<Int64Type>().values().to_vec()))
            .collect();
        assert_eq!(seq, vec![3, 4, 5]);
    }

    #[test]
    fn a_follower_reads_on_from_its_position_across_consolidations_and_a_by_source_compaction() {
        let (_t, s) = store();
        let mut f = Follower::new(&s, "cf", true, false, None).unwrap();
        let n = crate::tuning::CONSOLIDATE_FANOUT as i64;
        let mut seen = Vec::new();
        let take = |f: &mut Follower, seen: &mut Vec<i64>| {
            for (_, d) in f.poll().unwrap() {
                for b in &d.batches {
                    seen.extend(b.column(1).as_primitive::<Int64Type>().values().iter().copied());
                }
            }
        };
        for i in 0..3 * n {
            append(&s, "cf", &schema(), &[rows(0, i, 1)], &AppendOptions::default()).unwrap();
            if i % 5 == 0 {
                take(&mut f, &mut seen);
            }
            if i % 7 == 0 {
                crate::streams::consolidate(&s, "cf", usize::MAX).unwrap();
            }
        }
        take(&mut f, &mut seen);
        assert_eq!(seen, (0..3 * n).collect::<Vec<_>>(), "every row once, in order");
        // By source: rows it had yielded are not yielded again; rows appended after are.
        compact(&s, "cf", Some("seq"), crate::protocol::Compression::None).unwrap();
        append(&s, "cf", &schema(), &[rows(0, 3 * n, 1)], &AppendOptions::default()).unwrap();
        take(&mut f, &mut seen);
        assert_eq!(seen, (0..=3 * n).collect::<Vec<_>>());
    }
}
