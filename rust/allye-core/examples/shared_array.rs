//! A native program sharing an array with Python processes, with the core crate alone:
//!
//! ```text
//! cargo run -p allye-core --example shared_array -- [--secret-dir DIR] [--add N] NAME
//! ```
//!
//! Opens the shared array NAME that a Python process created (`SharedArray.create`),
//! prints its dtype and shape (the header is checked on open), then, under the
//! array's cross-process lock, adds N (default 1) to its first element when the dtype is
//! `<i8`, `<u8` or `<f8`, and prints the new value. Linux only, like shared arrays.

#[cfg(target_os = "linux")]
fn main() -> std::process::ExitCode {
    use std::path::PathBuf;
    use std::process::ExitCode;

    use allye_core::Store;

    let mut args = std::env::args().skip(1);
    let mut secret_dir: Option<PathBuf> = None;
    let mut add: i64 = 1;
    let mut name = None;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--secret-dir" => secret_dir = args.next().map(PathBuf::from),
            "--add" => add = args.next().and_then(|v| v.parse().ok()).unwrap_or(1),
            _ => name = Some(a),
        }
    }
    let Some(name) = name else {
        eprintln!("usage: shared_array [--secret-dir DIR] [--add N] NAME");
        return ExitCode::from(2);
    };
    let run = || -> allye_core::Result<()> {
        let store = Store::resolve(secret_dir.as_deref())?;
        let array = store.open_array(&name)?;
        let n: usize = array.shape().iter().product();
        println!("array {name} dtype {} shape {:?} segment {}", array.typestr(), array.shape(), array.segment());
        let guard = array.locked()?;
        if guard.owner_died() {
            println!("the previous holder died holding the lock; took it over");
        }
        let p = array.data_ptr();
        // SAFETY: `n` elements of the announced dtype live at `p` while `array` is open,
        // and the lock is held, so no cooperating process writes meanwhile.
        unsafe {
            match array.typestr() {
                "<i8" if n > 0 => {
                    let v = (p as *mut i64).read_volatile() + add;
                    (p as *mut i64).write_volatile(v);
                    println!("first element now {v}");
                }
                "<u8" if n > 0 => {
                    let v = (p as *mut u64).read_volatile().wrapping_add(add as u64);
                    (p as *mut u64).write_volatile(v);
                    println!("first element now {v}");
                }
                "<f8" if n > 0 => {
                    let v = (p as *mut f64).read_volatile() + add as f64;
                    (p as *mut f64).write_volatile(v);
                    println!("first element now {v}");
                }
                other => println!("dtype {other}: left as is"),
            }
        }
        drop(guard);
        Ok(())
    };
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("shared arrays need Linux (robust process-shared mutexes)");
}
