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
#   qemu-user-static  runs the aarch64, ARMv6 and armv7 binaries on this
#                  x86_64 machine (the ARMv6 one on qemu's ARM1176, the Pi 1's CPU)
#   gcc-arm-linux-gnueabi, libc6-dev-armel-cross  link the ARMv6 binary for
#                  every 32-bit Raspberry Pi (soft-float glibc, static);
#                  build-static.sh adds rustup's rust-src itself
#   gcc-arm-linux-gnueabihf, libc6-dev-armhf-cross  link the armv7 binary
#                  (each C library is only a recommendation of its compiler,
#                  which --no-install-recommends leaves out)
#   openssh-server, openssh-client, sshpass  the real sshd and ssh client
#   iproute2       network namespaces for the live tests
#   nftables, iptables, iputils-ping  the firewall tests (rules loaded only
#                  inside namespaces the tests create)
#   nginx, curl    the proxy test (nginx runs only inside a test namespace)
#   openssl, whois cross-check batten's password hashes (openssl passwd;
#                  whois has mkpasswd, the one maker of yescrypt hashes)
#   systemd        systemd-analyze verify of the unit batten installs
#   systemd-container  systemd-nspawn: the VM test's image booted natively as
#                  a container (tests/container_boot.rs, scripts/bench
#                  --container), in a network namespace of its own
#   fusefat, dosfstools, mtools, binfmt-support  the Raspberry Pi card test:
#                  a FAT boot partition as an image file, mounted with FUSE
#                  (this kernel has no vfat), and the arm64 root's programs
#                  run through qemu-user
#   debootstrap, qemu-system-x86, qemu-utils, genisoimage  the VM first-boot
#                  test (the image is built once and cached outside the
#                  checkout; Debian 12's qemu-system-x86 needs Debian 12's
#                  qemu-utils, so a newer one is replaced by it)
#   python3-venv   a virtual environment for ssh-audit (PyPI, below)
#   pebble certbot the ACME test: Let's Encrypt's test CA and the ACME client
#                  batten drives (certbot's package also enables its own
#                  renewal timer, which only reads /etc/letsencrypt)
#   python3-*      what Debian's cloud-init needs to run `cloud-init schema`
#                  from an unpacked package (cloud-init itself is never
#                  installed: it would run at this machine's next boot)
packages=(passwd sudo e2fsprogs util-linux mount file qemu-user-static
    gcc-arm-linux-gnueabi libc6-dev-armel-cross gcc-arm-linux-gnueabihf libc6-dev-armhf-cross
    openssh-server openssh-client sshpass iproute2 nftables iptables iputils-ping
    nginx curl openssl whois systemd systemd-container debootstrap genisoimage fusefat dosfstools mtools binfmt-support
    python3 python3-venv python3-yaml python3-jsonschema python3-jinja2 python3-configobj python3-jsonpatch
    python3-requests python3-netifaces python3-oauthlib python3-serial pebble certbot)

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
    # qemu-system-x86 from Debian 12 depends on qemu-utils of the same
    # version; a machine with a newer qemu-utils gets Debian 12's instead.
    if ! command -v qemu-system-x86_64 >/dev/null || ! command -v qemu-img >/dev/null; then
        qemu=$(apt-cache policy qemu-system-x86 | awk '/Candidate:/ {print $2}')
        echo "test.sh: installing qemu-system-x86 and qemu-utils $qemu" >&2
        apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends --allow-downgrades \
            qemu-system-x86 "qemu-utils=$qemu"
    fi
else
    echo "test.sh: not root (or no apt-get): not installing packages; privileged tests will skip" >&2
fi

# Debian's cloud-init, unpacked (not installed) in a cache outside the
# checkout, keyed by its version, for the drop-in's schema test.
if command -v apt-get >/dev/null; then
    version=$(apt-cache policy cloud-init 2>/dev/null | awk '/Candidate:/ {print $2}')
    if [ -n "$version" ] && [ "$version" != "(none)" ]; then
        cache="${XDG_CACHE_HOME:-$HOME/.cache}/batten/cloud-init-$version"
        if [ ! -x "$cache/usr/bin/cloud-init" ]; then
            mkdir -p "$(dirname "$cache")"
            tmp=$(mktemp -d)
            chmod 755 "$tmp"   # apt's download user must be able to write here
            (cd "$tmp" && apt-get download -q "cloud-init=$version" >&2 && dpkg-deb -x cloud-init_*.deb "$cache.partial")
            rm -rf "$tmp" "$cache" && mv "$cache.partial" "$cache"
        fi
        export BATTEN_CLOUD_INIT="$cache"
    fi
fi

# promtool from Debian's prometheus package, unpacked the same way (never
# installed: that would start a Prometheus server here), for the check
# that batten's node_exporter textfile is valid exposition format.
if command -v apt-get >/dev/null; then
    version=$(apt-cache policy prometheus 2>/dev/null | awk '/Candidate:/ {print $2}')
    if [ -n "$version" ] && [ "$version" != "(none)" ]; then
        cache="${XDG_CACHE_HOME:-$HOME/.cache}/batten/prometheus-$version"
        if [ ! -x "$cache/usr/bin/promtool" ]; then
            mkdir -p "$(dirname "$cache")"
            tmp=$(mktemp -d)
            chmod 755 "$tmp"
            (cd "$tmp" && apt-get download -q "prometheus=$version" >&2 && dpkg-deb -x prometheus_*.deb "$cache.partial")
            rm -rf "$tmp" "$cache" && mv "$cache.partial" "$cache"
        fi
        export BATTEN_PROMTOOL="$cache/usr/bin/promtool"
    fi
fi

# ssh-audit, pinned, from PyPI into a virtual environment in the same
# cache: Debian 12's own (2.5) predates the "Hardened Debian 12" policy
# the VM test checks batten's sshd against from outside.
ssh_audit_version=3.9.0
venv="${XDG_CACHE_HOME:-$HOME/.cache}/batten/ssh-audit-$ssh_audit_version"
if [ ! -e "$venv/.complete" ] && command -v python3 >/dev/null; then
    rm -rf "$venv"
    if python3 -m venv "$venv" && "$venv/bin/pip" install -q "ssh-audit==$ssh_audit_version" >&2; then
        touch "$venv/.complete"
    else
        echo "test.sh: could not install ssh-audit $ssh_audit_version from PyPI" >&2
        rm -rf "$venv"
    fi
fi
[ -e "$venv/.complete" ] && export BATTEN_SSH_AUDIT="$venv/bin/ssh-audit"

# shellcheck source=scripts/find-cargo.sh
. "$top/scripts/find-cargo.sh"
# A test run builds everything once: incremental caches would only add
# gigabytes to the target directory.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
target_dir=${CARGO_TARGET_DIR:-$top/target}
mkdir -p "$target_dir"
# The build, the cross builds and the test roots need about 6 GiB the first
# time; say so before cargo fails halfway with "No space left on device".
free_kib=$(df -Pk "$target_dir" | awk 'NR == 2 { print $4 }')
if [ "${free_kib:-0}" -lt $((6 * 1024 * 1024)) ]; then
    echo "test.sh: only $((free_kib / 1024)) MiB free under $target_dir; a first run needs about 6 GiB" >&2
    echo "test.sh: free space (an old target directory?) or set CARGO_TARGET_DIR to a larger disk" >&2
fi
cargo build --all-targets
# The hostile-input tests append a line each to this file; it is shown at
# the end, so the run says how many attacks and faults were tried.
summary=$target_dir/tmp/hostile-summary.txt
mkdir -p "$(dirname "$summary")" && : > "$summary"
# --no-fail-fast: one failing test binary does not hide the others.
cargo test --all-targets --no-fail-fast -- --test-threads="${BATTEN_TEST_THREADS:-4}"
if [ -s "$summary" ]; then
    echo
    echo "hostile input and faults (tests/hostile/README.md):"
    sed 's/^/  /' "$summary"
    echo "  nothing they tried changed what it should not: every test above passed"
fi
