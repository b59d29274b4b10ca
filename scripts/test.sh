#!/usr/bin/env bash
# The project's whole check, as CI runs it: dependencies, formatting, the compose file and the
# example systemd units, build, every test, and the compose testnet's scripts against local processes.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

echo "== format check (swift format lint --strict)"
swift format lint --strict --recursive Package.swift Sources Tests Benchmarks/Package.swift Benchmarks/Benchmarks

echo "== compose testnet file (docker-compose config -q)"
# No Docker engine runs here: the file is validated, and its scripts run against local processes
# after the tests (testnets/compose/check-local.sh).
docker-compose -f testnets/docker-compose.yml config -q

echo "== example systemd units (systemd-analyze verify)"
if command -v systemd-analyze >/dev/null 2>&1; then
    # The binaries are not installed here; every other complaint (an unknown key, a bad value) fails.
    problems="$(systemd-analyze verify --man=no cluster/systemd/*.service 2>&1 | grep -v 'is not executable' || true)"
    if [[ -n "$problems" ]]; then
        printf '%s\n' "$problems" >&2
        exit 1
    fi
else
    echo "skipped: no systemd-analyze on this machine"
fi

echo "== shell check (shellcheck)"
shellcheck -x scripts/*.sh testnets/netns/*.sh testnets/compose/*.sh docker/*.sh

echo "== build"
swift build --build-tests

echo "== tests"
# One test at a time: suites that start processes and TLS servers share 2 cores with CPU-bound
# suites, and in parallel a handshake or a heartbeat could wait seconds for a thread. Serial is as
# fast here (about 2.5 minutes) and every wait means what it says.
swift test --skip-build --disable-xctest --no-parallel

echo "== the compose testnet's scripts against local processes"
testnets/compose/check-local.sh "$(swift build --show-bin-path)"
