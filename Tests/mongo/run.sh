#!/usr/bin/env bash
# The MongoDB store at the wire level (./run.sh test --only mongo): the real VoteConsumer and
# VoteAPI in front of mockupdb, every reply scripted (Tests/mongo/wire_suite.py).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
VENV="$ROOT/var/tools/mongo-venv"
LOG_DIR="$ROOT/var/test/mongo-wire"

usage() {
  cat <<'TXT'
Usage: Tests/mongo/run.sh [--setup]   (normally through ./run.sh test [--only mongo])

  --setup   only make the suite's Python environment (var/tools/mongo-venv: mockupdb,
            pymongo, pika from Tests/mongo/requirements.txt), as ./preflight.sh does

Runs VoteConsumer and VoteAPI (debug build) with PAREDAO_STORE=mongodb against two mockupdb
servers on loopback (MongoDB's wire-protocol test server: it stores nothing, every answer is
scripted by the suite), on the test broker that ./run.sh test starts (PAREDAO_TEST_AMQP_URL,
PAREDAO_TEST_BROKER_CTL). Checks the exact commands of a batch, a redelivered batch, a
network error, not-primary, an unknown commit result, a write error, the totals read path
and the standalone (no transactions) fallback. Logs in var/test/mongo-wire.
Environment: WIRE_ONLY=NAME[,NAME] runs only the scenarios whose names contain NAME.
TXT
}

setup() {
  if [[ -x "$VENV/bin/python" ]] && "$VENV/bin/python" -c 'import mockupdb, pymongo, pika' 2>/dev/null; then return 0; fi
  mkdir -p "$(dirname "$VENV")"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$ROOT/Tests/mongo/requirements.txt"
}

main() {
  case "${1:-}" in
    -h|--help) usage; return 0 ;;
    --setup) setup; return 0 ;;
    "") ;;
    *) echo "unknown option: $1" >&2; usage >&2; return 2 ;;
  esac
  : "${PAREDAO_TEST_AMQP_URL:?run through ./run.sh test --only mongo (it starts the test broker)}"
  : "${PAREDAO_TEST_BROKER_CTL:?run through ./run.sh test --only mongo}"
  setup
  swift build >/dev/null
  rm -rf "$LOG_DIR"
  mkdir -p "$LOG_DIR"
  WIRE_BIN="$(swift build --show-bin-path)" WIRE_AMQP_URL="$PAREDAO_TEST_AMQP_URL" \
    WIRE_BROKER_CTL="$PAREDAO_TEST_BROKER_CTL" WIRE_LOG_DIR="$LOG_DIR" \
    timeout 600 "$VENV/bin/python" "$ROOT/Tests/mongo/wire_suite.py"
}

main "$@"
