# shellcheck shell=bash
# A RabbitMQ node of a test suite's own: the command that controls it, made in one place.
# Source it; it only defines functions.

# broker_ctl_write FILE: writes the executable FILE that runs scripts/rabbitmq.sh (start,
# stop, declare-queue, …) for the node the current PAREDAO_RABBITMQ_* settings describe,
# with its users' passwords in PAREDAO_SECRETS_DIR, and makes those passwords.
broker_ctl_write() {
  local file="$1" root
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
  cat >"$file" <<CTL
#!/usr/bin/env bash
export PAREDAO_RABBITMQ_DIR="$PAREDAO_RABBITMQ_DIR" PAREDAO_RABBITMQ_PORT=$PAREDAO_RABBITMQ_PORT
export PAREDAO_RABBITMQ_DIST_PORT=$PAREDAO_RABBITMQ_DIST_PORT PAREDAO_RABBITMQ_EPMD_PORT=$PAREDAO_RABBITMQ_EPMD_PORT
export PAREDAO_RABBITMQ_PROMETHEUS_PORT=$PAREDAO_RABBITMQ_PROMETHEUS_PORT PAREDAO_RABBITMQ_NODE=$PAREDAO_RABBITMQ_NODE
export PAREDAO_SECRETS_DIR="$PAREDAO_SECRETS_DIR"
exec "$root/scripts/rabbitmq.sh" "\$@"
CTL
  chmod +x "$file"
  "$root/scripts/make-secrets.sh" --dir "$PAREDAO_SECRETS_DIR" >/dev/null
}
