//! Who wrote a payload: pid plus the process start time and the boot id, recorded in the
//! `writing` line so that gc can tell a dead writer's leftovers from a live writer's work
//! (a pid alone is reused).

use serde::{Deserialize, Serialize};

/// The identity of a writing process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriterIdentity {
    /// Process id.
    pub pid: u32,
    /// Process start time in clock ticks since boot (`/proc/<pid>/stat` field 22), when known.
    #[serde(default)]
    pub start: Option<u64>,
    /// `/proc/sys/kernel/random/boot_id`, when known.
    #[serde(default)]
    pub boot_id: Option<String>,
}

impl WriterIdentity {
    /// This process.
    pub fn current() -> Self {
        let pid = std::process::id();
        WriterIdentity { pid, start: start_ticks(pid), boot_id: boot_id() }
    }

    /// This process, read from `/proc` once per process (a forked child has another pid
    /// and reads its own): what every `writing` line and stream chunk records.
    pub fn cached() -> Self {
        static CACHED: super::fork::ForkLocal<std::sync::Mutex<Option<WriterIdentity>>> =
            super::fork::ForkLocal::new(|| std::sync::Mutex::new(None));
        // A forked child starts with a fresh slot (`ForkLocal`): no `getpid` per call.
        let mut cached = CACHED.get().lock().unwrap_or_else(|e| e.into_inner());
        cached.get_or_insert_with(WriterIdentity::current).clone()
    }

    /// `Some(true)` when this writer is certainly still running, `Some(false)` when it is
    /// certainly gone (other boot, no such pid, or the pid now belongs to another
    /// process), `None` when this platform cannot tell.
    pub fn is_alive(&self) -> Option<bool> {
        if let (Some(theirs), Some(ours)) = (&self.boot_id, boot_id()) {
            if *theirs != ours {
                return Some(false);
            }
        }
        #[cfg(target_os = "linux")]
        {
            match start_ticks(self.pid) {
                Some(now) => Some(self.start.is_none_or(|s| s == now)),
                // Without a readable /proc (not mounted, hidepid) nothing can be told: a
                // live sender or array creator must not be taken for dead.
                None if start_ticks(std::process::id()).is_none() => None,
                None => Some(false),
            }
        }
        #[cfg(all(unix, not(target_os = "linux")))]
        {
            let pid = rustix::process::Pid::from_raw(self.pid as i32)?;
            match rustix::process::test_kill_process(pid) {
                Ok(()) => Some(true),
                Err(rustix::io::Errno::SRCH) => Some(false),
                Err(_) => None,
            }
        }
        #[cfg(not(unix))]
        {
            None
        }
    }
}

fn start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: fields after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok().map(|s| s.trim().to_string())
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn current_is_alive_and_dead_child_is_not() {
        let me = WriterIdentity::current();
        assert!(me.start.is_some() && me.boot_id.is_some());
        assert_eq!(me.is_alive(), Some(true));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let start = start_ticks(pid);
        child.wait().unwrap();
        let dead = WriterIdentity { pid, start, boot_id: me.boot_id.clone() };
        assert_eq!(dead.is_alive(), Some(false));
        let reused = WriterIdentity { pid: me.pid, start: Some(me.start.unwrap() + 1), boot_id: None };
        assert_eq!(reused.is_alive(), Some(false));
    }
}
