//! A native program reading a table that Python sent, with the core crate alone:
//!
//! ```text
//! cargo run -p allye-core --example read_table -- [--secret-dir DIR] TABLE
//! ```
//!
//! Prints the table's transport, shape, schema, and the sum of every numeric column,
//! reading the mapped payload in place.

use std::path::PathBuf;
use std::process::ExitCode;

use allye_core::Store;
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use arrow_schema::DataType;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut secret_dir: Option<PathBuf> = None;
    let mut table = None;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--secret-dir" => secret_dir = args.next().map(PathBuf::from),
            _ => table = Some(a),
        }
    }
    let Some(table) = table else {
        eprintln!("usage: read_table [--secret-dir DIR] TABLE");
        return ExitCode::from(2);
    };
    let result = Store::resolve(secret_dir.as_deref()).and_then(|store| store.get(&table, None));
    let (event, data) = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let payload = event.payload.expect("ready events carry a payload");
    println!(
        "table {table}: {} {:?} rows={} batches={}",
        payload.transport,
        payload.locator,
        payload.shape[0],
        data.batches.len()
    );
    for (i, field) in data.schema.fields().iter().enumerate() {
        let sum = match field.data_type() {
            DataType::Float64 => Some(
                data.batches
                    .iter()
                    .map(|b| b.column(i).as_primitive::<Float64Type>().iter().flatten().sum::<f64>())
                    .sum::<f64>(),
            ),
            DataType::Int64 => Some(
                data.batches
                    .iter()
                    .map(|b| b.column(i).as_primitive::<Int64Type>().iter().flatten().sum::<i64>() as f64)
                    .sum::<f64>(),
            ),
            _ => None,
        };
        match sum {
            Some(s) => println!("column {} {} sum={s}", field.name(), field.data_type()),
            None => println!("column {} {}", field.name(), field.data_type()),
        }
    }
    ExitCode::SUCCESS
}
