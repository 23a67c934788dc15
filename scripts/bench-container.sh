#!/usr/bin/env bash
# First boot at native speed: the cached Debian image booted as a container
# (systemd-nspawn --boot), three ways, side by side. Called by
# `scripts/bench --container [BOOTS]`, which builds the static binary:
#
#   scripts/bench-container.sh BATTEN BOOTS
#
# The image (images/debian-vm.sh) is baked as for the VM boots
# (scripts/vm-bake.sh) and copied into a directory per kind:
#   - batten: the static binary installed with --generalize;
#   - cloud-init: cloud-init switched on, no batten;
#   - bare: neither; host key, user, key and `PasswordAuthentication no`
#     put in offline.
# batten and cloud-init read the same user-data from a NoCloud seed
# directory (/var/lib/cloud/seed/nocloud/). Every boot starts from the
# baked directory again (--volatile=overlay: writes go to a tmpfs), in a
# network namespace of its own joined by a veth pair to a second namespace
# where the probes run (198.51.100.0/24, nothing else). The boots are
# interleaved; each is timed from the start of systemd-nspawn.
#
# What a container leaves out: the kernel's boot, udev's device probing,
# firmware and the disk's own speed; everything in user space (systemd,
# batten, cloud-init's Python, sshd) runs as on a machine.
set -euo pipefail

[ $# -eq 2 ] || { sed -n '5,6p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
batten=$1 boots=$2
top=$(cd "$(dirname "$0")/.." && pwd)
[ "$(id -u)" = 0 ] || { echo "bench: run as root (namespaces, loop mounts)" >&2; exit 2; }
if ! command -v systemd-nspawn >/dev/null; then
    echo "bench: installing systemd-container (systemd-nspawn)" >&2
    { apt-get update -q && apt-get install -y -q systemd-container; } >&2 ||
        { echo "bench: could not install systemd-container: apt-get install systemd-container" >&2; exit 69; }
fi
for tool in ssh ssh-keygen python3 ip; do
    command -v "$tool" >/dev/null || { echo "bench: needs $tool (scripts/test.sh installs it)" >&2; exit 2; }
done

work=$(mktemp -d /tmp/batten-bench-ct.XXXXXX)
guest=bt-bench-g$$ client=bt-bench-c$$
nspawn_pid=
stop_container() {
    # Everything of the container lives in its network namespace.
    if ip netns list | grep -qw "$guest"; then
        ip netns pids "$guest" | xargs -r kill -KILL 2>/dev/null || true
    fi
    if [ -n "$nspawn_pid" ]; then
        kill -KILL "$nspawn_pid" 2>/dev/null || true
        wait "$nspawn_pid" 2>/dev/null || true
        nspawn_pid=
    fi
    ip netns del "$guest" 2>/dev/null || true
    ip netns del "$client" 2>/dev/null || true
}
# BATTEN_BENCH_KEEP=1 keeps the work directory (consoles, status, analyze);
# a failed boot keeps it too.
keep=${BATTEN_BENCH_KEEP:-0}
finish() {
    stop_container
    if [ "$keep" = 1 ]; then echo "bench: kept $work" >&2; else rm -rf "$work"; fi
}
trap finish EXIT
# Anything that fails keeps the consoles and records for a look.
trap 'keep=1' ERR

ssh-keygen -q -t ed25519 -N "" -C bench -f "$work/key"
mkdir -p "$work/seed"
cat > "$work/seed/user-data" <<USERDATA
#cloud-config
users:
  - name: admin
    sudo: ALL=(ALL) NOPASSWD:ALL
    shell: /bin/bash
    ssh_authorized_keys: ["$(cat "$work/key.pub")"]
ssh_pwauth: false
ssh_genkeytypes: [ed25519]
USERDATA
echo "instance-id: iid-bench" > "$work/seed/meta-data"

image=$("$top/images/debian-vm.sh")
echo >&2 "bench: baking three container roots"
"$top/scripts/vm-bake.sh" "$image" "$work/batten.raw" "$batten" >&2
"$top/scripts/vm-bake.sh" "$image" "$work/cloud-init.raw" none --cloud-init >&2
"$top/scripts/vm-bake.sh" "$image" "$work/bare.raw" none --bare admin "$work/key.pub" >&2
for kind in batten cloud-init bare; do
    root=$work/root-$kind
    mkdir -p "$root" "$work/mnt"
    unshare --mount --propagation private sh -euc \
        'mount -o loop,ro "$1" "$2"; cp -a "$2/." "$3/"' bake "$work/$kind.raw" "$work/mnt" "$root"
    rm -f "$work/$kind.raw"
    # The same address in every kind, set by the image's own networkd, so
    # that network-online.target is reached as on a machine with DHCP.
    cat > "$root/etc/systemd/network/05-bench.network" <<'EOF'
[Match]
Name=bt0

[Network]
Address=198.51.100.2/24
Address=2001:db8:b::2/64
# No router answers here: without this, networkd solicits one for about
# 13 s before it calls the link configured, and network-online.target
# (which cloud-init's network stage waits for) waits as long.
IPv6AcceptRA=no
EOF
    if [ "$kind" != bare ]; then
        install -d -m 755 "$root/var/lib/cloud/seed/nocloud"
        install -m 600 "$work/seed/user-data" "$work/seed/meta-data" "$root/var/lib/cloud/seed/nocloud/"
    fi
done
# batten logs every program it starts, with its time, at debug level.
install -d "$work/root-batten/etc/systemd/system/batten.service.d"
printf '[Service]\nEnvironment=RUST_LOG=info,batten::host::exec=debug\n' \
    > "$work/root-batten/etc/systemd/system/batten.service.d/bench.conf"

ssh_opts=(-i "$work/key" -o BatchMode=yes -o StrictHostKeyChecking=no
    -o UserKnownHostsFile=/dev/null -o ConnectTimeout=3 -o LogLevel=ERROR)
inside() { timeout 120 ip netns exec "$client" ssh "${ssh_opts[@]}" admin@198.51.100.2 "$@"; }

# Probes, timed from $1 (seconds since the epoch). Until sshd listens, its
# socket is watched from inside the guest's namespace (/proc/PID/net/tcp of
# a process there), without a packet: batten's firewall lets one address
# open 10 new SSH connections and then one a second, and a probe that
# knocked every few milliseconds would measure that limit, not the boot.
# Then, from the client namespace: sshd's banner, whether passwords are
# offered then, the key login, and when passwords are no longer offered.
# Prints the four on one line.
probe() {
    timeout 150 ip netns exec "$client" python3 - "$1" "$work/key" "/run/netns/$guest" <<'PY'
import os, socket, subprocess, sys, time
t0, key, netns, host = float(sys.argv[1]), sys.argv[2], sys.argv[3], "198.51.100.2"
limit = t0 + 120
since = lambda: time.time() - t0
opts = ["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o",
        "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=2", "-o", "LogLevel=ERROR"]

def guest_pid():
    inode = os.stat(netns).st_ino
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.stat(f"/proc/{name}/ns/net").st_ino == inode:
                    return name
            except OSError:
                pass

def listening(pid):
    for table in ("tcp", "tcp6"):
        try:
            with open(f"/proc/{pid}/net/{table}") as f:
                for line in f.readlines()[1:]:
                    local, state = line.split()[1], line.split()[3]
                    if local.endswith(":0016") and state == "0A":
                        return True
        except OSError:
            pass
    return False

def offers_password():
    out = subprocess.run(["ssh", *opts, "-o", "PreferredAuthentications=none",
                          f"probe@{host}", "true"], capture_output=True, text=True,
                         timeout=10).stderr
    if "password" in out or "keyboard-interactive" in out:
        return True
    return False if "Permission denied" in out else None

pid = None
while time.time() < limit:
    pid = pid or guest_pid()
    if pid and listening(pid):
        break
    time.sleep(0.005)
answer = login = off = None
while answer is None and time.time() < limit:
    try:
        with socket.create_connection((host, 22), timeout=2) as s:
            s.settimeout(2)
            if s.recv(64).startswith(b"SSH-"):
                answer = since()
    except OSError:
        time.sleep(0.2)
first = offers_password() if answer is not None else None
while answer is not None and login is None and time.time() < limit:
    if subprocess.run(["ssh", "-i", key, *opts, f"admin@{host}", "true"],
                      capture_output=True, timeout=10).returncode == 0:
        login = since()
    else:
        time.sleep(0.05)
while login is not None and off is None and time.time() < limit:
    if offers_password() is False:
        off = since()
    else:
        time.sleep(0.05)
if off is None:
    sys.exit(f"no answer, key login or end of password login within 120 s: {answer} {login} {off}")
print(f"{answer:.3f} {login:.3f} {'yes' if first else 'no'} {off:.3f}")
PY
}

# Wall time of systemd units in this boot, in seconds: from the main
# process's start to its exit, summed.
unit_seconds() {
    inside "for u in $*; do systemctl show \$u -p ExecMainStartTimestampMonotonic -p ExecMainExitTimestampMonotonic --value | tr '\n' ' '; echo; done" |
        awk 'NF == 2 && $2 > $1 {t += $2 - $1} END {printf "%.3f\n", t / 1e6}'
}

boot_once() {
    local kind=$1 round=$2 started figures answer login first off
    ip netns add "$guest"
    ip netns add "$client"
    ip link add bt0 netns "$guest" type veth peer name bt1 netns "$client"
    ip -n "$client" addr add 198.51.100.1/24 dev bt1
    ip -n "$client" link set lo up
    ip -n "$client" link set bt1 up
    # The guest's address is known: no ARP round that fails while the
    # container's link is still down and then backs off.
    ip -n "$client" neigh replace 198.51.100.2 dev bt1 nud permanent \
        lladdr "$(ip -n "$guest" -o link show bt0 | grep -o 'link/ether [0-9a-f:]*' | cut -d' ' -f2)"
    started=$(date +%s.%N)
    setsid systemd-nspawn --quiet --boot --register=no --keep-unit --capability=CAP_NET_ADMIN \
        --volatile=overlay --network-namespace-path="/run/netns/$guest" \
        --machine="bench-$kind" -D "$work/root-$kind" > "$work/console-$kind-$round.log" 2>&1 &
    nspawn_pid=$!
    if ! figures=$(probe "$started"); then
        echo "bench: the $kind container: $figures; its console is in $work/console-$kind-$round.log" >&2
        keep=1
        exit 1
    fi
    read -r answer login first off <<< "$figures"
    echo "$answer" >> "$work/answer-$kind"
    echo "$login" >> "$work/login-$kind"
    echo "$off" >> "$work/off-$kind"
    echo "$first" >> "$work/first-$kind"
    printf >&2 'bench: %-10s boot %2d: sshd answered at %.3f s (passwords offered: %s), key login at %.3f s, passwords off at %.3f s\n' \
        "$kind" "$round" "$answer" "$first" "$login" "$off"
    case $kind in
        batten)
            inside sudo batten status --format json > "$work/status-$round.json"
            python3 -c 'import json,sys; print(json.load(sys.stdin)["last_run"]["millis"] / 1000)' \
                < "$work/status-$round.json" >> "$work/own-$kind"
            unit_seconds batten.service >> "$work/units-$kind"
            inside sudo journalctl -b -u batten.service -o cat --no-pager |
                sed -n 's/^\[DEBUG\] ran \(.*\) in \([0-9]*\) ms$/\2 \1/p' > "$work/programs-$round.txt"
            ;;
        cloud-init)
            inside "cloud-init status --wait >/dev/null; sudo cloud-init analyze show" > "$work/analyze-$round.txt"
            awk '/^Total Time:/ {print $3}' "$work/analyze-$round.txt" | tail -1 >> "$work/own-$kind"
            unit_seconds cloud-init-local.service cloud-init.service cloud-config.service cloud-final.service \
                >> "$work/units-$kind"
            ;;
    esac
    # When sshd became active, from systemd's start in the container; the
    # critical chain once the boot has finished (bounded: batten's updates
    # unit retries apt without a network).
    inside 'u=$(systemctl show -p UserspaceTimestampMonotonic --value)
        a=$(systemctl show ssh.service -p ActiveEnterTimestampMonotonic --value)
        echo "$a $u" | awk "{printf \"%.3f\\n\", (\$1 - \$2) / 1e6}"' >> "$work/sshd-$kind"
    if [ "$round" = "$boots" ]; then
        inside 'timeout 20 systemctl is-system-running --wait >/dev/null; systemd-analyze critical-chain ssh.service' \
            > "$work/chain-$kind.txt" 2>&1 || true
    fi
    if [ "$round" = 1 ]; then
        echo "$kind: $(inside sudo sshd -T | grep -i '^passwordauthentication')" >> "$work/end-states"
    fi
    stop_container
}

echo >&2 "bench: $boots container boots of each root, interleaved"
for round in $(seq "$boots"); do
    for kind in batten cloud-init bare; do boot_once "$kind" "$round"; done
done

# Median and range of a file of numbers.
median() { sort -n "$1" | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
spread() { sort -n "$1" | awk 'NR == 1 {lo=$1} {hi=$1} END {printf "%.2f-%.2f", lo, hi}'; }
m() { median "$work/$1"; }
cell() { printf '%6.3f (%s)' "$(m "$1")" "$(spread "$work/$1")"; }
offered() { printf '%s/%s' "$(grep -c yes "$work/first-$1" || true)" "$(wc -l < "$work/first-$1")"; }

echo
echo "first boot in a container: Debian 12 image, systemd-nspawn --boot, native speed; median (range) of $boots boots each"
echo "(seconds from starting systemd-nspawn; sshd answers = its banner arrives)"
printf '  %-28s %-20s %-20s %-20s %-10s %-9s %s\n' image "sshd answers" "key login" "passwords off" "offered" "own" "its units"
for kind in batten cloud-init bare; do
    case $kind in
        batten) label="batten (static release)" own=$(m own-batten) units=$(m units-batten) ;;
        cloud-init) label="cloud-init, same user-data" own=$(m own-cloud-init) units=$(m units-cloud-init) ;;
        bare) label="bare image, keys injected" own=- units=- ;;
    esac
    printf '  %-28s %-20s %-20s %-20s %-10s %-9s %s\n' "$label" "$(cell "answer-$kind")" "$(cell "login-$kind")" \
        "$(cell "off-$kind")" "$(offered "$kind")" "$own" "$units"
done
printf '  sshd active, seconds after systemd started in the container: batten %.3f, cloud-init %.3f, bare %.3f\n' \
    "$(m sshd-batten)" "$(m sshd-cloud-init)" "$(m sshd-bare)"
echo "  offered: boots in which sshd offered password login when it first answered"
echo "  own: batten status --format json (last_run.millis) / cloud-init analyze show (Total Time)"
echo "  its units: systemd's start-to-exit of batten.service / the four cloud-init services"
ratio() { echo "($(m "$1-batten") - $(m "$1-bare")) / ($(m "$1-cloud-init") - $(m "$1-bare"))" | bc -l; }
printf '  batten adds %+.3f s to time-to-login over the bare image, cloud-init %+.3f s\n' \
    "$(echo "$(m login-batten) - $(m login-bare)" | bc -l)" "$(echo "$(m login-cloud-init) - $(m login-bare)" | bc -l)"
printf '  (batten - bare) / (cloud-init - bare): time-to-login %.3f, time-to-SSH %.3f (target: at most 0.1)\n' \
    "$(ratio login)" "$(ratio answer)"
printf "  batten's own time / cloud-init's: %.3f (batten's own target: under 0.100 s)\n" \
    "$(echo "$(m own-batten) / $(m own-cloud-init)" | bc -l)"
echo "  password login as sshd -T says at the end of the first boot of each:"
sed 's/^/    /' "$work/end-states"
echo
echo "programs batten started in the last boot, with their time (RUST_LOG=batten::host::exec=debug):"
sed 's/^\([0-9]*\) /  \1 ms  /' "$work/programs-$boots.txt"
echo
echo "batten's steps in the last boot (batten status --format json):"
python3 - "$work/status-$boots.json" <<'PY'
import json, sys
run = json.load(open(sys.argv[1]))["last_run"]
for step in run["steps"]:
    print(f"  {step['millis']:6d} ms  {step['what']}")
print(f"  {run['millis']:6d} ms  the whole run, reading and checking the user-data included")
PY
for kind in batten cloud-init bare; do
    echo
    echo "$kind: systemd-analyze critical-chain ssh.service (last boot)"
    if grep -q '^ssh.service' "$work/chain-$kind.txt"; then
        sed -n '/^ssh.service/,$p' "$work/chain-$kind.txt" | sed 's/^/  /'
    else
        sed 's/^/  /' "$work/chain-$kind.txt"
    fi
done
echo
echo "cloud-init's stages in the last boot (cloud-init analyze show):"
grep -E "Finished stage|Total Time" "$work/analyze-$boots.txt" | sed 's/^/  /'
