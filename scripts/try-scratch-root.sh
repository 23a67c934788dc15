#!/usr/bin/env bash
# Run batten's main job on a scratch root: a throwaway directory holding a
# copy of this machine's own /etc/passwd, group, shadow, os-release, ssh and
# skel, so you can watch what batten does to an image without touching the
# machine itself.
#
#   scripts/try-scratch-root.sh [USER-DATA]    (default: the VPS example)
#
# Needs root (useradd writes files owned by new users). Prints the plan,
# applies it, runs it a second time to show nothing changes, and leaves the
# scratch root for you to look at.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
user_data=${1:-$top/cloud-init/examples/vps-proxy-firewall.yaml}
[ "$(id -u)" = 0 ] || { echo "try-scratch-root: run as root (useradd needs it)" >&2; exit 2; }

# BATTEN=PATH uses that binary instead of building the release one (the
# test of this script passes the one under test).
if [ -n "${BATTEN:-}" ]; then
    batten=$BATTEN
else
    cargo build --release --manifest-path "$top/Cargo.toml" >&2
    batten="${CARGO_TARGET_DIR:-$top/target}/release/batten"
fi

scratch=$(mktemp -d /tmp/batten-scratch.XXXXXX)
mkdir -p "$scratch/etc/sudoers.d" "$scratch/home" "$scratch/var/lib"
for f in passwd group shadow gshadow login.defs; do
    [ -e "/etc/$f" ] && cp -p "/etc/$f" "$scratch/etc/"
done
cp -L /etc/os-release "$scratch/etc/os-release"   # usually a link to ../usr/lib
cp -a /etc/skel "$scratch/etc/"
[ -d /etc/ssh ] && cp -a /etc/ssh "$scratch/etc/"
# batten picks the firewall backend by what the root has installed, so the
# scratch root gets this machine's nft (it is only looked at, never run).
command -v nft >/dev/null || { echo "try-scratch-root: needs nft (apt-get install nftables)" >&2; exit 2; }
mkdir -p "$scratch/usr/sbin" && cp "$(command -v nft)" "$scratch/usr/sbin/nft"
# The proxy examples need nginx's configuration in the root, as an image
# with nginx installed has it.
if [ -d /etc/nginx ]; then
    cp -a /etc/nginx "$scratch/etc/"
elif grep -q '^  proxy:' "$user_data"; then
    echo "try-scratch-root: $user_data has a proxy: install nginx first (apt-get install nginx-light)" >&2
    exit 2
fi
echo "0123456789abcdef0123456789abcdef" > "$scratch/etc/machine-id"

echo "== batten validate $user_data"
"$batten" validate "$user_data"
echo "== batten plan --root $scratch"
"$batten" plan --root "$scratch" --user-data "$user_data"
echo "== batten run --root $scratch"
"$batten" run --root "$scratch" --user-data "$user_data"
echo "== batten run again (nothing changes)"
"$batten" run --root "$scratch" --user-data "$user_data"
echo "== batten status --root $scratch"
"$batten" status --root "$scratch"
echo
echo "The scratch root is $scratch; remove it with: rm -rf $scratch"
