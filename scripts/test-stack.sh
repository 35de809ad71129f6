#!/usr/bin/env bash
# Browser and outage suites against a real stack: VoteAPI + VoteConsumer (debug build) on
# the test broker, nginx in front, Prometheus and Alertmanager scraping them.
# Called by scripts/test.sh, which starts the test broker and exports
# PAREDAO_TEST_AMQP_URL and PAREDAO_TEST_BROKER_CTL.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
STACK="$ROOT/var/test/stack"
FAILED=0
PASSED=0

usage() {
  cat <<'TXT'
Usage: scripts/test-stack.sh   (normally through ./run.sh test)

Needs PAREDAO_TEST_AMQP_URL and PAREDAO_TEST_BROKER_CTL (set by scripts/test.sh). Ports:
API 18080 (metrics 19101), consumer metrics 19102, nginx 18000, Prometheus 19090,
Alertmanager 19093. Everything lives in var/test/stack and is stopped at exit; the
admin API's credential is var/test/stack/admin-token (the browser suite closes the seeded
poll and opens a new one from the panel; the later suites vote in the open poll).
TXT
}

# shellcheck source=SCRIPTDIR/lib/stack.sh
source "$ROOT/scripts/lib/stack.sh"

log() { printf '\n[stack] %s\n' "$*"; }

cleanup() {
  "$ROOT/monitoring/monitoring.sh" stop --data "$STACK/monitoring" -q >/dev/null 2>&1 || true
  stack_stop "$STACK"
}

start_stack() {
  rm -rf "$STACK"
  mkdir -p "$STACK/log"
  local bin
  swift build >/dev/null
  bin="$(swift build --show-bin-path)"
  # As in production: each service logs in as its own user (passwords in
  # $PAREDAO_SECRETS_DIR, which scripts/test.sh exports), and the admin makes the queue.
  export PAREDAO_AMQP_URL="amqp://${PAREDAO_TEST_AMQP_URL##*@}"
  export PAREDAO_QUEUE="votes-stack-$RANDOM"
  "$PAREDAO_TEST_BROKER_CTL" declare-queue "$PAREDAO_QUEUE"
  export PAREDAO_SQLITE_PATH="$STACK/votes.sqlite"
  export PAREDAO_API_PORT=18080 PAREDAO_API_METRICS_PORT=19101 PAREDAO_CONSUMER_METRICS_PORT=19102
  export PAREDAO_POW_DIFFICULTY=12 PAREDAO_POW_MAX_DIFFICULTY=14
  export PAREDAO_CONFIRM_TIMEOUT_MS=2000 PAREDAO_TOTALS_REFRESH_MS=500
  head -c 12 /dev/urandom | base64 | tr '+/' '-_' >"$STACK/panel-password"
  # The admin API's credential (the panel's admin section logs in with it).
  printf 'produtor:%s\n' "$(head -c 24 /dev/urandom | base64 | tr '+/' '-_')" >"$STACK/admin-token"
  export PAREDAO_ADMIN_TOKEN_FILE="$STACK/admin-token"
  # Refused credentials reach the audit log as one row per window: a short one here.
  export PAREDAO_ADMIN_REFUSAL_WINDOW_SECONDS=2
  # PIDs in var/test/stack/run/, logs in var/test/stack/log/, nginx in var/test/stack/nginx/.
  stack_start --dir "$STACK" --bin "$bin" --api-port 18080 --web-port 18000 \
    --password "$STACK/panel-password" --htpasswd "$STACK/htpasswd"

  PAREDAO_PROM_LISTEN=127.0.0.1:19090 PAREDAO_AM_LISTEN=127.0.0.1:19093 \
    PAREDAO_API_METRICS_TARGET=127.0.0.1:19101 PAREDAO_CONSUMER_METRICS_TARGET=127.0.0.1:19102 \
    PAREDAO_RABBITMQ_METRICS_TARGET=127.0.0.1:15693 \
    "$ROOT/monitoring/monitoring.sh" start --data "$STACK/monitoring" -q
}

# Renders the three console dashboards (with the data the outage check produced) into
# docs/screenshots/dashboard-*.png; fails when a page cannot be rendered.
dashboard_screenshots() {
  local page out
  for page in executions latency errors; do
    out="$ROOT/docs/screenshots/dashboard-$page.png"
    rm -f "$out"
    chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1280,1400 \
      --virtual-time-budget=15000 --screenshot="$out" \
      "http://127.0.0.1:19090/consoles/$page.html?range_input=5m" >/dev/null 2>&1 || true
    [[ -s "$out" ]] || { echo "no screenshot of $page" >&2; return 1; }
  done
  "$ROOT/monitoring/logs.sh" --dir "$STACK/log" --query levels-1m >"$ROOT/docs/screenshots/log-query-levels.txt" || return 1
  "$ROOT/monitoring/logs.sh" --dir "$STACK/log" --query last-errors >"$ROOT/docs/screenshots/log-query-last-errors.txt" || return 1
}

# The vote route through nginx: a refused vote is logged, an accepted one is not (the
# API's metrics count those), and the answer is not gzipped.
nginx_vote_logging() {
  local bin token participant log="$STACK/nginx/logs/access.log" before status headers
  bin="$(swift build --show-bin-path)"
  token="$("$bin/paredao-token" --url http://127.0.0.1:18080 --count 1)"
  # The browser suite closes the seeded poll and opens one of its own: vote in the open one.
  participant="$(curl -fsS http://127.0.0.1:18080/api/v1/poll | python3 -c 'import json,sys; print(json.load(sys.stdin)["poll"]["participants"][0]["id"])')"
  before=$(grep -c '"path":"/api/v1/votes"' "$log" 2>/dev/null || true)
  status=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
    -d "{\"participant\":\"$participant\"}" http://127.0.0.1:18000/api/v1/votes)
  [[ "$status" == 401 ]] || { echo "a vote without a token answered $status, not 401" >&2; return 1; }
  headers="$(curl -s -D - -o /dev/null -X POST -H 'Content-Type: application/json' -H 'Accept-Encoding: gzip' \
    -H "Authorization: Bearer $token" -d "{\"participant\":\"$participant\"}" http://127.0.0.1:18000/api/v1/votes)"
  grep -q '^HTTP/1.1 202' <<<"$headers" || { echo "a valid vote was not accepted: $headers" >&2; return 1; }
  if grep -qi '^Content-Encoding:' <<<"$headers"; then echo "the vote answer was compressed" >&2; return 1; fi
  sleep 2.5   # the access log is buffered and flushed every second
  local lines
  lines="$(grep '"path":"/api/v1/votes"' "$log" | tail -n +$((before + 1)))"
  grep -q '"status":401' <<<"$lines" || { echo "the 401 vote is missing from the access log" >&2; return 1; }
  if grep -q '"status":202' <<<"$lines"; then echo "an accepted vote was logged" >&2; return 1; fi
  echo "nginx: 401 logged, 202 not logged, vote answer not gzipped"
}

# The key of nginx's per-client limits: an IPv6 client's /48 (the network a token binds
# to), whatever its address in it. The stack's own map block runs in a small nginx that
# reads the address from a header instead of the socket (the stack listens on IPv4 only).
nginx_client_key() {
  local dir="$STACK/nginx-key" map key expected address failed=0
  mkdir -p "$dir/logs" "$dir/tmp"
  # shellcheck disable=SC2016  # nginx's variables, not the shell's
  map="$(sed -n '/map \$remote_addr \$paredao_client_key {/,/^    }/p' "$STACK/nginx/nginx.conf" | sed 's/\$remote_addr/$http_x_test_address/')"
  [[ -n "$map" ]] || { echo "no client-key map in the rendered nginx.conf" >&2; return 1; }
  cat >"$dir/nginx.conf" <<CONF
daemon on;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path $dir/tmp;
  $map
  server { listen 127.0.0.1:18010; location / { return 200 "\$paredao_client_key"; } }
}
CONF
  nginx -p "$dir/" -c "$dir/nginx.conf" -e "$dir/logs/error.log" || return 1
  wait_http http://127.0.0.1:18010/ 10 || return 1
  while read -r address expected; do
    key="$(curl -fsS -H "X-Test-Address: $address" http://127.0.0.1:18010/)"
    if [[ "$key" != "$expected" ]]; then
      echo "client key of $address: got '$key', want '$expected'" >&2
      failed=1
    fi
  done <<'CASES'
2001:db8:1:2::5 2001:db8:1
2001:db8:1:ffff:ffff:ffff:ffff:ffff 2001:db8:1
2001:db8::5 2001:db8:0
2001:db8:0:1::1 2001:db8:0
2001::1 2001:0:0
CASES
  stop_pid "$(cat "$dir/nginx.pid")" 5 QUIT || true
  ((failed == 0)) && echo "nginx: IPv6 clients share their /48's limits"
}

run_suite() {
  local name="$1"
  shift
  log "$name"
  if "$@"; then
    PASSED=$((PASSED + 1))
  else
    echo "[stack] $name FAILED" >&2
    FAILED=$((FAILED + 1))
  fi
}

main() {
  if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then usage; return 0; fi
  : "${PAREDAO_TEST_AMQP_URL:?run through ./run.sh test}"
  : "${PAREDAO_TEST_BROKER_CTL:?run through ./run.sh test}"
  trap cleanup EXIT
  start_stack
  run_suite "browser (headless Chromium)" env PAREDAO_WEB_URL=http://127.0.0.1:18000 \
    PAREDAO_PANEL_USER=produtor PAREDAO_PANEL_PASSWORD="$(cat "$STACK/panel-password")" \
    PAREDAO_ADMIN_CREDENTIAL_FILE="$STACK/admin-token" \
    PAREDAO_BROKER_CTL="$PAREDAO_TEST_BROKER_CTL" /usr/bin/python3 "$ROOT/Tests/browser/test_pages.py"
  run_suite "nginx: refused votes logged, accepted ones counted only" nginx_vote_logging
  run_suite "nginx: per-client limits key IPv6 by /48" nginx_client_key
  run_suite "broker outage: 503, ERROR logs, error dashboard, alert" env PAREDAO_BROKER_CTL="$PAREDAO_TEST_BROKER_CTL" \
    PAREDAO_API_URL=http://127.0.0.1:18080 PAREDAO_PROM_URL=http://127.0.0.1:19090 \
    PAREDAO_AM_URL=http://127.0.0.1:19093 PAREDAO_LOG_DIR="$STACK/log" \
    bash "$ROOT/Tests/monitoring/e2e_broker_outage.sh"
  run_suite "dashboard screenshots with the outage's data" dashboard_screenshots
  echo "stack suites: $PASSED passed, $FAILED failed"
  ((FAILED == 0))
}

main "$@"
