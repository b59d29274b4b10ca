#!/usr/bin/env bash
# Stops the fault testnet and removes its namespaces and links; the directory is kept.
#
#   testnets/netns/down.sh [--dir DIR]
#
# `quorumctl testnet down` stops the proxy, the demo upstream and the nodes (SIGTERM, then SIGKILL
# after 15 s); then every delay.py is stopped, and the namespaces ql-n*, the links qlv*, the bridge
# qlbr0 and the blackhole route are deleted, whether up.sh made all of them or stopped half-way.
# DIR defaults to the one up.sh recorded (else ./testnet-netns). Running it again, or with nothing
# up, changes nothing and exits 0. Exit status 1 when a process had to be killed or something
# could not be removed (the message says what).
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$here/lib.sh"

dir=""
while (($#)); do
    case "$1" in
    --dir)
        (($# >= 2)) || ql_die "--dir needs a value"
        dir="$2"
        shift 2
        ;;
    -h | --help)
        sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *) ql_die "unknown argument '$1' (usage: down.sh [--dir DIR])" ;;
    esac
done

QL_DIR="" QL_BIN=""
if [[ -f "$QL_STATE/state" ]]; then
    # shellcheck source=/dev/null
    source "$QL_STATE/state"
fi
dir="${dir:-${QL_DIR:-$PWD/testnet-netns}}"
failed=0

# The processes first, while the nodes can still be reached to say goodbye.
if [[ -d "$dir/run" ]]; then
    quorumctl="${QL_BIN:+$QL_BIN/quorumctl}"
    if [[ -z "$quorumctl" || ! -x "$quorumctl" ]]; then quorumctl="$(command -v quorumctl || true)"; fi
    if [[ -n "$quorumctl" ]]; then
        "$quorumctl" testnet down --dir "$dir" || failed=1
    else
        echo "down.sh: no quorumctl to stop the processes in $dir/run (up.sh's binaries are gone)" >&2
        failed=1
    fi
fi

# Every delay.py, with the rules that feed it (a node's namespace holds no other rules).
if [[ -d "$QL_STATE" ]]; then
    for ready in "$QL_STATE"/delay-*.ready; do
        [[ -e "$ready" ]] || continue
        pid="$(tr -dc '0-9' <"$ready")"
        if [[ -n "$pid" ]] && grep -q 'delay\.py' "/proc/$pid/cmdline" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            for _ in $(seq 1 30); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
            done
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
fi

for namespace in $(ql_namespaces); do
    ip netns delete "$namespace" || {
        echo "down.sh: cannot delete namespace $namespace" >&2
        failed=1
    }
done
# Deleting a namespace deletes its veth ends and with them the root ends; any left (a namespace
# never made) go here.
for link in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//' | grep '^qlv[0-9][0-9]*$'); do
    ip link delete "$link" 2>/dev/null || true
done
if ip link show "$QL_BRIDGE" >/dev/null 2>&1; then
    ip link delete "$QL_BRIDGE" || {
        echo "down.sh: cannot delete bridge $QL_BRIDGE" >&2
        failed=1
    }
fi
subnet16="${QL_SUBNET%.*}.0.0/16"
if ip -4 route show type blackhole 2>/dev/null | grep -q "^blackhole $subnet16"; then
    ip route delete blackhole "$subnet16" || failed=1
fi
rm -rf "$QL_STATE"

if ((failed)); then
    echo "down.sh: the fault testnet is down, with the problems above" >&2
    exit 1
fi
echo "the fault testnet is down (namespaces, links and bridge removed); its data is kept in $dir"
