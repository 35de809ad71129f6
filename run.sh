#!/usr/bin/env bash
# Runs the Paredão stack as plain processes with everything under var/.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$ROOT"
VAR="$ROOT/var"
LOG="$VAR/log"
API_PORT="${PAREDAO_API_PORT:-8080}"
WEB_PORT="${PAREDAO_WEB_PORT:-8000}"
SUPERVISOR_METRICS="${PAREDAO_SUPERVISOR_METRICS:-127.0.0.1:9103}"
BROKER_NODES="${PAREDAO_BROKER_NODES:-1}"
CLUSTER_DIR="${PAREDAO_CLUSTER_DIR:-$VAR/rabbitmq-cluster}"
# shellcheck source=SCRIPTDIR/scripts/lib/stack.sh
source "$ROOT/scripts/lib/stack.sh"
# shellcheck source=SCRIPTDIR/scripts/lib/supervise.sh
source "$ROOT/scripts/lib/supervise.sh"

usage() {
  cat <<'TXT'
Usage: ./run.sh [up|stop|status|test|logs|monitoring|bench|help]

  up (default)  start RabbitMQ, then VoteConsumer, VoteAPI and nginx under supervisord
                (a program that dies is restarted, with backoff, and the restart logged
                and counted), print the URLs; on a terminal it waits and Ctrl-C (or
                ./run.sh stop from another shell) stops them all
  stop          stop everything this script started (supervisord and the broker, by PID)
  status        each program's state, pid, uptime and restart count; the broker
  test          run every test suite: unit, integration (own RabbitMQ on port 5682),
                monitoring, the browser tests against a real stack behind nginx, and the
                fault suite (./run.sh test --help)
  logs          live log query (lnav) over var/log/*.log
  monitoring    start Prometheus and Alertmanager next to the stack (stop: ./run.sh stop)
  bench         the load harness (bench/run.sh --help): paced and max votes/s, with ceilings

Environment: every PAREDAO_* setting of VoteAPI and VoteConsumer (see
`.build/release/VoteAPI --help`), plus
  PAREDAO_BUILD        release (default) or debug: which binaries up/test use
  PAREDAO_WEB_PORT     nginx port (default 8000)
  PAREDAO_SUPERVISOR_METRICS  where the restart metrics are served (default 127.0.0.1:9103)
  PAREDAO_BROKER_NODES 1 (default): one RabbitMQ node (scripts/rabbitmq.sh, port 5672);
                       3 (2–9): a cluster of that many nodes (scripts/rabbitmq-cluster.sh,
                       ports 5710, 5720, …; data in var/rabbitmq-cluster) and the services
                       get every node in PAREDAO_AMQP_URL (unless it is set) and fail over
TXT
}

log() { printf '[run.sh] %s\n' "$*"; }

bin_dir() {
  local config="${PAREDAO_BUILD:-release}"
  swift build -c "$config" --show-bin-path 2>/dev/null
}

ensure_built() {
  local dir
  dir="$(bin_dir)"
  if [[ ! -x "$dir/VoteAPI" || ! -x "$dir/VoteConsumer" ]]; then
    log "building (${PAREDAO_BUILD:-release})"
    swift build -c "${PAREDAO_BUILD:-release}" >&2
  fi
  BIN="$dir"
}

up() {
  "$ROOT/scripts/make-secrets.sh" >/dev/null
  ensure_built
  start_broker
  # supervisord's PID and socket in var/run/, logs in var/log/, nginx in var/nginx/.
  "$ROOT/nginx/make-htpasswd.sh" produtor "$VAR/secrets/panel-password" "$VAR/nginx/htpasswd" >/dev/null
  supervise_write_conf --dir "$VAR" --bin "$BIN" --api-port "$API_PORT" --web-port "$WEB_PORT" \
    --htpasswd "$VAR/nginx/htpasswd" --metrics "$SUPERVISOR_METRICS"
  supervise_start "$VAR"
  wait_http "http://127.0.0.1:$API_PORT/readyz" 60
  wait_http "http://127.0.0.1:$WEB_PORT/" 30
  local web="http://127.0.0.1:$WEB_PORT"
  cat <<TXT

Paredão is up.
  Ballot          $web/
  Partial result  $web/resultado.html
  Producers       $web/painel.html   (user: produtor, password in var/secrets/panel-password)
  Totals (poll)   $web/total
  API (direct)    http://127.0.0.1:$API_PORT   metrics: 127.0.0.1:${PAREDAO_API_METRICS_PORT:-9101}/metrics, 127.0.0.1:${PAREDAO_CONSUMER_METRICS_PORT:-9102}/metrics
  Supervision     ./run.sh status   restarts: $SUPERVISOR_METRICS/metrics (paredao_process_restarts_total)
  Logs            var/log/   (./run.sh logs for the live query)

TXT
}

# start_broker: one node, or with PAREDAO_BROKER_NODES > 1 a cluster whose nodes the
# services (which inherit supervisord's environment) get as their broker list.
start_broker() {
  if [[ ! "$BROKER_NODES" =~ ^[1-9]$ ]]; then
    echo "PAREDAO_BROKER_NODES must be 1–9, not '$BROKER_NODES'" >&2
    return 2
  fi
  if ((BROKER_NODES == 1)); then
    "$ROOT/scripts/rabbitmq.sh" start
    return
  fi
  PAREDAO_CLUSTER_NODES="$BROKER_NODES" PAREDAO_CLUSTER_DIR="$CLUSTER_DIR" "$ROOT/scripts/rabbitmq-cluster.sh" start
  if [[ -z "${PAREDAO_AMQP_URL:-}" ]]; then
    PAREDAO_AMQP_URL="$(PAREDAO_CLUSTER_NODES="$BROKER_NODES" PAREDAO_CLUSTER_DIR="$CLUSTER_DIR" "$ROOT/scripts/rabbitmq-cluster.sh" addresses)"
    export PAREDAO_AMQP_URL
  fi
}

# cluster_count: how many nodes the cluster in CLUSTER_DIR has (0: none was made).
cluster_count() {
  local nodes=("$CLUSTER_DIR"/node[1-9])
  [[ -d "${nodes[0]}" ]] && echo "${#nodes[@]}" || echo 0
}

stop_all() {
  if [[ -x "$ROOT/monitoring/monitoring.sh" ]]; then "$ROOT/monitoring/monitoring.sh" stop -q >/dev/null 2>&1 || true; fi
  supervise_stop "$VAR"
  # A stack started by an older run.sh (PID files in var/run/) goes too.
  stack_stop "$VAR" 2>/dev/null
  "$ROOT/scripts/rabbitmq.sh" stop
  local nodes
  nodes="$(cluster_count)"
  if ((nodes > 0)); then PAREDAO_CLUSTER_NODES="$nodes" PAREDAO_CLUSTER_DIR="$CLUSTER_DIR" "$ROOT/scripts/rabbitmq-cluster.sh" stop; fi
}

status() {
  supervise_status "$VAR"
  if "$ROOT/scripts/rabbitmq.sh" status; then echo "rabbitmq: running"; else echo "rabbitmq: stopped"; fi
  local nodes
  nodes="$(cluster_count)"
  if ((nodes > 0)); then PAREDAO_CLUSTER_NODES="$nodes" PAREDAO_CLUSTER_DIR="$CLUSTER_DIR" "$ROOT/scripts/rabbitmq-cluster.sh" status || true; fi
}

foreground() {
  up
  trap 'echo; stop_all; exit 0' INT TERM
  log "press Ctrl-C to stop"
  while true; do sleep 1; done
}

main() {
  case "${1:-up}" in
    up) if [[ -t 0 ]]; then foreground; else up; fi ;;
    stop) stop_all ;;
    status) status ;;
    test) shift; exec "$ROOT/scripts/test.sh" "$@" ;;
    logs) shift; exec "$ROOT/monitoring/logs.sh" --live --dir "$LOG" "$@" ;;
    monitoring) exec "$ROOT/monitoring/monitoring.sh" start --data "$VAR/monitoring" ;;
    bench) shift; exec "$ROOT/bench/run.sh" "$@" ;;
    -h|--help|help) usage ;;
    *) echo "unknown command: $1" >&2; usage >&2; exit 2 ;;
  esac
}

main "$@"
