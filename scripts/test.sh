#!/usr/bin/env bash
# The project's whole check, as CI runs it: dependencies, formatting, build, every test.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

echo "== format check (swift format lint --strict)"
swift format lint --strict --recursive Package.swift Sources Tests Benchmarks/Package.swift Benchmarks/Benchmarks

echo "== build"
swift build --build-tests

echo "== tests"
swift test --skip-build --disable-xctest
