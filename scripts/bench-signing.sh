#!/usr/bin/env bash
# The signing service under open-loop load (issue 5: "signing round trip p99 <= 1 ms at 500 req/s").
#
#   scripts/bench-signing.sh [RATE] [SECONDS] [extra `quorumctl bench signing` flags...]
#                                            (defaults: 500 requests/s for 10 s)
#
# Builds quorumd and quorumctl in release mode (scratch path .build-bench-signing, or $SCRATCH),
# makes a throwaway 4-node cluster in a temporary directory (certificates, 3-of-4 dealer keys
# installed in each data directory), starts the nodes on loopback, waits until `quorumctl status`
# sees them all, pushes a one-latch bench bundle, and runs `quorumctl bench signing` with the proxy
# certificate: first one node's decide-and-sign round trip (a DecideRequest naming it a signer: since
# issue 6 a node signs only decisions it reached), then the full decision (every node decides, 3
# sign in the same round; shares aggregated and the signature verified). Prints the machine
# and the figures; the nodes
# are stopped and the directory removed on exit. Set KEEP=1 to keep it (node logs are there), and
# BIN=<dir> to use quorumd and quorumctl already built there.
set -euo pipefail
cd "$(dirname "$0")/.."

rate="${1:-500}"
seconds="${2:-10}"
[[ $# -gt 0 ]] && shift
[[ $# -gt 0 ]] && shift

# shellcheck source=scripts/lib/local-cluster.sh
source scripts/lib/local-cluster.sh
bin="$(release_binaries "${SCRATCH:-.build-bench-signing}" quorumd quorumctl)"
quorumctl="$bin/quorumctl"
quorumd="$bin/quorumd"
work="$(mktemp -d "${TMPDIR:-/tmp}/bench-signing.XXXXXX")"
cleanup() {
    cluster_stop || echo "node logs are in $work" >&2
    if [[ "${KEEP:-0}" == 1 ]]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

cluster_write "$work" 4
cluster_install_dealer_keys "$work" 4 3
cluster_start "$work" 4 --log-level warning
echo "== waiting for the cluster"
cluster_wait "$work"
# The bench bundle: the demo token's latch may POST under /bench (docs/policy.md's DEMO token;
# never use it outside a benchmark), with no other filter, so the verdict costs what a simple
# policy costs.
cat >"$work/bench.yaml" <<'YAML'
format: quorum-latch/bundle/v1
version: 1
latches:
  - id: assistant
    token_sha256: dc4bf80c77473d130fa0de86ba4018fe98bb214005e6a5891d12ba91446f9e81
    mounts:
      - path: /bench
        upstream: http://127.0.0.1:9
        filters:
          - method: [POST]
YAML
cluster_push_bundle "$work" "$work/bench.yaml"
cluster_wait "$work"
cat "$work/status"

echo "== machine"
echo "$(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); " \
    "load average $(cut -d' ' -f1-3 /proc/loadavg); $(swift --version 2>/dev/null | head -1)"
echo "== quorumctl bench signing --rate $rate --duration $seconds $*"
"$bin/quorumctl" bench signing --cluster "$work/cluster.toml" --certs-dir "$work/certs" \
    --group "$work/dealer/group.json" --rate "$rate" --duration "$seconds" "$@"
