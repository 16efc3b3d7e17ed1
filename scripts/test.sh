#!/usr/bin/env bash
# The test command: ./scripts/test.sh [extra cargo test args]
# Makes sure PostgreSQL and Redis are available (see scripts/services.sh),
# then runs every test target in the workspace (unit, integration, faults).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

source scripts/services.sh || exit 1

# Tools the tests install once, outside the clone (cargo-deny; schemathesis in
# tests/schemathesis.rs): a warm machine skips the install. HEJNAL_TEST_*, because the
# service refuses any other HEJNAL_* variable it does not know.
export HEJNAL_TEST_TOOLS_DIR="${HEJNAL_TEST_TOOLS_DIR:-/var/cache/hejnal-ci/tools}"
scripts/deny.sh

exec cargo test --workspace --locked "$@"
