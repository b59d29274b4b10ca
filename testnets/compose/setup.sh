#!/usr/bin/env bash
# The compose testnet's one-shot setup (testnets/docker-compose.yml), in two phases:
#
#   setup.sh config    before any node starts: the cluster CA and every certificate (with the
#                      compose service names as DNS names), an operator key, one TOML per node,
#                      cluster.toml, proxy.toml and the demo upstream's API key
#   setup.sh cluster   once every node runs: waits until they all see each other, runs the DKG key
#                      ceremony across them (quorumctl keygen --cluster), writes the demo bundle,
#                      creates the latch 'demo', signs and pushes the bundle, seals the demo
#                      upstream's API key to the quorum and gives every node its sealed record;
#                      prints the token and a first call
#
# Both phases do what an operator does, with quorumctl's own commands (docs/operations.md). Each
# step whose output already exists is skipped, so `docker compose up` on kept volumes reuses the
# cluster instead of making a second one.
#
# Plain bash with parameters, so it also runs against local processes (check-local.sh does):
#   QUORUM_DIR          configuration directory, shared by every container (default /etc/quorum)
#   QUORUM_NODES        node addresses in id order, space-separated
#                       (default "node1:7100 node2:7100 node3:7100 node4:7100")
#   QUORUM_LISTEN_HOST  the host each node listens on, with the port of its address (default 0.0.0.0)
#   QUORUM_NODE_DATA    each node's data_dir; %d is its id (default /var/lib/quorum/data: one volume each)
#   QUORUM_THRESHOLD    the signing threshold k (default 3)
#   QUORUM_HOSTS        DNS names and addresses for the node and proxy certificates (default the
#                       service names, localhost and 127.0.0.1)
#   QUORUM_PROXY_LISTEN the proxy's listener (default 0.0.0.0:8080)
#   QUORUM_PROXY_DATA   the proxy's data_dir, where the sealed credential goes (default /var/lib/quorum/proxy)
#   QUORUM_UPSTREAM     the demo upstream's URL as the proxy reaches it (default http://upstream:9000)
#   QUORUM_PROXY_URL    the proxy's URL as the caller reaches it, for the printed call
#                       (default http://127.0.0.1:8080)
#   QUORUM_AUDIT_PORTS  each node's audit API port, in id order (default 7301 for every node: each
#                       container has its own addresses)
#   QUORUM_METRICS_PORTS each node's metrics port, in id order (default 9101 for every node)
#   QUORUM_PROXY_METRICS the proxy's metrics listener (default 0.0.0.0:9100)
#   QUORUM_WAIT_SECONDS how long `cluster` waits for the nodes to see each other (default 120)
#   QUORUMCTL           the quorumctl binary (default: quorumctl on PATH)
set -euo pipefail

dir="${QUORUM_DIR:-/etc/quorum}"
read -r -a nodes <<<"${QUORUM_NODES:-node1:7100 node2:7100 node3:7100 node4:7100}"
listen_host="${QUORUM_LISTEN_HOST:-0.0.0.0}"
node_data="${QUORUM_NODE_DATA:-/var/lib/quorum/data}"
threshold="${QUORUM_THRESHOLD:-3}"
read -r -a hosts <<<"${QUORUM_HOSTS:-node1 node2 node3 node4 proxy localhost 127.0.0.1}"
proxy_listen="${QUORUM_PROXY_LISTEN:-0.0.0.0:8080}"
proxy_data="${QUORUM_PROXY_DATA:-/var/lib/quorum/proxy}"
upstream="${QUORUM_UPSTREAM:-http://upstream:9000}"
proxy_url="${QUORUM_PROXY_URL:-http://127.0.0.1:8080}"
wait_seconds="${QUORUM_WAIT_SECONDS:-120}"
quorumctl="${QUORUMCTL:-quorumctl}"
proxy_metrics="${QUORUM_PROXY_METRICS:-0.0.0.0:9100}"

count=${#nodes[@]}
read -r -a audit_ports <<<"${QUORUM_AUDIT_PORTS:-$(printf '7301 %.0s' $(seq 1 "$count"))}"
read -r -a metrics_ports <<<"${QUORUM_METRICS_PORTS:-$(printf '9101 %.0s' $(seq 1 "$count"))}"
((${#audit_ports[@]} == count)) || {
    echo "setup: QUORUM_AUDIT_PORTS names ${#audit_ports[@]} ports for $count nodes" >&2
    exit 2
}
((${#metrics_ports[@]} == count)) || {
    echo "setup: QUORUM_METRICS_PORTS names ${#metrics_ports[@]} ports for $count nodes" >&2
    exit 2
}
operator=(--cluster "$dir/cluster.toml" --certs-dir "$dir/certs")

step() { printf '\n==> %s\n' "$*"; }
fail() {
    printf 'setup: FAILED: %s\n' "$*" >&2
    exit 1
}

config() {
    if [[ -f "$dir/cluster.toml" ]]; then
        step "$dir already holds a configuration (cluster.toml); reusing it"
        return 0
    fi
    mkdir -p "$dir"

    step "certificates: the cluster CA, nodes 1..$count, the proxy and the operator"
    local host_flags=() host
    for host in "${hosts[@]}"; do host_flags+=(--host "$host"); done
    "$quorumctl" certs init --nodes "$count" --out "$dir/certs" "${host_flags[@]}"

    step "the operator key that signs policy bundles"
    local operator_key
    operator_key="$("$quorumctl" policy keygen --out "$dir/operator.key")"
    echo "operator public key: $operator_key"

    step "node-1..$count.toml, cluster.toml, proxy.toml"
    local id peer address entry
    local cluster=""
    for id in $(seq 1 "$count"); do
        address="${nodes[id - 1]}"
        printf -v entry '[[nodes]]\nid = %d\naddress = "%s"\n\n' "$id" "$address"
        cluster+="$entry"
        {
            printf '# quorumd configuration of node %d of the compose testnet (testnets/compose/setup.sh).\n' "$id"
            printf 'node_id = %d\nlisten = "%s:%s"\n' "$id" "$listen_host" "${address##*:}"
            # shellcheck disable=SC2059 # the pattern is the parameter
            printf "data_dir = \"$node_data\"\n\n" "$id"
            printf '[tls]\ncertificate = "certs/node-%d.pem"\nprivate_key = "certs/node-%d.key"\n' "$id" "$id"
            printf 'cluster_ca = "certs/ca.pem"\n\n'
            printf '[membership]\nheartbeat_interval_ms = 250\npeer_timeout_ms = 2000\n\n'
            printf '[policy]\noperator_keys = ["%s"]\n' "$operator_key"
            printf '\n[audit]\nlisten = "%s:%s"\n\n[metrics]\nlisten = "%s:%s"\n' \
                "$listen_host" "${audit_ports[id - 1]}" "$listen_host" "${metrics_ports[id - 1]}"
            for peer in $(seq 1 "$count"); do
                [[ $peer -eq $id ]] && continue
                printf '\n[[peers]]\nid = %d\naddress = "%s"\n' "$peer" "${nodes[peer - 1]}"
            done
        } >"$dir/node-$id.toml"
    done
    printf '%s' "$cluster" >"$dir/cluster.toml"
    local audit_nodes=""
    for id in $(seq 1 "$count"); do
        address="${nodes[id - 1]}"
        audit_nodes+="${audit_nodes:+, }\"http://${address%:*}:${audit_ports[id - 1]}\""
    done
    cat >"$dir/proxy.toml" <<PROXY
# quorum-proxy configuration of the compose testnet (testnets/compose/setup.sh).
listen = "$proxy_listen"
data_dir = "$proxy_data"

[cluster]
nodes = "cluster.toml"
certificate = "certs/proxy.pem"
private_key = "certs/proxy.key"
cluster_ca = "certs/ca.pem"
group = "group.json"
sealing_group = "sealing-group.json"
decision_timeout_ms = 2000

[bundle]
trusted_signers = ["$operator_key"]

# The nodes' audit APIs, forwarded under /.well-known/quorum/audit/.
[audit]
nodes = [$audit_nodes]

[metrics]
listen = "$proxy_metrics"
PROXY

    step "the demo upstream's API key (a test fixture: never a real credential)"
    (
        umask 077
        printf 'sk-demo-%s\n' "$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')" >"$dir/upstream-api-key"
    )
    echo "wrote $dir/upstream-api-key (0600)"
}

# Waits until every node answers status and hears every peer: the ceremony needs each node to have
# heard every other's identity key.
wait_for_nodes() {
    local deadline=$((SECONDS + wait_seconds))
    while ((SECONDS < deadline)); do
        if "$quorumctl" status "${operator[@]}" >"$dir/status.txt" 2>&1 && ! grep -q 'down:' "$dir/status.txt"; then
            cat "$dir/status.txt"
            return 0
        fi
        sleep 1
    done
    cat "$dir/status.txt" >&2
    fail "the nodes did not all answer and see each other within $wait_seconds s"
}

# The demo bundle: the secret 'openai' injected as a bearer token, and a root latch 'template'
# holding the demo's mount and filters. `latch create --like template` copies them into the
# latch 'demo' with a fresh token; the template is revoked and its token digest is all zeros, so
# no token ever opens it.
write_bundle() {
    cat >"$dir/bundle.yaml" <<BUNDLE
# The compose testnet's demo bundle (testnets/compose/setup.sh).
format: quorum-latch/bundle/v1
version: 1

secrets:
  - name: openai
    inject: bearer

fields:
  token_cap: [\$.max_tokens, \$.max_completion_tokens, \$.max_output_tokens]

prices:
  demo-small: {input: 1.00, output: 2.00}

latches:
  - id: template
    token_sha256: $(printf '0%.0s' $(seq 1 64))
    revoked: true
    labels: {purpose: template}
    mounts:
      - path: /openai
        upstream: $upstream
        secret: openai
        filters:
          - method: [POST]
          - endpoint:
              allow: [/v1/chat/completions]
          - id: token-cap
            payload:
              - {field: token_cap, op: le, value: 256, required: true}
          - id: per-minute
            rate_limit: {requests: 60, window: 1m, key: latch}
          - id: daily-budget
            budget:
              day: 0.50
              cost: {llm: {model: \$.model, token_field: token_cap}}
BUNDLE
}

cluster() {
    [[ -f "$dir/cluster.toml" ]] || fail "$dir/cluster.toml is missing; run the config phase first"

    step "waiting until every node answers and sees its peers"
    wait_for_nodes

    if [[ -f "$dir/group.json" ]]; then
        step "the cluster's keys exist ($dir/group.json); no new ceremony"
    else
        step "the DKG key ceremony across the $count nodes ($threshold-of-$count)"
        "$quorumctl" keygen "${operator[@]}" --threshold "$threshold" --out "$dir" --timeout 30
    fi

    if [[ -f "$dir/token" ]]; then
        step "the latch 'demo' exists ($dir/token); pushing the signed bundle again"
    else
        step "the demo bundle and the latch 'demo'"
        write_bundle
        local token
        token="$("$quorumctl" latch create --bundle "$dir/bundle.yaml" --id demo --like template --label purpose=testnet)"
        (
            umask 077
            printf '%s\n' "$token" >"$dir/token"
        )
        echo "token of latch 'demo': $dir/token (0600)"
        "$quorumctl" policy validate "$dir/bundle.yaml"
        "$quorumctl" policy sign "$dir/bundle.yaml" --key "$dir/operator.key" --out "$dir/bundle.signed.json"
    fi
    "$quorumctl" policy push "$dir/bundle.signed.json" "${operator[@]}" --timeout 30

    if [[ -f "$proxy_data/credentials/openai.json" ]]; then
        step "the sealed credential 'openai' exists; pushing it to every node again"
    else
        step "the demo upstream's API key, sealed to the quorum as secret 'openai'"
        "$quorumctl" secrets set openai --value-file "$dir/upstream-api-key" \
            --sealing-group "$dir/sealing-group.json" --proxy-dir "$proxy_data"
    fi
    "$quorumctl" secrets push openai --proxy-dir "$proxy_data" "${operator[@]}" --timeout 30

    local token
    token="$(cat "$dir/token")"
    step "the testnet is set up"
    cat <<SUMMARY
group key: $(sed -n 's/.*"group_public_key" *: *"\([0-9a-f]*\)".*/\1/p' "$dir/group.json")
token:     $token
An allowed call (the proxy answers once it is healthy):
  curl -sS -i $proxy_url/openai/v1/chat/completions -H 'Authorization: Bearer $token' \\
      -H 'Content-Type: application/json' \\
      -d '{"model":"demo-small","max_tokens":50,"messages":[{"role":"user","content":"Hello"}]}'
The same with "max_tokens":4000 is denied (403) by the token cap.
SUMMARY
}

case "${1:-}" in
config) config ;;
cluster) cluster ;;
*)
    sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
