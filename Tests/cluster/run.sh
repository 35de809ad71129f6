#!/usr/bin/env bash
# The cluster failover suite (./run.sh test --only cluster): a 3-node RabbitMQ cluster,
# VoteConsumer and VoteAPI given the three nodes, ballot-like load while the vote queue's
# leader is killed and started again (Tests/cluster/cluster_suite.py).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
CLUSTER_VAR="$ROOT/var/test/cluster"
API_PORT=18700
API_METRICS_PORT=18701
CONSUMER_METRICS_PORT=18702
# shellcheck source=SCRIPTDIR/../../scripts/lib/stack.sh
source "$ROOT/scripts/lib/stack.sh"

usage() {
  cat <<'TXT'
Usage: Tests/cluster/run.sh   (normally through ./run.sh test [--only cluster])

Starts a RabbitMQ cluster of three nodes (scripts/rabbitmq-cluster.sh: paredao-1..3@localhost,
AMQP 5710/5720/5730, distribution 5715/5725/5735, epmd 4396, prometheus 15710/15720/15730;
data in var/test/cluster/rabbitmq, passwords in var/test/cluster/secrets), finds the leader
of the vote queue, and starts VoteConsumer and VoteAPI (API 18700, metrics 18701 and 18702)
with PAREDAO_AMQP_URL the three nodes, the leader's first, so both are connected to the node
that will die. Then Tests/cluster/cluster_suite.py: ballot-like clients (each vote sent
again with the same voteId on 503 or a time-out) load ~300 votes/s for 45 s; 15 s in, the
leader's Erlang VM gets SIGKILL, and 10 s later the node starts again. Checks: every vote
id that got a 202 counted exactly once (store and /total), nothing else counted, no vote
gave up, a new leader, the API and the consumer failed over, the API answered only 503 for
at most CLUSTER_MAX_503_SECONDS (8). Prints the leader before and after, the timings and
the counts. Everything it started is stopped at exit, by PID.

Environment: PAREDAO_BUILD (debug, or release: which binaries), CLUSTER_RATE (300),
CLUSTER_CLIENTS (30), CLUSTER_SECONDS (45), CLUSTER_KILL_AT (15), CLUSTER_DOWN_SECONDS (10),
CLUSTER_MAX_503_SECONDS (8). Without rabbitmq-server or python3 the suite is skipped — a
failure under CI=true.
TXT
}

log() { printf '\n[cluster] %s\n' "$*"; }

cluster_env() {
  export PAREDAO_CLUSTER_DIR="$CLUSTER_VAR/rabbitmq" PAREDAO_CLUSTER_NODES=3
  export PAREDAO_CLUSTER_PORT=5710 PAREDAO_CLUSTER_EPMD_PORT=4396 PAREDAO_CLUSTER_NAME=paredao
  export PAREDAO_SECRETS_DIR="$CLUSTER_VAR/secrets" PAREDAO_QUEUE=votes
}

cleanup() {
  stack_stop "$CLUSTER_VAR" 2>/dev/null || true
  "$ROOT/scripts/rabbitmq-cluster.sh" stop >/dev/null 2>&1 || true
}

# skip REASON: a suite that cannot run passes with a notice, except under CI=true.
skip() {
  echo "cluster suite skipped: $1" >&2
  [[ "${CI:-}" != true ]] || { echo "CI=true: a skipped suite is a failure" >&2; return 1; }
}

# addresses_leader_first LEADER: the nodes' AMQP URLs with LEADER's first, then the others in order.
addresses_leader_first() {
  local leader="$1" url first="" rest=()
  while IFS= read -r url; do
    if [[ -z "$first" && "$url" == *":$(leader_port "$leader")/" ]]; then first="$url"; else rest+=("$url"); fi
  done < <("$ROOT/scripts/rabbitmq-cluster.sh" addresses | tr ',' '\n')
  local IFS=,
  printf '%s\n' "${first:+$first,}${rest[*]}"
}

# leader_port NODE: the AMQP port of node paredao-N@localhost.
leader_port() {
  local n="${1%%@*}"
  n="${n##*-}"
  printf '%s' $((PAREDAO_CLUSTER_PORT + 10 * (n - 1)))
}

start_services() {
  local bin="$1" addresses="$2"
  export PAREDAO_AMQP_URL="$addresses"
  export PAREDAO_SQLITE_PATH="$CLUSTER_VAR/votes.sqlite" PAREDAO_TOKEN_KEYS_FILE="$PAREDAO_SECRETS_DIR/token-keys"
  export PAREDAO_API_METRICS_PORT="$API_METRICS_PORT" PAREDAO_CONSUMER_METRICS_PORT="$CONSUMER_METRICS_PORT"
  # Ballot-like clients, many per address: cheap proof of work, a generous session.
  export PAREDAO_POW_DIFFICULTY=8 PAREDAO_POW_MAX_DIFFICULTY=8
  export PAREDAO_VOTE_RATE=100 PAREDAO_VOTE_BURST=200 PAREDAO_SESSION_BUDGET=1000000
  export PAREDAO_NETWORK_SESSION_RATE=1000 PAREDAO_NETWORK_SESSION_BURST=1000
  export PAREDAO_TOTALS_REFRESH_MS=500 PAREDAO_DRAIN_SECONDS=5
  stack_start_process "$CLUSTER_VAR" consumer "$bin/VoteConsumer"
  stack_start_process "$CLUSTER_VAR" api env PAREDAO_API_PORT="$API_PORT" "$bin/VoteAPI"
  local api_pid
  api_pid="$(stack_pid "$CLUSTER_VAR" api)" || { stack_fail "$CLUSTER_VAR" api "VoteAPI exited at once"; return 1; }
  wait_http "http://127.0.0.1:$API_PORT/readyz" 60 "$api_pid" || { stack_fail "$CLUSTER_VAR" api "VoteAPI is not ready"; return 1; }
  stack_pid "$CLUSTER_VAR" consumer >/dev/null || { stack_fail "$CLUSTER_VAR" consumer "VoteConsumer exited"; return 1; }
}

main() {
  case "${1:-}" in
    -h|--help) usage; return 0 ;;
    "") ;;
    *) echo "unknown option: $1" >&2; usage >&2; return 2 ;;
  esac
  [[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ]] || { skip "rabbitmq-server is not installed (./preflight.sh)"; return; }
  command -v python3 >/dev/null || { skip "python3 is missing"; return; }
  local config="${PAREDAO_BUILD:-debug}" bin leader addresses
  cluster_env
  # What an interrupted run left goes first.
  cleanup
  rm -rf "$CLUSTER_VAR"
  mkdir -p "$CLUSTER_VAR"
  trap cleanup EXIT
  log "building ($config)"
  swift build -c "$config" >/dev/null
  bin="$(swift build -c "$config" --show-bin-path)"
  log "RabbitMQ cluster of 3"
  "$ROOT/scripts/rabbitmq-cluster.sh" start
  leader="$("$ROOT/scripts/rabbitmq-cluster.sh" leader)"
  addresses="$(addresses_leader_first "$leader")"
  log "VoteConsumer and VoteAPI on $addresses (the leader $leader first)"
  start_services "$bin" "$addresses"
  log "load, kill -9 of the leader, restart"
  CLUSTER_API_URL="http://127.0.0.1:$API_PORT" \
    CLUSTER_API_METRICS_URL="http://127.0.0.1:$API_METRICS_PORT/metrics" \
    CLUSTER_CONSUMER_METRICS_URL="http://127.0.0.1:$CONSUMER_METRICS_PORT/metrics" \
    CLUSTER_CTL="$ROOT/scripts/rabbitmq-cluster.sh" CLUSTER_SQLITE_PATH="$PAREDAO_SQLITE_PATH" \
    CLUSTER_QUEUE="$PAREDAO_QUEUE" CLUSTER_TOKEN_TOOL="$bin/paredao-token" \
    python3 "$ROOT/Tests/cluster/cluster_suite.py"
  log "failover lines in the logs"
  grep -h 'Failed over' "$CLUSTER_VAR/log/api.log" "$CLUSTER_VAR/log/consumer.log" | cut -c1-300 || true
}

main "$@"
