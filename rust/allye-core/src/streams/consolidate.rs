//! Consolidation: a stream's small chunks merged, in the background, into fewer larger
//! ones, so that a process's first read maps a few files instead of one per append.
//!
//! The rule is a counter in base [`CONSOLIDATE_FANOUT`] (F): appends are chunks of level
//! 0; F consecutive small chunks of one level become one chunk of the next level, at
//! their place in the log. A stream of n appends then keeps at most about
//! `(F - 1) * log_F(n)` small chunks, and each row is rewritten about `log_F(n)` times.
//! Row order and row numbers do not change (a follower's position stays valid), and
//! chunks that are large already (1 MiB or 65,536 rows) are never rewritten.
//!
//! Appenders are never blocked: the merged file is written (fsynced when a chunk it
//! replaces was) and read back without any lock; the new log (the old one with the
//! run's lines replaced by one) is written without the lock too, and only the check that nothing but
//! appends happened since, the copy of the lines appended meanwhile and the rename are
//! done under the stream's lock. A process killed at any step leaves the stream
//! readable and complete: before the rename the old log names the old chunks (the new
//! files are unnamed, and gc frees them once the process is dead); after it the new log
//! names the merged chunk, whose line lists the chunks it replaced (gc frees those
//! if the process did not get to delete them).

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom, Write};

use arrow_array::RecordBatch;

use crate::error::{IoContext, Result};
use crate::payload::write_file;
use crate::protocol::STREAM_LOCK_FILE;
use crate::protocol::{Compression, STREAM_CONSOLIDATE_LOCK_FILE, STREAM_LOG_FILE};
use crate::store::Store;
use crate::streams::compact::check_reads_back;
use crate::streams::view::view_of;
use crate::streams::{stream_dir, ChunkLine, Merged};
use crate::sys::lock::ManifestLock;
use crate::sys::process::WriterIdentity;
use crate::sys::trust::{Open, TrustedDir};
use crate::tuning::{CONSOLIDATE_FANOUT, CONSOLIDATE_MAX_BYTES, CONSOLIDATE_MAX_ROWS};

/// What a [`consolidate`] call did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConsolidateReport {
    /// Merges done (each replaced [`CONSOLIDATE_FANOUT`] chunks by one).
    pub merges: usize,
    /// Chunks replaced in all.
    pub chunks_replaced: usize,
    /// Rows rewritten in all.
    pub rows: u64,
    /// True when another process was consolidating the stream (nothing was done).
    pub busy: bool,
}

fn small(line: &ChunkLine) -> bool {
    line.compacted.is_none() && line.bytes < CONSOLIDATE_MAX_BYTES && line.rows < CONSOLIDATE_MAX_ROWS
}

/// The load key of a line's state: the source and cursor a resumed load looks for.
fn load_key(line: &ChunkLine) -> Option<(String, String)> {
    let m = line.load.as_ref()?;
    let text = |k: &str| m.get(k).map(|v| v.to_string()).unwrap_or_default();
    Some((text("source"), text("cursor")))
}

/// The first run of [`CONSOLIDATE_FANOUT`] consecutive small chunks of one level, as
/// (first index, the load state the merged line must carry); `None` when there is none.
/// A run holding the latest state of two loads (two sources) is passed over: one line
/// carries one state, and a load resumes from the latest line naming its source.
fn find_run(lines: &[ChunkLine]) -> Option<(usize, Option<serde_json::Map<String, serde_json::Value>>)> {
    let mut last_of: HashMap<(String, String), usize> = HashMap::new();
    for (i, l) in lines.iter().enumerate() {
        if let Some(k) = load_key(l) {
            last_of.insert(k, i);
        }
    }
    let mut start = 0;
    while start + CONSOLIDATE_FANOUT <= lines.len() {
        let level = lines[start].level();
        let mut end = start;
        while end < lines.len() && end - start < CONSOLIDATE_FANOUT && small(&lines[end]) && lines[end].level() == level
        {
            end += 1;
        }
        if end - start < CONSOLIDATE_FANOUT {
            start = end.max(start + 1);
            continue;
        }
        let latest: Vec<usize> = last_of.values().copied().filter(|i| (start..end).contains(i)).collect();
        if latest.len() <= 1 {
            return Some((start, latest.first().and_then(|i| lines[*i].load.clone())));
        }
        start += 1;
    }
    None
}

/// Merges runs of small chunks of stream `table` (at most `max_merges`), as the module
/// docs say. Returns what it did; `busy` when another process holds the stream's
/// consolidation lock (it does the work). Cheap when there is nothing to merge: one read
/// of the log lines appended since the last look.
pub fn consolidate(store: &Store, table: &str, max_merges: usize) -> Result<ConsolidateReport> {
    let mut report = ConsolidateReport::default();
    let store = &store.pin(false)?;
    let Some(dir) = store.dir_at(&stream_dir(store, table), false)? else { return Ok(report) };
    let Some(_guard) = ManifestLock::try_acquire(&dir, STREAM_CONSOLIDATE_LOCK_FILE)? else {
        report.busy = true;
        return Ok(report);
    };
    let view = view_of(store, table);
    let mut attempts = 0;
    while report.merges < max_merges && attempts < 8 {
        // 1. The run, its rows read as the stream's schema, under the view's lock only.
        let (run, state, schema, batches) = {
            let mut v = view.lock().unwrap_or_else(|e| e.into_inner());
            if !v.refresh(store, table)? {
                break;
            }
            let lines: Vec<ChunkLine> = v.chunks.iter().map(|c| c.line.clone()).collect();
            let Some((start, state)) = find_run(&lines) else { break };
            let end = start + CONSOLIDATE_FANOUT;
            let mut complete = v.load(store, table, 0)?;
            for i in start..end {
                complete = complete && v.load(store, table, i)?;
            }
            if !complete {
                v.reset(); // replaced meanwhile (a compaction): look again
                attempts += 1;
                continue;
            }
            let schema = v.schema().expect("loaded");
            let mut batches: Vec<RecordBatch> = Vec::new();
            for i in start..end {
                batches.extend(v.batches(i, &schema)?);
            }
            (lines[start..end].to_vec(), state, schema, batches)
        };
        let merged = arrow_select::concat::concat_batches(&schema, &batches)?;
        // 2. The merged file: written, fsynced, read back and compared, without a lock.
        let me = WriterIdentity::cached();
        let name = format!("{}-merge-{}.arrow", me.pid, crate::sys::ids::new_v4().simple());
        let path = dir.path().join(&name);
        // A consolidation never weakens an append's durability: it fsyncs what it writes
        // when a chunk it replaces was fsynced (and only then: fsyncs of a busy stream's
        // every merge would slow its appenders, whose own chunks are not fsynced).
        let durable = run.iter().any(|l| l.durable);
        let written = (|| -> Result<u64> {
            let bytes = write_file(&dir, &name, &schema, std::slice::from_ref(&merged), 0, Compression::None, durable)?;
            check_reads_back(
                &dir,
                &name,
                &path,
                table,
                &schema,
                &merged,
                "a consolidated chunk does not read back as the rows it replaces; nothing was changed",
            )?;
            Ok(bytes)
        })();
        let bytes = match written {
            Ok(b) => b,
            Err(e) => {
                let _ = dir.remove_file(&name);
                return Err(e);
            }
        };
        let line = merged_line(&run, name, bytes, &schema, state)?;
        #[cfg(test)]
        hooks::step("written");
        // 3. The new log, swapped in under the lock.
        match swap(&dir, &run, &line, durable) {
            Ok(true) => {}
            Ok(false) => {
                let _ = dir.remove_file(&line.chunk);
                attempts += 1;
                continue;
            }
            Err(e) => {
                let _ = dir.remove_file(&line.chunk);
                return Err(e);
            }
        }
        #[cfg(test)]
        hooks::step("swapped");
        // 4. The replaced chunks go (a reader that mapped them keeps its mapping; one
        //    about to map them reads the log again).
        for l in &run {
            let _ = dir.remove_file(&l.chunk);
        }
        report.merges += 1;
        report.chunks_replaced += run.len();
        report.rows += line.rows;
    }
    Ok(report)
}

/// The line of a merged chunk: its rows, the run's time range (when every chunk of the
/// run recorded one of the same column), the latest load state (see [`find_run`]), the
/// stream's schema when a line of the run recorded one, the run's first line's
/// `adopted`, and the chunks it replaces.
fn merged_line(
    run: &[ChunkLine],
    chunk: String,
    bytes: u64,
    schema: &arrow_schema::SchemaRef,
    load: Option<serde_json::Map<String, serde_json::Value>>,
) -> Result<ChunkLine> {
    let column = run[0].time_column.clone();
    let ranged =
        column.is_some() && run.iter().all(|l| l.time_column == column && l.tmin.is_some() && l.tmax.is_some());
    let (tmin, tmax) = if ranged {
        (run.iter().filter_map(|l| l.tmin).min(), run.iter().filter_map(|l| l.tmax).max())
    } else {
        (None, None)
    };
    Ok(ChunkLine {
        chunk,
        rows: run.iter().map(|l| l.rows).sum(),
        bytes,
        writer: WriterIdentity::cached(),
        appended_ns: run.iter().map(|l| l.appended_ns).max().unwrap_or(0),
        time_column: if ranged { column } else { None },
        tmin,
        tmax,
        compacted: None,
        load,
        schema: if run.iter().any(|l| l.schema.is_some()) {
            Some(crate::streams::schema::encode(schema)?)
        } else {
            None
        },
        adopted: run[0].adopted.clone(),
        durable: run.iter().any(|l| l.durable),
        merged: Some(Merged {
            level: run.iter().map(ChunkLine::level).max().unwrap_or(0) + 1,
            chunks: run.iter().map(|l| l.chunk.clone()).collect(),
        }),
    })
}

/// Where the run's lines are in the log's bytes: from the start of its first line to the
/// end of its last (garbage between them, a torn line closed off, goes with them).
fn locate(bytes: &[u8], run: &[ChunkLine]) -> Option<(usize, usize)> {
    let mut at = 0;
    let mut start = None;
    let mut matched = 0;
    while at < bytes.len() && matched < run.len() {
        let nl = at + memchr::memchr(b'\n', &bytes[at..])?;
        if let Ok(line) = serde_json::from_slice::<ChunkLine>(&bytes[at..nl]) {
            if line.chunk == run[matched].chunk {
                if matched == 0 {
                    start = Some(at);
                }
                matched += 1;
            } else if matched > 0 {
                return None;
            }
        }
        at = nl + 1;
    }
    (matched == run.len()).then(|| (start.expect("matched"), at))
}

/// Replaces the run's lines by `merged` in the log of the stream directory `dir`.
/// `Ok(false)`: the log no longer holds the run as it was (another compaction, a
/// removal): nothing was changed.
fn swap(dir: &TrustedDir, run: &[ChunkLine], merged: &ChunkLine, durable: bool) -> Result<bool> {
    let log = dir.path().join(STREAM_LOG_FILE);
    let Some((mut file, meta)) = dir.open_meta(STREAM_LOG_FILE, Open::Read)? else { return Ok(false) };
    let ident = crate::sys::fs::identity(&meta);
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).ctx(|| format!("cannot read {}", log.display()))?;
    let Some((from, to)) = locate(&bytes, run) else { return Ok(false) };
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(&bytes[..from]);
    out.extend(serde_json::to_vec(merged)?);
    out.push(b'\n');
    out.extend_from_slice(&bytes[to..]);
    let tmp_name = format!("{STREAM_LOG_FILE}.tmp-{}", std::process::id());
    let tmp = dir.path().join(&tmp_name);
    let result = (|| -> Result<bool> {
        let mut f = dir.open(&tmp_name, Open::Truncate)?.expect("a truncating open creates the file");
        f.write_all(&out).ctx(|| format!("cannot write {}", tmp.display()))?;
        if durable {
            f.sync_data().ctx(|| format!("cannot fsync {}", tmp.display()))?;
        }
        #[cfg(test)]
        hooks::step("log written");
        let _lock = ManifestLock::acquire(dir, STREAM_LOCK_FILE)?;
        let Some(now) = dir.open_meta(STREAM_LOG_FILE, Open::Read)?.map(|(_, m)| m) else { return Ok(false) };
        if crate::sys::fs::identity(&now) != ident || now.len() < bytes.len() as u64 {
            return Ok(false);
        }
        if now.len() > bytes.len() as u64 {
            // Lines appended since the log was read: carried over as they are.
            let mut rest = Vec::new();
            file.seek(SeekFrom::Start(bytes.len() as u64)).ctx(|| format!("cannot seek {}", log.display()))?;
            file.read_to_end(&mut rest).ctx(|| format!("cannot read {}", log.display()))?;
            f.write_all(&rest).ctx(|| format!("cannot write {}", tmp.display()))?;
            if durable {
                f.sync_data().ctx(|| format!("cannot fsync {}", tmp.display()))?;
            }
        }
        drop(f);
        dir.rename(&tmp_name, dir, STREAM_LOG_FILE)?;
        Ok(true)
    })();
    match result {
        Ok(true) => {
            if durable {
                dir.sync();
            }
            Ok(true)
        }
        other => {
            let _ = dir.remove_file(&tmp_name);
            other
        }
    }
}

/// Test-only stops between a consolidation's steps (a process killed there is
/// simulated by a panic that unwinds past the rest).
#[cfg(test)]
pub(crate) mod hooks {
    use std::cell::RefCell;

    thread_local! {
        pub(crate) static STOP_AT: RefCell<Option<&'static str>> = const { RefCell::new(None) };
    }

    pub(crate) fn step(name: &'static str) {
        if STOP_AT.with(|s| *s.borrow() == Some(name)) {
            panic!("stopped at {name}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::streams::test_support::{rows, schema, store};
    use crate::streams::{append, chunks, read, AppendOptions, ReadSelection};
    use arrow_array::cast::AsArray;
    use arrow_array::types::Int64Type;

    fn seq(s: &Store, t: &str) -> Vec<i64> {
        let r = read(s, t, &ReadSelection::default()).unwrap();
        r.batches.iter().flat_map(|b| b.column(1).as_primitive::<Int64Type>().values().to_vec()).collect()
    }

    fn files(s: &Store, t: &str) -> usize {
        std::fs::read_dir(stream_dir(s, t))
            .unwrap()
            .filter(|f| f.as_ref().unwrap().file_name().to_string_lossy().ends_with(".arrow"))
            .count()
    }

    #[test]
    fn runs_merge_level_by_level_keeping_order_and_rows() {
        let (_t, s) = store();
        let n = CONSOLIDATE_FANOUT * CONSOLIDATE_FANOUT + 3;
        for i in 0..n as i64 {
            append(&s, "c", &schema(), &[rows(0, i * 2, 2)], &AppendOptions::with_time_column(Some("ts".into())))
                .unwrap();
        }
        let rep = consolidate(&s, "c", usize::MAX).unwrap();
        assert_eq!(rep.merges, CONSOLIDATE_FANOUT + 1);
        let lines = chunks(&s, "c").unwrap();
        assert_eq!(lines.iter().map(|l| l.level()).collect::<Vec<_>>(), vec![2, 0, 0, 0]);
        assert_eq!(files(&s, "c"), 4, "the replaced chunk files are deleted");
        assert_eq!(seq(&s, "c"), (0..2 * n as i64).collect::<Vec<_>>());
        assert_eq!((lines[0].tmin, lines[0].tmax), (Some(0), Some(1000 * (2 * 256 - 1))));
        assert_eq!(consolidate(&s, "c", usize::MAX).unwrap().merges, 0, "nothing left to merge");
    }

    #[test]
    fn a_stop_at_any_step_leaves_the_stream_complete_and_gc_frees_the_rest() {
        for stop in ["written", "log written", "swapped"] {
            let (_t, s) = store();
            for i in 0..CONSOLIDATE_FANOUT as i64 {
                append(&s, "k", &schema(), &[rows(0, i, 1)], &AppendOptions::default()).unwrap();
            }
            hooks::STOP_AT.with(|h| *h.borrow_mut() = Some(stop));
            let s2 = s.clone();
            let stopped = std::panic::catch_unwind(move || consolidate(&s2, "k", 1));
            hooks::STOP_AT.with(|h| *h.borrow_mut() = None);
            assert!(stopped.is_err(), "{stop}");
            crate::streams::view::forget_view(&s, "k");
            assert_eq!(seq(&s, "k"), (0..CONSOLIDATE_FANOUT as i64).collect::<Vec<_>>(), "{stop}");
            // This process is alive, so only what a line lists as replaced is freed now.
            crate::streams::collect(&s, false).unwrap();
            let expect = if stop == "swapped" { 1 } else { CONSOLIDATE_FANOUT + 1 };
            assert_eq!(files(&s, "k"), expect, "{stop}");
            assert_eq!(seq(&s, "k"), (0..CONSOLIDATE_FANOUT as i64).collect::<Vec<_>>(), "{stop}");
        }
    }

    #[test]
    fn a_merge_of_durable_appends_is_durable_too() {
        let (_t, s) = store();
        for i in 0..CONSOLIDATE_FANOUT as i64 {
            let opts = AppendOptions { durable: i == 5, ..AppendOptions::default() };
            append(&s, "d", &schema(), &[rows(0, i, 1)], &opts).unwrap();
        }
        assert!(chunks(&s, "d").unwrap()[5].durable);
        assert_eq!(consolidate(&s, "d", 1).unwrap().merges, 1);
        assert!(chunks(&s, "d").unwrap()[0].durable, "the merged line says its file was fsynced");
    }

    #[test]
    fn two_loads_latest_states_are_never_merged_into_one_line() {
        let (_t, s) = store();
        let state = |src: &str, last: i64| {
            let mut m = serde_json::Map::new();
            m.insert("source".into(), src.into());
            m.insert("last".into(), last.into());
            AppendOptions { load: Some(m), ..AppendOptions::default() }
        };
        for i in 0..CONSOLIDATE_FANOUT as i64 {
            let src = if i == 3 { "b" } else { "a" };
            append(&s, "l", &schema(), &[rows(0, i, 1)], &state(src, i)).unwrap();
        }
        assert_eq!(consolidate(&s, "l", 1).unwrap().merges, 0, "a's and b's latest states are both in the run");
        append(&s, "l", &schema(), &[rows(0, 99, 1)], &state("b", 99)).unwrap();
        // Now b's latest state is outside the first run starting at 1... which holds a's.
        let rep = consolidate(&s, "l", 1).unwrap();
        assert_eq!(rep.merges, 1);
        let lines = chunks(&s, "l").unwrap();
        let states: Vec<(String, i64)> = lines
            .iter()
            .filter_map(|l| l.load.as_ref())
            .map(|m| (m["source"].as_str().unwrap().to_string(), m["last"].as_i64().unwrap()))
            .collect();
        assert_eq!(states.last().unwrap(), &("b".to_string(), 99));
        assert!(states.contains(&("a".to_string(), CONSOLIDATE_FANOUT as i64 - 1)), "{states:?}");
    }
}
