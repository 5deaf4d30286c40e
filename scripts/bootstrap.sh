#!/usr/bin/env bash
# Ensure the system packages needed to build Guichet are installed.
#   clang, libclang-dev : bindgen (samael/xmlsec bindings)
#   libxmlsec1-dev      : samael's xmlsec feature
#   libssl-dev          : josekit (openssl)
#   pkg-config          : locating the C libraries above
# Silent and fast (< 1 s) when everything is already present. Idempotent.
set -euo pipefail

PACKAGES=(clang libclang-dev libxmlsec1-dev libssl-dev pkg-config)

is_installed() {
    # `dpkg -s` also succeeds for removed packages whose config files remain,
    # so look at the Status line rather than the exit code alone.
    dpkg -s "$1" 2>/dev/null | grep -q '^Status: install ok installed$'
}

missing=()
for pkg in "${PACKAGES[@]}"; do
    is_installed "$pkg" || missing+=("$pkg")
done

if ((${#missing[@]} > 0)); then
    if [[ $(id -u) -eq 0 ]]; then
        echo "bootstrap: installing ${missing[*]}" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            -o DPkg::Lock::Timeout=300 "${missing[@]}" >/dev/null
        for pkg in "${missing[@]}"; do
            is_installed "$pkg" || { echo "bootstrap: failed to install $pkg" >&2; exit 1; }
        done
    else
        echo "bootstrap: missing system packages: ${missing[*]}" >&2
        echo "bootstrap: run: sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
        exit 1
    fi
fi

if ! command -v cargo >/dev/null 2>&1; then
    if [[ -x $HOME/.cargo/bin/cargo ]]; then
        echo "bootstrap: cargo is in ~/.cargo/bin but not on PATH: run 'source \"\$HOME/.cargo/env\"'" >&2
    else
        echo "bootstrap: cargo not found: install Rust with rustup (https://rustup.rs)" >&2
    fi
    exit 1
fi
