#!/usr/bin/env bash
# The project's whole check, as CI runs it: dependencies, formatting, build, every test.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

echo "== format check (swift format lint --strict)"
swift format lint --strict --recursive Package.swift Sources Tests Benchmarks/Package.swift Benchmarks/Benchmarks

echo "== shell check (shellcheck)"
shellcheck -x scripts/*.sh testnets/netns/*.sh

echo "== build"
swift build --build-tests

echo "== tests"
# One test at a time: suites that start processes and TLS servers share 2 cores with CPU-bound
# suites, and in parallel a handshake or a heartbeat could wait seconds for a thread. Serial is as
# fast here (about 2.5 minutes) and every wait means what it says.
swift test --skip-build --disable-xctest --no-parallel
