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
# shellcheck source=scripts/lib/local-cluster.sh
source scripts/lib/local-cluster.sh
BIN="$(release_binaries "${SCRATCH:-.build-bench-ceremony}" quorumd quorumctl)"
quorumctl="$BIN/quorumctl"
quorumd="$BIN/quorumd"
work="$(mktemp -d "${TMPDIR:-/tmp}/bench-ceremony.XXXXXX")"
cleanup() {
    cluster_kill
    if [[ "${KEEP:-0}" == 1 ]]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

# min median max of the numbers on stdin
summary() { sort -n | awk '{ v[NR] = $1 } END { printf "min %d ms, median %d ms, max %d ms (%d runs)\n", v[1], v[int((NR + 1) / 2)], v[NR], NR }'; }

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== $(swift --version 2>/dev/null | head -1)"
echo "== binaries: $BIN"

bench() {
    local n="$1" k="$2"
    local dir="$work/n$n"
    cluster_write "$dir" "$n"
    cluster_start "$dir" "$n" || { KEEP=1; exit 1; }
    cluster_wait "$dir" || { echo "the $n-node cluster did not come up; logs in $dir" >&2; KEEP=1; exit 1; }
    local ops=(--cluster "$dir/cluster.toml" --certs-dir "$dir/certs")

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
    cluster_stop || { KEEP=1; exit 1; }
}

bench 4 3
bench 7 5
