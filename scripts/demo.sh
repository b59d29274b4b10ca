#!/usr/bin/env bash
# The README's main command: a local Quorum Latch testnet, and two calls through it.
#
# `quorumctl testnet up` issues certificates, starts 4 quorumd nodes, runs the DKG key ceremony
# across them (3-of-4), pushes a signed demo bundle, seals the demo upstream's API key to the
# quorum, creates the latch 'demo' and starts the proxy and the demo upstream on loopback. Then an
# allowed call (max_tokens 50) must answer 200 with a Latch-Receipt that `quorumctl receipt verify`
# accepts under the group key, and a call over the token cap (max_tokens 4000) must answer 403.
# The testnet is left running (the command that stops it is printed); --down stops it at the end.
#
#   scripts/demo.sh [--down]
#
# Runs from any directory. The testnet lives in ./testnet at the repository root (QUORUM_TESTNET_DIR
# picks another); an earlier one there is stopped and replaced. QUORUM_SCRATCH_PATH picks another
# SwiftPM build directory; QUORUM_CONFIGURATION=debug builds a debug instead of a release binary.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$(pwd)"

step() { printf '\n==> %s\n' "$*"; }
fail() {
    printf 'demo: FAILED: %s\n' "$*" >&2
    exit 1
}

stop_at_end=0
for argument in "$@"; do
    case "$argument" in
    --down) stop_at_end=1 ;;
    -h | --help)
        sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *) fail "unknown argument '$argument' (usage: scripts/demo.sh [--down])" ;;
    esac
done

step "system packages"
"$root/scripts/install-deps.sh"
command -v swift >/dev/null 2>&1 || fail "no swift on PATH; install a Swift 6 toolchain from swift.org"

build=(-c "${QUORUM_CONFIGURATION:-release}")
if [[ -n "${QUORUM_SCRATCH_PATH:-}" ]]; then build+=(--scratch-path "$QUORUM_SCRATCH_PATH"); fi

step "building quorumctl, quorumd and quorum-proxy (${QUORUM_CONFIGURATION:-release})"
for product in quorumctl quorumd quorum-proxy; do swift build "${build[@]}" --product "$product"; done
bin="$(swift build "${build[@]}" --show-bin-path)"
quorumctl="$bin/quorumctl"
for product in quorumctl quorumd quorum-proxy; do
    [[ -x "$bin/$product" ]] || fail "the build did not produce $bin/$product"
done

dir="${QUORUM_TESTNET_DIR:-$root/testnet}"
if [[ -e "$dir" ]]; then
    [[ -f "$dir/cluster.toml" || -d "$dir/run" ]] ||
        fail "$dir exists and is not a testnet; move it away or set QUORUM_TESTNET_DIR to another directory"
    step "an earlier testnet in $dir: stopping it and starting afresh"
    "$quorumctl" testnet down --dir "$dir" || true
    rm -rf "$dir"
fi

step "quorumctl testnet up --dir $dir"
"$quorumctl" testnet up --dir "$dir" || fail "testnet up failed (its output above says where the logs are)"

finish() {
    if ((stop_at_end)); then
        step "quorumctl testnet down --dir $dir"
        "$quorumctl" testnet down --dir "$dir"
    else
        printf '\nThe testnet keeps running. Stop it with:\n  %s testnet down --dir %s\n' "$quorumctl" "$dir"
    fi
}
trap finish EXIT

listen="$(sed -n 's/^listen = "\(.*\)"$/\1/p' "$dir/proxy.toml")"
[[ -n "$listen" ]] || fail "no listen address in $dir/proxy.toml"
url="http://$listen/openai/v1/chat/completions"
token="$(cat "$dir/token")"

# One chat completion through the proxy: the status on stdout; headers and body under $dir/demo-calls.
mkdir -p "$dir/demo-calls"
call() {
    local max_tokens="$1"
    curl -sS -o "$dir/demo-calls/$max_tokens.body" -D "$dir/demo-calls/$max_tokens.headers" -w '%{http_code}' \
        "$url" -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
        -d "{\"model\":\"demo-small\",\"max_tokens\":$max_tokens,\"messages\":[{\"role\":\"user\",\"content\":\"Hello from the testnet\"}]}"
}
show() {
    local max_tokens="$1"
    tr -d '\r' <"$dir/demo-calls/$max_tokens.headers" | sed 's/^/  < /'
    sed 's/^/  /' "$dir/demo-calls/$max_tokens.body"
    echo
}

step "an allowed call (max_tokens 50): the quorum allows, the proxy injects the sealed key"
status="$(call 50)" || fail "curl could not reach the proxy at $url"
show 50
[[ "$status" == 200 ]] || fail "the allowed call answered $status, expected 200 (logs: $dir/*.log)"
receipt="$(tr -d '\r' <"$dir/demo-calls/50.headers" | sed -n 's/^[Ll]atch-[Rr]eceipt: *//p' | head -n 1)"
[[ -n "$receipt" ]] || fail "the allowed call has no Latch-Receipt header"

step "its receipt verifies under the quorum's group key"
# shellcheck disable=SC2016 # the command is shown as the reader would type it
printf '$ quorumctl receipt verify "$RECEIPT" --group %s\n' "$dir/group.json"
"$quorumctl" receipt verify "$receipt" --group "$dir/group.json" || fail "the receipt did not verify"

step "a call over the token cap (max_tokens 4000): denied by the quorum"
status="$(call 4000)" || fail "curl could not reach the proxy at $url"
show 4000
[[ "$status" == 403 ]] || fail "the call over the token cap answered $status, expected 403"
grep -q 'token-cap' "$dir/demo-calls/4000.body" || fail "the denial does not name the token-cap filter"
receipt="$(tr -d '\r' <"$dir/demo-calls/4000.headers" | sed -n 's/^[Ll]atch-[Rr]eceipt: *//p' | head -n 1)"
[[ -n "$receipt" ]] || fail "the denied call has no Latch-Receipt header"

step "the quorum signed the denial too"
# shellcheck disable=SC2016 # the command is shown as the reader would type it
printf '$ quorumctl receipt verify "$RECEIPT" --group %s\n' "$dir/group.json"
verified="$("$quorumctl" receipt verify "$receipt" --group "$dir/group.json")" || fail "the deny receipt did not verify"
printf '%s\n' "${verified%%$'\n'*}"

step "done"
cat <<SUMMARY
- 4 quorumd nodes on loopback ran the DKG ceremony: no party ever held the group key
- the call with max_tokens 50 was allowed by 3 of 4 nodes, signed with a FROST threshold signature,
  forwarded with the API key only the quorum could open, and its receipt verified under the group key
- the call with max_tokens 4000 was denied (403) by the token cap, with each node's reason and a
  deny receipt the quorum signed
Calls, headers and bodies: $dir/demo-calls; every process's log: $dir/*.log
SUMMARY
