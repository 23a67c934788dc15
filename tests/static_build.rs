//! The static release binaries (DESIGN.md, "Builds: one static binary per
//! architecture") build, are really static, and run: the aarch64 one under
//! `qemu-aarch64-static`, the x86_64 one natively.
//!
//! Both tests run `scripts/build-static.sh <target>`, i.e. a full release
//! build the first time, so they are slow; cargo's cache makes re-runs fast.
//!
//! If a needed tool (`file`, `qemu-aarch64-static`) is missing the test is
//! skipped with a message on stderr, except under `CI=true`, where a skip
//! counts as a failure.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

/// Serialises the script runs of the two tests: cargo would serialise the
/// builds anyway, but `rustup target add` is best not run twice at once.
static BUILD_LOCK: Mutex<()> = Mutex::new(());

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
    let msg =
        format!("{test}: `{name}` not found (Debian: apt-get install -y file qemu-user-static)");
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

/// Runs the binary, through `runner` (qemu) when given, with `args`.
fn run(runner: Option<&Path>, binary: &Path, args: &[&OsStr]) -> Output {
    let mut cmd = match runner {
        Some(runner) => {
            let mut cmd = Command::new(runner);
            cmd.arg(binary);
            cmd
        }
        None => Command::new(binary),
    };
    cmd.args(args)
        .current_dir(repo_root())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", binary.display()))
}

/// `--version` prints `batten`, and `validate FILE` exits 0 for every example.
fn check_runs(runner: Option<&Path>, binary: &Path) {
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
    check_runs(Some(&qemu), &binary);
}

#[test]
fn x86_64_musl_binary_is_static_and_runs() {
    const TEST: &str = "x86_64_musl_binary_is_static_and_runs";
    let Some(file) = require_tool("file", "/usr/bin/file", TEST) else {
        return;
    };
    let binary = build_static("x86_64-unknown-linux-musl");
    check_file_says_static(&file, &binary, "x86-64");
    check_runs(None, &binary);
}

#[test]
fn armv7_binary_is_static_and_runs_under_qemu() {
    const TEST: &str = "armv7_binary_is_static_and_runs_under_qemu";
    let Some(file) = require_tool("file", "/usr/bin/file", TEST) else {
        return;
    };
    let Some(qemu) = require_tool("qemu-arm-static", "/usr/bin/qemu-arm-static", TEST) else {
        return;
    };
    if require_tool(
        "arm-linux-gnueabihf-gcc",
        "/usr/bin/arm-linux-gnueabihf-gcc",
        TEST,
    )
    .is_none()
    {
        return;
    }
    let binary = build_static("armv7-unknown-linux-gnueabihf");
    check_file_says_static(&file, &binary, "ARM, EABI5");
    check_runs(Some(&qemu), &binary);
}
