#!/usr/bin/env bash
# Runs a RabbitMQ node as a plain process (no systemd) with its data in one folder.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RMQ_BIN=/usr/lib/rabbitmq/bin
# shellcheck source=SCRIPTDIR/lib/proc.sh
source "$ROOT/scripts/lib/proc.sh"

usage() {
  cat <<'TXT'
Usage: scripts/rabbitmq.sh start|stop|status|wait|pause|resume|declare-queue NAME...|ctl ARGS...|queues ARGS...

Runs a RabbitMQ node as a plain process with its data under one folder.
  start    start the node in the background and wait until AMQP accepts; the node loads
           (at every boot) one user per role with its password from the secrets folder
           and least-privilege permissions on vhost "/", the delivery-limit policy and
           the vote queue; then the user guest is deleted
  stop     shut the node down and stop its epmd (only what this script started)
  status   exit 0 when the node answers
  wait     wait until the node is up (up to 90 s)
  pause    freeze the node (SIGSTOP): its connections stay open but silent, as with a
           hung broker or a dead network path (tests of heartbeats)
  resume   let a paused node run again (SIGCONT)
  declare-queue NAME...  create each vote queue NAME (and NAME.dead) as the services
           declare it; only the admin may create it (the consumer may not write to the
           default exchange, which a queue with a dead-letter exchange needs)
  ctl ...  run rabbitmqctl against this node
  queues ...  run rabbitmq-queues against this node (quorum_status QUEUE, grow NODE all, …)

Users (passwords in PAREDAO_SECRETS_DIR/rabbitmq-USER.password, made by make-secrets.sh):
  paredao-api       configure on the vote queues, write on amq.default, read nothing
  paredao-consumer  configure and read on the vote queues, write nothing
  paredao-monitor   tag monitoring, no vhost permissions (rabbitmq_prometheus needs none)
  paredao-admin     tag administrator, everything (operators, tests, tools)

Environment (defaults):
  PAREDAO_RABBITMQ_DIR              var/rabbitmq   data, logs, pid file
  PAREDAO_RABBITMQ_PORT             5672           AMQP port (127.0.0.1)
  PAREDAO_RABBITMQ_DIST_PORT        25672          Erlang distribution port
  PAREDAO_RABBITMQ_EPMD_PORT        4391           epmd port (own, not the system's 4369)
  PAREDAO_RABBITMQ_PROMETHEUS_PORT  15692          rabbitmq_prometheus /metrics port
  PAREDAO_RABBITMQ_NODE             paredao@localhost
  PAREDAO_SECRETS_DIR               var/secrets    broker passwords (see above)
  PAREDAO_QUEUE / PAREDAO_QUEUE_TYPE  votes / quorum  the queue declared at start
  PAREDAO_RABBITMQ_QUEUES           ^votes[^.]*(\.dead)?$   queues the services may use
  PAREDAO_RABBITMQ_DELIVERY_LIMIT   5              deliveries of one message before a
                                    quorum queue dead-letters it (policy on every vote
                                    queue but the .dead ones; 3.10 knows apply-to
                                    "queues" only, and the limit binds quorum queues)
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
  DEFINITIONS="$dir/definitions.json"
  SECRETS_DIR="${PAREDAO_SECRETS_DIR:-$ROOT/var/secrets}"
  cat >"$RABBITMQ_CONFIG_FILE" <<CONF
listeners.tcp.default = 127.0.0.1:${RABBITMQ_NODE_PORT}
load_definitions = ${DEFINITIONS}
prometheus.tcp.port = ${PAREDAO_RABBITMQ_PROMETHEUS_PORT:-15692}
prometheus.tcp.ip = 127.0.0.1
disk_free_limit.absolute = 50MB
# Quorum queues keep every entry of the current write-ahead log file in memory until the
# file rolls over (default 512 MiB): a smaller file bounds the broker's memory under load.
raft.wal_max_size_bytes = ${PAREDAO_RABBITMQ_WAL_MAX_BYTES:-67108864}
log.console = false
log.file.level = warning
CONF
  echo '[rabbitmq_prometheus].' >"$RABBITMQ_ENABLED_PLUGINS_FILE"
}

ctl() {
  "$RMQ_BIN/rabbitmqctl" -q "$@"
}

queues() {
  "$RMQ_BIN/rabbitmq-queues" -q "$@"
}

# password_hash USER: the stored form of USER's password (rabbit_password_hashing_sha256:
# base64 of a 4-byte salt followed by SHA-256 of salt + password).
password_hash() {
  local file="$SECRETS_DIR/rabbitmq-$1.password" salt
  if [[ ! -s "$file" ]]; then
    echo "no password for $1 in $file (run scripts/make-secrets.sh)" >&2
    return 1
  fi
  salt="$(mktemp)"
  head -c 4 /dev/urandom >"$salt"
  { cat "$salt"; head -n1 "$file" | tr -d '\n' | cat "$salt" - | openssl dgst -sha256 -binary; } | base64 -w0
  rm -f "$salt"
}

# queue_definitions NAME...: the JSON of each vote queue NAME and NAME.dead, with the
# arguments the services declare them with.
queue_definitions() {
  local name type='' separator=''
  if [[ "${PAREDAO_QUEUE_TYPE:-quorum}" == quorum ]]; then type='"x-queue-type": "quorum"'; fi
  for name in "$@"; do
    printf '%s{"name": "%s.dead", "vhost": "/", "durable": true, "auto_delete": false, "arguments": {%s}}' "$separator" "$name" "$type"
    separator=', '
    printf '%s{"name": "%s", "vhost": "/", "durable": true, "auto_delete": false, "arguments": {%s%s"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "%s.dead"}}' \
      "$separator" "$name" "$type" "${type:+, }" "$name"
  done
}

# write_definitions: what the node loads at boot (users, permissions, policy, vote queue);
# mode 600, since it holds password hashes. Loading it again changes nothing.
write_definitions() {
  local queues="${PAREDAO_RABBITMQ_QUEUES:-^votes[^.]*(\\.dead)?\$}" api consumer monitor admin
  api="$(password_hash paredao-api)" && consumer="$(password_hash paredao-consumer)" &&
    monitor="$(password_hash paredao-monitor)" && admin="$(password_hash paredao-admin)" || return 1
  queues="${queues//\\/\\\\}"   # JSON-escaped
  (umask 077 && cat >"$DEFINITIONS" <<JSON
{
  "vhosts": [{"name": "/"}],
  "users": [
    {"name": "paredao-api", "password_hash": "$api", "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": []},
    {"name": "paredao-consumer", "password_hash": "$consumer", "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": []},
    {"name": "paredao-monitor", "password_hash": "$monitor", "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": ["monitoring"]},
    {"name": "paredao-admin", "password_hash": "$admin", "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": ["administrator"]}
  ],
  "permissions": [
    {"user": "paredao-api", "vhost": "/", "configure": "$queues", "write": "^amq\\\\.default\$", "read": "^\$"},
    {"user": "paredao-consumer", "vhost": "/", "configure": "$queues", "write": "^\$", "read": "$queues"},
    {"user": "paredao-admin", "vhost": "/", "configure": ".*", "write": ".*", "read": ".*"}
  ],
  "policies": [
    {"vhost": "/", "name": "paredao-delivery-limit", "pattern": "^votes[^.]*\$", "apply-to": "queues",
     "definition": {"delivery-limit": ${PAREDAO_RABBITMQ_DELIVERY_LIMIT:-5}}, "priority": 0}
  ],
  "queues": [$(queue_definitions "${PAREDAO_QUEUE:-votes}")]
}
JSON
  )
}

# declare_queues NAME...: creates vote queues on the running node (as the admin would).
declare_queues() {
  local file
  file="$(mktemp)"
  printf '{"queues": [%s]}\n' "$(queue_definitions "$@")" >"$file"
  ctl import_definitions "$file" >/dev/null
  local status=$?
  rm -f "$file"
  return "$status"
}

# Only the role users log in: guest (created on a fresh node) goes.
delete_guest() {
  ctl delete_user guest >/dev/null 2>&1 || true
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
  # Never overwrites: a fresh folder gets its passwords, an existing one keeps them.
  "$ROOT/scripts/make-secrets.sh" --dir "$SECRETS_DIR" >/dev/null
  write_definitions
  if is_up; then
    ctl import_definitions "$DEFINITIONS" >/dev/null
    delete_guest
    echo "RabbitMQ already running on 127.0.0.1:$RABBITMQ_NODE_PORT (users and policy updated)"
    return 0
  fi
  if amqp_accepts; then
    echo "Port $RABBITMQ_NODE_PORT is taken by another process; set PAREDAO_RABBITMQ_PORT" >&2
    return 1
  fi
  setsid "$RMQ_BIN/rabbitmq-server" >"$RMQ_DIR/server.out" 2>&1 < /dev/null &
  wait_up
  # A definition the node refuses is only logged: check that the last part (the policy) is in.
  if ! ctl list_policies | grep -q paredao-delivery-limit; then
    echo "RabbitMQ did not load $DEFINITIONS; run: $0 ctl import_definitions $DEFINITIONS" >&2
    return 1
  fi
  delete_guest
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

# signal_node SIGNAL: sends SIGNAL to the node's own process, found by its pid file.
signal_node() {
  local pid
  if ! pid="$(node_pid)"; then
    echo "RabbitMQ is not running (no live pid in $RABBITMQ_PID_FILE)" >&2
    return 1
  fi
  kill "-$1" "$pid"
}

main() {
  local command="${1:-}"
  case "$command" in
    -h|--help|help|"") usage; [[ -n "$command" ]] ;;
    start) setup_env; start ;;
    stop) setup_env; stop ;;
    status) setup_env; is_up ;;
    wait) setup_env; wait_up ;;
    declare-queue) shift; setup_env; declare_queues "$@" ;;
    pause) setup_env; signal_node STOP ;;
    resume) setup_env; signal_node CONT ;;
    ctl) shift; setup_env; ctl "$@" ;;
    queues) shift; setup_env; queues "$@" ;;
    *) echo "unknown command: $command" >&2; usage >&2; return 2 ;;
  esac
}

main "$@"
