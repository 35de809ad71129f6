#!/usr/bin/env bash
# The fault suite (./run.sh test --only faults): its own RabbitMQ node and a supervised
# stack (VoteConsumer, VoteAPI, nginx under supervisord, as ./run.sh runs them), ballot-like
# load through nginx, one fault at a time (Tests/faults/fault_suite.py).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
FAULTS="$ROOT/var/test/faults"
API_PORT=18380
WEB_PORT=18300
BROKER_PORT=5712
# shellcheck source=SCRIPTDIR/../../scripts/lib/supervise.sh
source "$ROOT/scripts/lib/supervise.sh"
# shellcheck source=SCRIPTDIR/../../scripts/lib/broker.sh
source "$ROOT/scripts/lib/broker.sh"

usage() {
  cat <<'TXT'
Usage: Tests/faults/run.sh [--setup]   (normally through ./run.sh test [--only faults])

  --setup   only install the suite's Python requirements (pika), as ./preflight.sh does

Starts a RabbitMQ node of its own (paredao-faults@localhost: AMQP 5712, distribution
25712, epmd 4412, prometheus 15712; data in var/test/faults/rabbitmq) and VoteConsumer +
VoteAPI + nginx (debug build) under supervisord (API 18380, nginx 18300, metrics 19301,
19302, restart metrics 19303), then runs Tests/faults/fault_suite.py: ~300 votes/s from
ballot-like clients through nginx while each fault happens in turn. Everything it started
is stopped at exit, by PID, also on failure. Installs pika (Tests/faults/requirements.txt)
for the python3 on PATH when it is missing.

The broker is hardened like the stack's own: the services log in as paredao-api and
paredao-consumer, the suite's raw client as paredao-admin (passwords generated in
var/test/faults/secrets).
Environment: FAULTS_ONLY=NAME[,NAME] runs only the scenarios whose name contains NAME;
FAULTS_RATE (300 votes/s), FAULTS_CLIENTS (30).
TXT
}

log() { printf '\n[faults] %s\n' "$*"; }

broker_env() {
  export PAREDAO_RABBITMQ_DIR="$FAULTS/rabbitmq" PAREDAO_RABBITMQ_PORT="$BROKER_PORT"
  export PAREDAO_RABBITMQ_DIST_PORT=25712 PAREDAO_RABBITMQ_EPMD_PORT=4412
  export PAREDAO_RABBITMQ_PROMETHEUS_PORT=15712 PAREDAO_RABBITMQ_NODE=paredao-faults@localhost
  # The node's users get their passwords from here; the services read theirs from here too.
  export PAREDAO_SECRETS_DIR="$FAULTS/secrets"
}

# The admin's URL, for the suite's raw AMQP client (poison messages, dead-letter depth).
admin_url() {
  printf 'amqp://paredao-admin:%s@127.0.0.1:%s/' "$(cat "$PAREDAO_SECRETS_DIR/rabbitmq-paredao-admin.password")" "$BROKER_PORT"
}

# pika for the python3 on PATH: from PyPI, or Debian's python3-pika when that python3 is
# Debian's own and pip refuses to install into it.
ensure_pika() {
  python3 -c 'import pika' 2>/dev/null && return 0
  log "installing pika for $(command -v python3)"
  python3 -m pip install -q -r "$ROOT/Tests/faults/requirements.txt" && return 0
  if [[ "$(command -v python3)" == /usr/bin/python3 ]]; then
    local sudo=()
    ((EUID == 0)) || sudo=(sudo)
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends python3-pika >/dev/null
  fi
  python3 -c 'import pika'
}

cleanup() {
  supervise_stop "$FAULTS"
  "$ROOT/scripts/rabbitmq.sh" stop >/dev/null 2>&1 || true
}

start_stack() {
  local bin
  swift build >/dev/null
  bin="$(swift build --show-bin-path)"
  # The services log in as their own users (passwords in PAREDAO_SECRETS_DIR).
  export PAREDAO_AMQP_URL="amqp://127.0.0.1:$BROKER_PORT/"
  export PAREDAO_QUEUE=votes-faults PAREDAO_SQLITE_PATH="$FAULTS/votes.sqlite"
  "$FAULTS/broker-ctl.sh" declare-queue "$PAREDAO_QUEUE"
  export PAREDAO_API_METRICS_PORT=19301 PAREDAO_CONSUMER_METRICS_PORT=19302
  # Ballot-like clients, many per address: cheap proof of work, a generous session.
  export PAREDAO_POW_DIFFICULTY=8 PAREDAO_POW_MAX_DIFFICULTY=8
  export PAREDAO_VOTE_RATE=100 PAREDAO_VOTE_BURST=200 PAREDAO_SESSION_BUDGET=1000000
  export PAREDAO_NETWORK_SESSION_RATE=1000 PAREDAO_NETWORK_SESSION_BURST=1000
  export PAREDAO_CONFIRM_TIMEOUT_MS=2000 PAREDAO_TOTALS_REFRESH_MS=500 PAREDAO_DRAIN_SECONDS=5
  head -c 12 /dev/urandom | base64 | tr '+/' '-_' >"$FAULTS/panel-password"
  "$ROOT/nginx/make-htpasswd.sh" produtor "$FAULTS/panel-password" "$FAULTS/htpasswd" >/dev/null
  supervise_write_conf --dir "$FAULTS" --bin "$bin" --api-port "$API_PORT" --web-port "$WEB_PORT" \
    --htpasswd "$FAULTS/htpasswd" --metrics 127.0.0.1:19303 -- --workers 1 \
    --vote-rate 100000r/s --vote-burst 100000 --session-rate 1000r/s --session-burst 1000
  supervise_start "$FAULTS"
  wait_http "http://127.0.0.1:$API_PORT/readyz" 60
  wait_http "http://127.0.0.1:$WEB_PORT/" 30
  supervise_status "$FAULTS"
}

main() {
  case "${1:-}" in
    -h|--help) usage; return 0 ;;
    --setup) ensure_pika; return ;;
    "") ;;
    *) echo "unknown option: $1" >&2; usage >&2; return 2 ;;
  esac
  ensure_pika
  "$ROOT/scripts/make-secrets.sh" >/dev/null
  broker_env
  # A stack left by an interrupted run goes first.
  if [[ -f "$FAULTS/supervisord.conf" ]]; then supervise_stop "$FAULTS"; fi
  "$ROOT/scripts/rabbitmq.sh" stop >/dev/null 2>&1 || true
  rm -rf "$FAULTS"
  mkdir -p "$FAULTS"
  trap cleanup EXIT
  broker_ctl_write "$FAULTS/broker-ctl.sh"
  log "broker"
  "$FAULTS/broker-ctl.sh" start
  log "stack under supervisord"
  start_stack
  log "scenarios"
  FAULTS_WEB_URL="http://127.0.0.1:$WEB_PORT" FAULTS_API_URL="http://127.0.0.1:$API_PORT" \
    FAULTS_CONSUMER_METRICS_URL=http://127.0.0.1:19302/metrics \
    FAULTS_SUPERVISOR_METRICS_URL=http://127.0.0.1:19303/metrics \
    FAULTS_SUPERVISOR_CONF="$FAULTS/supervisord.conf" FAULTS_SQLITE_PATH="$PAREDAO_SQLITE_PATH" \
    FAULTS_QUEUE="$PAREDAO_QUEUE" FAULTS_BROKER_CTL="$FAULTS/broker-ctl.sh" \
    FAULTS_TOKEN_TOOL="$(swift build --show-bin-path)/paredao-token" \
    PAREDAO_AMQP_URL="$(admin_url)" python3 "$ROOT/Tests/faults/fault_suite.py"
}

main "$@"
