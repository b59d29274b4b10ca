# syntax=docker/dockerfile:1
#
# Quorum Latch: one image for all three binaries (quorumd, quorum-proxy, quorumctl).
#
#   docker build -t quorum-latch .
#   docker run --rm quorum-latch quorumctl --help
#   docker run -v /etc/quorum:/etc/quorum:ro -v node1-data:/var/lib/quorum/data quorum-latch \
#       quorumd --config /etc/quorum/node-1.toml
#
# The first word of the command picks the binary (docker/entrypoint.sh). The whole testnet:
# docker compose -f testnets/docker-compose.yml up (README, "Run it in containers").

# ---------------------------------------------------------------------------------------------
# Builder: the official Swift 6.3.1 image on Debian 12 (bookworm), plus the -dev packages of the
# C libraries the system-library targets link (Package.swift: CSodium, CSecp256k1, CRocksDB).
FROM swift:6.3.1-bookworm AS builder

RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        libsodium-dev libsecp256k1-dev librocksdb-dev libssl-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src
# The manifest names every target, the test targets included, so their directories must exist;
# the tests are not built. Resolving first keeps the dependency checkout in its own layer.
COPY Package.swift ./
RUN swift package resolve
COPY Sources ./Sources
COPY Tests ./Tests

# --static-swift-stdlib links the Swift runtime, Foundation and Dispatch into each binary, so the
# runtime image needs no Swift toolchain libraries: only the C libraries below (checked with ldd,
# docs/operations.md, "Containers").
RUN swift build -c release --static-swift-stdlib --product quorumd \
    && swift build -c release --static-swift-stdlib --product quorum-proxy \
    && swift build -c release --static-swift-stdlib --product quorumctl \
    && bin="$(swift build -c release --static-swift-stdlib --show-bin-path)" \
    && mkdir -p /out \
    && cp "$bin/quorumd" "$bin/quorum-proxy" "$bin/quorumctl" /out/ \
    && strip /out/quorumd /out/quorum-proxy /out/quorumctl

# ---------------------------------------------------------------------------------------------
# Runtime: Debian 12 slim with the runtime halves of the C libraries, CA roots (upstream HTTPS)
# and tzdata (time windows and budget calendars use the IANA database; keep it at one version on
# every node).
FROM debian:bookworm-slim

RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        libsodium23 libsecp256k1-1 librocksdb7.8 ca-certificates tzdata \
    && rm -rf /var/lib/apt/lists/*

# A system user with a fixed uid, so files on volumes keep one owner across images. The
# directories are created here with that owner: a new named volume mounted on one takes its owner
# and mode, so the processes can write there without running as root.
RUN groupadd --system --gid 10001 quorum \
    && useradd --system --uid 10001 --gid quorum --home-dir /var/lib/quorum --shell /usr/sbin/nologin quorum \
    && install -d -o quorum -g quorum -m 0750 /etc/quorum \
    && install -d -o quorum -g quorum -m 0750 /var/lib/quorum \
    && install -d -o quorum -g quorum -m 0700 /var/lib/quorum/data /var/lib/quorum/proxy

COPY --from=builder /out/quorumd /out/quorum-proxy /out/quorumctl /usr/local/bin/
COPY docker/entrypoint.sh /usr/local/bin/quorum-entrypoint
COPY docker/healthcheck.sh /usr/local/bin/quorum-healthcheck
COPY testnets/compose/ /usr/local/share/quorum/compose/

USER quorum:quorum
WORKDIR /var/lib/quorum

# Node RPC (mutual TLS) and the proxy's agent-facing HTTP listener, as in the example configs.
EXPOSE 7100 8080

# quorumd and quorum-proxy stop cleanly on SIGTERM (docker stop's signal): a node closes its
# listener, its connections and RocksDB; give them the default 10 s or more.
STOPSIGNAL SIGTERM

# Finds the quorumd or quorum-proxy process of this container and runs its `health` subcommand:
# for a node, its status over mutual TLS with its own certificate; for the proxy, GET / answered
# by its front. A container running only quorumctl reports healthy with nothing to check.
HEALTHCHECK --interval=15s --timeout=10s --start-period=30s --retries=3 CMD ["quorum-healthcheck"]

ENTRYPOINT ["quorum-entrypoint"]
CMD ["--help"]
