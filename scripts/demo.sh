#!/usr/bin/env bash
# What Quorum Latch does today, end to end on one machine, until the proxy exists:
# a trusted-dealer keygen for a 3-of-4 cluster, a FROST threshold signature made with three of the
# four shares and checked, a tampered message rejected, a credential sealed to the quorum and
# opened with three sealing shares, the example policy bundle signed and two calls decided; then
# a real 4-node cluster on loopback (certificates, quorumd, mutual TLS) runs the DKG key ceremony,
# and three of the shares it made sign a message that verifies under the group key.
#
# Runs from any directory. QUORUM_SCRATCH_PATH picks another SwiftPM build directory;
# QUORUM_CONFIGURATION=debug builds a debug instead of a release binary.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$(pwd)"

step() { printf '\n==> %s\n' "$*"; }
fail() { printf 'demo: FAILED: %s\n' "$*" >&2; exit 1; }

step "system packages"
"$root/scripts/install-deps.sh"
command -v swift >/dev/null 2>&1 || fail "no swift on PATH; install a Swift 6 toolchain from swift.org"

build=(-c "${QUORUM_CONFIGURATION:-release}")
if [[ -n "${QUORUM_SCRATCH_PATH:-}" ]]; then build+=(--scratch-path "$QUORUM_SCRATCH_PATH"); fi

step "building quorumctl and quorumd (${QUORUM_CONFIGURATION:-release})"
swift build "${build[@]}" --product quorumctl
swift build "${build[@]}" --product quorumd
bin="$(swift build "${build[@]}" --show-bin-path)"
quorumctl="$bin/quorumctl"
quorumd="$bin/quorumd"
[[ -x "$quorumctl" && -x "$quorumd" ]] || fail "the build did not produce $quorumctl and $quorumd"

# shellcheck source=scripts/lib/local-cluster.sh
source "$root/scripts/lib/local-cluster.sh"
work="$(mktemp -d "${TMPDIR:-/tmp}/quorum-demo.XXXXXX")"
cleanup() {
    cluster_kill
    rm -rf "$work"
}
trap cleanup EXIT
cd "$work"

# Shows the command as a user would type it (on stderr, so captured output stays clean), then runs it.
run() {
    printf '$ quorumctl %s\n' "$*" >&2
    "$quorumctl" "$@"
}

step "dealer keygen: 3-of-4, Ed25519 (signing key and a separate sealing key)"
run keygen --dealer --threshold 3 --nodes 4 --out keys

step "sign a decision with the shares of nodes 1, 2 and 4"
printf 'allow POST /openai/v1/chat/completions request=demo-0001 latch=lat_demo\n' >decision.txt
run frost sign --group keys/group.json \
    --share keys/node-1/signing-share.json --share keys/node-2/signing-share.json \
    --share keys/node-4/signing-share.json --message-file decision.txt | tee sign.out
signature="$(tail -n 1 sign.out)"
[[ ${#signature} -eq 128 ]] || fail "expected a 64-byte signature in hex, got '$signature'"

step "verify it against the group key (an ordinary Ed25519 signature)"
run frost verify --group keys/group.json --message-file decision.txt --signature "$signature"

step "a tampered decision does not verify (exit status 1)"
sed 's/allow/ALLOW/' decision.txt >tampered.txt
status=0
run frost verify --group keys/group.json --message-file tampered.txt --signature "$signature" || status=$?
[[ $status -eq 1 ]] || fail "verify of a tampered message exited $status, expected 1"

step "two shares are not enough (exit status 2)"
status=0
run frost sign --group keys/group.json --share keys/node-1/signing-share.json \
    --share keys/node-2/signing-share.json --message-file decision.txt || status=$?
[[ $status -eq 2 ]] || fail "signing with 2 of 3 shares exited $status, expected 2"

step "seal a demo credential to the quorum, then open it with nodes 2, 3 and 4"
credential="sk-demo-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
printf '%s' "$credential" | run seal --group keys/sealing-group.json --in - --out openai.sealed \
    --associated-data mount:openai
run unseal --group keys/sealing-group.json --share keys/node-2/sealing-share.json \
    --share keys/node-3/sealing-share.json --share keys/node-4/sealing-share.json \
    --in openai.sealed --associated-data mount:openai >unsealed.txt
[[ "$(cat unsealed.txt)" == "$credential" ]] || fail "the unsealed credential differs from the sealed one"
echo "(unsealed plaintext matches the credential; not printed)"

step "sign the example policy bundle with an operator key, then decide the seed scenario's two calls"
operator=$(run policy keygen --out operator.key)
run policy sign "$root/cluster/policies/assistant.yaml" --key operator.key --out bundle.signed.json
for tokens in 16000 1000; do
    status=0
    run policy eval --bundle bundle.signed.json --signer "$operator" \
        --request "$root/cluster/policies/request-$tokens-tokens.json" --at 2026-11-24T09:00:00Z \
        >verdict-$tokens.json || status=$?
    echo "$tokens-token call: $(grep -m1 '"decision"' verdict-$tokens.json | tr -d ' ,') (exit $status)"
    grep -m1 '"reason"' verdict-$tokens.json | sed 's/^ */  /'
done
grep -q '"decision": "deny"' verdict-16000.json || fail "the 16,000-token call was not denied"
grep -q '"decision": "allow"' verdict-1000.json || fail "the 1,000-token call was not allowed"

step "a 4-node cluster on loopback: certificates for each node, a proxy and an operator; 4 quorumd"
cluster_write "$work" 4
cluster_start "$work" 4 || fail "a node did not start"
cluster_wait "$work" || fail "the nodes did not all see each other"
operator=(--cluster cluster.toml --certs-dir certs)
run status "${operator[@]}"

step "the DKG key ceremony across the four nodes: no party ever holds the group key"
run keygen --cluster cluster.toml --certs-dir certs --threshold 3 --out ceremony
run status "${operator[@]}"

step "three of the shares the ceremony installed (nodes 1, 3, 4) sign; the signature verifies under the group key"
run frost sign --group ceremony/group.json --share data-1/keys/signing-share.json \
    --share data-3/keys/signing-share.json --share data-4/keys/signing-share.json \
    --message-file decision.txt | tee ceremony-sign.out
run frost verify --group ceremony/group.json --message-file decision.txt --signature "$(tail -n 1 ceremony-sign.out)"

step "SIGTERM stops every node cleanly"
cluster_stop || fail "a node did not exit 0 (logs were in $work)"
echo "all four nodes exited 0"

step "done"
cat <<SUMMARY
- dealer keygen wrote a 3-of-4 signing group and a separate sealing group, one 0600 share of each per node
- nodes 1, 2, 4 made a FROST(Ed25519, SHA-512) signature; quorumctl verified it (valid)
- a tampered message was rejected (exit 1); two shares were refused (exit 2)
- a credential sealed to the quorum opened with three sealing shares
- the example bundle, signed by an operator key, denied a 16,000-token call naming the cap and
  allowed a 1,000-token call
- four quorumd nodes on loopback found each other over mutual TLS, ran the DKG ceremony (each
  signing and sealing share made on its node, round-2 shares sealed end to end), and three of
  the shares it made signed a message that verifies under the group key
The temporary directory has been removed.
SUMMARY
