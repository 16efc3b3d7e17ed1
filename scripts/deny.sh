#!/usr/bin/env bash
# Dependency policy (deny.toml): licences, bans and sources, with cargo-deny.
# cargo-deny is installed once into $HEJNAL_TEST_TOOLS_DIR (outside the clone; a cold install
# compiles it, about two minutes on two cores). Under CI=true a failed install or a failed
# check fails the run; elsewhere a failed install only warns.
# Advisories are not checked here: their database cannot be fetched on the CI machines
# (see the README, "Dependencies").
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

CARGO_DENY_VERSION=0.20.2
tools="${HEJNAL_TEST_TOOLS_DIR:-/var/cache/hejnal-ci/tools}"
deny="$tools/bin/cargo-deny"

if ! "$deny" --version 2>/dev/null | grep -q "$CARGO_DENY_VERSION"; then
    echo "installing cargo-deny $CARGO_DENY_VERSION into $tools" >&2
    # Its own build directory, so the project's target dir is not mixed with it.
    if ! mkdir -p "$tools" || ! CARGO_TARGET_DIR="$tools/build" cargo install --locked --quiet \
            cargo-deny --version "$CARGO_DENY_VERSION" --root "$tools"; then
        if [ "${CI:-}" = "true" ] || [ "${CI:-}" = "1" ]; then
            echo "FAILED: cannot install cargo-deny; under CI=true the dependency check must run" >&2
            exit 1
        fi
        echo "WARNING: cannot install cargo-deny; dependency check skipped" >&2
        exit 0
    fi
fi

"$deny" --version
exec "$deny" check licenses bans sources
