# Sourced by the scripts that build batten under sudo. sudo resets PATH, so
# rustup's cargo in the invoking user's home is not on it: put it back,
# with that user's toolchains (RUSTUP_HOME), or say what to install.
if ! command -v cargo >/dev/null 2>&1 && [ -n "${SUDO_USER:-}" ]; then
    sudo_home=$(getent passwd "$SUDO_USER" | cut -d: -f6)
    if [ -n "$sudo_home" ] && [ -x "$sudo_home/.cargo/bin/cargo" ]; then
        PATH="$sudo_home/.cargo/bin:$PATH"
        export PATH
        export RUSTUP_HOME="${RUSTUP_HOME:-$sudo_home/.rustup}"
    fi
fi
if ! command -v cargo >/dev/null 2>&1; then
    echo "$(basename "$0"): cargo is not on PATH (nor in ~${SUDO_USER:-}/.cargo/bin); install Rust with rustup (https://rustup.rs) and run again" >&2
    exit 2
fi
