#!/usr/bin/env bash
# Make a Raspberry Pi OS style boot partition as an image file: a 64 MiB
# FAT32 file system labelled "bootfs", as Pi OS names it, holding every file
# and directory of DIR at its top (user-data, meta-data, cmdline.txt,
# userconf.txt, ssh, ...). On a Pi this partition is mounted on
# /boot/firmware, and it is where the user puts batten's user-data before
# the first boot; the end-to-end test makes one, mounts it in the root from
# images/pi-root.sh, and lets batten read it and write its status there.
#
#   images/pi-boot.sh DIR IMAGE    (re)makes IMAGE; prints nothing but errors
#
# The files go in with mtools (mcopy), so no mount is needed to fill it, and
# the result is checked with fsck.vfat -n. dosfstools and mtools are
# installed if missing (needs root then).
#
# The kernel here has no vfat module (nothing in /proc/filesystems), so the
# tests cannot mount the image with mount -o loop; they use FUSE instead,
# from the package fusefat:
#   fusefat -o rw+ IMAGE MOUNTPOINT      (-o ro for read-only; with neither,
#                                         or with plain rw, it refuses)
#   fusermount -u MOUNTPOINT
# What fusefat 0.1a does that a Pi's own vfat does not (seen with this
# script's images): chmod, chown (even to the owner it shows) and symlink
# fail with ENOSYS, where a Pi's kernel vfat refuses with EPERM the modes and
# owners it cannot store; names that fit 8.3 and that mcopy stores as short
# names with lowercase flags (cmdline.txt) are listed in upper case
# (CMDLINE.TXT), though opening them by either name works; the volume label
# appears as an empty file named bootfs; statvfs says 0 blocks; months are
# off by one. Writing, fsync, and rename() over an existing file work, and
# fsck.vfat finds the image clean after unmounting.
set -euo pipefail

if [ $# != 2 ] || [ ! -d "$1" ]; then
    echo "usage: images/pi-boot.sh DIR IMAGE" >&2
    exit 2
fi
dir=$1 image=$2

if ! command -v mkfs.vfat >/dev/null || ! command -v fsck.vfat >/dev/null ||
    ! command -v mcopy >/dev/null; then
    [ "$(id -u)" = 0 ] || { echo "pi-boot.sh: needs dosfstools and mtools (run as root to install them)" >&2; exit 2; }
    out=$(apt-get update -q 2>&1 &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends dosfstools mtools 2>&1) ||
        { echo "$out" >&2; echo "pi-boot: could not install dosfstools and mtools" >&2; exit 1; }
fi

# Run a command quietly: its output is shown only when it fails.
quiet() {
    local out
    if ! out=$("$@" 2>&1); then
        echo "$out" >&2
        echo "pi-boot: failed: $*" >&2
        return 1
    fi
}

rm -f "$image"
truncate -s 64M "$image"
quiet mkfs.vfat -F 32 -n bootfs "$image"
shopt -s nullglob dotglob
files=("$dir"/*)
if [ ${#files[@]} != 0 ]; then
    # mtools checks disk geometry unless told not to; an image file has none.
    quiet env MTOOLS_SKIP_CHECK=1 mcopy -s -i "$image" "${files[@]}" ::/
fi
quiet fsck.vfat -n "$image"
