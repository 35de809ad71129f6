#!/usr/bin/env bash
# The fleet suite (./run.sh test --only fleet): two VoteAPIs behind nginx and two
# VoteConsumers on one queue and one SQLite file, on a RabbitMQ node of its own, under
# ballot-like load (Tests/fleet/fleet_suite.py).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
FLEET="$ROOT/var/test/fleet"
BROKER_PORT=5762
WEB_PORT=18850
API_NAMES=(a b)
declare -A API_PORT=([a]=18801 [b]=18802) API_METRICS_PORT=([a]=18901 [b]=18902)
declare -A CONSUMER_METRICS_PORT=([1]=18903 [2]=18904)
# The sessions' limits, small enough that the suite reaches them (the driver reads them too).
BUDGET=300 SESSION_RATE=20 SESSION_BURST=10
# shellcheck source=SCRIPTDIR/../../scripts/lib/proc.sh
source "$ROOT/scripts/lib/proc.sh"
# shellcheck source=SCRIPTDIR/../../scripts/lib/broker.sh
source "$ROOT/scripts/lib/broker.sh"

usage() {
  cat <<'TXT'
Usage: Tests/fleet/run.sh            (normally through ./run.sh test [--only fleet])
       Tests/fleet/run.sh --stop-api a|b | --start-api a|b   (the driver's own calls)

Starts a RabbitMQ node of its own (paredao-fleet@localhost: AMQP 5762, distribution 25762,
epmd 4397, prometheus 15762; data in var/test/fleet/rabbitmq), then, from the debug build:
VoteAPI a (127.0.0.1:18801, metrics 18901) and b (18802, metrics 18902) with the same token
keys and settings, VoteConsumer 1 and 2 (metrics 18903, 18904) on the same queue
(votes-fleet) and the same SQLite file (var/test/fleet/votes.sqlite), and nginx on
127.0.0.1:18850 with both APIs upstream (render.sh --api a --api b: votes routed by a
consistent hash of their session). Then runs Tests/fleet/fleet_suite.py: ~400 ballot-like
votes/s through nginx for 25 s, sessions driven to their rate and budget, one solved
challenge redeemed at both APIs, every 202 counted exactly once, /total the same from both
APIs, one API restarted under load. Everything it started is stopped at exit, by PID, also
on failure. With CI=true a missing prerequisite (rabbitmq-server, nginx, python3) fails
the suite instead of skipping it.

Environment: FLEET_VOTE_RATE (400 votes/s), FLEET_CLIENTS (80), FLEET_SECONDS (25).
TXT
}

log() { printf '\n[fleet] %s\n' "$*"; }

broker_env() {
  export PAREDAO_RABBITMQ_DIR="$FLEET/rabbitmq" PAREDAO_RABBITMQ_PORT="$BROKER_PORT"
  export PAREDAO_RABBITMQ_DIST_PORT=25762 PAREDAO_RABBITMQ_EPMD_PORT=4397
  export PAREDAO_RABBITMQ_PROMETHEUS_PORT=15762 PAREDAO_RABBITMQ_NODE=paredao-fleet@localhost
  # The node's users get their passwords from here; the services read theirs (and the
  # token keys, one file for both APIs) from here too.
  export PAREDAO_SECRETS_DIR="$FLEET/secrets"
}

# The settings both APIs and both consumers share (each process adds its own ports).
service_env() {
  export PAREDAO_AMQP_URL="amqp://127.0.0.1:$BROKER_PORT/"
  export PAREDAO_QUEUE=votes-fleet PAREDAO_SQLITE_PATH="$FLEET/votes.sqlite"
  export PAREDAO_TOKEN_KEYS_FILE="$PAREDAO_SECRETS_DIR/token-keys"
  export PAREDAO_POW_DIFFICULTY=8 PAREDAO_POW_MAX_DIFFICULTY=8
  export PAREDAO_SESSION_BUDGET="$BUDGET" PAREDAO_VOTE_RATE="$SESSION_RATE" PAREDAO_VOTE_BURST="$SESSION_BURST"
  export PAREDAO_NETWORK_SESSION_RATE=1000 PAREDAO_NETWORK_SESSION_BURST=1000
  export PAREDAO_CONFIRM_TIMEOUT_MS=2000 PAREDAO_TOTALS_REFRESH_MS=500 PAREDAO_DRAIN_SECONDS=5
}

bin_path() {
  swift build --show-bin-path
}

# prerequisites: succeeds when everything the suite needs is installed.
prerequisites() {
  local missing=()
  dpkg -L rabbitmq-server 2>/dev/null | grep -q 'rabbitmq/bin/rabbitmq-server$' || missing+=(rabbitmq-server)
  command -v nginx >/dev/null || missing+=(nginx)
  command -v python3 >/dev/null || missing+=(python3)
  command -v swift >/dev/null || missing+=(swift)
  ((${#missing[@]} == 0)) && return 0
  echo "fleet: missing ${missing[*]}" >&2
  return 1
}

# start_service NAME URL COMMAND...: starts COMMAND as NAME (log and PID file under FLEET)
# and waits until URL answers.
start_service() {
  local name="$1" url="$2"
  shift 2
  start_background "$name" "$FLEET/log/$name.log" "$FLEET/run/$name.pid" "$@"
  wait_http "$url" 60 "$(tr -dc '0-9' <"$FLEET/run/$name.pid")" || {
    tail -n 20 "$FLEET/log/$name.log" >&2
    return 1
  }
}

# stop_service NAME BINARY: stops NAME by its recorded PID (when that is still BINARY).
stop_service() {
  local name="$1" pid
  if pid="$(proc_pidfile_pid "$FLEET/run/$name.pid" "$2")"; then
    stop_pid "$pid" 15
  fi
  rm -f "$FLEET/run/$name.pid"
}

start_api() {
  start_service "api-$1" "http://127.0.0.1:${API_PORT[$1]}/readyz" \
    env PAREDAO_API_PORT="${API_PORT[$1]}" PAREDAO_API_METRICS_PORT="${API_METRICS_PORT[$1]}" \
    PAREDAO_API_SOCKET="$FLEET/run/api-$1.sock" "$(bin_path)/VoteAPI"
}

start_consumer() {
  start_service "consumer-$1" "http://127.0.0.1:${CONSUMER_METRICS_PORT[$1]}/metrics" \
    env PAREDAO_CONSUMER_METRICS_PORT="${CONSUMER_METRICS_PORT[$1]}" "$(bin_path)/VoteConsumer"
}

start_nginx() {
  head -c 12 /dev/urandom | base64 | tr '+/' '-_' >"$FLEET/panel-password"
  "$ROOT/nginx/make-htpasswd.sh" produtor "$FLEET/panel-password" "$FLEET/htpasswd" >/dev/null
  "$ROOT/nginx/nginx.sh" start --prefix "$FLEET/nginx" --listen "127.0.0.1:$WEB_PORT" \
    --api "unix:$FLEET/run/api-a.sock" --api "unix:$FLEET/run/api-b.sock" --htpasswd "$FLEET/htpasswd" \
    --workers 1 --vote-rate 100000r/s --vote-burst 100000 --session-rate 1000r/s --session-burst 1000 \
    --conn-limit 65000 >/dev/null
  wait_http "http://127.0.0.1:$WEB_PORT/" 30
}

cleanup() {
  if [[ -f "$FLEET/nginx/nginx.pid" ]]; then
    "$ROOT/nginx/nginx.sh" stop --prefix "$FLEET/nginx" >/dev/null 2>&1 || true
  fi
  local name
  for name in "${API_NAMES[@]}"; do stop_service "api-$name" VoteAPI || true; done
  stop_service consumer-1 VoteConsumer || true
  stop_service consumer-2 VoteConsumer || true
  "$ROOT/scripts/rabbitmq.sh" stop >/dev/null 2>&1 || true
}

run_suite() {
  if ! prerequisites; then
    if [[ "${CI:-}" == "true" ]]; then
      echo "fleet: CI=true and the suite cannot run: failing" >&2
      return 1
    fi
    echo "fleet: skipped (prerequisites missing)"
    return 0
  fi
  "$ROOT/scripts/make-secrets.sh" >/dev/null
  broker_env
  # What an interrupted run left goes first (by the PIDs it recorded).
  cleanup
  rm -rf "$FLEET"
  mkdir -p "$FLEET"
  trap cleanup EXIT
  broker_ctl_write "$FLEET/broker-ctl.sh"
  log "broker"
  "$FLEET/broker-ctl.sh" start
  log "build"
  swift build >/dev/null
  service_env
  "$FLEET/broker-ctl.sh" declare-queue "$PAREDAO_QUEUE"
  log "two consumers, two APIs, nginx"
  start_consumer 1
  start_consumer 2
  start_api a
  start_api b
  start_nginx
  log "suite"
  FLEET_WEB_URL="http://127.0.0.1:$WEB_PORT" \
    FLEET_API_URLS="http://127.0.0.1:${API_PORT[a]},http://127.0.0.1:${API_PORT[b]}" \
    FLEET_API_METRICS_URLS="http://127.0.0.1:${API_METRICS_PORT[a]}/metrics,http://127.0.0.1:${API_METRICS_PORT[b]}/metrics" \
    FLEET_CONSUMER_METRICS_URLS="http://127.0.0.1:${CONSUMER_METRICS_PORT[1]}/metrics,http://127.0.0.1:${CONSUMER_METRICS_PORT[2]}/metrics" \
    FLEET_SQLITE_PATH="$PAREDAO_SQLITE_PATH" FLEET_QUEUE="$PAREDAO_QUEUE" FLEET_BROKER_CTL="$FLEET/broker-ctl.sh" \
    FLEET_CTL="$ROOT/Tests/fleet/run.sh" FLEET_BUDGET="$BUDGET" FLEET_RATE="$SESSION_RATE" FLEET_BURST="$SESSION_BURST" \
    python3 "$ROOT/Tests/fleet/fleet_suite.py"
}

# The driver's calls (it inherits the environment run_suite exported).
api_name() {
  [[ "${1:-}" == a || "${1:-}" == b ]] || { echo "expected a or b, got '${1:-}'" >&2; return 2; }
}

main() {
  case "${1:-}" in
    -h|--help) usage ;;
    --stop-api) api_name "${2:-}"; broker_env; stop_service "api-$2" VoteAPI ;;
    --start-api) api_name "${2:-}"; broker_env; service_env; start_api "$2" ;;
    "") run_suite ;;
    *) echo "unknown option: $1" >&2; usage >&2; return 2 ;;
  esac
}

main "$@"
