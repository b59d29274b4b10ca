#!/usr/bin/env bash
# Key ceremony wall time on loopback (issue 5: "3-of-4 <= 1 s, 5-of-7 <= 2 s").
#
#   scripts/bench-ceremony.sh [RUNS]          (default: 10 ceremonies per cluster size)
#
# Builds quorumd and quorumctl in release mode (scratch path .build-bench-ceremony, or $SCRATCH;
# or set BIN to a directory that already holds both, e.g. BIN=.build-ceremony/debug for a debug
# build), then for 4 nodes (3-of-4) and 7 nodes (5-of-7): makes a throwaway cluster in a temporary
# directory (certificates, one TOML per node), starts the nodes on loopback, waits until
# `quorumctl status` sees every node and peer up, and runs `quorumctl keygen --cluster ... --replace`
# RUNS times. For each size it prints min/median/max of two figures:
#   wall      the whole quorumctl process: start, status query (identity keys), TLS connects, the
#             four phases, writing the files
#   ceremony  begin to commit acknowledged, as quorumctl reports it ("committed on every node in N ms")
# The nodes are stopped and the directory removed on exit; KEEP=1 keeps it (node logs are there).
set -euo pipefail
cd "$(dirname "$0")/.."

runs="${1:-10}"
if [[ -z "${BIN:-}" ]]; then
    scratch="${SCRATCH:-.build-bench-ceremony}"
    echo "== building quorumd and quorumctl (release, $scratch)"
    swift build -c release --scratch-path "$scratch" --product quorumd >/dev/null
    swift build -c release --scratch-path "$scratch" --product quorumctl >/dev/null
    BIN="$(swift build -c release --scratch-path "$scratch" --show-bin-path)"
fi
quorumctl="$BIN/quorumctl"
quorumd="$BIN/quorumd"

work="$(mktemp -d "${TMPDIR:-/tmp}/bench-ceremony.XXXXXX")"
pids=()
stop_nodes() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    pids=()
}
cleanup() {
    stop_nodes
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

# min median max of the numbers on stdin
summary() { sort -n | awk '{ v[NR] = $1 } END { printf "min %d ms, median %d ms, max %d ms (%d runs)\n", v[1], v[int((NR + 1) / 2)], v[NR], NR }'; }

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== $(swift --version 2>/dev/null | head -1)"
echo "== binaries: $BIN"

bench() {
    local n="$1" k="$2"
    local dir="$work/n$n"
    mkdir -p "$dir"
    read -r -a ports <<<"$(free_ports "$n")"
    "$quorumctl" certs init --nodes "$n" --out "$dir/certs" >/dev/null
    : >"$dir/cluster.toml"
    for id in $(seq 1 "$n"); do
        port="${ports[$((id - 1))]}"
        printf '[[nodes]]\nid = %d\naddress = "127.0.0.1:%d"\n\n' "$id" "$port" >>"$dir/cluster.toml"
        {
            printf 'node_id = %d\nlisten = "127.0.0.1:%d"\ndata_dir = "%s"\n\n' "$id" "$port" "$dir/data-$id"
            printf '[tls]\ncertificate = "certs/node-%d.pem"\nprivate_key = "certs/node-%d.key"\ncluster_ca = "certs/ca.pem"\n' \
                "$id" "$id"
            printf '\n[membership]\nheartbeat_interval_ms = 200\npeer_timeout_ms = 1500\n'
            for peer in $(seq 1 "$n"); do
                [[ $peer == "$id" ]] && continue
                printf '\n[[peers]]\nid = %d\naddress = "127.0.0.1:%d"\n' "$peer" "${ports[$((peer - 1))]}"
            done
        } >"$dir/node-$id.toml"
        "$quorumd" --config "$dir/node-$id.toml" --ready-file "$dir/ready-$id" 2>"$dir/node-$id.log" &
        pids+=("$!")
    done
    local ops=(--cluster "$dir/cluster.toml" --certs-dir "$dir/certs")
    for _ in $(seq 1 150); do
        if out="$("$quorumctl" status "${ops[@]}" 2>/dev/null)" && ! grep -q 'down:' <<<"$out"; then break; fi
        sleep 0.2
    done
    "$quorumctl" status "${ops[@]}" >/dev/null || { echo "the $n-node cluster did not come up; logs in $dir" >&2; KEEP=1; exit 1; }

    : >"$dir/wall" ; : >"$dir/ceremony"
    for run in $(seq 1 "$runs"); do
        local start end output
        start=$(date +%s%N)
        output="$("$quorumctl" keygen "${ops[@]}" --threshold "$k" --out "$dir/out" --replace --timeout 10)" || {
            echo "run $run failed; logs in $dir" >&2; KEEP=1; exit 1; }
        end=$(date +%s%N)
        echo $(((end - start) / 1000000)) >>"$dir/wall"
        sed -n 's/^committed on every node in \([0-9]*\) ms.*/\1/p' <<<"$output" >>"$dir/ceremony"
    done
    echo "$k-of-$n  wall:     $(summary <"$dir/wall")"
    echo "$k-of-$n  ceremony: $(summary <"$dir/ceremony")"
    stop_nodes
}

bench 4 3
bench 7 5
