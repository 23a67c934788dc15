#!/usr/bin/env bash
# Bake a copy of the cached Debian VM image for one kind of first boot:
#
#   scripts/vm-bake.sh IMAGE_DIR OUT.raw [BATTEN] [--cloud-init]
#   scripts/vm-bake.sh IMAGE_DIR OUT.raw none --cloud-init
#   scripts/vm-bake.sh IMAGE_DIR OUT.raw none --bare USER KEY.pub
#   scripts/vm-bake.sh IMAGE_DIR OUT.raw [BATTEN] --default-password USER
#   scripts/vm-bake.sh IMAGE_DIR OUT.raw [BATTEN] --add-deb FILE.deb
#   scripts/vm-bake.sh IMAGE_DIR OUT.raw [BATTEN] --log-programs
#
# - BATTEN (default target/debug/batten): `batten install --root ...
#   --generalize` on the copy (binary, units, enable links; no host keys,
#   empty machine-id);
# - --cloud-init switches the image's cloud-init on (it is installed but
#   disabled in the base image): beside batten for the test that both read
#   one seed, or alone (BATTEN `none`) for the benchmark's cloud-init boot;
# - --bare (BATTEN `none`): neither runs at boot. The end state they would
#   make is put in offline instead, as an image builder injects it: ed25519
#   host keys, USER with KEY.pub as its only authorized key and sudo, and
#   password login off. The benchmark's baseline boot.
# - --default-password USER plants an account USER whose password is its
#   own name (a known default), hashed with yescrypt as Debian 12 does
#   (`mkpasswd`, from Debian's whois): batten's first boot must lock it.
# - --add-deb FILE.deb (may be repeated) installs a Debian package into the
#   copy offline, with the image's own dpkg in a chroot: the VM needs no
#   network for it (the benchmark's Lynis audit). Its dependencies must
#   already be in the image; dpkg refuses it otherwise.
# - --log-programs makes batten.service log every program it starts, with
#   its time, at debug level (a drop-in setting RUST_LOG): the benchmark
#   lists them.
#
# IMAGE_DIR is what images/debian-vm.sh printed; OUT.raw becomes a sparse
# copy of its rootfs.raw. The copy is loop-mounted inside a private mount
# namespace, so the mount is seen by nothing else and goes away with the
# script even if it fails. Needs root.
set -euo pipefail

usage() { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
[ $# -ge 2 ] || usage
image=$1 out=$2
shift 2
batten=$(cd "$(dirname "$0")/.." && pwd)/target/debug/batten
if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then batten=$1; shift; fi
mode=batten cloud_init=no log_programs=no user='' key='' planted='' planted_hash='' debs=()
while [ $# -gt 0 ]; do
    case $1 in
        --cloud-init) cloud_init=yes; shift ;;
        --log-programs) log_programs=yes; shift ;;
        --default-password) [ $# -ge 2 ] || usage; planted=$2; shift 2 ;;
        --bare) [ $# -ge 3 ] || usage; mode=bare user=$2 key=$3; shift 3 ;;
        --add-deb)
            [ $# -ge 2 ] || usage
            [ -s "$2" ] && [ "${2%.deb}" != "$2" ] || { echo "vm-bake: no .deb file at $2" >&2; exit 2; }
            debs+=("$(readlink -f "$2")"); shift 2 ;;
        *) usage ;;
    esac
done
if [ "$batten" = none ]; then
    [ "$mode" = bare ] || [ "$cloud_init" = yes ] ||
        { echo "vm-bake: with BATTEN none, give --cloud-init or --bare" >&2; exit 2; }
    [ "$mode" = bare ] || mode=none
else
    [ "$mode" = batten ] || { echo "vm-bake: --bare bakes no batten: give none as BATTEN" >&2; exit 2; }
    [ -x "$batten" ] || { echo "vm-bake: no batten binary at $batten (cargo build first)" >&2; exit 2; }
fi
if [ "$log_programs" = yes ] && [ "$mode" != batten ]; then
    echo "vm-bake: --log-programs is for an image with batten" >&2; exit 2
fi
case $user in *[!a-z0-9_-]*) echo "vm-bake: user name $user is not a plain name" >&2; exit 2 ;; esac
[ "$mode" != bare ] || [ -s "$key" ] || { echo "vm-bake: no public key at $key" >&2; exit 2; }
case $planted in *[!a-z0-9_-]*) echo "vm-bake: user name $planted is not a plain name" >&2; exit 2 ;; esac
if [ -n "$planted" ]; then
    command -v mkpasswd >/dev/null || { echo "vm-bake: --default-password needs mkpasswd (apt-get install whois)" >&2; exit 69; }
    planted_hash=$(mkpasswd -m yescrypt "$planted")
fi

cp --sparse=always "$image/rootfs.raw" "$out"
mnt=$(mktemp -d)
trap 'rmdir "$mnt" 2>/dev/null || true' EXIT
# shellcheck disable=SC2016 # the inner script takes its arguments as $1..$9 and the .debs after
unshare --mount --propagation private sh -euc '
    out=$1 mnt=$2 mode=$3 batten=$4 cloud_init=$5 user=$6 key=$7 planted=$8 planted_hash=$9
    log_programs=${10}
    shift 10
    mount -o loop "$out" "$mnt"
    for deb in "$@"; do
        # The dpkg of the image itself writes its database, whatever the host runs.
        cp "$deb" "$mnt/tmp/vm-bake.deb"
        chroot "$mnt" dpkg -i /tmp/vm-bake.deb >&2
        rm -f "$mnt/tmp/vm-bake.deb"
    done
    if [ -n "$planted" ]; then
        useradd --root "$mnt" --create-home --shell /bin/bash -p "$planted_hash" "$planted"
    fi
    case $mode in
        batten) "$batten" install --root "$mnt" --generalize ;;
        bare)
            ssh-keygen -q -t ed25519 -N "" -C "root@batten-vm" -f "$mnt/etc/ssh/ssh_host_ed25519_key"
            useradd --root "$mnt" --create-home --shell /bin/bash --groups sudo "$user"
            home=$mnt/home/$user
            install -d -m 700 "$home/.ssh"
            install -m 600 "$key" "$home/.ssh/authorized_keys"
            chown -R --reference="$home" "$home/.ssh"
            echo "$user ALL=(ALL) NOPASSWD:ALL" > "$mnt/etc/sudoers.d/90-$user"
            chmod 440 "$mnt/etc/sudoers.d/90-$user"
            sed -i "s/^PasswordAuthentication.*/PasswordAuthentication no/" "$mnt/etc/ssh/sshd_config"
            ;;
    esac
    if [ "$cloud_init" = yes ]; then rm -f "$mnt/etc/cloud/cloud-init.disabled"; fi
    if [ "$log_programs" = yes ]; then
        install -d "$mnt/etc/systemd/system/batten.service.d"
        printf "[Service]\nEnvironment=RUST_LOG=info,batten::host::exec=debug\n" \
            > "$mnt/etc/systemd/system/batten.service.d/bench.conf"
    fi
    umount "$mnt"
' vm-bake "$out" "$mnt" "$mode" "$batten" "$cloud_init" "$user" "$key" "$planted" "$planted_hash" \
    "$log_programs" ${debs[@]+"${debs[@]}"}
