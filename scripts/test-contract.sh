#!/usr/bin/env bash
# The API contract (docs/openapi.yaml) against a real stack: the document validated,
# schemathesis directly and through nginx, the bad-input suite directly and through nginx,
# nginx's own 429 in the documented shape, /api/docs rendered in headless Chromium, and
# what one hostile client can do through nginx (cache poisoning, made-up methods and paths,
# the admin allowlist, trickled and oversized bodies).
# Called by scripts/test.sh (which starts the test broker and exports PAREDAO_TEST_AMQP_URL).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
STACK="$ROOT/var/test/contract"
API_PORT=18480
WEB_PORT=18400
STRICT_WEB_PORT=18401
ALLOWLIST_WEB_PORT=18402
API="http://127.0.0.1:$API_PORT"
WEB="http://127.0.0.1:$WEB_PORT"
EXAMPLES="${PAREDAO_CONTRACT_EXAMPLES:-300}"
FAILED=0
PASSED=0
POLL_CHANGES_EXCLUDED=(--exclude-operation-id openPoll --exclude-operation-id closePoll)

usage() {
  cat <<TXT
Usage: scripts/test-contract.sh [run|start|stop]   (normally: ./run.sh test --only contract)

  run    (default) start the stack, run every contract check, stop the stack
  start  start the stack and leave it running (for running the suites by hand)
  stop   stop what start started

Needs PAREDAO_TEST_AMQP_URL (set by scripts/test.sh). Ports: API $API_PORT (metrics 19401),
consumer metrics 19402, nginx $WEB_PORT (per-IP limits raised for the fuzzers),
$STRICT_WEB_PORT (default limits, for the 429 check) and $ALLOWLIST_WEB_PORT (default limits, the
admin API allowed only from 10.0.0.0/8, which excludes the tests' 127.0.0.1). State in
var/test/contract.
PAREDAO_CONTRACT_EXAMPLES sets schemathesis's --max-examples (default 300). The admin API's
credential is $STACK/admin-token; schemathesis fuzzes the admin routes with it, except
opening and closing polls, which run last (a close ends the poll the other checks vote in);
the hostile-client checks run after them (they need a second poll that is not a draft and
make one, through the admin API, when there is none).
TXT
}

# shellcheck source=SCRIPTDIR/lib/stack.sh
source "$ROOT/scripts/lib/stack.sh"

log() { printf '\n[contract] %s\n' "$*"; }

start_stack() {
  : "${PAREDAO_TEST_AMQP_URL:?run through ./run.sh test, or export PAREDAO_TEST_AMQP_URL}"
  "$ROOT/scripts/contract-tools.sh" install
  stop_stack
  rm -rf "$STACK"
  mkdir -p "$STACK/log"
  local bin
  swift build >/dev/null
  bin="$(swift build --show-bin-path)"
  export PAREDAO_AMQP_URL="$PAREDAO_TEST_AMQP_URL"
  export PAREDAO_QUEUE="votes-contract-$RANDOM"
  export PAREDAO_SQLITE_PATH="$STACK/votes.sqlite"
  export PAREDAO_API_METRICS_PORT=19401 PAREDAO_CONSUMER_METRICS_PORT=19402
  # Cheap proofs of work, so the fuzzer's hook can buy many sessions.
  export PAREDAO_POW_DIFFICULTY=8 PAREDAO_POW_MAX_DIFFICULTY=10
  export PAREDAO_CONFIRM_TIMEOUT_MS=2000 PAREDAO_TOTALS_REFRESH_MS=500
  head -c 12 /dev/urandom | base64 | tr '+/' '-_' >"$STACK/panel-password"
  # The admin API on, with its per-network limit raised like nginx's below (the fuzzers
  # send hundreds of admin requests a minute from one address).
  printf 'produtor:%s\n' "$(head -c 24 /dev/urandom | base64 | tr '+/' '-_')" >"$STACK/admin-token"
  export PAREDAO_ADMIN_TOKEN_FILE="$STACK/admin-token" PAREDAO_ADMIN_RATE=1000 PAREDAO_ADMIN_BURST=10000 PAREDAO_ADMIN_FAILURE_RATE=1000 PAREDAO_ADMIN_FAILURE_BURST=10000
  # The API's own per-network limit on challenges and sessions, raised too: the fuzzers and
  # the bad-input suite buy hundreds of sessions from one address, back to back.
  export PAREDAO_NETWORK_SESSION_RATE=100000 PAREDAO_NETWORK_SESSION_BURST=100000
  stack_start --dir "$STACK" --bin "$bin" --api-port "$API_PORT" --web-port "$WEB_PORT" \
    --password "$STACK/panel-password" --htpasswd "$STACK/htpasswd" -- \
    --workers 1 --vote-rate 100000r/s --vote-burst 100000 --session-rate 100000r/s --session-burst 100000 \
    --admin-rate 100000r/s --admin-burst 100000
  # A second nginx with the shipped limits, in front of the same API.
  "$ROOT/nginx/nginx.sh" start --prefix "$STACK/nginx-strict" --listen "127.0.0.1:$STRICT_WEB_PORT" \
    --api "unix:$STACK/run/api.sock" --htpasswd "$STACK/htpasswd" --workers 1 >/dev/null
  wait_http "http://127.0.0.1:$STRICT_WEB_PORT/" 30
  # A third with the admin allowlist on, for a network the tests are not in.
  "$ROOT/nginx/nginx.sh" start --prefix "$STACK/nginx-allowlist" --listen "127.0.0.1:$ALLOWLIST_WEB_PORT" \
    --api "unix:$STACK/run/api.sock" --htpasswd "$STACK/htpasswd" --workers 1 --admin-allow 10.0.0.0/8 >/dev/null
  wait_http "http://127.0.0.1:$ALLOWLIST_WEB_PORT/" 30
}

stop_stack() {
  local extra
  for extra in nginx-strict nginx-allowlist; do
    if [[ -f "$STACK/$extra/nginx.pid" ]]; then
      "$ROOT/nginx/nginx.sh" stop --prefix "$STACK/$extra" >/dev/null || true
    fi
  done
  stack_stop "$STACK"
}

run_suite() {
  local name="$1"
  shift
  log "$name"
  local started=$SECONDS
  if "$@"; then
    PASSED=$((PASSED + 1))
    log "$name: passed ($((SECONDS - started)) s)"
  else
    FAILED=$((FAILED + 1))
    log "$name: FAILED ($((SECONDS - started)) s)"
  fi
}

py() { "$("$ROOT/scripts/contract-tools.sh" python)" "$@"; }

validate_document() {
  py -m openapi_spec_validator "$ROOT/docs/openapi.yaml"
}

# schemathesis BASE_URL NAME [OPTION...]
schemathesis_run() {
  local url="$1" name="$2"
  shift 2
  # From the stack's folder: schemathesis keeps its cache in ./.schemathesis.
  mkdir -p "$STACK/schemathesis-$name"
  local status=0
  (cd "$STACK/schemathesis-$name" && PAREDAO_CONTRACT_URL="$url" PAREDAO_CONTRACT_KEYS="$ROOT/var/secrets/token-keys" \
    PAREDAO_CONTRACT_ADMIN_TOKEN="$STACK/admin-token" \
    SCHEMATHESIS_HOOKS=schemathesis_hooks PYTHONPATH="$ROOT/Tests/contract" \
    "$(dirname "$("$ROOT/scripts/contract-tools.sh" python)")/schemathesis" \
    --config-file "$ROOT/Tests/contract/schemathesis.toml" run "$ROOT/docs/openapi.yaml" \
    --url "$url" --checks all --max-examples "$EXAMPLES" --seed 20261201 \
    --report junit --report-dir "$STACK/schemathesis-$name" "$@") || status=$?
  schemathesis_summary "$STACK/schemathesis-$name"
  return "$status"
}

# schemathesis_summary DIR: the plain count line from the run's JUnit report (one test per
# operation and phase group, failed when any of its cases failed a check).
schemathesis_summary() {
  py - "$1" <<'PY'
import glob, sys, xml.etree.ElementTree as ET
reports = sorted(glob.glob(sys.argv[1] + "/junit-*.xml"))
if not reports:
    print("schemathesis: no report")
    print("0 passed, 1 failed")
    sys.exit(0)
suite = ET.parse(reports[-1]).getroot()
tests = int(suite.get("tests", 0))
failed = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
print(f"operations: {tests - failed} passed, {failed} failed")
PY
}

# bad_input TARGET URL: the table of answers goes to var/test/contract/bad-input-TARGET.md.
bad_input() {
  py "$ROOT/Tests/contract/bad_input.py" --target "$1" --url "$2" --keys "$ROOT/var/secrets/token-keys" \
    --table "$STACK/bad-input-$1.md"
}

# nginx's own 429, from the nginx with the shipped limits: documented shape and Retry-After;
# the admin routes in a zone of their own.
nginx_rate_limit_shape() {
  py "$ROOT/Tests/contract/nginx_limits.py" "http://127.0.0.1:$STRICT_WEB_PORT" --admin-token "$STACK/admin-token"
}

# One hostile client through nginx: the totals cache, made-up methods and paths against the
# API's series count, the admin allowlist, trickled and oversized bodies.
nginx_hostile() {
  py "$ROOT/Tests/contract/nginx_hostile.py" --web "$WEB" --api "$API" --metrics "http://127.0.0.1:19401/metrics" \
    --allowlist-web "http://127.0.0.1:$ALLOWLIST_WEB_PORT" --admin-token "$STACK/admin-token"
}

# /api/docs renders the document under the CSP, without a console error (Selenium).
swagger_ui_page() {
  /usr/bin/python3 "$ROOT/Tests/contract/api_docs_page.py" "$WEB"
}

main() {
  case "${1:-run}" in
    -h|--help) usage; return 0 ;;
    start) start_stack; echo "contract stack up: API $API, nginx $WEB (raised limits), http://127.0.0.1:$STRICT_WEB_PORT (shipped limits), http://127.0.0.1:$ALLOWLIST_WEB_PORT (admin allowlist)"; return 0 ;;
    stop) stop_stack; return 0 ;;
    run) ;;
    *) usage >&2; return 2 ;;
  esac
  run_suite "OpenAPI document valid (openapi-spec-validator)" validate_document
  trap stop_stack EXIT
  start_stack
  # Opening and closing polls change what every later check votes in (a close ends the
  # seeded poll, an open makes a fuzzed draft the poll): not fuzzed with the rest, but
  # last, on their own, when nothing votes any more.
  run_suite "schemathesis, API directly" schemathesis_run "$API" direct "${POLL_CHANGES_EXCLUDED[@]}"
  run_suite "schemathesis, through nginx" schemathesis_run "$WEB" nginx --exclude-tag probes "${POLL_CHANGES_EXCLUDED[@]}"
  run_suite "bad input, API directly" bad_input api "$API"
  run_suite "bad input, through nginx" bad_input nginx "$WEB"
  run_suite "nginx 429 in the documented shape, admin zone apart" nginx_rate_limit_shape
  run_suite "Swagger UI at /api/docs/ under the CSP" swagger_ui_page
  run_suite "schemathesis, open and close polls (last: it closes the poll)" schemathesis_run "$API" poll-changes \
    --include-operation-id openPoll --include-operation-id closePoll
  run_suite "one hostile client through nginx (after the poll changes: needs two polls)" nginx_hostile
  echo "contract suites: $PASSED passed, $FAILED failed"
  ((FAILED == 0))
}

main "$@"
