#!/usr/bin/env bash
# Runs a RabbitMQ node as a plain process (no systemd) with its data in one folder.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RMQ_BIN=/usr/lib/rabbitmq/bin
# shellcheck source=SCRIPTDIR/lib/proc.sh
source "$ROOT/scripts/lib/proc.sh"

usage() {
  cat <<'TXT'
Usage: scripts/rabbitmq.sh start|stop|status|wait|ctl ARGS...

Runs a RabbitMQ node as a plain process with its data under one folder.
  start    start the node in the background and wait until AMQP accepts
  stop     shut the node down and stop its epmd (only what this script started)
  status   exit 0 when the node answers
  wait     wait until the node is up (up to 90 s)
  ctl ...  run rabbitmqctl against this node

Environment (defaults):
  PAREDAO_RABBITMQ_DIR              var/rabbitmq   data, logs, pid file
  PAREDAO_RABBITMQ_PORT             5672           AMQP port (127.0.0.1)
  PAREDAO_RABBITMQ_DIST_PORT        25672          Erlang distribution port
  PAREDAO_RABBITMQ_EPMD_PORT        4391           epmd port (own, not the system's 4369)
  PAREDAO_RABBITMQ_PROMETHEUS_PORT  15692          rabbitmq_prometheus /metrics port
  PAREDAO_RABBITMQ_NODE             paredao@localhost
  PAREDAO_RABBITMQ_ERL_ARGS         +sbwt none +sbwtdcpu none +sbwtdio none
                                    Erlang VM flags; the default stops idle schedulers
                                    from busy-waiting, which on a small shared machine
                                    takes CPU from the API (set it empty to keep it)
TXT
}

setup_env() {
  local dir="${PAREDAO_RABBITMQ_DIR:-$ROOT/var/rabbitmq}"
  mkdir -p "$dir"/{mnesia,log,home}
  dir="$(cd "$dir" && pwd)"
  export HOME="$dir/home"
  export RABBITMQ_MNESIA_BASE="$dir/mnesia"
  export RABBITMQ_LOG_BASE="$dir/log"
  export RABBITMQ_PID_FILE="$dir/rabbitmq.pid"
  export RABBITMQ_CONFIG_FILE="$dir/rabbitmq.conf"
  export RABBITMQ_ENABLED_PLUGINS_FILE="$dir/enabled_plugins"
  export RABBITMQ_NODENAME="${PAREDAO_RABBITMQ_NODE:-paredao@localhost}"
  export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
  export RABBITMQ_NODE_PORT="${PAREDAO_RABBITMQ_PORT:-5672}"
  export RABBITMQ_DIST_PORT="${PAREDAO_RABBITMQ_DIST_PORT:-25672}"
  export ERL_EPMD_PORT="${PAREDAO_RABBITMQ_EPMD_PORT:-4391}"
  export ERL_EPMD_ADDRESS=127.0.0.1
  # A node that fails to boot writes its crash dump here, not into the caller's folder.
  export ERL_CRASH_DUMP="$dir/erl_crash.dump"
  export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1} ${PAREDAO_RABBITMQ_ERL_ARGS-+sbwt none +sbwtdcpu none +sbwtdio none}"
  RMQ_DIR="$dir"
  cat >"$RABBITMQ_CONFIG_FILE" <<CONF
listeners.tcp.default = 127.0.0.1:${RABBITMQ_NODE_PORT}
prometheus.tcp.port = ${PAREDAO_RABBITMQ_PROMETHEUS_PORT:-15692}
prometheus.tcp.ip = 127.0.0.1
disk_free_limit.absolute = 50MB
log.console = false
log.file.level = warning
CONF
  echo '[rabbitmq_prometheus].' >"$RABBITMQ_ENABLED_PLUGINS_FILE"
}

ctl() {
  "$RMQ_BIN/rabbitmqctl" -q "$@"
}

# node_pid: the node's pid from its own pid file, when that process runs and its command
# line names our HOME (so a reused pid is not taken for ours).
node_pid() {
  proc_pidfile_pid "$RABBITMQ_PID_FILE" "-home $HOME"
}

# Asks the node only when its process runs: a CLI call with no node behind it leaves
# an epmd running on our port.
is_up() {
  node_pid >/dev/null && ctl status >/dev/null 2>&1
}

amqp_accepts() {
  (exec 3<>"/dev/tcp/127.0.0.1/$RABBITMQ_NODE_PORT") 2>/dev/null
}

# ping can answer before AMQP does: wait for both the port and await_startup.
is_started() {
  amqp_accepts && ctl await_startup --timeout 5 >/dev/null 2>&1
}

wait_up() {
  if ! wait_until 90 is_started; then
    echo "RabbitMQ did not start; see $RABBITMQ_LOG_BASE and $RMQ_DIR/server.out" >&2
    return 1
  fi
}

start() {
  if is_up; then
    echo "RabbitMQ already running on 127.0.0.1:$RABBITMQ_NODE_PORT"
    return 0
  fi
  if amqp_accepts; then
    echo "Port $RABBITMQ_NODE_PORT is taken by another process; set PAREDAO_RABBITMQ_PORT" >&2
    return 1
  fi
  setsid "$RMQ_BIN/rabbitmq-server" >"$RMQ_DIR/server.out" 2>&1 < /dev/null &
  wait_up
  echo "RabbitMQ up on amqp://127.0.0.1:$RABBITMQ_NODE_PORT (data in $RMQ_DIR)"
}

stop() {
  if is_up; then
    ctl shutdown >/dev/null 2>&1 || true
  fi
  # shutdown returns once the node stopped; one that did not gets 30 s, then TERM and KILL.
  local pid
  if pid="$(node_pid)" && ! proc_wait_gone "$pid" 30; then
    stop_pid "$pid" 5 || true
  fi
  rm -f "$RABBITMQ_PID_FILE"
  /usr/bin/epmd -port "$ERL_EPMD_PORT" -kill >/dev/null 2>&1 || true
  echo "RabbitMQ stopped"
}

main() {
  local command="${1:-}"
  case "$command" in
    -h|--help|help|"") usage; [[ -n "$command" ]] ;;
    start) setup_env; start ;;
    stop) setup_env; stop ;;
    status) setup_env; is_up ;;
    wait) setup_env; wait_up ;;
    ctl) shift; setup_env; ctl "$@" ;;
    *) echo "unknown command: $command" >&2; usage >&2; return 2 ;;
  esac
}

main "$@"
