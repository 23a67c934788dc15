//! batten run as a child of itself, under resource limits: how hostile
//! input (a Jinja template) is rendered without risking the parent.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

/// Limits for a child batten runs of itself on hostile input.
pub struct Limits {
    /// Its address space.
    pub memory_bytes: u64,
    /// Its CPU time.
    pub cpu_seconds: u64,
    /// The most it may write to standard output; more is cut off.
    pub output_bytes: usize,
}

/// What a limited child said.
pub struct SelfOutput {
    /// Its exit code; `None` when a signal ended it (a limit hit).
    pub code: Option<i32>,
    /// Its standard output, at most `output_bytes`.
    pub stdout: Vec<u8>,
    /// Its standard error.
    pub stderr: String,
}

/// Run `exe ARGS` (batten itself) with `stdin` and `limits` (set in the
/// child before it starts, so they bind it from its first instruction).
pub fn run_self(
    exe: &Path,
    args: &[&str],
    stdin: &[u8],
    limits: &Limits,
) -> std::io::Result<SelfOutput> {
    use std::io::Read as _;
    use std::os::unix::process::CommandExt as _;
    // rlim_t is 32 bits wide on 32-bit ARM: a limit past it is no limit.
    let limit = |n: u64| nix::libc::rlim_t::try_from(n).unwrap_or(nix::libc::rlim_t::MAX);
    let (memory, cpu) = (limit(limits.memory_bytes), limit(limits.cpu_seconds));
    let mut command = Command::new(exe);
    command
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: between fork and exec only setrlimit runs, which is
    // async-signal-safe and allocates nothing.
    unsafe {
        command.pre_exec(move || {
            use nix::sys::resource::{Resource, setrlimit};
            setrlimit(Resource::RLIMIT_AS, memory, memory)?;
            setrlimit(Resource::RLIMIT_CPU, cpu, cpu)?;
            Ok(())
        });
    }
    let mut child = command.spawn()?;
    let (mut out, mut err) = (Vec::new(), Vec::new());
    std::thread::scope(|scope| -> std::io::Result<()> {
        if let Some(mut input) = child.stdin.take() {
            scope.spawn(move || {
                let _ = input.write_all(stdin);
            });
        }
        let mut stderr = child.stderr.take();
        let errors = scope.spawn(move || {
            let mut text = Vec::new();
            if let Some(e) = stderr.as_mut() {
                let _ = e.take(64 * 1024).read_to_end(&mut text);
            }
            text
        });
        if let Some(o) = child.stdout.take() {
            o.take(limits.output_bytes as u64).read_to_end(&mut out)?;
        }
        err = errors.join().unwrap_or_default();
        Ok(())
    })?;
    let _ = child.kill();
    let status = child.wait()?;
    Ok(SelfOutput {
        code: status.code(),
        stdout: out,
        stderr: String::from_utf8_lossy(&err).into_owned(),
    })
}
