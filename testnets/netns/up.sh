#!/usr/bin/env bash
# The fault testnet: a Quorum Latch cluster with every quorumd node in its own network namespace,
# so that one node's links can be cut, delayed or made lossy (fault.sh) while the rest run on.
#
#   testnets/netns/up.sh [--nodes 4] [--threshold 3] [--dir DIR] [--bin DIR]
#
# Makes the namespaces ql-n1..ql-nN, a veth pair per node on the bridge qlbr0, and the addresses
# 10.77.0.<i> (node i) and 10.77.0.254 (the root namespace); nothing is routed off the machine.
# Then `quorumctl testnet up --node-host 10.77.0.<i>... --node-launcher node-exec.sh` does the
# rest as it does for the loopback testnet: certificates (each node's names its address), the
# nodes (each started inside its namespace), the DKG ceremony, the signed demo bundle, the sealed
# demo credential, the latch 'demo', the demo upstream and the proxy (both in the root namespace,
# on 127.0.0.1). It prints the proxy's URL and the latch's token.
#
# --dir is the testnet's directory (default ./testnet-netns; must be empty or missing). --bin is a
# directory holding quorumctl, quorumd and quorum-proxy (QUORUM_BIN does the same); without it
# they are built as scripts/demo.sh builds them (QUORUM_CONFIGURATION, QUORUM_SCRATCH_PATH).
#
# Exit status: 0 up; 77 when namespaces cannot be made here (not Linux, no ip, not root, no
# CAP_NET_ADMIN), with the reason; 1 anything else (what was made is taken down again).
# Stop it with testnets/netns/down.sh.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$here/lib.sh"

nodes=4
threshold=3
dir="$PWD/testnet-netns"
bin="${QUORUM_BIN:-}"
while (($#)); do
    case "$1" in
    --nodes | --threshold | --dir | --bin)
        (($# >= 2)) || ql_die "$1 needs a value"
        case "$1" in
        --nodes) nodes="$2" ;;
        --threshold) threshold="$2" ;;
        --dir) dir="$2" ;;
        --bin) bin="$2" ;;
        esac
        shift 2
        ;;
    -h | --help)
        sed -n '2,22p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *) ql_die "unknown argument '$1' (usage: up.sh [--nodes 4] [--threshold 3] [--dir DIR] [--bin DIR])" ;;
    esac
done
if ! [[ "$nodes" =~ ^[0-9]+$ ]] || ((nodes < 1 || nodes > 253)); then ql_die "--nodes '$nodes': expected 1-253"; fi
[[ "$threshold" =~ ^[0-9]+$ ]] || ql_die "--threshold '$threshold': expected a number"
[[ "$dir" == /* ]] || dir="$PWD/$dir"

ql_require_namespaces
[[ "$QL_SUBNET" =~ ^[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$ ]] ||
    ql_die "QL_NETNS_SUBNET '$QL_SUBNET': expected the first three octets of a /24, as 10.77.0"
# One testnet per machine. What an earlier one left behind (its run was killed before down.sh:
# a test run cut off at its time limit, a reboot of the container) is taken down first; a testnet
# whose namespaces still run processes is someone's, and is left alone.
if [[ -e "$QL_STATE/state" ]] || ip link show "$QL_BRIDGE" >/dev/null 2>&1 || ql_namespaces | grep -q .; then
    live="$(ql_live_processes)"
    [[ -z "$live" ]] ||
        ql_die "a fault testnet is already up on this machine (processes $live run in its namespaces); stop it first with $here/down.sh"
    echo "up.sh: taking down a stale fault testnet (no process runs in its namespaces) left by an earlier run" >&2
    "$here/down.sh" >&2 || ql_die "could not take down the stale fault testnet (down.sh said why above); remove it by hand"
fi
subnet16="${QL_SUBNET%.*}.0.0/16"
# Refuse a range the machine already uses: an address on it, or a route to it other than default.
in_use="$(ip -4 addr show to "$subnet16"; ip -4 route show to match "$(ql_address 1)" | grep -v '^default' || true)"
[[ -z "$in_use" ]] ||
    ql_die "$subnet16 is already in use on this machine (${in_use%%$'\n'*}); pick another range with QL_NETNS_SUBNET"

if [[ -z "$bin" ]]; then
    command -v swift >/dev/null 2>&1 || ql_die "no swift on PATH and no --bin; pass --bin DIR with quorumctl, quorumd and quorum-proxy"
    build=(-c "${QUORUM_CONFIGURATION:-release}")
    if [[ -n "${QUORUM_SCRATCH_PATH:-}" ]]; then build+=(--scratch-path "$QUORUM_SCRATCH_PATH"); fi
    for product in quorumctl quorumd quorum-proxy; do (cd "$root" && swift build "${build[@]}" --product "$product"); done
    bin="$(cd "$root" && swift build "${build[@]}" --show-bin-path)"
fi
for product in quorumctl quorumd quorum-proxy; do
    [[ -x "$bin/$product" ]] || ql_die "no $product in $bin (build it, or pass --bin DIR)"
done
bin="$(cd "$bin" && pwd)"

# From here on, a failure takes down whatever was made.
made=0
cleanup() {
    local status=$?
    if ((status != 0 && made)); then
        echo "up.sh: failed; taking down what was made" >&2
        "$here/down.sh" --dir "$dir" >&2 || true
    fi
}
trap cleanup EXIT

mkdir -p "$QL_STATE"
chmod 700 "$QL_STATE"
printf 'QL_NODES=%q\nQL_DIR=%q\nQL_BIN=%q\nQL_SUBNET=%q\n' "$nodes" "$dir" "$bin" "$QL_SUBNET" >"$QL_STATE/state"
made=1

echo "==> namespaces ql-n1..ql-n$nodes on bridge $QL_BRIDGE ($QL_SUBNET.0/24, nothing routed off the machine)"
ip link add "$QL_BRIDGE" type bridge forward_delay 0 stp_state 0
ip addr add "$(ql_address 254)/24" dev "$QL_BRIDGE"
ip link set "$QL_BRIDGE" up
# Should the bridge ever go away while something still sends to the range, drop it here rather
# than let it follow a default route off the machine.
ip route add blackhole "$subnet16"
for id in $(seq 1 "$nodes"); do
    namespace="$(ql_namespace "$id")"
    link="$(ql_link "$id")"
    ip netns add "$namespace"
    ip link add "$link" type veth peer name eth0 netns "$namespace"
    ip link set "$link" master "$QL_BRIDGE" up
    ip -n "$namespace" link set lo up
    ip -n "$namespace" addr add "$(ql_address "$id")/24" dev eth0
    ip -n "$namespace" link set eth0 up
    printf '  node %s: namespace %s, %s (root end %s)\n' "$id" "$namespace" "$(ql_address "$id")" "$link"
done
# Each node reaches the root namespace's address: the links are up before anything listens.
for id in $(seq 1 "$nodes"); do
    for _ in $(seq 1 50); do
        ip -n "$(ql_namespace "$id")" -4 route get "$(ql_address 254)" >/dev/null 2>&1 && break
        sleep 0.1
    done
done

hosts=()
for id in $(seq 1 "$nodes"); do hosts+=(--node-host "$(ql_address "$id")"); done
echo
echo "==> quorumctl testnet up --dir $dir ${hosts[*]} --node-launcher $here/node-exec.sh"
"$bin/quorumctl" testnet up --nodes "$nodes" --threshold "$threshold" --dir "$dir" "${hosts[@]}" \
    --node-launcher "$here/node-exec.sh"

cat <<SUMMARY

==> the fault testnet is up: node i in namespace ql-n<i> at $QL_SUBNET.<i>; proxy and upstream in the root namespace
Faults (one node at a time or several):
  $here/fault.sh cut NODE         cut the node's link (it neither sends nor receives)
  $here/fault.sh delay MS NODE    hold every packet to and from the node MS ms (round trip +2*MS)
  $here/fault.sh loss PCT NODE    drop PCT % of the packets to and from the node
  $here/fault.sh heal NODE|all    undo every fault of the node (or of all)
  $here/fault.sh show             the faults in force
Inside a node's namespace:  ip netns exec ql-n1 ss -tn
Stop it:  $here/down.sh --dir $dir
SUMMARY
