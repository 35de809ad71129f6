#!/usr/bin/env bash
# The project's one test command (./run.sh test): unit and integration tests against a
# RabbitMQ of its own, then the monitoring and browser suites against a real stack.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TEST_VAR="$ROOT/var/test"
# shellcheck source=SCRIPTDIR/lib/broker.sh
source "$ROOT/scripts/lib/broker.sh"
RESULTS=()
FAILED=0

usage() {
  cat <<'TXT'
Usage: ./run.sh test [--only swift|mongo|monitoring|micro|fuzz|browser|contract|faults|fleet|cluster|ansible]

Runs, in order:
  swift       unit tests and the integration suites (VoteAPI/VoteConsumer processes on a
              RabbitMQ started here: port 5682, data in var/test/rabbitmq, broker passwords
              in var/test/secrets; the suites connect as paredao-admin)
  mongo       the MongoDB store at the wire level: VoteConsumer and VoteAPI with
              PAREDAO_STORE=mongodb in front of mockupdb (scripted replies), on the test
              broker (Tests/mongo/run.sh --help); with MONGO_URL set, the swift suite also
              runs the store contract against that real MongoDB
  monitoring  promtool config/rule tests, live Prometheus query checks, lnav queries
  micro       the microbenchmarks in bench/micro, in smoke mode (a few iterations each)
  fuzz        every libFuzzer target in fuzz/ for 45 s (2 at a time; no broker needed)
  browser     headless Chromium against VoteAPI + VoteConsumer + nginx on the test broker,
              and the broker-outage check (503s, ERROR logs, error dashboard, alert)
  contract    the API contract (docs/openapi.yaml): validated, schemathesis and the
              bad-input suite directly and through nginx, nginx's 429s, /api/docs in
              Chromium (a stack of its own on the test broker, scripts/test-contract.sh)
  faults      the fault suite (Tests/faults/run.sh --help): its own broker (port 5712) and
              a stack under supervisord, ~300 ballot-like votes/s through nginx while
              processes are killed, the broker stopped or blocked, the store locked, the
              consumer slowed and poison messages published; every 202 counted once
  fleet       the fleet suite (Tests/fleet/run.sh --help): its own broker (port 5762), two
              VoteAPIs behind nginx and two VoteConsumers on one queue and one SQLite file,
              ~400 votes/s; every 202 counted once, /total the same from both APIs, a
              session's budget and rate hold across the fleet, one API restarted under load
  cluster     the cluster failover suite (Tests/cluster/run.sh --help): a 3-node RabbitMQ
              cluster (ports 5710/5720/5730), VoteConsumer and VoteAPI given the three
              nodes, ~300 ballot-like votes/s while the vote queue's leader gets SIGKILL
              and comes back; every 202 counted once, 503s for at most a few seconds
  ansible     the Ansible deployment (Tests/ansible/run.sh --help): the playbook on this
              machine into var/test/ansible on ports 18600-18641 and broker 5752, votes
              through nginx counted, a second run changed=0, systemd units verified,
              ansible-lint
Prints "suites: N passed, N failed" last and exits non-zero when anything failed.
With CI=true an integration suite that did not run counts as a failure.
TXT
}

log() { printf '\n[test] %s\n' "$*"; }

broker_env() {
  export PAREDAO_RABBITMQ_DIR="$TEST_VAR/rabbitmq"
  export PAREDAO_RABBITMQ_PORT=5682
  export PAREDAO_RABBITMQ_DIST_PORT=25682
  export PAREDAO_RABBITMQ_EPMD_PORT=4392
  export PAREDAO_RABBITMQ_PROMETHEUS_PORT=15693
  export PAREDAO_RABBITMQ_NODE=paredao-test@localhost
  # The test broker's users get their passwords from here, as the stack's do from var/secrets.
  export PAREDAO_SECRETS_DIR="$TEST_VAR/secrets"
}

start_broker() {
  broker_env
  mkdir -p "$TEST_VAR"
  # The tests stop and start the broker through this command.
  broker_ctl_write "$TEST_VAR/broker-ctl.sh"
  "$TEST_VAR/broker-ctl.sh" start
  # The integration suites run their processes as the admin (they make queues of their own
  # names); the role users' passwords are in PAREDAO_SECRETS_DIR for the suites that check
  # their permissions, and the browser stack runs as the role users.
  local admin_password
  admin_password="$(cat "$PAREDAO_SECRETS_DIR/rabbitmq-paredao-admin.password")"
  export PAREDAO_TEST_AMQP_URL="amqp://paredao-admin:$admin_password@127.0.0.1:5682/"
  export PAREDAO_TEST_BROKER_CTL="$TEST_VAR/broker-ctl.sh"
}

stop_broker() {
  if [[ -x "$TEST_VAR/broker-ctl.sh" ]]; then "$TEST_VAR/broker-ctl.sh" stop || true; fi
}

record() {
  local name="$1" status="$2"
  RESULTS+=("$name: $([[ $status == 0 ]] && echo passed || echo FAILED)")
  if [[ $status != 0 ]]; then FAILED=$((FAILED + 1)); fi
}

run_swift() {
  log "building tests"
  swift build --build-tests
  log "swift test (unit + integration)"
  local out="$TEST_VAR/swift-test.log" status=0
  swift test --skip-build 2>&1 | tee "$out" || status=$?
  if [[ $status == 0 && "${CI:-}" == "true" ]]; then
    local suite
    for suite in 'Integration on a real RabbitMQ' 'Vote path on a real RabbitMQ' 'Human tokens on the real stack' 'Publisher on a real RabbitMQ' 'Processes on a real RabbitMQ' 'Totals freshness on a real RabbitMQ' 'Broker hardening on a real RabbitMQ' 'Polls on a real RabbitMQ'; do
      if ! grep -q "Suite \"$suite\" passed" "$out"; then
        echo "CI: the integration suite \"$suite\" did not run and pass" >&2
        status=1
      fi
    done
  fi
  record "swift (unit + integration)" "$status"
}

# run_suite NAME DESCRIPTION SCRIPT [ARGS...]: one suite script, its status recorded as NAME.
run_suite() {
  local name="$1" description="$2" script="$3" status=0
  shift 3
  [[ -f "$script" ]] || return 0
  log "$description"
  bash "$script" "$@" || status=$?
  record "$name" "$status"
}

run_mongo() { run_suite "mongodb wire (mockupdb)" "MongoDB store against mockupdb (wire level, real processes)" "$ROOT/Tests/mongo/run.sh"; }
run_micro() { run_suite "microbenchmarks (smoke)" "microbenchmarks (smoke: they build, their inputs round-trip, nothing throws)" "$ROOT/bench/micro/run.sh" --smoke; }
run_fuzz() { run_suite fuzz "fuzzing (libFuzzer + AddressSanitizer, 45 s per target)" "$ROOT/fuzz/run.sh" --seconds 45 --jobs 2; }
run_monitoring() { run_suite monitoring "monitoring tests" "$ROOT/Tests/monitoring/run.sh"; }
run_cluster() { run_suite "cluster failover" "cluster failover suite (3-node RabbitMQ cluster, SIGKILL of the queue leader)" "$ROOT/Tests/cluster/run.sh"; }
run_faults() { run_suite faults "fault suite (own broker, supervised stack, load through nginx)" "$ROOT/Tests/faults/run.sh"; }
run_fleet() { run_suite fleet "fleet suite (own broker, two APIs behind nginx, two consumers on one queue)" "$ROOT/Tests/fleet/run.sh"; }
run_ansible() { run_suite ansible "Ansible deployment (own prefix, ports and broker; second run changed=0)" "$ROOT/Tests/ansible/run.sh"; }
run_browser() { run_suite "browser + outage" "browser tests and the broker-outage check (a stack on the test broker)" "$ROOT/scripts/test-stack.sh"; }
run_contract() { run_suite "API contract" "API contract (docs/openapi.yaml: schemathesis, bad input, nginx limits)" "$ROOT/scripts/test-contract.sh"; }

# Every suite, in the order they run.
SUITES=(swift mongo monitoring micro fuzz browser contract faults fleet cluster ansible)

main() {
  local only=""
  while (($#)); do
    case "$1" in
      --only) only="$2"; shift 2 ;;
      -h|--help) usage; return 0 ;;
      *) echo "unknown option: $1" >&2; usage >&2; return 2 ;;
    esac
  done
  if [[ -n "$only" && " ${SUITES[*]} " != *" $only "* ]]; then
    echo "unknown suite: $only (known: ${SUITES[*]})" >&2
    return 2
  fi
  "$ROOT/scripts/make-secrets.sh" >/dev/null
  # The fault, fleet, cluster and Ansible suites run their own brokers (ports 5712, 5762,
  # 5710-5730, 5752), the fuzzers need none: alone, they need no test broker.
  if [[ "$only" != faults && "$only" != fuzz && "$only" != fleet && "$only" != cluster && "$only" != ansible ]]; then
    start_broker
    trap stop_broker EXIT
  fi
  local suite
  for suite in "${SUITES[@]}"; do
    if [[ -z "$only" || "$only" == "$suite" ]]; then "run_$suite"; fi
  done
  log "summary"
  printf '  %s\n' "${RESULTS[@]}"
  echo "suites: $((${#RESULTS[@]} - FAILED)) passed, $FAILED failed"
  ((FAILED == 0))
}

main "$@"
