#!/bin/bash
# The image's HEALTHCHECK: finds the quorumd or quorum-proxy process serving in this container and
# runs the matching `health` subcommand with that process's own configuration:
#   quorumd [run] --config F             -> quorumd health --config F (status over mutual TLS with
#                                           the node's own certificate)
#   quorum-proxy [run] --config F        -> quorum-proxy health --config F (GET / answered by the
#                                           proxy's front)
#   quorum-proxy demo-upstream --listen H:P -> quorum-proxy health --url http://H:P/v1/models
# A container running neither (a one-shot quorumctl) has nothing to check and reports healthy.
# Exit status 0 healthy, 1 unhealthy: Docker reserves 2, which the health subcommands use for a
# configuration they cannot read, so every failure is reported as 1.
set -uo pipefail

# The value of --NAME in an argument list ("--NAME VALUE" or "--NAME=VALUE").
option() {
    local name="$1" previous=""
    shift
    for argument in "$@"; do
        if [[ "$previous" == "--$name" ]]; then
            printf '%s' "$argument"
            return 0
        fi
        if [[ "$argument" == "--$name="* ]]; then
            printf '%s' "${argument#--"$name"=}"
            return 0
        fi
        previous="$argument"
    done
    return 1
}

# Runs a health subcommand; its failures, whatever their status, as 1.
check() { "$@" || exit 1; exit 0; }

# A path as the process with working directory $2 sees it.
absolute() { if [[ "$1" == /* ]]; then printf '%s' "$1"; else printf '%s/%s' "$2" "$1"; fi; }

# host:port to a URL host: a wildcard on loopback, IPv6 in brackets.
url_host() {
    case "$1" in
    0.0.0.0 | "") printf '127.0.0.1' ;;
    "::" | "[::]") printf '[::1]' ;;
    \[*) printf '%s' "$1" ;;
    *:*) printf '[%s]' "$1" ;;
    *) printf '%s' "$1" ;;
    esac
}

for process in /proc/[0-9]*; do
    [[ -r "$process/cmdline" ]] || continue
    argv=()
    while IFS= read -r -d '' argument; do argv+=("$argument"); done 2>/dev/null <"$process/cmdline"
    ((${#argv[@]} > 0)) || continue
    binary="${argv[0]##*/}"
    subcommand="${argv[1]:-}"
    cwd="$(readlink "$process/cwd" 2>/dev/null || echo /)"
    case "$binary" in
    quorumd)
        [[ "$subcommand" == "health" ]] && continue
        config="$(option config "${argv[@]:1}")" || continue
        check quorumd health --config "$(absolute "$config" "$cwd")" --timeout 5
        ;;
    quorum-proxy)
        [[ "$subcommand" == "health" ]] && continue
        if [[ "$subcommand" == "demo-upstream" ]]; then
            listen="$(option listen "${argv[@]:2}")" || continue
            check quorum-proxy health --url "http://$(url_host "${listen%:*}"):${listen##*:}/v1/models" --timeout 5
        fi
        config="$(option config "${argv[@]:1}")" || continue
        check quorum-proxy health --config "$(absolute "$config" "$cwd")" --timeout 5
        ;;
    esac
done

echo "quorum-healthcheck: no quorumd or quorum-proxy runs in this container; nothing to check"
exit 0
