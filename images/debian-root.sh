#!/usr/bin/env bash
# Build, once, a small real Debian 12 root for batten to work on: what an
# image holds, without a kernel or a bootloader. It has openssh-server,
# nginx-light (which enables its echo module through modules-enabled/),
# nftables, iptables and sudo, each as Debian installs them, so batten's
# checks meet the image's own programs and files, not this machine's.
#
#   images/debian-root.sh          prints the directory of the root
#
# The root is cached outside the checkout, under
# ${BATTEN_ROOT_CACHE:-$HOME/.cache/batten/root}/<hash of this recipe>/root,
# and is never changed after it is built: copy it before running batten on
# it (scripts/try-scratch-root.sh and the tests do). A build takes a minute
# or two and needs root (debootstrap); with the cache, nothing is done.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
recipe_hash=$(sha256sum "$here/debian-root.sh" | cut -c1-16)
cache=${BATTEN_ROOT_CACHE:-$HOME/.cache/batten/root}/$recipe_hash
if [ -f "$cache/complete" ]; then
    echo "$cache/root"
    exit 0
fi
[ "$(id -u)" = 0 ] || { echo "debian-root.sh: run as root (debootstrap needs it)" >&2; exit 2; }
if ! command -v debootstrap >/dev/null; then
    echo "debian-root: installing debootstrap" >&2
    apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap >&2
fi

mkdir -p "$cache"
work=$(mktemp -d "$cache/build.XXXXXX")
cleanup() {
    if [ -f "$work/root/debootstrap/debootstrap.log" ]; then
        cp "$work/root/debootstrap/debootstrap.log" "$cache/debootstrap-failed.log"
        echo "debian-root: debootstrap's log is in $cache/debootstrap-failed.log" >&2
    fi
    rm -rf "$work"
}
trap cleanup EXIT

packages=openssh-server,nginx-light,nftables,iptables,sudo,passwd,systemd
echo "debian-root: debootstrap bookworm ($packages), a minute or two" >&2
# debootstrap starts nothing in the root: no server of the image runs here.
debootstrap --variant=minbase --include="$packages" bookworm "$work/root" http://deb.debian.org/debian >&2

# The image's own password login, as many images have it.
sed -i 's/^#\?PasswordAuthentication.*/PasswordAuthentication yes/' "$work/root/etc/ssh/sshd_config"
# Nothing of the build machine's identity stays in the root.
rm -f "$work"/root/etc/ssh/ssh_host_*
: > "$work/root/etc/machine-id"
rm -rf "$work"/root/var/cache/apt/archives/*.deb "$work"/root/var/lib/apt/lists/*
rm -rf "$cache/root"
mv "$work/root" "$cache/root"
touch "$cache/complete"
echo "$cache/root"
