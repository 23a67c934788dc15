#!/usr/bin/env bash
# Boot a baked image for one first boot, in the foreground, bounded:
#
#   scripts/vm-boot.sh IMAGE_DIR BAKED.raw WORK_DIR SSH_PORT SECONDS [SEED.iso] [-- QEMU_ARGS...]
#
# - every boot is a first boot: the disk is a fresh qcow2 overlay in
#   WORK_DIR over BAKED.raw, which stays untouched;
# - SEED.iso (a NoCloud seed, volume label cidata) is attached when given;
# - user-mode networking with restrict=on: the guest reaches nothing
#   outside, and the host reaches its SSH on 127.0.0.1:SSH_PORT, and its
#   ports 80, 8080 and 443 on SSH_PORT+1, +2 and +3 (the proxy, a panel
#   behind it, the proxy's HTTPS);
# - the serial console goes to WORK_DIR/console.log;
# - qemu is stopped after SECONDS whatever happens (timeout), and the
#   caller kills this script's process group when it is done earlier;
# - BATTEN_VM_REUSE=1 keeps the previous overlay (a second boot);
# - BATTEN_VM_METADATA=PORT: see below; QEMU_ARGS after `--` (e.g. -smbios)
#   go to qemu as they are.
# KVM is used when it boots a kernel here (scripts/vm-accel.sh probes it,
# 15 s at most), else software emulation (-accel tcg,thread=multi -cpu max).
# BATTEN_VM_ACCEL=kvm|tcg skips the probe.
set -euo pipefail

image=$1 baked=$2 work=$3 port=$4 seconds=$5
shift 5
seed=
if [ $# -gt 0 ] && [ "$1" != "--" ]; then seed=$1; shift; fi
[ "${1:-}" = "--" ] && shift

accel=$("$(dirname "$0")/vm-accel.sh" "$image")
case $accel in
    kvm) cpu=(-accel kvm -cpu host) ;;
    *) cpu=(-accel "tcg,thread=multi" -cpu max) ;;
esac
echo "vm-boot: accel $accel" >&2

# BATTEN_VM_METADATA=HOST_PORT makes the metadata address reachable from the
# guest: each connection to its 169.254.169.254:80 is relayed to
# 127.0.0.1:HOST_PORT on the host (scripts/tcp-relay.py), where a test
# serves a fake metadata service (restrict=on leaves explicit forwards
# working and blocks everything else).
guestfwd=
if [ -n "${BATTEN_VM_METADATA:-}" ]; then
    # A relay per connection: a plain tcp: forward connects once, at start.
    relay=$(cd "$(dirname "$0")" && pwd)/tcp-relay.py
    # slirp forwards only addresses inside its own network, so the guest's
    # network is made link-local itself, as on many clouds.
    guestfwd=",net=169.254.0.0/16,host=169.254.0.2,dns=169.254.0.3,dhcpstart=169.254.0.15"
    guestfwd+=",guestfwd=tcp:169.254.169.254:80-cmd:/usr/bin/python3 $relay 127.0.0.1 $BATTEN_VM_METADATA"
fi

# BATTEN_VM_REUSE=1 boots the overlay of the previous boot again: a second
# boot of the same machine rather than a first boot.
if [ "${BATTEN_VM_REUSE:-}" != 1 ] || [ ! -f "$work/disk.qcow2" ]; then
    rm -f "$work/disk.qcow2"
    qemu-img create -q -f qcow2 -F raw -b "$(readlink -f "$baked")" "$work/disk.qcow2"
fi
drives=(-drive "file=$work/disk.qcow2,if=virtio,format=qcow2")
if [ -n "$seed" ]; then
    drives+=(-drive "file=$seed,if=virtio,format=raw,readonly=on")
fi
exec timeout "$seconds" qemu-system-x86_64 "${cpu[@]}" -smp 2 -m 1024 \
    -nographic -no-reboot -monitor none -display none \
    -kernel "$image/vmlinuz" -initrd "$image/initrd.img" \
    -append "root=/dev/vda rw console=ttyS0 net.ifnames=0" \
    "${drives[@]}" \
    -netdev "user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:$port-:22,hostfwd=tcp:127.0.0.1:$((port + 1))-:80,hostfwd=tcp:127.0.0.1:$((port + 2))-:8080,hostfwd=tcp:127.0.0.1:$((port + 3))-:443$guestfwd" \
    -device virtio-net-pci,netdev=net0 \
    -serial "file:$work/console.log" \
    "$@"
