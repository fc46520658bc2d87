#!/usr/bin/env bash
# The same with the CLI, straight against the embedded database (./hub-data unless HUB_DATA_DIR says otherwise).
set -euo pipefail
ENDPOINT="${ENDPOINT:-https://hr.example.com/scim/v2}"   # your HR system
TOKEN="${TOKEN:-replace-with-your-token}"
hub() { if [ -n "${HUB_BIN:-}" ]; then "$HUB_BIN" "$@"; else swift run -q hub "$@"; fi; }

id=$(hub integrations add --system-id workday --type HR --endpoint-url "$ENDPOINT" \
  --auth-config "{\"type\": \"bearer\", \"token\": \"$TOKEN\"}" \
  --mapping-config '{"connector": {"type": "scim"}}' --json \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["integration_id"])')
hub integrations test "$id" || true        # exit 7 when the system cannot be reached
hub sync start --integration "$id" --type full --entity users   # runs here: progress, then the summary
hub records list --integration "$id" --entity users --limit 5
hub sync list --integration "$id"
