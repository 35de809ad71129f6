# shellcheck shell=bash
# A RabbitMQ cluster of N nodes on this machine, each a scripts/rabbitmq.sh node of its own
# (own name, ports and data folder) sharing one Erlang cookie and one epmd, loopback only.
# Source it; it only defines functions (and sources proc.sh, which does the same).
#
# Settings (environment, defaults):
#   PAREDAO_CLUSTER_DIR         var/rabbitmq-cluster  node N's data in DIR/nodeN, the cookie in DIR/cookie
#   PAREDAO_CLUSTER_NODES       3                     nodes (1–9)
#   PAREDAO_CLUSTER_PORT        5710                  node N: AMQP PORT+10(N-1), distribution that +5,
#                                                     rabbitmq_prometheus that +10000
#   PAREDAO_CLUSTER_EPMD_PORT   4396                  the one epmd of the cluster
#   PAREDAO_CLUSTER_NAME        paredao               node N is NAME-N@localhost
#   PAREDAO_SECRETS_DIR         var/secrets           the role users' passwords (all nodes)
#   PAREDAO_QUEUE               votes                 the vote queue (quorum, on every node)

# shellcheck source=SCRIPTDIR/proc.sh
source "$(dirname "${BASH_SOURCE[0]}")/proc.sh"

# cluster_root: prints the repository's folder.
cluster_root() {
  (cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
}

# cluster_settings: checks the settings and sets the globals the functions below read.
cluster_settings() {
  CLUSTER_ROOT="$(cluster_root)"
  CLUSTER_DIR="${PAREDAO_CLUSTER_DIR:-$CLUSTER_ROOT/var/rabbitmq-cluster}"
  CLUSTER_NODES="${PAREDAO_CLUSTER_NODES:-3}"
  CLUSTER_PORT="${PAREDAO_CLUSTER_PORT:-5710}"
  CLUSTER_EPMD_PORT="${PAREDAO_CLUSTER_EPMD_PORT:-4396}"
  CLUSTER_NAME="${PAREDAO_CLUSTER_NAME:-paredao}"
  CLUSTER_SECRETS="${PAREDAO_SECRETS_DIR:-$CLUSTER_ROOT/var/secrets}"
  CLUSTER_QUEUE="${PAREDAO_QUEUE:-votes}"
  if [[ ! "$CLUSTER_NODES" =~ ^[1-9]$ ]]; then
    proc_log "PAREDAO_CLUSTER_NODES must be 1–9, not '$CLUSTER_NODES'"
    return 2
  fi
  if [[ ! "$CLUSTER_PORT" =~ ^[0-9]+$ ]] || ((CLUSTER_PORT < 1024 || CLUSTER_PORT + 10 * CLUSTER_NODES + 10000 > 65535)); then
    proc_log "PAREDAO_CLUSTER_PORT must leave room for every node's ports (1024–$((55535 - 10 * CLUSTER_NODES))), not '$CLUSTER_PORT'"
    return 2
  fi
  if [[ ! "$CLUSTER_NAME" =~ ^[a-z][a-z0-9-]*$ ]]; then
    proc_log "PAREDAO_CLUSTER_NAME must be lower-case letters, digits and dashes, not '$CLUSTER_NAME'"
    return 2
  fi
  mkdir -p "$CLUSTER_DIR" && CLUSTER_DIR="$(cd "$CLUSTER_DIR" && pwd)"
  mkdir -p "$CLUSTER_SECRETS" && CLUSTER_SECRETS="$(cd "$CLUSTER_SECRETS" && pwd)"
}

# cluster_node_name N, cluster_amqp_port N: node N's Erlang name and AMQP port.
cluster_node_name() { printf '%s-%s@localhost' "$CLUSTER_NAME" "$1"; }
cluster_amqp_port() { printf '%s' $((CLUSTER_PORT + 10 * ($1 - 1))); }

# cluster_node_index NAME: prints N for node NAME of this cluster; fails for any other name.
cluster_node_index() {
  local n
  for ((n = 1; n <= CLUSTER_NODES; n++)); do
    if [[ "$1" == "$(cluster_node_name "$n")" ]]; then printf '%s' "$n"; return 0; fi
  done
  return 1
}

# cluster_addresses: the AMQP URLs of every node, comma-separated, without credentials (the
# services add their own user), in node order: a ready value for PAREDAO_AMQP_URL.
cluster_addresses() {
  local n urls=()
  for ((n = 1; n <= CLUSTER_NODES; n++)); do urls+=("amqp://127.0.0.1:$(cluster_amqp_port "$n")/"); done
  local IFS=,
  printf '%s\n' "${urls[*]}"
}

# cluster_rmq N ARGS...: runs scripts/rabbitmq.sh ARGS for node N (its settings exported in
# a subshell, so the caller's environment stays as it was).
cluster_rmq() {
  local n="$1" port
  shift
  port="$(cluster_amqp_port "$n")"
  (
    export PAREDAO_RABBITMQ_DIR="$CLUSTER_DIR/node$n" PAREDAO_RABBITMQ_PORT="$port"
    export PAREDAO_RABBITMQ_DIST_PORT=$((port + 5)) PAREDAO_RABBITMQ_PROMETHEUS_PORT=$((port + 10000))
    export PAREDAO_RABBITMQ_EPMD_PORT="$CLUSTER_EPMD_PORT" PAREDAO_RABBITMQ_NODE
    PAREDAO_RABBITMQ_NODE="$(cluster_node_name "$n")"
    export PAREDAO_SECRETS_DIR="$CLUSTER_SECRETS" PAREDAO_QUEUE="$CLUSTER_QUEUE"
    exec "$CLUSTER_ROOT/scripts/rabbitmq.sh" "$@"
  )
}

# cluster_ctl ARGS...: rabbitmqctl ARGS on the first node that answers.
cluster_ctl() {
  local n
  n="$(cluster_up_node)" || { proc_log "no node of the cluster answers"; return 1; }
  cluster_rmq "$n" ctl "$@"
}

# cluster_queues ARGS...: rabbitmq-queues ARGS on the first node that answers (same
# environment as rabbitmqctl: the node's HOME, cookie and epmd port).
cluster_queues() {
  local n
  n="$(cluster_up_node)" || { proc_log "no node of the cluster answers"; return 1; }
  cluster_rmq "$n" queues "$@"
}

# cluster_node_pid N: prints the PID of node N's Erlang VM when it runs.
cluster_node_pid() {
  proc_pidfile_pid "$CLUSTER_DIR/node$1/rabbitmq.pid" "-home $CLUSTER_DIR/node$1/home"
}

# cluster_node_up N: node N's VM runs and answers.
cluster_node_up() {
  cluster_node_pid "$1" >/dev/null && cluster_rmq "$1" status
}

# cluster_up_node: prints the first node that answers.
cluster_up_node() {
  local n
  for ((n = 1; n <= CLUSTER_NODES; n++)); do
    if cluster_node_up "$n"; then printf '%s' "$n"; return 0; fi
  done
  return 1
}

# cluster_cookie: one Erlang cookie for every node (DIR/cookie, made once), copied into
# each node's HOME, where the node and its CLI look for it.
cluster_cookie() {
  local n home
  if [[ ! -s "$CLUSTER_DIR/cookie" ]]; then
    (umask 077 && head -c 24 /dev/urandom | base64 -w0 | tr -dc 'A-Za-z0-9' >"$CLUSTER_DIR/cookie")
  fi
  for ((n = 1; n <= CLUSTER_NODES; n++)); do
    home="$CLUSTER_DIR/node$n/home"
    mkdir -p "$home"
    if ! cmp -s "$CLUSTER_DIR/cookie" "$home/.erlang.cookie"; then
      rm -f "$home/.erlang.cookie"
      cp "$CLUSTER_DIR/cookie" "$home/.erlang.cookie"
      chmod 400 "$home/.erlang.cookie"
    fi
  done
}

# cluster_joined N: node N has joined the cluster once (its data folder says so).
cluster_joined() {
  [[ -f "$CLUSTER_DIR/node$1/joined" ]]
}

# cluster_join N: a freshly booted node N leaves its own one-node cluster (stop_app, reset:
# its local copy of the definitions goes) and joins node 1's; then it becomes a member of
# every quorum queue (rabbitmq-queues grow), since a queue's members are fixed when it is
# declared and the vote queue was declared on node 1 alone.
cluster_join() {
  local n="$1" first log="$CLUSTER_DIR/node$1/join.log"
  first="$(cluster_node_name 1)"
  # The CLI reports the reset's feature-flag and tracking-table notices on stderr: keep them.
  {
    cluster_rmq "$n" ctl stop_app &&
      cluster_rmq "$n" ctl reset &&
      cluster_rmq "$n" ctl join_cluster "$first" &&
      cluster_rmq "$n" ctl start_app &&
      cluster_rmq "$n" ctl await_startup --timeout 60
  } >"$log" 2>&1 || {
    proc_log "$(cluster_node_name "$n") could not join $first (see $log)"
    return 1
  }
  cluster_rmq 1 queues grow "$(cluster_node_name "$n")" all >>"$log" 2>&1 || {
    proc_log "$(cluster_node_name "$n") could not become a member of the quorum queues (see $log)"
    return 1
  }
  : >"$CLUSTER_DIR/node$n/joined"
}

# cluster_start: starts every node that is not running. A cluster that ran before starts
# all its nodes at once (a clustered node waits for its peers at boot, so one at a time
# could wait on a node not yet started); a new one starts node 1, then each other node
# boots and joins it. Ends with every node running and a member of the vote queue.
cluster_start() {
  "$CLUSTER_ROOT/scripts/make-secrets.sh" --dir "$CLUSTER_SECRETS" >/dev/null || return 1
  cluster_cookie || return 1
  local n pids=() failed=0
  for ((n = 1; n <= CLUSTER_NODES; n++)); do
    if cluster_joined "$n" || { ((n == 1)) && [[ -d "$CLUSTER_DIR/node1/mnesia" ]]; }; then
      cluster_rmq "$n" start >/dev/null &
      pids+=("$!")
    fi
  done
  for n in "${pids[@]}"; do wait "$n" || failed=1; done
  ((failed == 0)) || { proc_log "a node of the cluster did not start; see $CLUSTER_DIR/node*/log"; return 1; }
  if ! cluster_node_up 1; then
    cluster_rmq 1 start >/dev/null || return 1
    : >"$CLUSTER_DIR/node1/joined"
  fi
  for ((n = 2; n <= CLUSTER_NODES; n++)); do
    cluster_joined "$n" && continue
    cluster_rmq "$n" start >/dev/null && cluster_join "$n" || return 1
  done
  cluster_wait_members 60
}

# cluster_queue_field FIELD: the vote queue's FIELD as list_queues prints it (leader,
# members, online: a list reads "[a@localhost, b@localhost]").
cluster_queue_field() {
  cluster_ctl list_queues name "$1" 2>/dev/null | awk -F '\t' -v queue="$CLUSTER_QUEUE" '$1 == queue { print $2; found = 1 } END { exit !found }'
}

# cluster_members_online: every node is an online member of the vote queue.
cluster_members_online() {
  local online
  online="$(cluster_queue_field online)" || return 1
  (($(grep -o '@' <<<"$online" | wc -l) == CLUSTER_NODES))
}

# cluster_wait_members SECONDS: waits until every node follows or leads the vote queue.
cluster_wait_members() {
  if ! wait_until "$1" cluster_members_online; then
    proc_log "the vote queue $CLUSTER_QUEUE does not have all $CLUSTER_NODES nodes as online members"
    cluster_ctl list_queues name leader members online >&2 || true
    return 1
  fi
}

# cluster_stop: stops every node, the last one first (node 1, which the others joined, is
# the last to stop and the first to start again), then the epmd they shared.
cluster_stop() {
  local n
  for ((n = CLUSTER_NODES; n >= 1; n--)); do
    cluster_rmq "$n" stop >/dev/null 2>&1 || true
  done
  /usr/bin/epmd -port "$CLUSTER_EPMD_PORT" -kill >/dev/null 2>&1 || true
}

# cluster_leader: prints the name of the node that leads the vote queue.
cluster_leader() {
  local leader
  leader="$(cluster_queue_field leader)" || return 1
  [[ "$leader" == *@* ]] || return 1
  printf '%s\n' "$leader"
}

# cluster_kill_node N: SIGKILL to node N's Erlang VM (a crash: no goodbye to its peers or
# clients); waits until it is gone.
cluster_kill_node() {
  local pid
  pid="$(cluster_node_pid "$1")" || { proc_log "$(cluster_node_name "$1") is not running"; return 1; }
  kill -KILL "$pid"
  proc_wait_gone "$pid" 15 || { proc_log "pid $pid survived SIGKILL"; return 1; }
  printf '%s %s\n' "$(cluster_node_name "$1")" "$pid"
}

# cluster_restart_node N: starts node N again (after a kill or a stop); it rejoins its
# peers and catches up as a member of the vote queue.
cluster_restart_node() {
  if cluster_node_up "$1"; then
    proc_log "$(cluster_node_name "$1") is running"
    return 0
  fi
  cluster_rmq "$1" start >/dev/null && cluster_wait_members 60
}

# cluster_status: one line per node (running with its PID and port, or stopped), then the
# vote queue's leader and members. Fails when a node is down.
cluster_status() {
  local n pid down=0
  for ((n = 1; n <= CLUSTER_NODES; n++)); do
    if pid="$(cluster_node_pid "$n")" && cluster_rmq "$n" status; then
      echo "$(cluster_node_name "$n"): running (pid $pid, amqp 127.0.0.1:$(cluster_amqp_port "$n"))"
    else
      echo "$(cluster_node_name "$n"): stopped"
      down=1
    fi
  done
  if cluster_up_node >/dev/null; then
    echo "queue $CLUSTER_QUEUE: leader $(cluster_leader || echo none), members $(cluster_queue_field members || echo none), online $(cluster_queue_field online || echo none)"
  fi
  ((down == 0))
}
