//! Random identifiers: UUID v4s (transfer ids, segment and temporary file names) from the
//! operating system's random source, fetched [`BATCH`] ids at a time.
//!
//! `Uuid::new_v4` asks the kernel for 16 bytes on every call: one `getrandom` system call
//! per put, a tenth of a small put's calls. The bytes are the same (the kernel's, never
//! a generator of ours); a process only asks for them in batches. The batch is
//! [`ForkLocal`]: a forked child never hands out the ids its parent has yet to use.

use std::sync::Mutex;

use crate::sys::fork::ForkLocal;

/// Ids fetched per `getrandom` call.
const BATCH: usize = 64;

struct Batch {
    bytes: [u8; 16 * BATCH],
    /// The next unused id; `BATCH` when all are used.
    next: usize,
}

static BATCHES: ForkLocal<Mutex<Batch>> = ForkLocal::new(|| Mutex::new(Batch { bytes: [0; 16 * BATCH], next: BATCH }));

/// A new random (version 4) UUID.
pub fn new_v4() -> uuid::Uuid {
    let mut batch = BATCHES.get().lock().unwrap_or_else(|p| p.into_inner());
    if batch.next == BATCH {
        if getrandom::fill(&mut batch.bytes).is_err() {
            // No batch this time (the source failed): uuid's own call, which panics with
            // its reason if the source is really gone.
            return uuid::Uuid::new_v4();
        }
        batch.next = 0;
    }
    let at = batch.next * 16;
    batch.next += 1;
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&batch.bytes[at..at + 16]);
    // Used bytes are not kept: nothing later in this process could read an id again.
    batch.bytes[at..at + 16].fill(0);
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_are_version_4_and_distinct_across_batches() {
        let ids: Vec<uuid::Uuid> = (0..BATCH * 3 + 5).map(|_| new_v4()).collect();
        assert!(ids.iter().all(|id| id.get_version_num() == 4));
        assert!(ids.iter().all(|id| id.get_variant() == uuid::Variant::RFC4122));
        assert_eq!(ids.iter().collect::<HashSet<_>>().len(), ids.len());
    }

    #[cfg(unix)]
    #[test]
    fn a_forked_child_never_repeats_its_parents_ids() {
        // The parent has used part of a batch: the child's next ids must not be the
        // parent's next ones.
        let _ = new_v4();
        let (mut r, mut w) = std::os::unix::net::UnixStream::pair().unwrap();
        // SAFETY: the child only computes ids, writes them to the socket and exits.
        match unsafe { libc::fork() } {
            0 => {
                use std::io::Write;
                let ids: Vec<u8> = (0..8).flat_map(|_| *new_v4().as_bytes()).collect();
                let _ = w.write_all(&ids);
                unsafe { libc::_exit(0) };
            }
            pid => {
                drop(w);
                let parent: HashSet<[u8; 16]> = (0..8).map(|_| *new_v4().as_bytes()).collect();
                let mut got = Vec::new();
                std::io::Read::read_to_end(&mut r, &mut got).unwrap();
                let mut status = 0;
                unsafe { libc::waitpid(pid, &mut status, 0) };
                assert_eq!(got.len(), 8 * 16);
                for id in got.chunks(16) {
                    assert!(!parent.contains(<&[u8; 16]>::try_from(id).unwrap()), "the child repeated a parent's id");
                }
            }
        }
    }
}
