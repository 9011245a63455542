#!/usr/bin/env bash
# Installs everything rtcat's build, demo and tests need on Debian 12, with apt-get.
# Idempotent: when every package is already installed it does nothing (no apt-get update).
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive

PACKAGES=(
    # toolchain
    build-essential cmake ninja-build pkg-config g++ clang libclang-rt-14-dev clang-format
    # libraries
    libssl-dev libcli11-dev libfmt-dev nlohmann-json3-dev libusrsctp-dev libsrtp2-dev
    # tests and benchmarks
    libgtest-dev libgmock-dev libbenchmark-dev python3 groff-base git
    # demo + network tests: STUN/TURN server, namespaces, NAT, unshare
    coturn iproute2 nftables procps util-linux
    # README examples test: a real sshd on 127.0.0.1 inside the test's namespace
    openssh-server openssh-client
    # browser interop: Debian's Chromium driven by node + playwright-core (npm ships with the
    # machine's nodejs; tests/interop/setup.sh installs playwright-core)
    chromium nodejs
    # plain-peer interop (tests/interop/plain_peer.py): a second browser engine, driven by a
    # page only, and aiortc as a non-browser WebRTC stack (for Debian's /usr/bin/python3)
    firefox-esr python3-aiortc
)

installed() {
    # "install ok installed" is the only state that means the package is usable.
    [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" == "install ok installed" ]]
}

missing=()
for p in "${PACKAGES[@]}"; do
    installed "$p" || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
    echo "install-deps: all ${#PACKAGES[@]} packages present"
    exit 0
fi

SUDO=()
if ((EUID != 0)); then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo -n env DEBIAN_FRONTEND=noninteractive)
    else
        echo "install-deps: missing ${missing[*]} and not root (no sudo); install them by hand" >&2
        exit 1
    fi
fi

# Never let a package's maintainer script start a daemon (coturn ships a service): a
# policy-rc.d that denies every start is the Debian way; remove it again afterwards.
POLICY=/usr/sbin/policy-rc.d
added_policy=0
if [[ ! -e $POLICY ]]; then
    printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$POLICY" >/dev/null
    "${SUDO[@]}" chmod 755 "$POLICY"
    added_policy=1
fi
cleanup() {
    if ((added_policy)); then
        "${SUDO[@]}" rm -f "$POLICY"
    fi
}
trap cleanup EXIT

echo "install-deps: installing ${missing[*]}"
"${SUDO[@]}" apt-get update -q
"${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"

# coturn's package may still have started turnserver on systems with an init; stop it.
if installed coturn; then
    if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
        "${SUDO[@]}" systemctl disable --now coturn >/dev/null 2>&1 || true
    elif [[ -x /etc/init.d/coturn ]]; then
        "${SUDO[@]}" /etc/init.d/coturn stop >/dev/null 2>&1 || true
    fi
fi

still=()
for p in "${PACKAGES[@]}"; do
    installed "$p" || still+=("$p")
done
if ((${#still[@]})); then
    echo "install-deps: still missing after install: ${still[*]}" >&2
    exit 1
fi
echo "install-deps: done"
