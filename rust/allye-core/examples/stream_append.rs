//! A native appender and follower of a streaming table, with the core crate alone:
//!
//! ```text
//! cargo run -p allye-core --example stream_append -- [--secret-dir DIR] TABLE [APPENDS] [ROWS]
//! ```
//!
//! Follows TABLE from a second thread while this thread appends APPENDS chunks (default
//! 1000) of ROWS rows (default 1) of `(seq int64, t uint64 ns)`; prints the appends per
//! second, the follower's median wake-up latency, and the read of the whole stream.
//! Python reads the same stream with `get_dataframe(TABLE)`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use allye_core::{AppendOptions, ReadSelection, Store};
use arrow_array::cast::AsArray;
use arrow_array::types::UInt64Type;
use arrow_array::{ArrayRef, Int64Array, RecordBatch, UInt64Array};
use arrow_schema::{DataType, Field, Schema};

fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut secret_dir: Option<PathBuf> = None;
    let mut rest = Vec::new();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--secret-dir" => secret_dir = args.next().map(PathBuf::from),
            _ => rest.push(a),
        }
    }
    let Some(table) = rest.first().cloned() else {
        eprintln!("usage: stream_append [--secret-dir DIR] TABLE [APPENDS] [ROWS]");
        return ExitCode::from(2);
    };
    let appends: usize = rest.get(1).and_then(|s| s.parse().ok()).unwrap_or(1000);
    let rows: i64 = rest.get(2).and_then(|s| s.parse().ok()).unwrap_or(1);
    let store = match Store::resolve(secret_dir.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let schema = Arc::new(Schema::new(vec![
        Field::new("seq", DataType::Int64, false),
        Field::new("t", DataType::UInt64, false),
    ]));
    let mut follower = match store.follow(&table, false, false, None) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let expected = appends;
    let watcher = std::thread::spawn(move || {
        let mut latencies = Vec::new();
        while latencies.len() < expected {
            let got = follower.next_chunks(Duration::from_secs(10)).expect("follow");
            if got.is_empty() {
                break;
            }
            let now = now_ns();
            for (_, d) in got {
                let t = d.batches[0].column(1).as_primitive::<UInt64Type>().value(0);
                latencies.push(now.saturating_sub(t));
            }
        }
        latencies.sort_unstable();
        latencies
    });
    let t0 = Instant::now();
    for i in 0..appends as i64 {
        let seq: ArrayRef = Arc::new(Int64Array::from_iter_values(i * rows..(i + 1) * rows));
        let t: ArrayRef = Arc::new(UInt64Array::from(vec![now_ns(); rows as usize]));
        let batch = RecordBatch::try_new(schema.clone(), vec![seq, t]).expect("batch");
        if let Err(e) = store.append(&table, &schema, &[batch], &AppendOptions::default()) {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    }
    let elapsed = t0.elapsed();
    let latencies = watcher.join().expect("follower");
    println!(
        "{appends} appends of {rows} row(s) in {:.3} s: {:.0} appends/s",
        elapsed.as_secs_f64(),
        appends as f64 / elapsed.as_secs_f64()
    );
    if !latencies.is_empty() {
        println!(
            "follower saw {} chunks; median append->wake-up latency {:.2} ms",
            latencies.len(),
            latencies[latencies.len() / 2] as f64 / 1e6
        );
    }
    let t1 = Instant::now();
    match store.read_stream(&table, &ReadSelection::default()) {
        Ok(r) => println!(
            "read {} rows in {} batches ({} chunks) in {:.2} ms",
            r.rows,
            r.batches.len(),
            r.total_chunks,
            t1.elapsed().as_secs_f64() * 1e3
        ),
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
