#!/usr/bin/env bash
# The Ansible suite (./run.sh test --only ansible): the playbook deploys the stack on this
# machine into a throwaway prefix on the suite's own ports, the stack takes votes through
# nginx and counts them, a second run changes nothing, the rendered systemd units verify,
# ansible-lint passes. Everything the deployment started is stopped at exit, by PID.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
SUITE="$ROOT/var/test/ansible"
WEB_PORT=18600
VOTES="${ANSIBLE_SUITE_VOTES:-60}"
# shellcheck source=SCRIPTDIR/../../scripts/lib/proc.sh
source "$ROOT/scripts/lib/proc.sh"
FAILED=0

usage() {
  cat <<'TXT'
Usage: Tests/ansible/run.sh   (normally through ./run.sh test [--only ansible])

Installs the pinned ansible-core and ansible-lint (ansible/tools.sh install), then runs
ansible/site.yml against this machine (inventories/single-host, local connection) with
everything under var/test/ansible/ (prefix opt/, etc/, lib/, log/, run/, secrets/,
systemd/) and on the suite's own ports: nginx 18600, 2 VoteAPI instances 18610-18611
(metrics 18620-18621), 2 consumers (metrics 18630-18631), Prometheus 18640, Alertmanager
18641, restart metrics 9153, RabbitMQ node paredao-ansible@localhost (AMQP 5752, dist
25752, epmd 4395, prometheus 15752). Then it checks:
  - the first run ends with failed=0; every program runs as its own user, not root;
  - a session token from paredao-token and N votes through nginx get 202 each, and
    /total shows N (per participant too) before a deadline;
  - a second run reports changed=0 in the PLAY RECAP;
  - systemd-analyze verify passes on every rendered unit, with no warning;
  - ansible-lint (production profile) passes.
At exit it stops the deployment's supervisord (and so every program) by its PID.
Needs root (service users, supervisord switching to them). Under CI=true a check that
could not run is a failure.
Environment: ANSIBLE_SUITE_VOTES (60) votes to send; ANSIBLE_SUITE_KEEP=1 leaves the
stack running (stop it with: kill $(cat var/test/ansible/run/supervisord.pid)).
TXT
}

log() { printf '\n[ansible] %s\n' "$*"; }
check() { printf '  %-60s %s\n' "$1" "$2"; [[ "$2" == ok ]] || FAILED=$((FAILED + 1)); }

# skipped REASON: fine by hand, a failure under CI.
skipped() {
  if [[ "${CI:-}" == true ]]; then
    echo "CI: the Ansible suite cannot run: $1" >&2
    exit 1
  fi
  echo "[ansible] skipped: $1"
  exit 0
}

supervisord_pid() {
  proc_pidfile_pid "$SUITE/run/supervisord.pid" "$SUITE/etc/supervisord.conf"
}

stop_deployment() {
  local pid
  if pid="$(supervisord_pid)"; then
    stop_pid "$pid" 90 && proc_log "stopped the deployment's supervisord and its programs (pid $pid)"
  fi
}

cleanup() {
  if [[ "${ANSIBLE_SUITE_KEEP:-}" == 1 ]]; then
    log "left running (ANSIBLE_SUITE_KEEP=1): kill $(cat "$SUITE/run/supervisord.pid" 2>/dev/null)"
    return
  fi
  stop_deployment
}

write_vars() {
  cat >"$SUITE/vars.yml" <<YAML
# Written by Tests/ansible/run.sh: the whole deployment under $SUITE.
paredao_prefix: $SUITE/opt
paredao_etc_dir: $SUITE/etc
paredao_data_dir: $SUITE/lib
paredao_log_dir: $SUITE/log
paredao_run_dir: $SUITE/run
paredao_controller_secrets_dir: $SUITE/secrets
paredao_build_lock: /tmp/paredao-build.lock
paredao_render_systemd_units: true
paredao_systemd_unit_dir: $SUITE/systemd
paredao_api_instances: 2
paredao_consumer_instances: 2
paredao_api_port: 18610
paredao_api_metrics_port: 18620
paredao_consumer_metrics_port: 18630
paredao_web_listen: 127.0.0.1:$WEB_PORT
paredao_supervisor_metrics: 127.0.0.1:9153
paredao_prometheus_listen: 127.0.0.1:18640
paredao_alertmanager_listen: 127.0.0.1:18641
paredao_queue: votes-ansible
paredao_rabbitmq_epmd_port: 4395
paredao_rabbitmq_nodes:
  - {name: paredao-ansible, amqp_port: 5752, dist_port: 25752, prometheus_port: 15752}
# One client votes many times quickly: a cheap proof of work, a fast session.
paredao_api_env:
  PAREDAO_VOTE_RATE: 1000
  PAREDAO_VOTE_BURST: 1000
  PAREDAO_POW_DIFFICULTY: 8
  PAREDAO_POW_MAX_DIFFICULTY: 8
YAML
}

# playbook NAME: runs site.yml, output in SUITE/NAME.log; prints the seconds it took.
playbook() {
  local started=$SECONDS status=0
  (cd "$ROOT/ansible" && ansible-playbook -i inventories/single-host/hosts.yml -e "@$SUITE/vars.yml" site.yml) \
    >"$SUITE/$1.log" 2>&1 || status=$?
  echo "$((SECONDS - started))"
  return "$status"
}

# recap NAME FIELD: FIELD (ok, changed, failed, …) of the PLAY RECAP in SUITE/NAME.log.
recap() {
  grep -A1 '^PLAY RECAP' "$SUITE/$1.log" | grep -o "$2=[0-9]*" | cut -d= -f2
}

# Every supervised program runs as a user that is not root.
programs_unprivileged() {
  local conf="$SUITE/etc/supervisord.conf" name state pid user bad=0 count=0
  while read -r name state _ pid _; do
    [[ "$state" == RUNNING ]] || { echo "  $name is $state" >&2; bad=1; continue; }
    pid="${pid%,}"
    user="$(ps -o user= -p "$pid")"
    count=$((count + 1))
    if [[ "$user" == root ]]; then echo "  $name (pid $pid) runs as root" >&2; bad=1; fi
  done < <(/usr/bin/supervisorctl -c "$conf" status)
  # The restart listener, epmd, a broker node, 2 consumers, 2 APIs, nginx, Prometheus,
  # Alertmanager.
  ((count == 10 && bad == 0))
}

# total_is N: /total through nginx counts N votes, N/2 for aline and N/2 for diego.
total_is() {
  local body
  body="$(curl -fsS "http://127.0.0.1:$WEB_PORT/total")" || return 1
  python3 - "$1" "$body" <<'PY'
import json, sys
want = int(sys.argv[1])
totals = json.loads(sys.argv[2])
votes = {p["id"]: p["votes"] for p in totals["participants"]}
sys.exit(0 if totals["total"] == want and votes == {"aline": want // 2, "diego": want - want // 2, "camila": 0} else 1)
PY
}

vote_through_nginx() {
  local tokens status i bad=0 participant
  mapfile -t tokens < <("$SUITE/opt/bin/paredao-token" --url "http://127.0.0.1:$WEB_PORT" --count 2)
  ((${#tokens[@]} == 2)) || { echo "  paredao-token minted ${#tokens[@]} tokens, not 2" >&2; return 1; }
  for ((i = 0; i < VOTES; i++)); do
    participant=aline
    ((i % 2 == 0)) || participant=diego
    # Each vote its own voteId, so that no retry (none expected) counts twice.
    status="$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
      -H "Authorization: Bearer ${tokens[i % 2]}" \
      -d "{\"participant\":\"$participant\",\"voteId\":\"$(cat /proc/sys/kernel/random/uuid)\"}" \
      "http://127.0.0.1:$WEB_PORT/api/v1/votes")"
    [[ "$status" == 202 ]] || { echo "  vote $i answered $status" >&2; bad=1; }
  done
  ((bad == 0))
}

verify_units() {
  local dir="$SUITE/systemd" out status=0
  command -v systemd-analyze >/dev/null || return 1
  # Templates are verified through an instance; the binaries they start must exist.
  out="$(cd "$dir" && systemd-analyze verify --man=no ./paredao-epmd.service ./paredao-rabbitmq@paredao-ansible.service \
    ./VoteConsumer@1.service ./VoteConsumer@2.service ./VoteAPI@1.service ./VoteAPI@2.service \
    ./paredao-nginx.service ./paredao-prometheus.service ./paredao-alertmanager.service 2>&1)" || status=$?
  [[ -z "$out" ]] || printf '%s\n' "$out" >&2
  ((status == 0)) && [[ -z "$out" ]]
}

main() {
  case "${1:-}" in
    -h|--help) usage; return 0 ;;
    "") ;;
    *) echo "unknown option: $1" >&2; usage >&2; return 2 ;;
  esac
  ((EUID == 0)) || skipped "needs root (service users; supervisord switches to them)"
  if ! command -v systemd-analyze >/dev/null; then
    log "installing systemd (systemd-analyze verify)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends systemd >/dev/null ||
      skipped "systemd-analyze is not installed"
  fi
  "$ROOT/ansible/tools.sh" install
  PATH="$("$ROOT/ansible/tools.sh" bin):$PATH"
  # A deployment left by an interrupted run goes first.
  stop_deployment
  rm -rf "$SUITE"
  mkdir -p "$SUITE"
  trap cleanup EXIT
  write_vars

  log "first run"
  local first second
  first="$(playbook first)" || { tail -40 "$SUITE/first.log" >&2; check "first run (failed=0)" FAILED; return 1; }
  check "first run: failed=0 in ${first} s (changed=$(recap first changed))" ok
  if programs_unprivileged; then check "10 programs RUNNING, none as root" ok; else check "10 programs RUNNING, none as root" FAILED; fi

  log "votes through nginx"
  if vote_through_nginx; then check "$VOTES votes through nginx answered 202" ok; else check "$VOTES votes through nginx answered 202" FAILED; fi
  if wait_until 30 total_is "$VOTES"; then check "/total shows $VOTES (aline $((VOTES / 2)), diego $((VOTES - VOTES / 2)))" ok
  else check "/total shows $VOTES: $(curl -s "http://127.0.0.1:$WEB_PORT/total")" FAILED; fi

  log "second run"
  if second="$(playbook second)" && [[ "$(recap second changed)" == 0 && "$(recap second failed)" == 0 ]]; then
    check "second run: changed=0 in ${second} s" ok
  else
    grep -B2 '^changed:' "$SUITE/second.log" >&2 || true
    check "second run: changed=$(recap second changed) failed=$(recap second failed)" FAILED
  fi
  # Still counting after the second run (nothing was restarted needlessly).
  if total_is "$VOTES"; then check "/total still shows $VOTES" ok; else check "/total still shows $VOTES" FAILED; fi

  log "systemd units"
  if verify_units; then check "systemd-analyze verify: 9 units, no warning" ok; else check "systemd-analyze verify" FAILED; fi

  log "ansible-lint"
  if (cd "$ROOT/ansible" && ansible-lint --offline --nocolor -q); then check "ansible-lint (production profile)" ok
  else check "ansible-lint (production profile)" FAILED; fi

  echo "ansible: first run ${first} s, second run ${second:-?} s; $FAILED failed"
  ((FAILED == 0))
}

main "$@"
