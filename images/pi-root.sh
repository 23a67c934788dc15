#!/usr/bin/env bash
# Build, once, an arm64 Debian 12 root shaped like Raspberry Pi OS, for the
# Raspberry Pi end-to-end test: batten must meet an aarch64 image's own
# programs (sshd -t, visudo -c, run under qemu-user through binfmt_misc) and
# files, not this machine's. Pi OS is Debian 12 with a few marks of its own,
# and the root carries these:
#   - openssh-server installed but disabled (no enable links), as Pi OS ships
#     it until the user asks for SSH;
#   - PasswordAuthentication yes, and the old default account pi (uid 1000,
#     in group sudo) with the password "raspberry" as a SHA-512 crypt hash;
#   - /etc/rpi-issue, the file that says "this is Raspberry Pi OS", and the
#     host name raspberrypi;
#   - an empty /boot/firmware, where Pi OS mounts its FAT boot partition
#     (images/pi-boot.sh makes such a partition as an image file).
# It also has nginx-light, nftables, iptables and sudo, as Debian installs
# them. There is no kernel, firmware or bootloader.
#
#   images/pi-root.sh          prints the directory of the root
#
# The root is cached outside the checkout, under
# ${BATTEN_ROOT_CACHE:-$HOME/.cache/batten/root}/pi-<hash of this recipe>/root,
# and is never changed after it is built: copy it before running batten on
# it. With the cache, nothing is done. A build needs root, debootstrap,
# qemu-user-static and binfmt-support (installed here if missing), and takes
# about ten minutes on two cores: debootstrap's second stage runs every
# package's maintainer scripts as aarch64 programs under emulation.
#
# Under qemu-user the root's sshd -t, visudo -c and nginx -t work, but its nft
# and iptables (nf_tables) do not even start: qemu-user has no netlink
# netfilter sockets ("Protocol not supported").
#
# Nothing is mounted into the root by this script: debootstrap's second stage
# mounts a fresh /proc and /sys inside it and unmounts them when it ends; the
# cleanup below unmounts whatever is left and never deletes through a mount.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
recipe_hash=$(sha256sum "$here/pi-root.sh" | cut -c1-16)
cache=${BATTEN_ROOT_CACHE:-$HOME/.cache/batten/root}/pi-$recipe_hash
if [ -f "$cache/complete" ]; then
    echo "$cache/root"
    exit 0
fi
[ "$(id -u)" = 0 ] || { echo "pi-root.sh: run as root (debootstrap and binfmt_misc need it)" >&2; exit 2; }
started=$(date +%s)

if ! command -v debootstrap >/dev/null || ! command -v update-binfmts >/dev/null ||
    [ ! -x /usr/bin/qemu-aarch64-static ]; then
    echo "pi-root: installing debootstrap, qemu-user-static and binfmt-support" >&2
    apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        debootstrap qemu-user-static binfmt-support >&2
fi

# aarch64 programs run here through the kernel's binfmt_misc handler.
if [ ! -e /proc/sys/fs/binfmt_misc/status ]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
fi
if ! update-binfmts --enable qemu-aarch64 >&2; then
    # Registered some other way (systemd-binfmt): fine if the kernel has it on.
    grep -qx enabled /proc/sys/fs/binfmt_misc/qemu-aarch64 2>/dev/null ||
        { echo "pi-root: no binfmt_misc handler for aarch64" >&2; exit 1; }
fi
handler=/proc/sys/fs/binfmt_misc/qemu-aarch64
grep -qx enabled "$handler" ||
    { echo "pi-root: the aarch64 binfmt_misc handler is disabled" >&2; exit 1; }
# With the F flag the kernel opened the emulator when it was registered and
# finds it from inside any chroot; without it, the emulator must be at the
# same path in the root, and is removed again at the end.
interpreter=$(sed -n 's/^interpreter //p' "$handler")
copied=
if ! grep -q '^flags:.*F' "$handler"; then
    copied=$interpreter
fi

mkdir -p "$cache"
work=$(mktemp -d "$cache/build.XXXXXX")
cleanup() {
    local status=$?
    # Whatever debootstrap left mounted in the root (it unmounts on its own
    # exit; an interruption may not), deepest first.
    findmnt -rn -o TARGET | { grep -F "$work/" || true; } | sort -r | while read -r m; do
        umount "$m" 2>/dev/null || umount -l "$m" || true
    done
    if [ "$status" != 0 ] && [ -f "$work/root/debootstrap/debootstrap.log" ]; then
        cp "$work/root/debootstrap/debootstrap.log" "$cache/debootstrap-failed.log"
        echo "pi-root: debootstrap's log is in $cache/debootstrap-failed.log" >&2
    fi
    if findmnt -rn -o TARGET | grep -qF "$work/"; then
        echo "pi-root: something is still mounted under $work; not deleting it" >&2
    else
        rm -rf --one-file-system "$work"
    fi
}
trap cleanup EXIT

packages=openssh-server,sudo,nftables,iptables,passwd,systemd,nginx-light
root=$work/root
echo "pi-root: debootstrap arm64 bookworm ($packages), first stage" >&2
debootstrap --arch=arm64 --foreign --variant=minbase --include="$packages" \
    bookworm "$root" http://deb.debian.org/debian >&2
made_dir=
if [ -n "$copied" ]; then
    [ -d "$root$(dirname "$copied")" ] || made_dir=$root$(dirname "$copied")
    mkdir -p "$root$(dirname "$copied")"
    cp -L "$copied" "$root$copied"
fi
echo "pi-root: second stage under qemu-aarch64, several minutes" >&2
# debootstrap starts nothing in the root: no server of the image runs here.
chroot "$root" /debootstrap/debootstrap --second-stage >&2

# Raspberry Pi OS's marks.
printf 'Raspberry Pi reference 2024-11-19 (imitated by batten'"'"'s images/pi-root.sh: Debian 12 arm64)\n' \
    > "$root/etc/rpi-issue"
mkdir -p "$root/boot/firmware"
echo raspberrypi > "$root/etc/hostname"
printf '127.0.1.1\traspberrypi\n' >> "$root/etc/hosts"
# SSH installed but off, as Pi OS ships it: no enable or alias links.
rm -f "$root"/etc/systemd/system/*.wants/ssh.service \
    "$root"/etc/systemd/system/*.wants/sshd.service \
    "$root"/etc/systemd/system/*.wants/ssh.socket
if [ -L "$root/etc/systemd/system/sshd.service" ]; then
    rm -f "$root/etc/systemd/system/sshd.service"
fi
sed -i 's/^#\?PasswordAuthentication.*/PasswordAuthentication yes/' "$root/etc/ssh/sshd_config"
# The old default account, pi / raspberry, made by the image's own tools.
hash=$(openssl passwd -6 raspberry)
chroot "$root" /usr/sbin/useradd -m -u 1000 -G sudo -s /bin/bash pi
chroot "$root" /usr/sbin/usermod -p "$hash" pi

# Nothing of the build machine's identity stays in the root.
# (debootstrap copies this machine's host name and resolver into the root.)
rm -f "$root"/etc/ssh/ssh_host_*
: > "$root/etc/resolv.conf"
: > "$root/etc/machine-id"
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
if [ -n "$copied" ]; then
    rm -f "$root$copied"
    [ -z "$made_dir" ] || rmdir "$made_dir" 2>/dev/null || true
fi
rm -rf "$cache/root"
mv "$root" "$cache/root"
touch "$cache/complete"
echo "pi-root: built in $(( $(date +%s) - started ))s" >&2
echo "$cache/root"
