#!/usr/bin/env bash
# The test command: ./scripts/test.sh [extra cargo test args]
# Makes sure PostgreSQL and Redis are available (see scripts/services.sh),
# then runs every test target in the workspace (unit, integration, faults).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

source scripts/services.sh || exit 1

exec cargo test --workspace --locked "$@"
