#!/usr/bin/env bash
# Whole-system figures of issue 6: added latency through the proxy at 200 calls/s (p50 <= 2 ms,
# p99 <= 5 ms), measured beside direct calls to the demo upstream in the same run, and sustained
# allowed, signed calls per second.
#
#   scripts/bench-proxy.sh [RATE] [SECONDS] [CONCURRENCY]     (defaults: 200 calls/s, 10 s, 64 callers)
#
# Builds quorumd, quorum-proxy and quorumctl in release mode (scratch path .build-bench-proxy, or
# $SCRATCH; BIN=<dir> uses binaries already built there), starts `quorumctl testnet up` (4 nodes,
# 3-of-4, the proxy and the demo upstream, all on this machine) in a temporary directory, adds a
# latch 'bench' on the demo mount with no rate limit or budget (so the load measures the decision,
# not a deny), signs and pushes it, waits until the proxy allows it, and runs
# `quorumctl bench proxy`. The testnet is stopped and the directory removed on exit (KEEP=1 keeps it).
set -euo pipefail
cd "$(dirname "$0")/.."

rate="${1:-200}"
seconds="${2:-10}"
concurrency="${3:-64}"

# shellcheck source=scripts/lib/local-cluster.sh
source scripts/lib/local-cluster.sh
bin="$(release_binaries "${SCRATCH:-.build-bench-proxy}" quorumd quorum-proxy quorumctl)"
quorumctl="$bin/quorumctl"
work="$(mktemp -d "${TMPDIR:-/tmp}/bench-proxy.XXXXXX")"
net="$work/testnet"
cleanup() {
    "$quorumctl" testnet down --dir "$net" >/dev/null 2>&1 || echo "testnet down reported a problem; logs in $net" >&2
    if [[ "${KEEP:-0}" == 1 ]]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

echo "== quorumctl testnet up (4 nodes, 3-of-4)"
"$quorumctl" testnet up --dir "$net" --nodes 4 --threshold 3 >"$work/up.log"
proxy_port="$(sed -n 's/^listen = "127.0.0.1:\([0-9]*\)"/\1/p' "$net/proxy.toml" | head -1)"
upstream="$(sed -n 's/^ *upstream: \(http:\/\/127.0.0.1:[0-9]*\).*/\1/p' "$net/bundle.yaml" | head -1)"
[[ -n "$proxy_port" && -n "$upstream" ]] || { echo "cannot read the proxy port or upstream from $net" >&2; exit 1; }

echo "== a latch without limits for the load"
"$quorumctl" latch create --bundle "$net/bundle.yaml" --id bench --mount "/openai=$upstream,secret=openai" \
    >"$work/bench.token" 2>/dev/null
chmod 600 "$work/bench.token"
"$quorumctl" policy sign "$net/bundle.yaml" --key "$net/operator.key" --out "$net/bundle.signed.json" >/dev/null
"$quorumctl" policy push "$net/bundle.signed.json" --cluster "$net/cluster.toml" --certs-dir "$net/certs" >/dev/null
url="http://127.0.0.1:$proxy_port/openai/v1/chat/completions"
body='{"model":"demo-small","max_tokens":50,"messages":[{"role":"user","content":"Say hello."}]}'
for _ in $(seq 1 100); do
    code="$(curl -s -o /dev/null -w '%{http_code}' "$url" -H "Authorization: Bearer $(cat "$work/bench.token")" \
        -H 'Content-Type: application/json' -d "$body" || true)"
    [[ "$code" == 200 ]] && break
    sleep 0.2
done
[[ "$code" == 200 ]] || { echo "the proxy never allowed the bench latch (last status $code)" >&2; exit 1; }

echo "== machine"
echo "$(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); " \
    "load average $(cut -d' ' -f1-3 /proc/loadavg); $(swift --version 2>/dev/null | head -1)"
echo "== quorumctl bench proxy --rate $rate --duration $seconds --concurrency $concurrency"
"$quorumctl" bench proxy --url "$url" --direct "$upstream/v1/chat/completions" --token-file "$work/bench.token" \
    --direct-key-file "$net/upstream-api-key" --rate "$rate" --duration "$seconds" --concurrency "$concurrency" \
    --body "$body"
