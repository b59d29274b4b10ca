#!/usr/bin/env bash
# The signing service under open-loop load (issue 5: "signing round trip p99 <= 1 ms at 500 req/s").
#
#   scripts/bench-signing.sh [RATE] [SECONDS] [extra `quorumctl bench signing` flags...]
#                                            (defaults: 500 requests/s for 10 s)
#
# Builds quorumd and quorumctl in release mode (scratch path .build-bench-signing, or $SCRATCH),
# makes a throwaway 4-node cluster in a temporary directory (certificates, 3-of-4 dealer keys
# installed in each data directory), starts the nodes on loopback, waits until `quorumctl status`
# sees them all, and runs `quorumctl bench signing` with the proxy certificate: first one node's
# sign round trip, then the full 3-signer signature. Prints the machine and the figures; the nodes
# are stopped and the directory removed on exit. Set KEEP=1 to keep it (node logs are there), and
# BIN=<dir> to use quorumd and quorumctl already built there.
set -euo pipefail
cd "$(dirname "$0")/.."

rate="${1:-500}"
seconds="${2:-10}"
[[ $# -gt 0 ]] && shift
[[ $# -gt 0 ]] && shift
scratch="${SCRATCH:-.build-bench-signing}"

if [[ -n "${BIN:-}" ]]; then
    bin="$BIN" # already built (e.g. a debug build, to try the script)
else
    echo "== building quorumd and quorumctl (release, $scratch)"
    swift build -c release --scratch-path "$scratch" --product quorumd >/dev/null
    swift build -c release --scratch-path "$scratch" --product quorumctl >/dev/null
    bin="$(swift build -c release --scratch-path "$scratch" --show-bin-path)"
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/bench-signing.XXXXXX")"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do
        status=0
        wait "$pid" 2>/dev/null || status=$?
        [[ $status -eq 0 ]] || echo "a node exited with status $status after SIGTERM; its log is in $work" >&2
    done
    if [[ "${KEEP:-0}" == 1 ]]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

free_ports() {
    python3 - "$1" <<'EOF'
import socket, sys
sockets = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    sockets.append(s)
print(" ".join(str(s.getsockname()[1]) for s in sockets))
EOF
}

read -r -a ports <<<"$(free_ports 4)"
"$bin/quorumctl" certs init --nodes 4 --out "$work/certs" >/dev/null
"$bin/quorumctl" keygen --dealer --threshold 3 --nodes 4 --out "$work/dealer" >/dev/null
: >"$work/cluster.toml"
for id in 1 2 3 4; do
    port="${ports[$((id - 1))]}"
    printf '[[nodes]]\nid = %d\naddress = "127.0.0.1:%d"\n\n' "$id" "$port" >>"$work/cluster.toml"
    {
        printf 'node_id = %d\nlisten = "127.0.0.1:%d"\ndata_dir = "%s"\n\n' "$id" "$port" "$work/data-$id"
        printf '[tls]\ncertificate = "certs/node-%d.pem"\nprivate_key = "certs/node-%d.key"\ncluster_ca = "certs/ca.pem"\n' \
            "$id" "$id"
        for peer in 1 2 3 4; do
            [[ $peer == "$id" ]] && continue
            printf '\n[[peers]]\nid = %d\naddress = "127.0.0.1:%d"\n' "$peer" "${ports[$((peer - 1))]}"
        done
    } >"$work/node-$id.toml"
    mkdir -p -m 700 "$work/data-$id/keys"
    cp "$work/dealer/node-$id/signing-share.json" "$work/dealer/node-$id/sealing-share.json" \
        "$work/dealer/group.json" "$work/dealer/sealing-group.json" "$work/data-$id/keys/"
    chmod 600 "$work/data-$id/keys/"*-share.json
    "$bin/quorumd" --config "$work/node-$id.toml" --ready-file "$work/ready-$id" --log-level warning \
        2>"$work/node-$id.log" &
    pids+=("$!")
done

echo "== waiting for the cluster"
for _ in $(seq 1 150); do
    if "$bin/quorumctl" status --cluster "$work/cluster.toml" --certs-dir "$work/certs" >"$work/status" 2>&1 &&
        ! grep -q "down:" "$work/status"; then
        break
    fi
    sleep 0.2
done
cat "$work/status"

echo "== machine"
echo "$(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); " \
    "load average $(cut -d' ' -f1-3 /proc/loadavg); $(swift --version 2>/dev/null | head -1)"
echo "== quorumctl bench signing --rate $rate --duration $seconds $*"
"$bin/quorumctl" bench signing --cluster "$work/cluster.toml" --certs-dir "$work/certs" \
    --group "$work/dealer/group.json" --rate "$rate" --duration "$seconds" "$@"
