#!/usr/bin/env bash
# How `quorumctl testnet up --node-launcher` starts node ID of the fault testnet: inside its
# network namespace. `ip netns exec` replaces itself with the command, so the pid that testnet up
# records (and testnet down signals) is quorumd's own.
#
#   node-exec.sh ID COMMAND [ARGS...]
set -euo pipefail
[[ $# -ge 2 && "$1" =~ ^[0-9]+$ ]] || {
    echo "node-exec.sh: usage: node-exec.sh ID COMMAND [ARGS...]" >&2
    exit 2
}
exec ip netns exec "ql-n$1" "${@:2}"
