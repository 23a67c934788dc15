#!/usr/bin/env bash
# Bake batten into a copy of the cached Debian VM image:
#
#   scripts/vm-bake.sh IMAGE_DIR OUT.raw [BATTEN] [--cloud-init]
#
# --cloud-init also switches the image's cloud-init on (it is installed but
# disabled in the base image), for the test of batten beside it.
#
# IMAGE_DIR is what images/debian-vm.sh printed; OUT.raw becomes a sparse
# copy of its rootfs.raw with `batten install --root ... --generalize` done
# on it (binary, units, enable links; no host keys, empty machine-id). The
# image is loop-mounted inside a private mount namespace, so the mount is
# seen by nothing else and goes away with the script even if it fails.
# Needs root.
set -euo pipefail

image=$1
out=$2
batten=${3:-$(cd "$(dirname "$0")/.." && pwd)/target/debug/batten}
cloud_init=${4:-}
[ -x "$batten" ] || { echo "vm-bake: no batten binary at $batten (cargo build first)" >&2; exit 2; }

cp --sparse=always "$image/rootfs.raw" "$out"
mnt=$(mktemp -d)
trap 'rmdir "$mnt" 2>/dev/null || true' EXIT
# shellcheck disable=SC2016 # the inner script takes its paths as $1..$3
unshare --mount --propagation private sh -euc '
    mount -o loop "$1" "$2"
    "$3" install --root "$2" --generalize
    if [ "$4" = --cloud-init ]; then rm -f "$2/etc/cloud/cloud-init.disabled"; fi
    umount "$2"
' vm-bake "$out" "$mnt" "$batten" "$cloud_init"
