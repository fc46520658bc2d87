#!/usr/bin/env bash
# Register an integration, test it, start a sync, see its status: the HTTP API with curl.
# HUB is the server's address; KEY is the API key printed by the first `hub serve`.
set -euo pipefail
ENDPOINT="${ENDPOINT:-https://hr.example.com/scim/v2}"   # your HR system
TOKEN="${TOKEN:-replace-with-your-token}"
HUB="${HUB:-http://127.0.0.1:8080}"
auth=(-H "Authorization: Bearer $KEY")
json=(-H "Content-Type: application/json")

integration=$(curl -sf "${auth[@]}" "${json[@]}" -X POST "$HUB/v1/integrations" -d '{
  "system_id": "workday", "integration_type": "HR", "endpoint_url": "'"$ENDPOINT"'",
  "auth_config": {"type": "bearer", "token": "'"$TOKEN"'"}}')
id=$(printf '%s' "$integration" | python3 -c 'import json, sys; print(json.load(sys.stdin)["integration_id"])')

curl -s "${auth[@]}" -X POST "$HUB/v1/integrations/$id/test"          # status and test_result
curl -sf "${auth[@]}" "${json[@]}" -X POST "$HUB/v1/sync-jobs" \
  -d "{\"integration_id\": \"$id\", \"sync_type\": \"full\", \"entity_type\": \"users\"}"
curl -sf "${auth[@]}" "$HUB/v1/integrations/$id"                      # auth_config comes back masked
curl -sf "${auth[@]}" "$HUB/v1/sync-jobs?integration_id=$id"
