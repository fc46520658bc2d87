#!/usr/bin/env bash
# Runs every test: starts the throwaway PostgreSQL (installing it if needed), then `swift test`; then, when no argument
# is given, fuzzes the parsers (scripts/fuzz.sh, FUZZ_SECONDS per target, 10 by default) and runs Schemathesis against a
# `hub serve` (scripts/schemathesis.sh, SCHEMATHESIS_MAX_EXAMPLES per operation and phase, 40 by default: about 3
# minutes). Extra arguments go to `swift test` alone (for example --filter IntegrationContract).
set -euo pipefail
cd "$(dirname "$0")/.."
HUB_TEST_DATABASE_URL="$(scripts/postgres.sh)"
export HUB_TEST_DATABASE_URL
# Build everything first (tests run the `hub` executable as a subprocess), then run the tests.
swift build --build-tests
if [ $# -gt 0 ]; then exec swift test --skip-build "$@"; fi
swift test --skip-build
FUZZ_SECONDS="${FUZZ_SECONDS:-10}" scripts/fuzz.sh
SCHEMATHESIS_MAX_EXAMPLES="${SCHEMATHESIS_MAX_EXAMPLES:-40}" scripts/schemathesis.sh
