#!/usr/bin/env bash
# The replicated log under open-loop receipt load (issue 7: "a receipt is inside a quorum-signed
# checkpoint within 1 s at p99 under 500 receipts/s").
#
#   scripts/bench-log.sh [RATE] [SECONDS] [extra `quorumctl bench log` flags...]
#                                        (defaults: 500 receipts/s for 10 s)
#
# Builds quorumd and quorumctl in release mode (scratch path .build-bench-log, or $SCRATCH), makes a
# throwaway 4-node cluster in a temporary directory (certificates, 3-of-4 dealer keys installed in
# each data directory), starts the nodes on loopback, waits until `quorumctl status` sees them all,
# and runs `quorumctl bench log` with the proxy certificate: receipt entries signed with the dealer's
# shares (a plain Ed25519 signature under the group key, as the quorum makes them) are submitted at
# the rate through the proxy's batching LogSubmitter, and each is stamped when node 2's newest
# quorum checkpoint first covers it. Prints the machine, the figures and each node's log status; the
# nodes are stopped and the directory removed on exit. Set KEEP=1 to keep it (node logs are there),
# and BIN=<dir> to use quorumd and quorumctl already built there. Run it on a quiet machine: the
# figure is a latency under load, and other work on the same cores shows up in it.
set -euo pipefail
cd "$(dirname "$0")/.."

rate="${1:-500}"
seconds="${2:-10}"
[[ $# -gt 0 ]] && shift
[[ $# -gt 0 ]] && shift

# shellcheck source=scripts/lib/local-cluster.sh
source scripts/lib/local-cluster.sh
bin="$(release_binaries "${SCRATCH:-.build-bench-log}" quorumd quorumctl)"
quorumctl="$bin/quorumctl"
quorumd="$bin/quorumd"
work="$(mktemp -d "${TMPDIR:-/tmp}/bench-log.XXXXXX")"
cleanup() {
    cluster_stop || echo "node logs are in $work" >&2
    if [[ "${KEEP:-0}" == 1 ]]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

cluster_write "$work" 4
cluster_install_dealer_keys "$work" 4 3
cluster_start "$work" 4 --log-level "${LOG_LEVEL:-warning}"
echo "== waiting for the cluster"
cluster_wait "$work"
cat "$work/status"

echo "== machine"
echo "$(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); " \
    "load average $(cut -d' ' -f1-3 /proc/loadavg); $(swift --version 2>/dev/null | head -1)"
echo "== quorumctl bench log --rate $rate --seconds $seconds $*"
"$bin/quorumctl" bench log --cluster "$work/cluster.toml" --certs-dir "$work/certs" \
    --dealer "$work/dealer" --rate "$rate" --seconds "$seconds" "$@"
echo "== log status after the run"
"$bin/quorumctl" status --cluster "$work/cluster.toml" --certs-dir "$work/certs" || true
