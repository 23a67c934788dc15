#!/usr/bin/env bash
# Run batten's main job on a scratch root: a copy of a small real Debian 12
# root (openssh-server, nginx-light, nftables, sudo), made once with
# debootstrap by images/debian-root.sh and cached under ~/.cache/batten, so
# you can watch what batten does to an image without touching this machine.
#
#   sudo scripts/try-scratch-root.sh [USER-DATA]    (default: the VPS example)
#
# Needs root (debootstrap, and useradd writes files owned by new users).
# Installs nothing on this machine but debootstrap (when missing); the
# image's own sshd, nginx and nft check its configuration, inside the copy.
# Prints the plan, applies it, runs it a second time to show nothing
# changes, and leaves the scratch root for you to look at.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
user_data=${1:-$top/cloud-init/examples/vps-proxy-firewall.yaml}
[ "$(id -u)" = 0 ] || { echo "try-scratch-root: run as root (sudo): debootstrap and useradd need it" >&2; exit 2; }

# BATTEN=PATH uses that binary instead of building the release one (the
# test of this script passes the one under test).
if [ -n "${BATTEN:-}" ]; then
    batten=$BATTEN
else
    # shellcheck source=scripts/find-cargo.sh
    . "$top/scripts/find-cargo.sh"
    echo "== building batten (cargo build --release), a few minutes the first time" >&2
    if [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ]; then
        # As the user who ran sudo: the checkout's target/ stays theirs.
        runuser -u "$SUDO_USER" -- env PATH="$PATH" cargo build --release --manifest-path "$top/Cargo.toml" >&2
    else
        cargo build --release --manifest-path "$top/Cargo.toml" >&2
    fi
    batten="${CARGO_TARGET_DIR:-$top/target}/release/batten"
fi

echo "== the Debian 12 root (built once with debootstrap, then cached)" >&2
base=$("$top/images/debian-root.sh")
scratch=$(mktemp -d /tmp/batten-scratch.XXXXXX)
echo "== scratch root: $scratch (remove it with: rm -rf $scratch)"
cp -a "$base/." "$scratch/"
meta=$(mktemp /tmp/batten-scratch-meta.XXXXXX)
trap 'rm -f "$meta"' EXIT
echo "instance-id: try-scratch-root" > "$meta"

echo "== batten validate $user_data"
"$batten" validate "$user_data"
echo "== batten plan --root $scratch"
"$batten" plan --root "$scratch" --user-data "$user_data" --meta-data "$meta"
echo "== batten run --root $scratch"
"$batten" run --root "$scratch" --user-data "$user_data" --meta-data "$meta"
echo "== batten run again (nothing changes)"
"$batten" run --root "$scratch" --user-data "$user_data" --meta-data "$meta"
echo "== batten verify --root $scratch"
"$batten" verify --root "$scratch"
echo "== batten status --root $scratch"
"$batten" status --root "$scratch"
echo
echo "The scratch root is $scratch; remove it with: rm -rf $scratch"
