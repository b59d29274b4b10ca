#!/bin/sh
# The image's entrypoint: the first word of the command picks the binary.
#
#   quorumd [run] --config FILE           a policy node
#   quorum-proxy [run] --config FILE      the proxy (or: quorum-proxy demo-upstream ...)
#   quorumctl ...                         the operator and auditor CLI
#   anything else                         run as given (e.g. bash, or a testnets/compose script)
set -eu

if [ "$#" -eq 0 ] || [ "$1" = "--help" ] || [ "$1" = "-h" ]; then
    cat <<'USAGE'
Quorum Latch: one image for quorumd, quorum-proxy and quorumctl. The first word picks the binary:
  docker run IMAGE quorumd --config /etc/quorum/node-1.toml
  docker run IMAGE quorum-proxy --config /etc/quorum/proxy.toml
  docker run IMAGE quorumctl --help
Configuration and certificates go in /etc/quorum, data in /var/lib/quorum/data (node) or
/var/lib/quorum/proxy (proxy); see docs/operations.md, "Containers".
USAGE
    exit 0
fi

case "$1" in
quorumd | quorum-proxy | quorumctl)
    # exec: the binary becomes the container's main process and gets docker stop's SIGTERM itself.
    binary="$1"
    shift
    exec "/usr/local/bin/$binary" "$@"
    ;;
*)
    exec "$@"
    ;;
esac
