//! Receiving a table whose size is announced before it arrives (as a Flight `DoGet` is,
//! by its `FlightInfo`), with the core crate alone:
//!
//! ```text
//! cargo run -p allye-core --example receive_in_place -- [--secret-dir DIR] [ROWS]
//! ```
//!
//! Slices a table into uneven batches (as messages arrive), receives them in place into
//! ONE record batch of a new version of table `received`, and reads it back.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use allye_core::Announced;
use allye_core::{SendOptions, Store};
use arrow_array::{Array, ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut secret_dir: Option<PathBuf> = None;
    let mut rows = 1_000_000usize;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--secret-dir" => secret_dir = args.next().map(PathBuf::from),
            n => match n.parse() {
                Ok(n) if n > 0 => rows = n,
                _ => {
                    eprintln!("usage: receive_in_place [--secret-dir DIR] [ROWS]");
                    return ExitCode::from(2);
                }
            },
        }
    }
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("x", DataType::Float64, true),
        Field::new("name", DataType::Utf8, true),
    ]));
    let id: ArrayRef = Arc::new(Int64Array::from_iter_values(0..rows as i64));
    let x: ArrayRef = Arc::new(Float64Array::from_iter((0..rows).map(|i| (i % 10 != 0).then_some(i as f64))));
    let names = StringArray::from_iter((0..rows).map(|i| (i % 7 != 0).then(|| format!("row {i}"))));
    // What the sender announces first: rows, each column's nulls and each string column's
    // bytes of values.
    let data_bytes = vec![None, None, Some(names.value_data().len())];
    let whole = RecordBatch::try_new(schema.clone(), vec![id, x, Arc::new(names)]).expect("columns match the schema");
    let null_counts: Vec<usize> = whole.columns().iter().map(|c| c.null_count()).collect();
    let messages = (0..rows).step_by(65_537).map(|at| Ok(whole.slice(at, 65_537.min(rows - at))));
    let result = Store::resolve(secret_dir.as_deref()).and_then(|store| {
        let announced = Announced { rows, null_counts: &null_counts, data_bytes: &data_bytes };
        let ready = store.receive_batches(&schema, announced, &SendOptions::named("received"), messages)?;
        let (_, data) = store.get("received", None)?;
        Ok((ready, data))
    });
    match result {
        Ok((ready, data)) => {
            let payload = ready.payload.expect("ready events carry a payload");
            println!(
                "{} rows in {} record batch(es), {} bytes at {}",
                rows,
                data.batches.len(),
                payload.data_size,
                payload.locator
            );
            assert_eq!(data.batches, vec![whole]);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}
