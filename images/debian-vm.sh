#!/usr/bin/env bash
# Build a small Debian 12 VM image for batten's first-boot test, once:
# debootstrap a root with a kernel, systemd, openssh-server, nginx-light,
# nftables, cloud-init and sudo (from Debian's own registry), set it up to
# boot under qemu with the kernel given on the command line (no bootloader)
# and DHCP on its network card, and turn it into an ext4 disk image.
#
#   images/debian-vm.sh            prints the directory of the built image
#
# The result is cached outside the checkout, under
# ${BATTEN_VM_CACHE:-$HOME/.cache/batten/vm}/<hash of this recipe>/, and
# holds rootfs.raw (the disk), vmlinuz and initrd.img. A build takes a few
# minutes; with the cache, nothing is done. batten itself is baked in later,
# per test run, by scripts/vm-boot.sh (the binary changes, the base does not).
# Needs root (debootstrap, mkfs).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
recipe_hash=$(sha256sum "$here/debian-vm.sh" | cut -c1-16)
cache=${BATTEN_VM_CACHE:-$HOME/.cache/batten/vm}/$recipe_hash
if [ -s "$cache/rootfs.raw" ] && [ -s "$cache/vmlinuz" ] && [ -s "$cache/initrd.img" ]; then
    echo "$cache"
    exit 0
fi
[ "$(id -u)" = 0 ] || { echo "debian-vm.sh: run as root (debootstrap needs it)" >&2; exit 2; }

mkdir -p "$cache"
work=$(mktemp -d "$cache/build.XXXXXX")
cleanup() {
    # Keep debootstrap's own log of a failed build where the message points.
    if [ -f "$work/root/debootstrap/debootstrap.log" ]; then
        cp "$work/root/debootstrap/debootstrap.log" "$cache/debootstrap-failed.log"
        echo "debian-vm: debootstrap's log is in $cache/debootstrap-failed.log" >&2
    fi
    rm -rf "$work"
}
trap cleanup EXIT
root=$work/root

packages=linux-image-amd64,initramfs-tools,systemd-sysv,udev,dbus,kmod,iproute2,netbase,procps
packages=$packages,openssh-server,nginx-light,nftables,sudo,cloud-init,curl,ca-certificates
# debootstrap does not resolve virtual packages: cloud-init needs this one.
packages=$packages,python3-cffi-backend
echo "debian-vm: debootstrap bookworm ($packages)" >&2
debootstrap --variant=minbase --include="$packages" bookworm "$root" http://deb.debian.org/debian >&2

# Boot without a bootloader: qemu loads the kernel and initrd itself.
cp -L "$root/vmlinuz" "$work/vmlinuz"
cp -L "$root/initrd.img" "$work/initrd.img"

echo "batten-vm" > "$root/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 batten-vm\n' > "$root/etc/hosts"
echo "/dev/vda / ext4 defaults 0 1" > "$root/etc/fstab"

# DHCP on whatever the network card is called, through systemd-networkd.
mkdir -p "$root/etc/systemd/network"
cat > "$root/etc/systemd/network/20-wired.network" <<'EOF'
[Match]
Name=en* eth*

[Network]
DHCP=yes
EOF
chroot "$root" systemctl enable systemd-networkd.service >&2
chroot "$root" systemctl enable systemd-networkd-wait-online.service >&2 || true

# The image's own password login, as many images have it: a test gives the
# account a password so that "refused" means something.
chroot "$root" sed -i 's/^#\?PasswordAuthentication.*/PasswordAuthentication yes/' /etc/ssh/sshd_config

# cloud-init is installed but off unless a test turns it on (by removing
# this file), so that each boot says which of the two did the work.
touch "$root/etc/cloud/cloud-init.disabled"

# Nothing of the build machine's identity stays in the image.
rm -f "$root"/etc/ssh/ssh_host_*
: > "$root/etc/machine-id"
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*

echo "debian-vm: making the ext4 disk image" >&2
truncate -s 3G "$work/rootfs.raw"
mkfs.ext4 -q -F -L batten-root -d "$root" "$work/rootfs.raw"

mv "$work/vmlinuz" "$work/initrd.img" "$work/rootfs.raw" "$cache/"
echo "$cache"
