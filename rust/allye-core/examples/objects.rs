//! Named objects from a native program, with the core crate alone:
//!
//! ```text
//! cargo run -p allye-core --example objects -- [--secret-dir DIR] [--namespace NS] [NAME]
//! ```
//!
//! Without NAME: lists the namespaces and the objects of NS (default: `default`) with
//! their kind and size, and the store's capacity. With NAME: reads that object in place
//! and prints what it is (a NumPy array's dtype and shape, an Arrow table's schema, a
//! pickle's size; a pickle is only located, never unpickled, outside Python).

use std::path::PathBuf;
use std::process::ExitCode;

use allye_core::objects::kind_of;
use allye_core::protocol::{DEFAULT_NAMESPACE, OBJECT_METADATA_KEY};
use allye_core::{Error, Store};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (mut secret_dir, mut namespace, mut name) = (None::<PathBuf>, DEFAULT_NAMESPACE.to_string(), None);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--secret-dir" => secret_dir = args.next().map(PathBuf::from),
            "--namespace" => namespace = args.next().unwrap_or_default(),
            _ => name = Some(a),
        }
    }
    match run(secret_dir, &namespace, name.as_deref()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

fn run(secret_dir: Option<PathBuf>, namespace: &str, name: Option<&str>) -> Result<(), Error> {
    let store = Store::resolve(secret_dir.as_deref())?;
    let ns = store.namespace(namespace)?;
    let Some(name) = name else {
        println!("namespaces: {:?}", store.namespaces()?);
        for ev in ns.list()? {
            let size = ev.payload.as_ref().map(|p| p.data_size).unwrap_or(0);
            println!("{:<24} {:<18} {size:>12} bytes", ev.table_name, kind_of(&ev).unwrap_or("?"));
        }
        let cap = store.capacity(None)?;
        println!("used {} bytes; /dev/shm free {:?}; store free {:?}", cap.used, cap.shm_free, cap.store_free);
        return Ok(());
    };
    // allow_pickle=false: a native reader locates pickles but never loads them.
    let ev = ns.latest(name)?;
    let desc = ev.metadata.get(OBJECT_METADATA_KEY).cloned().unwrap_or_default();
    println!("{name}: {desc}");
    if kind_of(&ev) == Some("pickle") {
        println!("a pickle of {} bytes (load it from Python)", ev.payload.map(|p| p.data_size).unwrap_or(0));
        return Ok(());
    }
    let (_, data) = ns.get(name, false)?;
    println!(
        "schema: {:?}",
        data.schema.fields().iter().map(|f| format!("{}: {}", f.name(), f.data_type())).collect::<Vec<_>>()
    );
    println!(
        "{} record batches, {} rows",
        data.batches.len(),
        data.batches.iter().map(|b| b.num_rows()).sum::<usize>()
    );
    Ok(())
}
