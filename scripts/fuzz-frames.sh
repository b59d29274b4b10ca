#!/usr/bin/env bash
# Coverage-guided fuzzing of the node RPC frame decoder and message codec with libFuzzer.
#
#   scripts/fuzz-frames.sh [SECONDS] [libFuzzer flags...]     (default 60 seconds)
#
# Compiles Fuzz/FrameFuzzer.swift together with Sources/QuorumProtocol into one module with
# `swiftc -sanitize=fuzzer,address` (no package target, so CI does not build it), seeds a corpus
# from Fuzz/seeds.hex, and runs for SECONDS. Exits non-zero when the harness crashes or a
# property fails; the input that did it is left in .build-fuzz/artifacts/ (replay it with
# `.build-fuzz/frame-fuzzer FILE`). The corpus in .build-fuzz/corpus/ carries over between runs.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-60}"
[[ $# -gt 0 ]] && shift
out=.build-fuzz
mkdir -p "$out/corpus" "$out/artifacts"

echo "== building the harness (swiftc -sanitize=fuzzer,address)"
mapfile -t sources < <(find Sources/QuorumProtocol -name '*.swift' | sort)
# ld.gold warns that it cannot export ASan's local helper symbols; that is noise, not a failure.
if ! swiftc -sanitize=fuzzer,address -parse-as-library -O -g -module-name FrameFuzzer \
    "${sources[@]}" Fuzz/FrameFuzzer.swift -o "$out/frame-fuzzer" 2>"$out/build.log"; then
    cat "$out/build.log"
    exit 1
fi
grep -v "Cannot export local symbol '__asan" "$out/build.log" || true

while read -r name hex; do
    [[ -z "$name" || "$name" == \#* ]] && continue
    echo "$hex" | tr -d ' ' | xxd -r -p >"$out/corpus/seed-$name"
done <Fuzz/seeds.hex

echo "== fuzzing for ${seconds}s"
status=0
"$out/frame-fuzzer" "$out/corpus" -max_total_time="$seconds" -print_final_stats=1 -timeout=10 \
    -rss_limit_mb=2048 -artifact_prefix="$out/artifacts/" "$@" || status=$?
if [[ $status -ne 0 ]]; then
    echo "fuzz-frames: the harness failed (exit $status); crashing inputs:" >&2
    ls -1 "$out"/artifacts/ >&2 || true
fi
exit "$status"
