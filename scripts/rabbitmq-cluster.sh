#!/usr/bin/env bash
# A RabbitMQ cluster of three (PAREDAO_CLUSTER_NODES) nodes on this machine, as plain processes.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=SCRIPTDIR/lib/cluster.sh
source "$ROOT/scripts/lib/cluster.sh"

usage() {
  cat <<'TXT'
Usage: scripts/rabbitmq-cluster.sh start|stop|status|addresses|leader|kill-leader|kill-node N|restart-node N|ctl ARGS...|queues ARGS...

A RabbitMQ cluster on this machine: nodes paredao-1@localhost, paredao-2@localhost, … each a
scripts/rabbitmq.sh node with its own ports and data folder, one Erlang cookie (made once,
mode 400), one epmd, loopback only. Every node loads the same definitions as a single node
(role users with the generated passwords, guest deleted, policy paredao-delivery-limit, the
vote queue declared by the admin); the vote queue is a quorum queue with every node a member.

  start           start the nodes not running; a new cluster: node 1, then each other node
                  boots, joins node 1 and becomes a member of every quorum queue; waits
                  until every node is an online member of the vote queue
  stop            stop every node (the last first), then the epmd
  status          each node (running, pid, port) and the vote queue's leader and members;
                  exit 1 when a node is down
  addresses       the nodes' AMQP URLs, comma-separated (a value for PAREDAO_AMQP_URL)
  leader          the name of the node that leads the vote queue
  kill-leader     SIGKILL the Erlang VM of the vote queue's leader; prints its name and pid
  kill-node N     SIGKILL node N's Erlang VM
  restart-node N  start node N again; waits until it is back as a member of the vote queue
  ctl ARGS...     rabbitmqctl ARGS on the first node that answers
  queues ARGS...  rabbitmq-queues ARGS on the first node that answers

Environment (defaults):
  PAREDAO_CLUSTER_DIR        var/rabbitmq-cluster   node N's data in DIR/nodeN
  PAREDAO_CLUSTER_NODES      3                      nodes (1–9)
  PAREDAO_CLUSTER_PORT       5710                   node N: AMQP PORT+10(N-1) (5710, 5720, 5730),
                                                    distribution that +5 (5715, …),
                                                    rabbitmq_prometheus that +10000 (15710, …)
  PAREDAO_CLUSTER_EPMD_PORT  4396                   the cluster's epmd
  PAREDAO_CLUSTER_NAME       paredao                node N is NAME-N@localhost
  PAREDAO_SECRETS_DIR        var/secrets            broker passwords (scripts/make-secrets.sh)
  PAREDAO_QUEUE              votes                  the vote queue
TXT
}

# node_argument N: checks that N names a node of the cluster.
node_argument() {
  if [[ ! "${1:-}" =~ ^[1-9]$ ]] || (($1 > CLUSTER_NODES)); then
    echo "expected a node number 1–$CLUSTER_NODES, not '${1:-}'" >&2
    return 2
  fi
}

kill_leader() {
  local leader n
  leader="$(cluster_leader)" || { echo "the vote queue $CLUSTER_QUEUE has no leader" >&2; return 1; }
  n="$(cluster_node_index "$leader")" || { echo "the leader $leader is not a node of this cluster" >&2; return 1; }
  cluster_kill_node "$n"
}

main() {
  local command="${1:-}"
  case "$command" in
    -h|--help|help|"") usage; [[ -n "$command" ]]; return ;;
  esac
  cluster_settings
  shift
  case "$command" in
    start) cluster_start && cluster_status ;;
    stop) cluster_stop; echo "RabbitMQ cluster stopped" ;;
    status) cluster_status ;;
    addresses) cluster_addresses ;;
    leader) cluster_leader ;;
    kill-leader) kill_leader ;;
    kill-node) node_argument "${1:-}" && cluster_kill_node "$1" ;;
    restart-node) node_argument "${1:-}" && cluster_restart_node "$1" && cluster_status ;;
    ctl) cluster_ctl "$@" ;;
    queues) cluster_queues "$@" ;;
    *) echo "unknown command: $command" >&2; usage >&2; return 2 ;;
  esac
}

main "$@"
