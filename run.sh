#!/usr/bin/env bash
# Runs the Paredão stack as plain processes with everything under var/.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$ROOT"
VAR="$ROOT/var"
RUN="$VAR/run"
LOG="$VAR/log"

usage() {
  cat <<'TXT'
Usage: ./run.sh [up|stop|status|test|logs|monitoring|bench|help]

  up (default)  start RabbitMQ, VoteConsumer, VoteAPI and nginx in the background, print the
                URLs and wait; Ctrl-C (or ./run.sh stop from another shell) stops them all
  stop          stop everything this script started (by PID)
  status        show what is running
  test          run every test suite: unit, integration (own RabbitMQ on port 5682),
                monitoring, and the browser tests against a real stack behind nginx
  logs          live log query (lnav) over var/log/*.log
  monitoring    start Prometheus and Alertmanager next to the stack (stop: ./run.sh stop)
  bench         the load harness (bench/run.sh --help): paced and max votes/s, with ceilings

Environment: every PAREDAO_* setting of VoteAPI and VoteConsumer (see
`.build/release/VoteAPI --help`), plus
  PAREDAO_BUILD        release (default) or debug: which binaries up/test use
  PAREDAO_WEB_PORT     nginx port (default 8000)
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

# start_process NAME COMMAND...: runs in the background, PID in var/run/NAME.pid.
start_process() {
  local name="$1"
  shift
  mkdir -p "$RUN" "$LOG"
  if is_running "$name"; then
    log "$name already running (pid $(cat "$RUN/$name.pid"))"
    return 0
  fi
  setsid "$@" >>"$LOG/$name.log" 2>&1 </dev/null &
  echo $! >"$RUN/$name.pid"
}

is_running() {
  local file="$RUN/$1.pid" pid
  [[ -f "$file" ]] || return 1
  pid="$(cat "$file")"
  [[ -e "/proc/$pid" ]] && [[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != "Z" ]]
}

stop_process() {
  local name="$1" file="$RUN/$1.pid" pid deadline
  [[ -f "$file" ]] || return 0
  pid="$(cat "$file")"
  if is_running "$name"; then
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + 15))
    while is_running "$name" && ((SECONDS < deadline)); do sleep 0.1; done
    if is_running "$name"; then kill -KILL "$pid" 2>/dev/null || true; fi
    log "stopped $name (pid $pid)"
  fi
  rm -f "$file"
}

wait_http() {
  local url="$1" deadline=$((SECONDS + ${2:-30}))
  until curl -fsS -o /dev/null "$url" 2>/dev/null; do
    if ((SECONDS > deadline)); then
      log "timed out waiting for $url"
      return 1
    fi
    sleep 0.2
  done
}

start_nginx() {
  local prefix="$VAR/nginx" port="${PAREDAO_WEB_PORT:-8000}"
  "$ROOT/nginx/make-htpasswd.sh" produtor "$VAR/secrets/panel-password" "$prefix/htpasswd" >/dev/null
  "$ROOT/nginx/nginx.sh" start --prefix "$prefix" --listen "127.0.0.1:$port" \
    --api "127.0.0.1:${PAREDAO_API_PORT:-8080}" --htpasswd "$prefix/htpasswd" >/dev/null
}

up() {
  "$ROOT/scripts/make-secrets.sh" >/dev/null
  ensure_built
  "$ROOT/scripts/rabbitmq.sh" start
  start_process consumer "$BIN/VoteConsumer"
  start_process api "$BIN/VoteAPI"
  if ! wait_http "http://127.0.0.1:${PAREDAO_API_PORT:-8080}/readyz" 60; then
    tail -n 20 "$LOG/api.log" >&2
    return 1
  fi
  start_nginx
  local web="http://127.0.0.1:${PAREDAO_WEB_PORT:-8000}"
  cat <<TXT

Paredão is up.
  Ballot          $web/
  Partial result  $web/resultado.html
  Producers       $web/painel.html   (user: produtor, password in var/secrets/panel-password)
  Totals (poll)   $web/total
  API (direct)    http://127.0.0.1:${PAREDAO_API_PORT:-8080}   metrics: 127.0.0.1:9101/metrics, 127.0.0.1:9102/metrics
  Logs            var/log/   (./run.sh logs for the live query)

TXT
}

stop_all() {
  if [[ -x "$ROOT/monitoring/monitoring.sh" ]]; then "$ROOT/monitoring/monitoring.sh" stop -q >/dev/null 2>&1 || true; fi
  if [[ -f "$VAR/nginx/nginx.pid" ]]; then "$ROOT/nginx/nginx.sh" stop --prefix "$VAR/nginx" >/dev/null 2>&1 || true; fi
  stop_process api
  stop_process consumer
  "$ROOT/scripts/rabbitmq.sh" stop
}

status() {
  local name
  for name in consumer api; do
    if is_running "$name"; then echo "$name: running (pid $(cat "$RUN/$name.pid"))"; else echo "$name: stopped"; fi
  done
  if "$ROOT/scripts/rabbitmq.sh" status; then echo "rabbitmq: running"; else echo "rabbitmq: stopped"; fi
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
