//! Appending one line under the writers' lock.

use std::io::Write;
#[cfg(not(unix))]
use std::io::{Read, Seek, SeekFrom};

use crate::error::{IoContext, Result};
use crate::manifest::Event;
use crate::protocol::{LOCK_FILE, MANIFEST_FILE};
use crate::store::Store;
use crate::sys::lock::ManifestLock;
use crate::sys::trust::{Open, TrustedDir};

/// Appends one event as one line, under the writers' lock. With `durable`, the manifest
/// is fsync'ed before the lock is released.
pub fn append(store: &Store, event: &Event, durable: bool) -> Result<()> {
    let line = event.to_line()?.into_bytes();
    append_line(&store.create_dir()?, MANIFEST_FILE, LOCK_FILE, line, durable)
}

/// Appends `line` (without its `\n`) as one whole line to the log `log` of `dir`, under
/// the `flock` of `lock` (in the same directory), closing off a torn tail a killed writer
/// left. Streams' chunk logs (`crate::streams`) are appended by this same code.
pub fn append_line(dir: &TrustedDir, log: &str, lock: &str, line: Vec<u8>, durable: bool) -> Result<()> {
    let _lock = ManifestLock::acquire(dir, lock)?;
    write_line(dir, log, line, durable)
}

/// [`append_line`]'s write, for a caller that holds the log's lock already (a stream's
/// append decides what its line says under the lock).
pub fn write_line(dir: &TrustedDir, log: &str, mut line: Vec<u8>, durable: bool) -> Result<()> {
    line.push(b'\n');
    let path = dir.path().join(log);
    let (mut file, meta) = dir.open_meta(log, Open::Append)?.expect("an append open creates the file");
    let len = meta.len();
    if len > 0 {
        let mut last = [0u8; 1];
        #[cfg(unix)]
        let read = std::os::unix::fs::FileExt::read_exact_at(&file, &mut last, len - 1);
        #[cfg(not(unix))]
        let read = file.seek(SeekFrom::Start(len - 1)).and_then(|_| file.read_exact(&mut last));
        read.ctx(|| format!("cannot read manifest {}", path.display()))?;
        if last[0] != b'\n' {
            // A writer died mid-line: close its garbage off so ours parses.
            line.insert(0, b'\n');
        }
    }
    file.write_all(&line).ctx(|| format!("cannot append to manifest {}", path.display()))?;
    if durable {
        file.sync_data().ctx(|| format!("cannot fsync manifest {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::latest_ready;
    use crate::manifest::test_support::{event, store};
    use crate::protocol::Status;
    use serde_json::Value;

    #[test]
    fn concurrent_appends_from_threads_are_whole_lines() {
        let (_tmp, s) = store();
        let handles: Vec<_> = (0..6)
            .map(|t| {
                let s = s.clone();
                std::thread::spawn(move || {
                    for i in 0..200 {
                        let mut ev = event(&format!("t{t}"), Status::Ready, "python", i);
                        ev.metadata.insert("pad".into(), Value::String("p".repeat(5000)));
                        append(&s, &ev, false).unwrap();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let text = std::fs::read_to_string(s.manifest_path()).unwrap();
        assert_eq!(text.lines().count(), 1200);
        assert!(text.lines().all(|l| Event::parse(l.as_bytes()).is_some()));
        for t in 0..6 {
            assert_eq!(latest_ready(&s, &format!("t{t}"), None).unwrap().unwrap().id, "id-199");
        }
    }
}
