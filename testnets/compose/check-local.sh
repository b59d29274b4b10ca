#!/usr/bin/env bash
# Runs the compose testnet's scripts against local processes on loopback, as the containers would
# run them, without a Docker engine: setup.sh's two phases (with the compose service names
# replaced by 127.0.0.1 ports), the demo upstream, 4 nodes and the proxy waited for with the same
# `health` commands the compose health checks use, then the demo's two calls (200 with a receipt
# that verifies, 403 over the token cap), then both phases again on the kept state (they must
# reuse it, as `docker compose up` on kept volumes does). Where PID namespaces can be made (root),
# the image's HEALTHCHECK script (docker/healthcheck.sh) is also run beside a node, the proxy and
# the demo upstream, each alone in its own PID namespace as in a container.
#
#   testnets/compose/check-local.sh BIN_DIR      # BIN_DIR holds quorumctl, quorumd, quorum-proxy
#
# Exit status 0 when every check passed; 1 naming the first that failed (logs are kept in the
# printed work directory).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bin="$(cd "${1:?usage: check-local.sh BIN_DIR}" && pwd)"
quorumctl="$bin/quorumctl"
quorumd="$bin/quorumd"
proxy_binary="$bin/quorum-proxy"
for binary in "$quorumctl" "$quorumd" "$proxy_binary"; do
    [[ -x "$binary" ]] || {
        echo "check-local: $binary is missing; build quorumctl, quorumd and quorum-proxy" >&2
        exit 1
    }
done
# shellcheck source=scripts/lib/local-cluster.sh
source "$root/scripts/lib/local-cluster.sh" # cluster_ports

work="$(mktemp -d "${TMPDIR:-/tmp}/quorum-compose-check.XXXXXX")"
pids=()
stop_all() {
    local pid
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    pids=()
}
trap stop_all EXIT
fail() {
    echo "check-local: FAILED: $*" >&2
    echo "check-local: logs and state in $work" >&2
    exit 1
}
step() { printf '\n== %s\n' "$*"; }

# Retries a command (a health check) once a second until it passes, at most $1 seconds.
until_passes() {
    local seconds="$1" attempt
    shift
    for ((attempt = 0; attempt < seconds; attempt++)); do
        if "$@" >"$work/last-check.out" 2>&1; then return 0; fi
        sleep 1
    done
    cat "$work/last-check.out" >&2
    return 1
}

read -r -a ports <<<"$(cluster_ports 15)"
addresses=()
for id in 1 2 3 4; do addresses+=("127.0.0.1:${ports[id - 1]}"); done
upstream_port="${ports[4]}"
proxy_port="${ports[5]}"
audit_ports=("${ports[@]:6:4}")
metrics_ports=("${ports[@]:10:4}")
proxy_metrics_port="${ports[14]}"
export QUORUM_AUDIT_PORTS="${audit_ports[*]}"
export QUORUM_METRICS_PORTS="${metrics_ports[*]}"
export QUORUM_PROXY_METRICS="127.0.0.1:$proxy_metrics_port"
export QUORUM_DIR="$work/etc"
export QUORUM_NODES="${addresses[*]}"
export QUORUM_LISTEN_HOST=127.0.0.1
export QUORUM_NODE_DATA="$work/data-%d"
export QUORUM_PROXY_LISTEN="127.0.0.1:$proxy_port"
export QUORUM_PROXY_DATA="$work/proxy"
export QUORUM_UPSTREAM="http://127.0.0.1:$upstream_port"
export QUORUM_PROXY_URL="http://127.0.0.1:$proxy_port"
export QUORUM_WAIT_SECONDS=90
export QUORUMCTL="$quorumctl"
setup="$root/testnets/compose/setup.sh"

step "setup.sh config (work directory $work)"
"$setup" config >"$work/config.log" 2>&1 || {
    cat "$work/config.log" >&2
    fail "setup.sh config"
}
for file in certs/ca.pem certs/node-4.key certs/proxy.pem operator.key node-1.toml node-4.toml cluster.toml \
    proxy.toml upstream-api-key; do
    [[ -s "$QUORUM_DIR/$file" ]] || fail "setup.sh config did not write $file"
done
[[ "$(stat -c %a "$QUORUM_DIR/upstream-api-key")" == 600 ]] || fail "upstream-api-key is not 0600"

step "the demo upstream and 4 nodes, each waited for with its health command"
"$proxy_binary" demo-upstream --listen "127.0.0.1:$upstream_port" --api-key-file "$QUORUM_DIR/upstream-api-key" \
    2>"$work/upstream.log" &
pids+=("$!")
for id in 1 2 3 4; do
    "$quorumd" --config "$QUORUM_DIR/node-$id.toml" 2>"$work/node-$id.log" &
    pids+=("$!")
done
until_passes 60 "$proxy_binary" health --url "http://127.0.0.1:$upstream_port/v1/models" ||
    fail "the demo upstream's health check did not pass (log: $work/upstream.log)"
for id in 1 2 3 4; do
    until_passes 60 "$quorumd" health --config "$QUORUM_DIR/node-$id.toml" ||
        fail "node $id's health check did not pass (log: $work/node-$id.log)"
    cat "$work/last-check.out"
done

step "setup.sh cluster"
"$setup" cluster >"$work/cluster.log" 2>&1 || {
    cat "$work/cluster.log" >&2
    fail "setup.sh cluster"
}
tail -n 9 "$work/cluster.log"
token="$(cat "$QUORUM_DIR/token")"
[[ "$token" == lat_demo_* ]] || fail "the token in $QUORUM_DIR/token is not the latch 'demo''s"
grep -q "$token" "$work/cluster.log" || fail "setup.sh cluster did not print the token"

step "the proxy, waited for with its health command"
"$proxy_binary" run --config "$QUORUM_DIR/proxy.toml" 2>"$work/proxy.log" &
pids+=("$!")
until_passes 60 "$proxy_binary" health --config "$QUORUM_DIR/proxy.toml" ||
    fail "the proxy's health check did not pass (log: $work/proxy.log)"
cat "$work/last-check.out"

call() {
    curl -sS -o "$work/call-$1.body" -D "$work/call-$1.headers" -w '%{http_code}' \
        "http://127.0.0.1:$proxy_port/openai/v1/chat/completions" -H "Authorization: Bearer $token" \
        -H 'Content-Type: application/json' \
        -d "{\"model\":\"demo-small\",\"max_tokens\":$1,\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"}]}"
}
step "an allowed call (200, its receipt verifies) and one over the token cap (403)"
status="$(call 50)" || fail "curl could not reach the proxy"
[[ "$status" == 200 ]] || fail "the allowed call answered $status (body: $(cat "$work/call-50.body"))"
receipt="$(tr -d '\r' <"$work/call-50.headers" | sed -n 's/^[Ll]atch-[Rr]eceipt: *//p' | head -n 1)"
[[ -n "$receipt" ]] || fail "the allowed call has no Latch-Receipt"
"$quorumctl" receipt verify "$receipt" --group "$QUORUM_DIR/group.json" >/dev/null ||
    fail "the receipt does not verify under $QUORUM_DIR/group.json"
echo "200, receipt verified"
status="$(call 4000)" || fail "curl could not reach the proxy"
[[ "$status" == 403 ]] || fail "the call over the token cap answered $status, expected 403"
grep -q token-cap "$work/call-4000.body" || fail "the denial does not name the token-cap filter"
echo "403, denied by token-cap"

step "the audit API (each node's, and through the proxy) and the metrics listeners"
audit_urls=()
for port in "${audit_ports[@]}"; do audit_urls+=("http://127.0.0.1:$port"); done
# The receipt is in the log once a quorum checkpoint covers it (well under a second; 30 s at most).
until_passes 30 "$quorumctl" audit receipt "$receipt" --node "http://127.0.0.1:$proxy_port/.well-known/quorum/audit" \
    --group "$QUORUM_DIR/group.json" || fail "the allowed call's receipt is not in the log, through the proxy's audit API"
head -n 1 "$work/last-check.out"
"$quorumctl" audit checkpoint --node "${audit_urls[@]}" --group "$QUORUM_DIR/group.json" >"$work/audit.out" 2>&1 || {
    cat "$work/audit.out" >&2
    fail "quorumctl audit checkpoint across the 4 nodes"
}
tail -n 1 "$work/audit.out"
"$quorumctl" audit unlogged --node "${audit_urls[@]}" --group "$QUORUM_DIR/group.json" >"$work/unlogged.out" 2>&1 || {
    cat "$work/unlogged.out" >&2
    fail "quorumctl audit unlogged found withheld receipts, or a node did not answer"
}
tail -n 1 "$work/unlogged.out"
curl -fsS "http://127.0.0.1:${metrics_ports[0]}/metrics" | grep -q '^quorum_node_verdicts_total' ||
    fail "node 1's /metrics has no quorum_node_verdicts_total"
curl -fsS "http://127.0.0.1:$proxy_metrics_port/metrics" | grep -q '^quorum_proxy_' ||
    fail "the proxy's /metrics has no quorum_proxy_ metric"
echo "metrics served by node 1 and the proxy"

step "both phases again on the kept state: they reuse it"
"$setup" config >"$work/config-again.log" 2>&1 || fail "setup.sh config on a configured directory"
grep -q 'reusing it' "$work/config-again.log" || fail "setup.sh config did not reuse the configuration"
"$setup" cluster >"$work/cluster-again.log" 2>&1 || {
    cat "$work/cluster-again.log" >&2
    fail "setup.sh cluster on a set-up cluster"
}
grep -q 'no new ceremony' "$work/cluster-again.log" || fail "setup.sh cluster ran a second ceremony"
[[ "$(cat "$QUORUM_DIR/token")" == "$token" ]] || fail "setup.sh cluster replaced the token"
status="$(call 50)" || fail "curl could not reach the proxy"
[[ "$status" == 200 ]] || fail "after the second setup the allowed call answered $status"
echo "reused: same keys, same token, calls still allowed"

# The image's HEALTHCHECK script finds the serving process in its container's /proc. A PID
# namespace with its own /proc is that container here; each process is restarted alone in one.
step "docker/healthcheck.sh, each server alone in a PID namespace"
if ! unshare --pid --fork --mount-proc true 2>/dev/null; then
    echo "skipped: cannot make a PID namespace here (needs root or user namespaces)"
else
    stop_all
    in_namespace() {
        # $1: the health command that says the server is up; the rest: the server.
        local ready="$1"
        shift
        # shellcheck disable=SC2016 # expanded by the inner bash, from its arguments
        PATH="$bin:$PATH" unshare --pid --fork --mount-proc bash -c '
            ready="$1"; shift
            "$@" 2>/dev/null & server=$!
            for _ in $(seq 60); do eval "$ready" >/dev/null 2>&1 && break; sleep 1; done
            "$0"; status=$?
            kill -TERM "$server"; wait "$server"
            exit "$status"' "$root/docker/healthcheck.sh" "$ready" "$@"
    }
    in_namespace "quorum-proxy health --url http://127.0.0.1:$upstream_port/v1/models" \
        "$proxy_binary" demo-upstream --listen "0.0.0.0:$upstream_port" --api-key-file "$QUORUM_DIR/upstream-api-key" ||
        fail "healthcheck.sh beside the demo upstream"
    # The node alone cannot see its peers, but it answers its own status: healthy.
    (cd "$QUORUM_DIR" && in_namespace "quorumd health --config $QUORUM_DIR/node-1.toml" \
        "$quorumd" run --config node-1.toml) || fail "healthcheck.sh beside node 1 (a relative --config)"
    in_namespace "quorum-proxy health --config $QUORUM_DIR/proxy.toml" \
        "$proxy_binary" --config "$QUORUM_DIR/proxy.toml" || fail "healthcheck.sh beside the proxy"
    PATH="$bin:$PATH" unshare --pid --fork --mount-proc "$root/docker/healthcheck.sh" ||
        fail "healthcheck.sh with nothing to check"
    # A node that listens but does not run (SIGSTOP): the kernel still accepts its TCP connections,
    # the handshake never completes, and the check must fail.
    # shellcheck disable=SC2016 # expanded by the inner bash, from its arguments
    if PATH="$bin:$PATH" unshare --pid --fork --mount-proc bash -c '
        "$1" --config "$2" --ready-file "$3" 2>/dev/null & node=$!
        for _ in $(seq 300); do [[ -s "$3" ]] && break; sleep 0.2; done
        kill -STOP "$node"; "$0"; status=$?; kill -KILL "$node"; exit "$status"' \
        "$root/docker/healthcheck.sh" "$quorumd" "$QUORUM_DIR/node-2.toml" "$work/node-2.ready"; then
        fail "healthcheck.sh passed beside a stopped node"
    fi
    echo "healthy beside each server, unhealthy beside a stopped node"
fi

stop_all
trap - EXIT
rm -rf "$work"
printf '\ncheck-local: every check passed\n'
