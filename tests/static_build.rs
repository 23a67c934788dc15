//! The static release binaries (DESIGN.md, "Builds: one static binary per
//! architecture") build, are really static, and run: the aarch64 one under
//! `qemu-aarch64-static`, the x86_64 one natively, the 32-bit ARM ones under
//! `qemu-arm-static`. The ARMv6 one, for every 32-bit Raspberry Pi, runs on
//! qemu's ARM1176 (the CPU of the Pi 1, Zero and Zero W), where the armv7
//! one dies of an illegal instruction.
//!
//! Each test runs `scripts/build-static.sh <target>`, i.e. a full release
//! build the first time, so they are slow; cargo's cache makes re-runs fast.
//!
//! If a needed tool (`file`, `qemu-aarch64-static`, a cross gcc) is missing
//! the test is skipped with a message on stderr, except under `CI=true`,
//! where a skip counts as a failure.

use std::ffi::OsStr;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

use nix::sys::signal::Signal;

/// Serialises the script runs of the tests: cargo would serialise the
/// builds anyway, but `rustup target add` is best not run twice at once.
static BUILD_LOCK: Mutex<()> = Mutex::new(());

/// qemu's model of the ARM1176JZF-S, the ARMv6 core of the Raspberry Pi 1,
/// Zero and Zero W: the oldest CPU of any Raspberry Pi.
const ARM1176: [&str; 2] = ["-cpu", "arm1176"];

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Where the script puts its binaries: `$CARGO_TARGET_DIR/static` (relative
/// to the repository root when relative), else `target/static`.
fn static_dir() -> PathBuf {
    let target_dir = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => repo_root().join(dir),
        _ => repo_root().join("target"),
    };
    target_dir.join("static")
}

fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Finds `name` on PATH (or at `fallback`). When it is missing, panics under
/// CI and otherwise prints a skip message and returns None.
fn require_tool(name: &str, fallback: &str, test: &str) -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    });
    if let Some(found) = on_path.or_else(|| Some(PathBuf::from(fallback)).filter(|p| p.is_file())) {
        return Some(found);
    }
    let msg = format!(
        "{test}: `{name}` not found (scripts/test.sh, run as root, installs what the tests need)"
    );
    if under_ci() {
        panic!("{msg}; CI=true, so this is a failure, not a skip");
    }
    eprintln!("SKIPPED {msg}");
    None
}

fn show(output: &Output) -> String {
    format!(
        "status: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Runs `scripts/build-static.sh TARGET` and returns the binary it produced.
fn build_static(target: &str) -> PathBuf {
    let _guard = BUILD_LOCK
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let script = repo_root().join("scripts/build-static.sh");
    let output = Command::new("bash")
        .arg(&script)
        .arg(target)
        .current_dir(repo_root())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(
        output.status.success(),
        "{} {target} failed\n{}",
        script.display(),
        show(&output)
    );
    let binary = static_dir().join(format!("batten-{target}"));
    assert!(
        binary.is_file(),
        "the script succeeded but {} is missing\n{}",
        binary.display(),
        show(&output)
    );
    binary
}

/// `file -b BINARY` must say statically linked (or static-pie) and `machine`.
fn check_file_says_static(file: &Path, binary: &Path, machine: &str) {
    let output = Command::new(file)
        .arg("-b")
        .arg(binary)
        .output()
        .expect("run file");
    assert!(
        output.status.success(),
        "file {} failed\n{}",
        binary.display(),
        show(&output)
    );
    let desc = String::from_utf8_lossy(&output.stdout);
    assert!(
        desc.contains("statically linked") || desc.contains("static-pie linked"),
        "{} is not statically linked: {desc}",
        binary.display()
    );
    assert!(
        desc.contains(machine),
        "{} is not {machine}: {desc}",
        binary.display()
    );
}

/// The example configurations, sorted; fails when there are none so that an
/// empty directory cannot make the test pass vacuously.
fn example_configs() -> Vec<PathBuf> {
    let dir = repo_root().join("cloud-init/examples");
    let entries =
        std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()));
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.expect("read cloud-init/examples").path())
        .filter(|p| p.is_file() && p.extension() == Some(OsStr::new("yaml")))
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "no cloud-init/examples/*.yaml: the static binaries must validate the examples, \
         so there must be at least one"
    );
    files
}

/// How a binary is started: natively, or by an emulator with its options.
#[derive(Clone, Copy)]
enum Runner<'a> {
    Native,
    Qemu(&'a Path, &'a [&'a str]),
}

/// Runs the binary through `runner` with `args`.
fn run(runner: Runner, binary: &Path, args: &[&OsStr]) -> Output {
    let mut cmd = match runner {
        Runner::Qemu(qemu, options) => {
            let mut cmd = Command::new(qemu);
            cmd.args(options).arg(binary);
            cmd
        }
        Runner::Native => Command::new(binary),
    };
    cmd.args(args)
        .current_dir(repo_root())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", binary.display()))
}

/// `--version` prints `batten`, and `validate FILE` exits 0 for every example.
fn check_runs(runner: Runner, binary: &Path) {
    let version = run(runner, binary, &[OsStr::new("--version")]);
    assert!(
        version.status.success(),
        "{} --version failed\n{}",
        binary.display(),
        show(&version)
    );
    assert!(
        String::from_utf8_lossy(&version.stdout).contains("batten"),
        "{} --version does not print `batten`\n{}",
        binary.display(),
        show(&version)
    );

    let mut failures = Vec::new();
    for example in example_configs() {
        let output = run(
            runner,
            binary,
            &[OsStr::new("validate"), example.as_os_str()],
        );
        if !output.status.success() {
            failures.push(format!("validate {}\n{}", example.display(), show(&output)));
        }
    }
    assert!(
        failures.is_empty(),
        "{} rejected {} example(s):\n\n{}",
        binary.display(),
        failures.len(),
        failures.join("\n\n")
    );
}

/// `file`, `qemu-arm-static` and the cross `gcc` that links a 32-bit ARM
/// target; None (a skip) when one is missing.
fn arm32_tools(test: &str, gcc: &str) -> Option<(PathBuf, PathBuf)> {
    let file = require_tool("file", "/usr/bin/file", test)?;
    let qemu = require_tool("qemu-arm-static", "/usr/bin/qemu-arm-static", test)?;
    require_tool(gcc, &format!("/usr/bin/{gcc}"), test)?;
    Some((file, qemu))
}

#[test]
fn aarch64_musl_binary_is_static_and_runs_under_qemu() {
    const TEST: &str = "aarch64_musl_binary_is_static_and_runs_under_qemu";
    let Some(file) = require_tool("file", "/usr/bin/file", TEST) else {
        return;
    };
    let Some(qemu) = require_tool("qemu-aarch64-static", "/usr/bin/qemu-aarch64-static", TEST)
    else {
        return;
    };
    let binary = build_static("aarch64-unknown-linux-musl");
    check_file_says_static(&file, &binary, "ARM aarch64");
    check_runs(Runner::Qemu(&qemu, &[]), &binary);
}

#[test]
fn x86_64_musl_binary_is_static_and_runs() {
    const TEST: &str = "x86_64_musl_binary_is_static_and_runs";
    let Some(file) = require_tool("file", "/usr/bin/file", TEST) else {
        return;
    };
    let binary = build_static("x86_64-unknown-linux-musl");
    check_file_says_static(&file, &binary, "x86-64");
    check_runs(Runner::Native, &binary);
}

/// The binary for every 32-bit Raspberry Pi: validates the examples on the
/// Pi 1 / Zero CPU.
#[test]
fn armv6_binary_runs_on_the_oldest_pi_cpu() {
    const TEST: &str = "armv6_binary_runs_on_the_oldest_pi_cpu";
    let Some((file, qemu)) = arm32_tools(TEST, "arm-linux-gnueabi-gcc") else {
        return;
    };
    let binary = build_static("arm-unknown-linux-gnueabi");
    check_file_says_static(&file, &binary, "ARM, EABI5");
    check_runs(Runner::Qemu(&qemu, &ARM1176), &binary);
}

/// The armv7 binary runs on qemu's default (newer) ARM CPU, and dies of an
/// illegal instruction on the Pi 1 / Zero CPU: the reason the ARMv6 binary
/// exists.
#[test]
fn armv7_binary_is_static_and_runs_under_qemu() {
    const TEST: &str = "armv7_binary_is_static_and_runs_under_qemu";
    let Some((file, qemu)) = arm32_tools(TEST, "arm-linux-gnueabihf-gcc") else {
        return;
    };
    let binary = build_static("armv7-unknown-linux-gnueabihf");
    check_file_says_static(&file, &binary, "ARM, EABI5");
    check_runs(Runner::Qemu(&qemu, &[]), &binary);

    let on_armv6 = run(
        Runner::Qemu(&qemu, &ARM1176),
        &binary,
        &[OsStr::new("--version")],
    );
    assert_eq!(
        on_armv6.status.signal(),
        Some(Signal::SIGILL as i32),
        "{} on an ARM1176 (ARMv6) should die of an illegal instruction\n{}",
        binary.display(),
        show(&on_armv6)
    );
}
