//! The run lock: one batten run per root at a time.

use crate::host::root::Root;

/// Holds the run lock for as long as it lives, so that two runs on one root
/// never interleave their writes (a boot unit and an administrator's
/// recovery run, say). The lock is on the root directory itself, so taking
/// it writes nothing; the kernel drops it when the process ends, also when
/// it is killed.
pub struct RunLock {
    _held: nix::fcntl::Flock<std::fs::File>,
}

impl RunLock {
    /// Take the lock, or say that another run has it. Never waits: a second
    /// run started by hand while the boot unit runs should say so at once.
    pub fn take(root: &Root) -> Result<RunLock, String> {
        use std::os::unix::fs::OpenOptionsExt as _;
        let shown = root.path().display();
        let dir = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_DIRECTORY)
            .open(root.path())
            .map_err(|e| format!("cannot open {shown} to take the run lock: {e}"))?;
        nix::fcntl::Flock::lock(dir, nix::fcntl::FlockArg::LockExclusiveNonblock)
            .map(|held| RunLock { _held: held })
            .map_err(|(_, errno)| {
                if errno == nix::errno::Errno::EWOULDBLOCK {
                    format!(
                        "another batten run is working on {shown}; wait for it to finish (`batten status` shows the last run), then run again"
                    )
                } else {
                    format!("cannot lock {shown}: {errno}")
                }
            })
    }
}
