#!/usr/bin/env bash
# Fuzzes the HTTP API with Schemathesis against its own /openapi.json.
#
# - Creates .build/venv-schemathesis (python3 -m venv; installs Debian's python3-venv, curl and iproute2 if missing,
#   as root) and installs the pinned Schemathesis into it.
# - Runs everything else inside a new network namespace that has only loopback (`unshare --net`; as non-root it tries
#   a user namespace, `unshare --user --map-root-user --net`). The server's outbound policy refuses loopback, private,
#   link-local and metadata addresses but ALLOWS public ones (there is no deny-all setting), and the API makes the
#   server call URLs given in requests (integration tests, the proxy, api-operations, webhook deliveries, connection
#   checks): the namespace is what guarantees that nothing leaves the machine (names do not even resolve). No outbound
#   allowlist is given (HUB_OUTBOUND_ALLOWLIST and every other inherited HUB_* variable are cleared), so the server
#   refuses loopback too. The script refuses to run when no such namespace can be made.
# - Starts `$HUB_BIN serve` (default .build/debug/hub) on embedded SQLite in a fresh temporary data directory, on a
#   port the server picks (--port 0), with an API key made beforehand by `hub keys create`; waits for /readyz.
# - Seeds a few integrations, webhooks, connections, sync jobs, an API operation and maintenance windows through the
#   API and hands their ids (and some valid values) to Schemathesis as dictionaries it draws from half the time, so
#   that operations on `{id}` get past 404 (SCHEMATHESIS_SEED_DATA=0 runs without them).
# - Runs `schemathesis run` with the phases examples, coverage, fuzzing and stateful, every check, a fixed seed and a
#   bounded number of examples per operation, going on past an operation's first failure (--continue-on-failure, so
#   that one known failure does not end an operation's fuzzing); exits with Schemathesis's status (non-zero on any
#   failure). One exception: the proxy operations may answer 502 (their upstream is unreachable in the namespace).
# - Stops the server on exit (SIGTERM, then SIGKILL after 35 s) and removes the data directory.
#
# Reports (JUnit, NDJSON events, a pytest file reproducing failures, the generated config) and the server's log go to
# $SCHEMATHESIS_REPORT_DIR (default .build/schemathesis-report). Output is not sanitized: the repro commands show the
# throwaway API key of the run. Knobs: SCHEMATHESIS_SEED (default 20240611), SCHEMATHESIS_MAX_EXAMPLES (default 100
# per operation and phase; about 10 minutes on 2 cores, 40 about 3: scripts/test.sh uses 40), SCHEMATHESIS_WORKERS (default 1: one worker keeps a seeded run
# repeatable, and CPython 3.11's ast module can fail with "AST constructor recursion depth mismatch" when Hypothesis
# parses in two threads at once), SCHEMATHESIS_MAX_FAILURES (unset: no limit). Extra arguments go to `schemathesis run` (e.g. --include-path-regex '^/v1/webhooks').
set -euo pipefail

schemathesis_version="4.32.5"
log() { printf 'schemathesis.sh: %s\n' "$*" >&2; }

# Paths given relative to the caller's directory, resolved before changing to the repository.
absolute() { if [ -n "$1" ] && [[ "$1" != /* ]]; then printf '%s/%s' "$PWD" "$1"; else printf '%s' "$1"; fi; }
self="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
hub_bin="$(absolute "${HUB_BIN:-}")"
report_dir="$(absolute "${SCHEMATHESIS_REPORT_DIR:-}")"
cd "$(dirname "$self")/.."
root="$PWD"
hub_bin="${hub_bin:-$root/.build/debug/hub}"
report_dir="${report_dir:-$root/.build/schemathesis-report}"
venv="$root/.build/venv-schemathesis"
schemathesis="$venv/bin/schemathesis"

if [ -z "${HUB_SCHEMATHESIS_NETNS:-}" ]; then
    # Outside the namespace: the part that needs PyPI (and Debian).
    if [ ! -x "$hub_bin" ]; then log "no hub binary at $hub_bin (set HUB_BIN)"; exit 1; fi
    missing=()
    command -v curl >/dev/null || missing+=(curl)
    command -v ip >/dev/null || missing+=(iproute2)
    command -v python3 >/dev/null || missing+=(python3)
    if [ ! -x "$schemathesis" ] && ! python3 -c 'import ensurepip, venv' 2>/dev/null; then missing+=(python3-venv); fi
    if [ ${#missing[@]} -gt 0 ]; then
        if [ "$(id -u)" -ne 0 ]; then log "missing ${missing[*]} and this is not root: apt-get install ${missing[*]}"; exit 1; fi
        log "installing ${missing[*]} from Debian"
        apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
    fi
    if [ ! -x "$schemathesis" ] || [ "$("$schemathesis" --version 2>/dev/null || true)" != "schemathesis, version $schemathesis_version" ]; then
        if [ ! -x "$venv/bin/python" ]; then
            log "creating $venv"
            python3 -m venv "$venv"
        fi
        log "installing schemathesis==$schemathesis_version"
        "$venv/bin/python" -m pip install -q --disable-pip-version-check "schemathesis==$schemathesis_version" >&2
    fi
    # Everything else in a network namespace with loopback only.
    export HUB_SCHEMATHESIS_NETNS=1 HUB_BIN="$hub_bin" SCHEMATHESIS_REPORT_DIR="$report_dir"
    if unshare --net true 2>/dev/null; then
        exec unshare --net -- bash "$self" "$@"
    elif unshare --user --map-root-user --net true 2>/dev/null; then
        exec unshare --user --map-root-user --net -- bash "$self" "$@"
    fi
    log "cannot create a network namespace (unshare --net); refusing to fuzz a server that could reach the network"
    exit 1
fi

# Inside the namespace: bring up loopback and check that no other interface or route exists.
ip link set lo up 2>/dev/null || ip link set dev lo up
if [ -n "$(ip -o link show | awk -F': ' '$2 != "lo"')" ] || [ -n "$(ip route show)" ] || [ -n "$(ip -6 route show | grep -v '^\(::1\|fe80\|local\|multicast\)' || true)" ]; then
    log "the network namespace is not isolated:"; ip -o link show >&2; ip route show >&2
    exit 1
fi

seed="${SCHEMATHESIS_SEED:-20240611}"
max_examples="${SCHEMATHESIS_MAX_EXAMPLES:-100}"
workers="${SCHEMATHESIS_WORKERS:-1}"
mkdir -p "$report_dir"

# The server's settings come from here alone: no inherited HUB_* variable (config file, database URL, allowlist…).
while IFS= read -r name; do
    case "$name" in HUB_BIN | HUB_SCHEMATHESIS_NETNS) ;; HUB_*) unset "$name" ;; esac
done < <(compgen -e)

work="$(mktemp -d "${TMPDIR:-/tmp}/hub-schemathesis.XXXXXX")"
server_pid=""
# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
    local status=$?
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || true
        for _ in $(seq 1 350); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$server_pid" 2>/dev/null; then log "server did not stop within 35 s; killing it"; kill -KILL "$server_pid" 2>/dev/null || true; fi
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

data="$work/data"
key="$("$hub_bin" keys create --data-dir "$data" --name schemathesis | tail -n 1)"
case "$key" in hub_*) ;; *) log "hub keys create printed no key"; exit 1 ;; esac

server_log="$report_dir/server.log"
: > "$server_log"
"$hub_bin" serve --data-dir "$data" --host 127.0.0.1 --port 0 >>"$server_log" 2>&1 &
server_pid=$!

port=""
for _ in $(seq 1 300); do
    port="$(sed -n 's|^IntegrationHub listening on http://127\.0\.0\.1:\([0-9]*\) .*|\1|p' "$server_log" | head -n 1)"
    [ -n "$port" ] && break
    kill -0 "$server_pid" 2>/dev/null || { log "server exited at start:"; cat "$server_log" >&2; exit 1; }
    sleep 0.1
done
[ -n "$port" ] || { log "server did not say where it listens within 30 s"; cat "$server_log" >&2; exit 1; }
base="http://127.0.0.1:$port"
for _ in $(seq 1 300); do
    curl -sf -o /dev/null --max-time 2 "$base/readyz" && break
    kill -0 "$server_pid" 2>/dev/null || { log "server exited:"; cat "$server_log" >&2; exit 1; }
    sleep 0.1
done
curl -sf -o /dev/null --max-time 2 "$base/readyz" || { log "$base/readyz not ready within 30 s"; exit 1; }
log "server ready on $base (pid $server_pid, log $server_log)"

# Seed data: a few resources of every kind made through the API, so that operations on `{id}` reach more than 404
# (Schemathesis cannot create them itself: the document has no links and random bodies rarely validate). Their ids
# and some valid values go into a generated config as dictionaries that Schemathesis draws from half the time, the
# other half it generates as usual. SCHEMATHESIS_SEED_DATA=0 runs without them.
api() { # METHOD PATH [JSON]: the response body; fails on anything but 2xx.
    local out code body=()
    if [ $# -ge 3 ]; then body=(-H 'Content-Type: application/json' --data-binary "$3"); fi
    out="$(curl -sS --max-time 20 -o - -w '\n%{http_code}' -X "$1" -H "Authorization: Bearer $key" "${body[@]}" "$base$2")"
    code="${out##*$'\n'}"
    out="${out%$'\n'*}"
    case "$code" in 2??) printf '%s' "$out" ;; *) log "seeding: $1 $2 answered $code: $out"; return 1 ;; esac
}
create() { # FIELD METHOD PATH JSON: the member FIELD of the created resource.
    local out
    out="$(api "$2" "$3" "$4")" || exit 1
    "$venv/bin/python" -c 'import json, sys; print(json.loads(sys.argv[2])[sys.argv[1]])' "$1" "$out"
}
quoted() { local item out=""; for item in "$@"; do out+="${out:+, }\"$item\""; done; printf '[%s]' "$out"; }
seed_data() {
    local w1 w2 w3 w4 i1 i2 i3 i4 j1 j2 o1 c1 c2 c3 c4 m1 m2 messages
    w1="$(create webhook_id POST /v1/webhooks '{"webhook_url": "https://hooks.example.com/hub", "event_types": ["*"]}')"
    w2="$(create webhook_id POST /v1/webhooks '{"webhook_url": "https://hooks.example.net/sync", "event_types": ["sync.*", "record.updated"], "ordered": true, "rate_limit": 5}')"
    i1="$(create integration_id POST /v1/integrations '{"system_id": "workday", "integration_type": "HR", "endpoint_url": "https://hr.example.com/scim/v2", "auth_config": {"type": "bearer", "token": "seed-token"}, "mapping_config": {"connector": {"type": "scim"}}}')"
    i2="$(create integration_id POST /v1/integrations '{"system_id": "sap", "integration_type": "ERP", "endpoint_url": "https://erp.example.org/api", "auth_config": {"type": "api_key", "api_key": "seed-key", "header": "X-API-Key"}}')"
    api PUT "/v1/integrations/$i1/schedules" '{"entity_type": "users", "sync_type": "full", "interval_minutes": 60}' >/dev/null || exit 1
    j1="$(create sync_job_id POST /v1/sync-jobs "{\"integration_id\": \"$i1\", \"sync_type\": \"full\", \"entity_type\": \"users\"}")"
    j2="$(create sync_job_id POST /v1/sync-jobs "{\"integration_id\": \"$i2\", \"sync_type\": \"incremental\", \"entity_type\": \"employees\"}")"
    o1="$(create operation_id POST /v1/api-operations "{\"integration_id\": \"$i1\", \"operation_type\": \"GET\", \"endpoint\": \"/Users\"}")"
    c1="$(create connection_id POST /v1/connections '{"system_name": "payroll-db", "connection_type": "TCP", "endpoint": "db.example.com:5432", "credentials": {}}')"
    c2="$(create connection_id POST /v1/connections '{"system_name": "hr-api", "connection_type": "API", "endpoint": "https://hr.example.com/health", "credentials": {"token": "seed-token"}}')"
    m1="$(create window_id POST "/v1/connections/$c1/maintenance" '{"starts_at": "2030-01-01T00:00:00Z", "ends_at": "2030-01-01T02:00:00Z", "reason": "seed"}')"
    m2="$(create window_id POST "/v1/connections/$c2/maintenance" '{"starts_at": "2031-01-01T00:00:00Z", "ends_at": "2031-01-02T00:00:00Z"}')"
    # Resources for the DELETE operations alone (which also do not reuse ids seen in responses), so that deleting does not
    # take the others away early in the run; the stateful phase, last, still deletes whatever it finds.
    w3="$(create webhook_id POST /v1/webhooks '{"webhook_url": "https://hooks.example.com/a", "event_types": ["webhook.test"]}')"
    w4="$(create webhook_id POST /v1/webhooks '{"webhook_url": "https://hooks.example.com/b", "event_types": ["webhook.test"]}')"
    i3="$(create integration_id POST /v1/integrations '{"system_id": "bamboo", "integration_type": "HR", "endpoint_url": "https://hr.example.net/api", "auth_config": {"type": "none"}}')"
    i4="$(create integration_id POST /v1/integrations '{"system_id": "oracle", "integration_type": "ERP", "endpoint_url": "https://erp.example.net/api", "auth_config": {"type": "basic", "username": "u", "password": "p"}}')"
    c3="$(create connection_id POST /v1/connections '{"system_name": "ftp-a", "connection_type": "FTP", "endpoint": "ftp.example.com:21", "credentials": {}}')"
    c4="$(create connection_id POST /v1/connections '{"system_name": "tcp-b", "connection_type": "TCP", "endpoint": "tcp.example.com:7000", "credentials": {}}')"
    # The outbox fans events out into webhook messages in the background.
    messages=""
    for _ in $(seq 1 50); do
        messages="$(api GET "/v1/webhooks/$w1/messages")" || exit 1
        messages="$("$venv/bin/python" -c 'import json, sys; print(" ".join(m["message_id"] for m in json.loads(sys.argv[1])["items"]))' "$messages")"
        [ -n "$messages" ] && break
        sleep 0.2
    done
    # shellcheck disable=SC2086
    cat > "$1" <<TOML
[dictionaries]
integration_ids = { values = $(quoted "$i1" "$i2") }
disposable_integration_ids = { values = $(quoted "$i3" "$i4") }
webhook_ids = { values = $(quoted "$w1" "$w2") }
disposable_webhook_ids = { values = $(quoted "$w3" "$w4") }
sync_job_ids = { values = $(quoted "$j1" "$j2") }
operation_ids = { values = $(quoted "$o1") }
connection_ids = { values = $(quoted "$c1" "$c2") }
disposable_connection_ids = { values = $(quoted "$c3" "$c4") }
window_ids = { values = $(quoted "$m1" "$m2") }
message_ids = { values = $(quoted ${messages:-msg_1}) }
entity_types = { values = ["users", "groups", "employees"] }
urls = { values = ["https://hr.example.com/scim/v2", "https://hooks.example.com/hub", "http://127.0.0.1:9/x"] }
system_ids = { values = ["workday", "sap"] }

[[operations]]
include-path-regex = "^/v1/integrations/\\\\{id\\\\}"
exclude-name = "DELETE /v1/integrations/{id}"
parameters = { "path.id" = { dictionary = "integration_ids", probability = 0.5 }, "path.entity_type" = { dictionary = "entity_types", probability = 0.5 }, "body.endpoint_url" = { dictionary = "urls", probability = 0.5 } }

[[operations]]
include-name = "DELETE /v1/integrations/{id}"
parameters = { "path.id" = { dictionary = "disposable_integration_ids", probability = 0.5 } }
phases.coverage.extra-data-sources.responses = false
phases.fuzzing.extra-data-sources.responses = false

[[operations]]
include-path-regex = "^/v1/integrations\$"
parameters = { "body.endpoint_url" = { dictionary = "urls", probability = 0.5 }, "body.system_id" = { dictionary = "system_ids", probability = 0.5 } }

[[operations]]
include-path-regex = "^/v1/webhooks/\\\\{id\\\\}"
exclude-name = "DELETE /v1/webhooks/{id}"
parameters = { "path.id" = { dictionary = "webhook_ids", probability = 0.5 }, "path.message_id" = { dictionary = "message_ids", probability = 0.5 }, "body.webhook_url" = { dictionary = "urls", probability = 0.5 } }

[[operations]]
include-name = "DELETE /v1/webhooks/{id}"
parameters = { "path.id" = { dictionary = "disposable_webhook_ids", probability = 0.5 } }
phases.coverage.extra-data-sources.responses = false
phases.fuzzing.extra-data-sources.responses = false

[[operations]]
include-path-regex = "^/v1/webhooks\$"
parameters = { "body.webhook_url" = { dictionary = "urls", probability = 0.5 } }

[[operations]]
include-path-regex = "^/v1/sync-jobs/\\\\{id\\\\}"
parameters = { "path.id" = { dictionary = "sync_job_ids", probability = 0.5 } }

[[operations]]
include-path-regex = "^/v1/(sync-jobs|api-operations|api-statistics)\$"
parameters = { "body.integration_id" = { dictionary = "integration_ids", probability = 0.5 }, "query.integration_id" = { dictionary = "integration_ids", probability = 0.5 }, "body.entity_type" = { dictionary = "entity_types", probability = 0.5 } }

[[operations]]
include-path-regex = "^/v1/api-operations/\\\\{id\\\\}"
parameters = { "path.id" = { dictionary = "operation_ids", probability = 0.5 } }

[[operations]]
include-path-regex = "^/v1/connections/\\\\{id\\\\}"
exclude-name = "DELETE /v1/connections/{id}"
parameters = { "path.id" = { dictionary = "connection_ids", probability = 0.5 }, "path.window_id" = { dictionary = "window_ids", probability = 0.5 } }

[[operations]]
include-name = "DELETE /v1/connections/{id}"
parameters = { "path.id" = { dictionary = "disposable_connection_ids", probability = 0.5 } }
phases.coverage.extra-data-sources.responses = false
phases.fuzzing.extra-data-sources.responses = false

TOML
    log "seeded: integrations $i1 $i2 (+ $i3 $i4 for DELETE), webhooks $w1 $w2 (+ $w3 $w4), connections $c1 $c2 (+ $c3 $c4), sync jobs $j1 $j2, messages ${messages:-none}"
}

config="$work/schemathesis.toml"
if [ "${SCHEMATHESIS_SEED_DATA:-1}" = 1 ]; then
    seed_data "$config"
else
    : > "$config"
fi
# Rules between members or against stored data, which JSON Schema cannot state and each schema's description names:
# for these operations alone a 422 to schema-valid data is not counted as a refusal of valid data (every other check,
# 5xx included, still applies):
# - maintenance windows: ends_at after starts_at; recover: until after since; statistics: from not after to;
# - sync jobs: the integration must exist and be enabled, one running job per entity type;
# - API operations: with integration_id, an absolute endpoint must lie on the integration's origin; a path endpoint
#   needs an existing integration;
# - PATCH of an integration or a webhook: moving endpoint_url (webhook_url) to another origin needs auth_config
#   (headers) in the same update.
for operation in "POST /v1/connections/{id}/maintenance" "POST /v1/webhooks/{id}/recover" "GET /v1/api-statistics" \
    "POST /v1/sync-jobs" "POST /v1/api-operations" "PATCH /v1/integrations/{id}" "PATCH /v1/webhooks/{id}"; do
    printf '\n[[operations]]\ninclude-name = "%s"\n%s\n' "$operation" \
        'checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "404", "409", "422"]' >> "$config"
done
# The proxy answers 502 when the integration's upstream cannot be reached, which in the namespace it never can: for those
# operations alone a 502 is not counted as a server error (a 500 still is).
cat >> "$config" <<'TOML'

[[operations]]
include-path = "/v1/integrations/{id}/proxy/{path}"
checks.not_a_server_error.expected-statuses = ["2xx", "3xx", "4xx", "502"]
TOML
cp "$config" "$report_dir/schemathesis.toml"

# shellcheck disable=SC2054 # the commas are Schemathesis list syntax
args=(
    --config-file "$config"
    run "$base/openapi.json"
    --header "Authorization: Bearer $key"
    --phases examples,coverage,fuzzing,stateful
    --checks all
    --mode all
    --seed "$seed"
    --max-examples "$max_examples"
    --continue-on-failure
    --workers "$workers"
    --generation-database none
    --request-timeout 20
    --output-sanitize false
    --no-color
    --report junit,ndjson,pytest --report-dir "$report_dir"
)
if [ -n "${SCHEMATHESIS_MAX_FAILURES:-}" ]; then args+=(--max-failures "$SCHEMATHESIS_MAX_FAILURES"); fi
log "schemathesis ${args[*]/Bearer $key/Bearer ***} $*"
status=0
# Schemathesis writes its caches (.hypothesis) in its working directory: keep them out of the repository.
(cd "$work" && "$schemathesis" "${args[@]}" "$@") || status=$?
if ! kill -0 "$server_pid" 2>/dev/null; then
    log "the server is no longer running: it crashed during the run (see $server_log)"
    [ "$status" -ne 0 ] || status=1
fi
log "schemathesis exited with $status; reports in $report_dir"
exit "$status"
