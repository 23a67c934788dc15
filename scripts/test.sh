#!/usr/bin/env bash
# The whole test suite, on a fresh Debian machine: installs the programs the
# tests drive for real, then runs every test. `.ci/run` calls this.
#
#   sudo scripts/test.sh
#
# Tests that need root, a program or a device skip with a message on a
# developer's machine; under CI=true (as in CI) such a skip is a failure.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

# What the tests run for real:
#   passwd         useradd, groupadd (accounts in scratch roots)
#   sudo           visudo -cf (sudo rules)
#   e2fsprogs      mkfs.ext4 (a labelled seed disk), util-linux/mount: losetup
#   file           checks the static binaries' format
#   qemu-user-static  runs the aarch64 and armv7 binaries on this x86_64 machine
#   gcc-arm-linux-gnueabihf  links the 32-bit Raspberry Pi OS binary
#   openssh-client ssh-keygen
packages=(passwd sudo e2fsprogs util-linux mount file qemu-user-static openssh-client gcc-arm-linux-gnueabihf)

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    missing=()
    for p in "${packages[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "test.sh: installing ${missing[*]}" >&2
        apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
    fi
else
    echo "test.sh: not root (or no apt-get): not installing packages; privileged tests will skip" >&2
fi

cargo build --all-targets
cargo test --all-targets -- --test-threads="${BATTEN_TEST_THREADS:-4}"
