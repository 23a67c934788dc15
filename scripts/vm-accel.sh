#!/usr/bin/env bash
# Say which accelerator boots the VM image's kernel on this machine:
#
#   scripts/vm-accel.sh IMAGE_DIR      prints kvm or tcg
#
# /dev/kvm can exist and still not boot a stock Debian kernel (nested
# virtualisation without the features it needs), so KVM counts only when
# the kernel gets as far as running its init within 15 s. Anything else
# means software emulation. BATTEN_VM_ACCEL=kvm|tcg answers without probing.
set -euo pipefail

image=$1
if [ -n "${BATTEN_VM_ACCEL:-}" ]; then
    echo "$BATTEN_VM_ACCEL"
    exit 0
fi
if [ ! -w /dev/kvm ]; then
    echo tcg
    exit 0
fi
probe=$(mktemp)
trap 'rm -f "$probe"' EXIT
timeout 15 qemu-system-x86_64 -accel kvm -cpu host -m 512 -nographic -no-reboot \
    -kernel "$image/vmlinuz" -initrd "$image/initrd.img" \
    -append "console=ttyS0 panic=-1" -serial "file:$probe" -monitor none \
    -display none >/dev/null 2>&1 || true
if grep -q "Run /init as init process" "$probe"; then echo kvm; else echo tcg; fi
