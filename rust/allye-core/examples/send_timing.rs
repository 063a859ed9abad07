//! Times the core's small sends and gets, without Python:
//!
//! ```text
//! cargo run --release -p allye-core --example send_timing -- [ROWS] [REPS]
//! ```
//!
//! Sends a ROWS x 10 numeric table (8 float64, 2 int64) REPS times into a fresh store
//! under /dev/shm (the temp dir elsewhere), reads each version back, and prints the
//! median of each step. The native floor under `send_dataframe` / `get_dataframe`.

use std::sync::Arc;
use std::time::Instant;

use allye_core::{GcOptions, SendOptions, Store};
use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let rows: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let reps: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(2000);
    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for i in 0..8 {
        fields.push(Field::new(format!("f{i}"), DataType::Float64, true));
        columns.push(Arc::new(Float64Array::from_iter_values((0..rows).map(|r| r as f64 * 0.5))));
    }
    for i in 0..2 {
        fields.push(Field::new(format!("i{i}"), DataType::Int64, true));
        columns.push(Arc::new(Int64Array::from_iter_values((0..rows).map(|r| r as i64))));
    }
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(schema.clone(), columns).expect("a valid batch");
    let base = if std::path::Path::new("/dev/shm").is_dir() {
        std::path::PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let root = base.join(format!("adc-send-timing-{}", std::process::id()));
    let store = Store::at(&root);
    let opts = SendOptions::named("small");
    let (mut send, mut get) = (Vec::new(), Vec::new());
    for i in 0..reps + 50 {
        let t0 = Instant::now();
        store.send(&schema, std::slice::from_ref(&batch), &opts).expect("send");
        let t1 = Instant::now();
        let (_, data) = store.get("small", None).expect("get");
        assert_eq!(data.batches.iter().map(|b| b.num_rows()).sum::<usize>(), rows);
        let t2 = Instant::now();
        drop(data);
        if i >= 50 {
            send.push((t1 - t0).as_secs_f64());
            get.push((t2 - t1).as_secs_f64());
        }
        if i % 100 == 99 {
            store.gc(GcOptions::new(false, 1)).expect("gc");
        }
    }
    store.gc(GcOptions::new(false, 0)).ok();
    let _ = std::fs::remove_dir_all(&root);
    println!(
        "{rows} rows x 10, {reps} reps: send {:.1} us, get {:.1} us (medians)",
        median(send) * 1e6,
        median(get) * 1e6
    );
}
