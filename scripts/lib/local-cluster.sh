# A throwaway cluster of quorumd nodes on loopback, for the scripts that need one (the demo and
# the benchmarks). Source it with $quorumctl and $quorumd set to the binaries.
#
#   cluster_write DIR N              certificates in DIR/certs, an operator key DIR/operator.key that
#                                    every node trusts, DIR/node-<i>.toml (data in DIR/data-<i>),
#                                    DIR/cluster.toml; free loopback ports
#   cluster_push_bundle DIR FILE     signs the bundle FILE with DIR/operator.key and pushes it to
#                                    every node
#   cluster_install_dealer_keys DIR N K
#                                    a K-of-N dealer keygen in DIR/dealer, each node's keys copied into
#                                    DIR/data-<i>/keys (what `keygen import` does over the network)
#   cluster_start DIR N [FLAGS...]   starts every node (extra quorumd FLAGS; logs in DIR/node-<i>.log)
#                                    and waits until each listens; pids in cluster_pids
#   cluster_wait DIR                 waits (at most 30 s) until `quorumctl status` sees every node and
#                                    every peer up; leaves the table in DIR/status
#   cluster_stop                     SIGTERMs every node; fails naming any that did not exit 0
#   cluster_kill                     SIGKILLs whatever is left (for an EXIT trap)
#   release_binaries SCRATCH PRODUCT...
#                                    prints the directory holding PRODUCTs: $BIN when set (built
#                                    already), else a release build of each in scratch path SCRATCH

cluster_pids=()

release_binaries() {
    local scratch="$1" product
    shift
    if [[ -n "${BIN:-}" ]]; then
        echo "$BIN"
        return
    fi
    echo "== building $* (release, $scratch)" >&2
    for product in "$@"; do swift build -c release --scratch-path "$scratch" --product "$product" >/dev/null; done
    swift build -c release --scratch-path "$scratch" --show-bin-path
}

# N free loopback ports: from a random base, skipping any port something answers on.
cluster_ports() {
    local count="$1" port=$((20000 + RANDOM % 30000)) ports=()
    while [[ ${#ports[@]} -lt $count ]]; do
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then ports+=("$port"); fi
        port=$((port + 1))
    done
    echo "${ports[@]}"
}

cluster_write() {
    local dir="$1" n="$2" id peer ports
    read -r -a ports <<<"$(cluster_ports "$n")"
    mkdir -p "$dir"
    "$quorumctl" certs init --nodes "$n" --out "$dir/certs" >/dev/null
    local operator_key
    operator_key="$("$quorumctl" policy keygen --out "$dir/operator.key")"
    : >"$dir/cluster.toml"
    for id in $(seq 1 "$n"); do
        printf '[[nodes]]\nid = %d\naddress = "127.0.0.1:%d"\n\n' "$id" "${ports[id - 1]}" >>"$dir/cluster.toml"
        {
            printf 'node_id = %d\nlisten = "127.0.0.1:%d"\ndata_dir = "data-%d"\n\n' "$id" "${ports[id - 1]}" "$id"
            printf '[tls]\ncertificate = "certs/node-%d.pem"\nprivate_key = "certs/node-%d.key"\n' "$id" "$id"
            printf 'cluster_ca = "certs/ca.pem"\n\n[membership]\nheartbeat_interval_ms = 200\npeer_timeout_ms = 1500\n'
            printf '\n[policy]\noperator_keys = ["%s"]\n' "$operator_key"
            for peer in $(seq 1 "$n"); do
                [[ $peer -eq $id ]] && continue
                printf '\n[[peers]]\nid = %d\naddress = "127.0.0.1:%d"\n' "$peer" "${ports[peer - 1]}"
            done
        } >"$dir/node-$id.toml"
    done
}

cluster_push_bundle() {
    local dir="$1" file="$2"
    "$quorumctl" policy sign "$file" --key "$dir/operator.key" --out "$dir/bundle.signed.json" >/dev/null
    "$quorumctl" policy push "$dir/bundle.signed.json" --cluster "$dir/cluster.toml" --certs-dir "$dir/certs" >/dev/null
}

cluster_install_dealer_keys() {
    local dir="$1" n="$2" k="$3" id
    "$quorumctl" keygen --dealer --threshold "$k" --nodes "$n" --out "$dir/dealer" >/dev/null
    for id in $(seq 1 "$n"); do
        mkdir -p -m 700 "$dir/data-$id/keys"
        cp "$dir/dealer/node-$id/signing-share.json" "$dir/dealer/node-$id/sealing-share.json" \
            "$dir/dealer/group.json" "$dir/dealer/sealing-group.json" "$dir/data-$id/keys/"
        chmod 600 "$dir/data-$id/keys/"*-share.json
    done
}

cluster_start() {
    local dir="$1" n="$2" id
    shift 2
    for id in $(seq 1 "$n"); do
        rm -f "$dir/ready-$id"
        "$quorumd" --config "$dir/node-$id.toml" --ready-file "$dir/ready-$id" "$@" 2>"$dir/node-$id.log" &
        cluster_pids+=("$!")
    done
    for id in $(seq 1 "$n"); do
        for _ in $(seq 1 150); do [[ -s "$dir/ready-$id" ]] && break; sleep 0.2; done
        if [[ ! -s "$dir/ready-$id" ]]; then
            cat "$dir/node-$id.log" >&2
            echo "node $id did not start (log above)" >&2
            return 1
        fi
    done
}

cluster_wait() {
    local dir="$1"
    for _ in $(seq 1 150); do
        if "$quorumctl" status --cluster "$dir/cluster.toml" --certs-dir "$dir/certs" >"$dir/status" 2>&1 &&
            ! grep -q "down:" "$dir/status"; then
            return 0
        fi
        sleep 0.2
    done
    cat "$dir/status" >&2
    echo "the nodes did not all come up and see each other within 30 s" >&2
    return 1
}

cluster_stop() {
    local pid status failed=0
    for pid in "${cluster_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${cluster_pids[@]}"; do
        status=0
        wait "$pid" 2>/dev/null || status=$?
        if [[ $status -ne 0 ]]; then
            echo "quorumd (pid $pid) exited $status after SIGTERM" >&2
            failed=1
        fi
    done
    cluster_pids=()
    return "$failed"
}

cluster_kill() {
    local pid
    for pid in "${cluster_pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    cluster_pids=()
}
