#!/usr/bin/env bash
# Build stripped, fully static release binaries of batten, one per architecture.
#
# See DESIGN.md, "Builds: one static binary per architecture":
#
#   x86_64-unknown-linux-musl       VPS and cloud images           default linker (cc)
#   aarch64-unknown-linux-musl      Raspberry Pi 3/4/5, ARM VPS    rust-lld (from the rustup toolchain)
#   arm-unknown-linux-gnueabi       every 32-bit Raspberry Pi,     arm-linux-gnueabi-gcc, +crt-static,
#                                   Pi 1 and Zero (ARMv6) too      std rebuilt from rust-src
#   armv7-unknown-linux-gnueabihf   32-bit Pi OS on Pi 2 and up    arm-linux-gnueabihf-gcc, +crt-static
#                                   (stretch goal, kept for now)
#
# The 32-bit Pi binary is arm-unknown-linux-gnueabi. The Pi 1, Zero and
# Zero W have an ARM1176 core, an ARMv6: it lacks the ARMv7 instructions
# (Thumb-2 among them) that the armv7 binary and the glibc linked into it
# are made of, so that one dies there of an illegal instruction. This
# target's code is ARMv6 (and the glibc linked into it ARMv5TE), which
# every later ARM core runs too in 32-bit mode, so one binary serves every
# Pi that runs a 32-bit OS. Its calling convention passes floats in integer
# registers (soft-float) while Raspberry Pi OS passes them in VFP registers
# (hard-float); that only matters for calls into the OS's shared libraries,
# and a fully static binary makes none. It talks to the kernel through the
# same EABI system calls either way. batten does next to no floating point
# (YAML numbers), so software floats cost it nothing that shows.
#
# No ready-made standard library for it is needed: cargo rebuilds std from
# the toolchain's rust-src component (-Zbuild-std; a stable cargo accepts
# that with RUSTC_BOOTSTRAP=1, which is set for this build only). That
# keeps the build independent of which targets' std rustup serves; the
# rustup of the project's machines serves none for the ARMv6 targets. The
# C library is glibc from Debian's armel port (ARMv5TE, soft-float):
# packages gcc-arm-linux-gnueabi and libc6-dev-armel-cross. Not musl: a
# rebuilt std brings no musl C library or crt objects of its own (the
# prebuilt rust-std does), and Debian has no cross package of musl for ARM.
#
# Each binary is copied to <target dir>/static/batten-<target> and checked
# with file(1): it must be statically linked (or static-pie), stripped, and
# for the right machine. Any failure stops the script with a non-zero exit,
# except that armv7, when only included by default, is best-effort: if it
# cannot be built the script says why and carries on with the others.

set -euo pipefail

ARMV6=arm-unknown-linux-gnueabi
ARMV6_GCC=arm-linux-gnueabi-gcc
MAIN_TARGETS=(x86_64-unknown-linux-musl aarch64-unknown-linux-musl "$ARMV6")
ARMV7=armv7-unknown-linux-gnueabihf
ARMV7_GCC=arm-linux-gnueabihf-gcc

usage() {
    cat <<EOF
Usage: scripts/build-static.sh [TARGET...]
       scripts/build-static.sh --help

Build stripped, fully static release binaries of batten and copy them to
\${CARGO_TARGET_DIR:-target}/static/batten-<target>.

Targets:
  x86_64-unknown-linux-musl       (default)
  aarch64-unknown-linux-musl      (default; linked with rust-lld)
  $ARMV6       (default; for every 32-bit Raspberry Pi,
                                   Pi 1 and Zero included; linked with
                                   $ARMV6_GCC, std rebuilt
                                   from rust-src)
  armv7-unknown-linux-gnueabihf   (default only when $ARMV7_GCC exists or
                                   BATTEN_ARMV7=1; linked with $ARMV7_GCC)

With no TARGET, builds the default targets. A failing armv7 build is only a
warning when armv7 was included by default, and an error when named.

The $ARMV6 build needs Debian's gcc-arm-linux-gnueabi and
libc6-dev-armel-cross, and rustup's rust-src component (added if missing).
Its code is ARMv6 with soft-float calls: as a fully static binary it runs on
hard-float Raspberry Pi OS as well.

Environment:
  CARGO_TARGET_DIR   cargo's target directory (default: target/ in the repo)
  BATTEN_ARMV7=1     install gcc-arm-linux-gnueabihf with apt-get if missing
                     and build armv7 as well
EOF
}

die() { echo "build-static: error: $*" >&2; exit 1; }
warn() { echo "build-static: warning: $*" >&2; }
say() { echo "build-static: $*" >&2; }

# --- arguments -------------------------------------------------------------

targets=()
armv7_by_default=0  # 1 when armv7 was added implicitly (failures are soft)
for arg in "$@"; do
    case "$arg" in
        -h | --help) usage; exit 0 ;;
        x86_64-unknown-linux-musl | aarch64-unknown-linux-musl | "$ARMV6" | "$ARMV7")
            targets+=("$arg") ;;
        -*) die "unknown option: $arg (see --help)" ;;
        *) die "unsupported target: $arg (see --help)" ;;
    esac
done

if [[ ${#targets[@]} -eq 0 ]]; then
    targets=("${MAIN_TARGETS[@]}")
    if command -v "$ARMV7_GCC" >/dev/null 2>&1 || [[ "${BATTEN_ARMV7:-}" == 1 ]]; then
        targets+=("$ARMV7")
        armv7_by_default=1
    fi
fi

# --- environment -----------------------------------------------------------

# Work from the repository root so that target/ and Cargo.toml resolve.
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

command -v cargo >/dev/null 2>&1 || die "cargo not found"
command -v rustc >/dev/null 2>&1 || die "rustc not found"
command -v file >/dev/null 2>&1 || die "file(1) not found (apt-get install -y file)"

target_dir="${CARGO_TARGET_DIR:-target}"
# A relative CARGO_TARGET_DIR is relative to the repository root (we cd'd there).
static_dir="$target_dir/static"
mkdir -p "$static_dir"

# Every build is a stripped release build; setting the profile through the
# environment keeps Cargo.toml untouched.
export CARGO_PROFILE_RELEASE_STRIP=true

# rust-lld ships inside the rustup toolchain but is not on PATH by default.
host="$(rustc -vV | sed -n 's/^host: //p')"
sysroot="$(rustc --print sysroot)"
lld_dir="$sysroot/lib/rustlib/$host/bin"

# One change to the toolchain at a time, whoever runs this script: the lock
# lives in the toolchain rustup changes (writable by whoever owns it).
rustup_lock="$sysroot/lib/rustlib/.batten-rustup.lock"

# Install rustup targets that are missing. Without rustup (a distro Rust),
# assume the standard libraries are present and let cargo complain if not.
installed_targets=""
if command -v rustup >/dev/null 2>&1; then
    installed_targets="$(rustup target list --installed)"
fi
ensure_rust_target() {
    local t="$1"
    if ! command -v rustup >/dev/null 2>&1; then
        warn "rustup not found; assuming the $t standard library is installed"
        return 0
    fi
    grep -qxF "$t" <<<"$installed_targets" && return 0
    # Two builds at once (tests run in parallel) must not add the same
    # target together: rustup then fails on the other's half-unpacked files.
    # The second one waits, and finds the target there.
    (
        flock 9
        if ! rustup target list --installed | grep -qxF "$t"; then
            say "adding rust target $t"
            rustup target add "$t"
        fi
    ) 9>"$rustup_lock"
}

# The ARMv6 build rebuilds std from source, which is the rust-src component.
rust_src_marker="$sysroot/lib/rustlib/src/rust/library/Cargo.lock"
ensure_rust_src() {
    [[ -f "$rust_src_marker" ]] && return 0
    command -v rustup >/dev/null 2>&1 || { echo "rust-src is missing and rustup not found"; return 1; }
    (
        flock 9
        [[ -f "$rust_src_marker" ]] && exit 0
        say "adding rust component rust-src"
        rustup component add rust-src >&2
    ) 9>"$rustup_lock" || { echo "rustup component add rust-src failed"; return 1; }
}

# The ARMv6 linker and its static glibc come from Debian's
# gcc-arm-linux-gnueabi and libc6-dev-armel-cross (scripts/test.sh installs
# them). gcc names a library it cannot find without a directory.
check_armv6_gcc() {
    local pkgs="apt-get install gcc-arm-linux-gnueabi libc6-dev-armel-cross"
    command -v "$ARMV6_GCC" >/dev/null 2>&1 || { echo "$ARMV6_GCC not found ($pkgs)"; return 1; }
    [[ "$("$ARMV6_GCC" -print-file-name=libc.a)" == /* ]] || { echo "$ARMV6_GCC has no static glibc ($pkgs)"; return 1; }
}

# The armv7 linker comes from Debian's gcc-arm-linux-gnueabihf. Install it
# only when asked to (BATTEN_ARMV7=1); otherwise just report what is missing.
ensure_armv7_gcc() {
    command -v "$ARMV7_GCC" >/dev/null 2>&1 && return 0
    if [[ "${BATTEN_ARMV7:-}" != 1 ]]; then
        echo "$ARMV7_GCC not found (apt-get install gcc-arm-linux-gnueabihf, or set BATTEN_ARMV7=1)"
        return 1
    fi
    command -v apt-get >/dev/null 2>&1 || { echo "$ARMV7_GCC not found and apt-get is unavailable"; return 1; }
    say "installing gcc-arm-linux-gnueabihf with apt-get"
    local sudo=()
    [[ "$(id -u)" -ne 0 ]] && sudo=(sudo)
    if ! { "${sudo[@]}" apt-get update && DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y gcc-arm-linux-gnueabihf libc6-dev-armhf-cross; } >&2; then
        echo "apt-get install gcc-arm-linux-gnueabihf failed"
        return 1
    fi
    command -v "$ARMV7_GCC" >/dev/null 2>&1 || { echo "$ARMV7_GCC still missing after apt-get"; return 1; }
}

# What file(1) must say about each target's machine.
expected_machine() {
    case "$1" in
        x86_64-unknown-linux-musl) echo "x86-64" ;;
        aarch64-unknown-linux-musl) echo "ARM aarch64" ;;
        "$ARMV6" | "$ARMV7") echo "ARM, EABI5" ;;
    esac
}

# Human-readable size, e.g. 1.2MiB; falls back to plain bytes.
human_size() {
    numfmt --to=iec-i --suffix=B --format='%.1f' "$1" 2>/dev/null || echo "$1 B"
}

# --- building ----------------------------------------------------------------

# build_one TARGET: build, copy to $static_dir and check with file(1).
# Prints the reason and returns non-zero on failure (never exits), so that
# the caller decides whether the failure is fatal.
build_one() {
    local t="$1"
    # Per-target settings are passed to cargo through env(1), so one
    # target's linker or flags never leak into another target's build.
    local envs=()
    local cargo_flags=()
    local extra_rustflags=""

    case "$t" in
        x86_64-unknown-linux-musl)
            # musl targets link statically (crt-static) by default; the
            # system cc with Rust's self-contained musl crt objects is enough.
            ;;
        aarch64-unknown-linux-musl)
            [[ -x "$lld_dir/rust-lld" ]] || { echo "rust-lld not found in $lld_dir"; return 1; }
            envs+=("PATH=$lld_dir:$PATH")
            envs+=("CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=${CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER:-rust-lld}")
            ;;
        "$ARMV6")
            local why
            why="$(check_armv6_gcc)" || { echo "$why"; return 1; }
            why="$(ensure_rust_src)" || { echo "$why"; return 1; }
            envs+=("CARGO_TARGET_ARM_UNKNOWN_LINUX_GNUEABI_LINKER=${CARGO_TARGET_ARM_UNKNOWN_LINUX_GNUEABI_LINKER:-$ARMV6_GCC}")
            envs+=("CC_arm_unknown_linux_gnueabi=${CC_arm_unknown_linux_gnueabi:-$ARMV6_GCC}")
            # std from source (see the top of this file); -Z flags need
            # RUSTC_BOOTSTRAP on a stable toolchain.
            envs+=("RUSTC_BOOTSTRAP=1")
            cargo_flags+=("-Zbuild-std=std,panic_abort")
            extra_rustflags="-C target-feature=+crt-static"
            ;;
        "$ARMV7")
            local why
            why="$(ensure_armv7_gcc)" || { echo "$why"; return 1; }
            envs+=("CARGO_TARGET_ARMV7_UNKNOWN_LINUX_GNUEABIHF_LINKER=${CARGO_TARGET_ARMV7_UNKNOWN_LINUX_GNUEABIHF_LINKER:-$ARMV7_GCC}")
            # C code built by the cc crate (if any dependency has some).
            envs+=("CC_armv7_unknown_linux_gnueabihf=${CC_armv7_unknown_linux_gnueabihf:-$ARMV7_GCC}")
            # glibc targets link dynamically unless asked otherwise.
            extra_rustflags="-C target-feature=+crt-static"
            ;;
    esac

    # RUSTFLAGS (unlike target.<triple>.rustflags) wins over everything else,
    # so append to whatever the caller set. With --target, RUSTFLAGS does not
    # touch build scripts or proc macros, which run on the host.
    if [[ -n "$extra_rustflags" ]]; then
        envs+=("RUSTFLAGS=${RUSTFLAGS:+$RUSTFLAGS }$extra_rustflags")
    fi

    # The ARMv6 std is built from source, never added with rustup.
    if [[ "$t" != "$ARMV6" ]]; then
        ensure_rust_target "$t" >&2 || { echo "rustup target add $t failed"; return 1; }
    fi

    say "building $t"
    if ! env "${envs[@]}" cargo build --release --target "$t" "${cargo_flags[@]}" --bin batten >&2; then
        echo "cargo build --release --target $t failed"
        return 1
    fi

    local built="$target_dir/$t/release/batten"
    local out="$static_dir/batten-$t"
    [[ -f "$built" ]] || { echo "cargo reported success but $built is missing"; return 1; }
    # (set -e does not apply inside a function called from `if`: check by hand.)
    # A temporary name of this process's own: two builds at once (tests
    # run in parallel) must not move each other's copy away.
    if ! { cp -f "$built" "$out.tmp.$$" && mv -f "$out.tmp.$$" "$out"; }; then
        rm -f "$out.tmp.$$"
        echo "cannot copy $built to $out"
        return 1
    fi

    # Check what we built: static, stripped, right machine.
    local desc machine
    desc="$(file -b "$out")" || { echo "file $out failed"; return 1; }
    machine="$(expected_machine "$t")"
    echo "$out: $desc" >&2
    if [[ "$desc" != *"statically linked"* && "$desc" != *"static-pie linked"* ]]; then
        echo "$out is not statically linked: $desc"
        return 1
    fi
    if [[ "$desc" != *"$machine"* ]]; then
        echo "$out is not an $machine binary: $desc"
        return 1
    fi
    if [[ "$desc" == *"not stripped"* ]]; then
        echo "$out is not stripped: $desc"
        return 1
    fi
}

built=()
skipped=()
for t in "${targets[@]}"; do
    if why="$(build_one "$t")"; then
        built+=("$t")
    elif [[ "$t" == "$ARMV7" && "$armv7_by_default" == 1 ]]; then
        # armv7 is a stretch goal: report and carry on with the rest.
        warn "skipping $t: $why"
        rm -f "$static_dir/batten-$t"
        skipped+=("$t")
    else
        die "$t: $why"
    fi
done

# --- summary -------------------------------------------------------------------

echo
echo "Static binaries in $static_dir:"
for t in "${built[@]}"; do
    out="$static_dir/batten-$t"
    bytes="$(stat -c %s "$out")"
    printf '  %-50s %10s bytes  %9s\n' "$out" "$bytes" "$(human_size "$bytes")"
done
for t in "${skipped[@]}"; do
    printf '  %-50s skipped (see warning above)\n' "$static_dir/batten-$t"
done
