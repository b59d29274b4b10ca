# shellcheck shell=bash
# Shared by up.sh, fault.sh and down.sh: the names of the fault testnet's namespaces and links,
# and the checks that say why it cannot run here. Sourced, not run.
#
# One testnet per machine: node i runs in the network namespace ql-n<i> behind a veth pair whose
# root end, qlv<i>, is a port of the bridge qlbr0 in the root namespace. Node i has
# $QL_SUBNET.<i>/24 on its end (named eth0 inside the namespace); the root namespace, where the
# proxy, the demo upstream and quorumctl run, has $QL_SUBNET.254 on the bridge. Nothing is
# routed anywhere else: the namespaces have no default route, and the root namespace gets a
# blackhole route for the whole /16 so that this traffic can never leave the machine.

# The first three octets of the testnet's /24 (QL_NETNS_SUBNET overrides it).
QL_SUBNET="${QL_NETNS_SUBNET:-10.77.0}"
# shellcheck disable=SC2034 # used by the scripts that source this file
QL_BRIDGE=qlbr0
# Where the testnet's state lives while it is up: nodes, directory, binaries, delayer pids.
QL_STATE=/run/ql-netns

ql_namespace() { printf 'ql-n%s' "$1"; }
ql_link() { printf 'qlv%s' "$1"; }
ql_address() { printf '%s.%s' "$QL_SUBNET" "$1"; }

ql_die() {
    printf '%s: %s\n' "${0##*/}" "$*" >&2
    exit 1
}

# Exit 77 (the automake and Swift test convention for "skipped") naming why namespaces cannot be
# made here. Prints on stdout and stderr so a caller that keeps only one still sees it.
ql_skip() {
    printf '%s: SKIP: %s\n' "${0##*/}" "$*"
    printf '%s: SKIP: %s\n' "${0##*/}" "$*" >&2
    exit 77
}

# Everything the fault testnet needs from the system, or exit 77 naming what is missing.
ql_require_namespaces() {
    [[ "$(uname -s)" == Linux ]] || ql_skip "network namespaces need Linux; this is $(uname -s)"
    command -v ip >/dev/null 2>&1 || ql_skip "no 'ip' command (install iproute2: scripts/install-deps.sh --netns)"
    [[ "$(id -u)" -eq 0 ]] || ql_skip "making network namespaces needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN); run as root"
    local probe="ql-probe-$$" output
    if ! output="$(ip netns add "$probe" 2>&1)"; then
        ql_skip "cannot make a network namespace here (ip netns add: ${output:-failed}); a container without CAP_SYS_ADMIN?"
    fi
    if ! output="$(ip -n "$probe" link add qlprobe0 type veth peer name qlprobe1 2>&1)"; then
        ip netns delete "$probe" 2>/dev/null || true
        ql_skip "cannot make veth links (ip link add type veth: ${output:-failed}); no CAP_NET_ADMIN or no veth driver?"
    fi
    ip netns delete "$probe" 2>/dev/null || true
}

# The namespaces of the testnet that is up, one per line (none when none is).
ql_namespaces() { ip netns list 2>/dev/null | awk '{print $1}' | grep '^ql-n[0-9][0-9]*$' || true; }

# The pids of the processes that run in the testnet's namespaces, space-separated; empty when its
# nodes are gone (the testnet is stale).
ql_live_processes() {
    local namespace
    for namespace in $(ql_namespaces); do ip netns pids "$namespace" 2>/dev/null || true; done | tr '\n' ' ' | sed 's/ $//'
}

# The state file's variables (QL_NODES, QL_DIR, QL_BIN), or exit 1 when no testnet is up.
ql_load_state() {
    [[ -f "$QL_STATE/state" ]] || ql_die "no fault testnet is up (no $QL_STATE/state); start one with testnets/netns/up.sh"
    # shellcheck source=/dev/null
    source "$QL_STATE/state"
}

# Whether node $1 is a node of the testnet that is up.
ql_check_node() {
    if ! [[ "$1" =~ ^[0-9]+$ ]] || (($1 < 1 || $1 > QL_NODES)); then
        ql_die "node '$1': expected a node id 1-$QL_NODES"
    fi
}
