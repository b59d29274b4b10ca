#!/usr/bin/env bash
# Installs the system libraries Quorum Latch builds against, curl for the demo's calls,
# docker-compose (CI validates testnets/docker-compose.yml with it) and the fault testnet's network
# tools (Debian/Ubuntu), if any are missing.
# Called by scripts/demo.sh and before the tests; safe to run again (does nothing when all are
# present). Uses sudo only when not already root.
set -euo pipefail

# iproute2 and iptables for the fault testnet (testnets/netns: namespaces, veth, the delay
# fallback where the kernel has no sch_netem); shellcheck for its scripts' check in scripts/test.sh.
packages=(
    libsodium-dev libsecp256k1-dev librocksdb-dev libssl-dev pkg-config curl docker-compose iproute2 iptables
    shellcheck
)

missing=()
for package in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}\n' "$package" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$package")
    fi
done

# The official OpenAI Python client, for the proxy's compatibility test (skipped, saying why, when it
# cannot be imported). Quick when present; a failure here does not stop the build.
if command -v python3 >/dev/null 2>&1 && ! python3 -c "import openai" >/dev/null 2>&1; then
    echo "install-deps: installing the openai Python package"
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore openai ||
        echo "install-deps: could not install openai; the proxy's OpenAI client test will be skipped" >&2
fi

if ((${#missing[@]} == 0)); then
    echo "install-deps: ${packages[*]} already installed"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-deps: missing ${missing[*]}, and there is no apt-get; install them with your package manager" >&2
    exit 1
fi

as_root=()
if [[ "$(id -u)" -ne 0 ]]; then
    if ! command -v sudo >/dev/null 2>&1; then
        echo "install-deps: missing ${missing[*]}; run as root or install sudo" >&2
        exit 1
    fi
    as_root=(sudo)
fi

echo "install-deps: installing ${missing[*]}"
${as_root[@]+"${as_root[@]}"} apt-get update
${as_root[@]+"${as_root[@]}"} env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends "${missing[@]}"
