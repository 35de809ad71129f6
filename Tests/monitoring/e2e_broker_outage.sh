#!/usr/bin/env bash
# End-to-end check of the monitoring against the real backend:
#   broker stopped -> votes answer 503 -> ERROR lines in the log query ->
#   the errors dashboard series rises (Prometheus HTTP API) -> an alert fires
#   -> broker started again -> votes answer 202 again.
#
# Needs the API, the consumer and RabbitMQ running, and Prometheus scraping
# them (monitoring/monitoring.sh start, or PAREDAO_E2E_START_MONITORING=1).
#
# Environment:
#   PAREDAO_BROKER_CTL       required: a command taking "stop" or "start", e.g.
#                            "bash scripts/rabbitmq.sh" (run as: $PAREDAO_BROKER_CTL stop)
#   PAREDAO_API_URL          vote API base URL [http://127.0.0.1:8080]
#   PAREDAO_PROM_URL         Prometheus [http://$PAREDAO_PROM_LISTEN or http://127.0.0.1:9090]
#   PAREDAO_AM_URL           Alertmanager, checked when reachable [http://127.0.0.1:9093]
#   PAREDAO_LOG_DIR          folder of api.log / consumer.log [var/log]
#   PAREDAO_E2E_START_MONITORING=1  start Prometheus+Alertmanager with
#                            monitoring.sh in a temporary folder, stop at exit
#   E2E_ALERTS               regex of alert names that count [ParedaoBrokerDown|RabbitMQDown|ParedaoApiHighErrorRatio]
#   E2E_ALERT_TIMEOUT        seconds to wait for the alert [90]
#   E2E_RECOVERY_TIMEOUT     seconds to wait for 202 after restart [90]
#
# Prints one line per check and "N passed, N failed"; exits 1 on any failure.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HERE/../.." && pwd)"
MON="$REPO_ROOT/monitoring"
# Plain shellcheck (test_monitoring.py runs it without -x) cannot follow the library.
# shellcheck source=SCRIPTDIR/../../scripts/lib/proc.sh disable=SC1091
source "$REPO_ROOT/scripts/lib/proc.sh"

if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 0
fi

: "${PAREDAO_BROKER_CTL:?set PAREDAO_BROKER_CTL to a command taking stop|start}"
API="${PAREDAO_API_URL:-http://127.0.0.1:8080}"
API="${API%/}"
PROM="${PAREDAO_PROM_URL:-http://${PAREDAO_PROM_LISTEN:-127.0.0.1:9090}}"
AM="${PAREDAO_AM_URL:-http://${PAREDAO_AM_LISTEN:-127.0.0.1:9093}}"
LOG_DIR="${PAREDAO_LOG_DIR:-$REPO_ROOT/var/log}"
ALERTS_RE="${E2E_ALERTS:-ParedaoBrokerDown|RabbitMQDown|ParedaoApiHighErrorRatio}"
ALERT_TIMEOUT="${E2E_ALERT_TIMEOUT:-90}"
RECOVERY_TIMEOUT="${E2E_RECOVERY_TIMEOUT:-90}"

PASSED=0
FAILED=0
BROKER_STOPPED=0
MON_DATA=""
WORK="$(mktemp -d "${TMPDIR:-/tmp}/paredao-e2e.XXXXXX")"

pass() { PASSED=$((PASSED + 1)); echo "PASS: $*"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL: $*"; }
note() { echo "  .. $*"; }
broker() { bash -c "$PAREDAO_BROKER_CTL $1"; }

# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
    if [[ "$BROKER_STOPPED" == 1 ]]; then
        note "starting the broker again (cleanup)"
        broker start || true
    fi
    if [[ -n "$MON_DATA" ]]; then
        "$MON/monitoring.sh" stop --data "$MON_DATA" -q || true
        rm -rf "$MON_DATA"
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

finish() {
    echo "$PASSED passed, $FAILED failed"
    if [[ "$FAILED" -eq 0 ]]; then exit 0; fi
    exit 1
}

# prom_value EXPR -> first sample value, or empty
prom_value() {
    curl -fsS -G --max-time 5 "$PROM/api/v1/query" --data-urlencode "query=$1" 2>/dev/null |
        python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else "")' 2>/dev/null || true
}

# shellcheck disable=SC2317  # called by wait_until
scrapes_api() {
    [[ "$(prom_value 'min(up{job="paredao-api"})')" == 1 ]]
}

firing_alerts() {
    curl -fsS --max-time 5 "$PROM/api/v1/alerts" 2>/dev/null |
        python3 -c 'import json,sys; print(" ".join(sorted({a["labels"]["alertname"] for a in json.load(sys.stdin)["data"]["alerts"] if a["state"] == "firing"})))' 2>/dev/null || true
}

# vote -> prints "HTTP_CODE ERROR_CODE"
vote() {
    local body code
    body="$(python3 -c 'import json,sys,uuid; print(json.dumps({"participant": sys.argv[1], "voteId": str(uuid.uuid4())}))' "$PARTICIPANT")"
    code="$(curl -sS -o "$WORK/vote.json" -w '%{http_code}' --max-time 20 -X POST "$API/api/v1/votes" \
        -H 'Content-Type: application/json' -H "Authorization: Bearer $TOKEN" --data "$body" || echo 000)"
    local err
    err="$(python3 -c 'import json,sys
try: print(json.load(open(sys.argv[1])).get("error", {}).get("code", "-"))
except Exception: print("-")' "$WORK/vote.json")"
    echo "$code $err"
}

# ------------------------------------------------------------------ set-up --
if [[ "${PAREDAO_E2E_START_MONITORING:-0}" == 1 ]]; then
    MON_DATA="$(mktemp -d "${TMPDIR:-/tmp}/paredao-e2e-mon.XXXXXX")"
    "$MON/monitoring.sh" start --data "$MON_DATA" || { fail "monitoring.sh start"; finish; }
fi

if curl -fsS --max-time 5 -o /dev/null "$API/healthz"; then pass "API answers $API/healthz"; else fail "API not reachable at $API"; finish; fi
if curl -fsS --max-time 5 -o /dev/null "$PROM/-/ready"; then pass "Prometheus ready at $PROM"; else fail "Prometheus not ready at $PROM (monitoring/monitoring.sh start)"; finish; fi

if wait_until 30 scrapes_api; then
    pass "Prometheus scrapes paredao-api"
else
    fail "Prometheus does not scrape paredao-api (see monitoring.sh targets)"
    finish
fi

# Session: challenge -> proof of work -> token.
curl -fsS --max-time 10 -X POST "$API/api/v1/challenges" -o "$WORK/challenge.json" || { fail "POST /api/v1/challenges"; finish; }
COUNTER="$(python3 - "$WORK/challenge.json" <<'EOF'
import base64, hashlib, json, sys
c = json.load(open(sys.argv[1]))
raw = base64.urlsafe_b64decode(c["challenge"] + "=" * (-len(c["challenge"]) % 4))
bits = int(c["difficulty"])
full, rest = divmod(bits, 8)
for n in range(1 << 40):
    h = hashlib.sha256(raw + n.to_bytes(8, "big")).digest()
    if h[:full] == bytes(full) and (rest == 0 or h[full] >> (8 - rest) == 0):
        print(n)
        break
EOF
)"
CHALLENGE="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["challenge"])' "$WORK/challenge.json")"
curl -fsS --max-time 10 -X POST "$API/api/v1/sessions" -H 'Content-Type: application/json' \
    --data "{\"challenge\":\"$CHALLENGE\",\"counter\":$COUNTER}" -o "$WORK/session.json" || { fail "POST /api/v1/sessions"; finish; }
TOKEN="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["token"])' "$WORK/session.json")"
curl -fsS --max-time 10 "$API/api/v1/poll" -o "$WORK/poll.json" || { fail "GET /api/v1/poll"; finish; }
PARTICIPANT="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["poll"]["participants"][0]["id"])' "$WORK/poll.json")"
pass "session obtained (proof of work counter $COUNTER), voting for $PARTICIPANT"

read -r code _ <<<"$(vote)"
if [[ "$code" == 202 ]]; then pass "vote with the broker up: 202"; else fail "vote with the broker up: $code (want 202)"; finish; fi

ERR_EXPR='sum(rate(paredao_http_requests_total{job="paredao-api",status=~"5.."}[1m]))'
REJ_EXPR='sum(paredao_votes_rejected_total{job="paredao-api",reason="broker"})'
rej_before="$(prom_value "$REJ_EXPR")"
rej_before="${rej_before:-0}"

# ----------------------------------------------------------------- outage --
note "stopping the broker: $PAREDAO_BROKER_CTL stop"
BROKER_STOPPED=1
outage_started=$SECONDS
broker stop || { fail "broker stop command failed"; finish; }

n503=0
codes=""
for _ in $(seq 1 20); do
    read -r code err <<<"$(vote)"
    codes+="$code/$err "
    if [[ "$code" == 503 ]]; then n503=$((n503 + 1)); fi
    sleep 0.3
done
note "votes during the outage: $codes"
if [[ "$n503" -ge 1 ]]; then
    pass "votes answer 503 with the broker down ($n503 of 20)"
else
    fail "no 503 among 20 votes with the broker down"
fi
if [[ "$codes" =~ 503/broker_(unavailable|timeout) ]]; then
    pass "503 bodies carry broker_unavailable/broker_timeout"
else
    fail "503 bodies lack broker_unavailable/broker_timeout"
fi

# Log query: ERROR lines for the refused votes.
n_err=0
deadline=$((SECONDS + 15))
while :; do
    n_err="$("$MON/logs.sh" --dir "$LOG_DIR" --format csv --sql \
        "SELECT count(*) AS n FROM paredao_log WHERE log_level = 'error' AND status = '503' AND log_time >= datetime('now', '-5 minutes')" \
        2>"$WORK/logs.err" | sed -n 2p)" || true
    if [[ "${n_err:-0}" =~ ^[0-9]+$ && "${n_err:-0}" -ge 1 ]] || ((SECONDS >= deadline)); then break; fi
    sleep 1
done
if [[ "${n_err:-0}" =~ ^[0-9]+$ && "$n_err" -ge 1 ]]; then
    pass "log query finds $n_err ERROR lines with status 503 (logs.sh)"
    "$MON/logs.sh" --dir "$LOG_DIR" --query levels-1m || true
else
    fail "log query finds no ERROR line with status 503 in $LOG_DIR ($(cat "$WORK/logs.err"))"
fi

# Dashboard series and alert; keep some traffic going meanwhile.
rose=0
fired=""
deadline=$((SECONDS + ALERT_TIMEOUT))
while ((SECONDS < deadline)); do
    vote >/dev/null
    v="$(prom_value "$ERR_EXPR")"
    if [[ -n "$v" ]] && python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) > 0 else 1)' "$v"; then rose=1; fi
    for a in $(firing_alerts); do
        if [[ "$a" =~ ^($ALERTS_RE)$ ]]; then fired="$a"; fi
    done
    if [[ "$rose" == 1 && -n "$fired" ]]; then break; fi
    sleep 1
done
if [[ "$rose" == 1 ]]; then
    pass "errors dashboard: $ERR_EXPR = $(prom_value "$ERR_EXPR") /s"
else
    fail "errors dashboard series did not rise: $ERR_EXPR"
fi
rej_after="$(prom_value "$REJ_EXPR")"
if [[ -n "$rej_after" ]] && python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) > float(sys.argv[2]) else 1)' "$rej_after" "$rej_before"; then
    pass "paredao_votes_rejected_total{reason=\"broker\"} rose from $rej_before to $rej_after"
else
    fail "paredao_votes_rejected_total{reason=\"broker\"} did not rise ($rej_before -> ${rej_after:-none})"
fi
if [[ -n "$fired" ]]; then
    pass "alert $fired firing $((SECONDS - outage_started)) s after the broker stopped (all firing: $(firing_alerts))"
    if curl -fsS --max-time 5 -o "$WORK/am.json" "$AM/api/v2/alerts" 2>/dev/null; then
        if grep -q "\"alertname\":\"$fired\"" "$WORK/am.json"; then
            pass "Alertmanager at $AM has $fired"
        else
            note "Alertmanager at $AM does not list $fired yet"
        fi
    fi
else
    fail "no alert matching ($ALERTS_RE) fired within ${ALERT_TIMEOUT}s (firing: $(firing_alerts))"
fi

# --------------------------------------------------------------- recovery --
note "starting the broker: $PAREDAO_BROKER_CTL start"
broker start || fail "broker start command failed"
BROKER_STOPPED=0
recovered=0
deadline=$((SECONDS + RECOVERY_TIMEOUT))
while ((SECONDS < deadline)); do
    read -r code _ <<<"$(vote)"
    if [[ "$code" == 202 ]]; then recovered=1; break; fi
    sleep 1
done
if [[ "$recovered" == 1 ]]; then
    pass "votes answer 202 again after the broker restart"
else
    fail "votes still not accepted ${RECOVERY_TIMEOUT}s after the broker restart (last: $code)"
fi

finish
