#!/usr/bin/env bash
# Runs every test: starts the throwaway PostgreSQL (installing it if needed), then `swift test`.
# Extra arguments go to `swift test` (for example --filter IntegrationContract).
set -euo pipefail
cd "$(dirname "$0")/.."
HUB_TEST_DATABASE_URL="$(scripts/postgres.sh)"
export HUB_TEST_DATABASE_URL
# Build everything first (tests run the `hub` executable as a subprocess), then run the tests.
swift build --build-tests
exec swift test --skip-build "$@"
