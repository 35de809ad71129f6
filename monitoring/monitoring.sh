#!/usr/bin/env bash
# Start, stop and inspect the Paredão monitoring stack (Prometheus and
# Alertmanager) as plain user processes. Run with --help for details.
set -euo pipefail

MONITORING_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(dirname "$MONITORING_DIR")"
PROG="$(basename "$0")"
# Plain shellcheck (the monitoring tests run it without -x) cannot follow the library.
# shellcheck source=SCRIPTDIR/../scripts/lib/proc.sh disable=SC1091
source "$REPO_ROOT/scripts/lib/proc.sh"

usage() {
    cat <<EOF
Usage: $PROG COMMAND [OPTIONS]

Runs Prometheus (and Alertmanager) for Paredão as plain processes, with data,
logs, PID files and the rendered configuration under one folder.

Commands:
  start        Start Prometheus and Alertmanager (each only if not already
               running) and wait until both answer /-/ready.
  stop         Stop the processes that 'start' started (by their PID files;
               nothing else is touched). Waits until they are gone.
  restart      stop, then start.
  status       Print the state of each process. Exit 0 when every process
               that was started runs and is ready, 3 otherwise.
  wait-ready   Wait (up to --timeout) until Prometheus (and Alertmanager, if
               started) answer /-/ready. Exit 0 when ready, 1 on time-out.
  reload       Render the configuration again and ask the running
               Prometheus to reload it (POST /-/reload).
  targets      Print the health of each scrape target (job instance health
               last-error). Exit 0 when all are up, 1 otherwise.
  config       Print the rendered prometheus.yml (no process needed).

Options:
  --data DIR          Folder for data, logs, PID files and the rendered
                      config (default: \$PAREDAO_MONITORING_DATA or
                      var/monitoring under the repository root).
  --no-alertmanager   start: do not start Alertmanager.
  --no-wait           start: do not wait for readiness.
  --wait-ready        start: wait for readiness (the default).
  --timeout SECS      How long start/stop/wait-ready wait (default 30).
  -q, --quiet         Print only errors.
  -h, --help          Show this help.

Environment (defaults in brackets):
  PAREDAO_PROM_LISTEN              Prometheus listen address [127.0.0.1:9090]
  PAREDAO_AM_LISTEN                Alertmanager listen address [127.0.0.1:9093]
  PAREDAO_ALERTMANAGER_TARGET      Alertmanager Prometheus sends to [\$PAREDAO_AM_LISTEN]
  PAREDAO_API_METRICS_TARGET       job paredao-api target [127.0.0.1:9101]
  PAREDAO_CONSUMER_METRICS_TARGET  job paredao-consumer target [127.0.0.1:9102]
  PAREDAO_RABBITMQ_METRICS_TARGET  job rabbitmq target [127.0.0.1:15692]
  PAREDAO_SUPERVISOR_METRICS_TARGET  job paredao-supervisor target [127.0.0.1:9103]
  PAREDAO_SCRAPE_INTERVAL          scrape interval [2s]
  PAREDAO_SCRAPE_TIMEOUT           scrape timeout, <= interval [\$PAREDAO_SCRAPE_INTERVAL]
  PAREDAO_EVAL_INTERVAL            rule evaluation interval [2s]
  PAREDAO_PROM_RETENTION           TSDB retention [7d]
  PAREDAO_MONITORING_DATA          default for --data
  PAREDAO_ALERTMANAGER_CONFIG      Alertmanager config [monitoring/alertmanager.yml]
  PAREDAO_PROMETHEUS_BIN           Prometheus binary [prometheus]
  PAREDAO_ALERTMANAGER_BIN         Alertmanager binary [prometheus-alertmanager]

Consoles (once started): http://\$PAREDAO_PROM_LISTEN/consoles/executions.html,
latency.html, errors.html. Alerts: http://\$PAREDAO_PROM_LISTEN/alerts and
http://\$PAREDAO_AM_LISTEN/api/v2/alerts (Debian's Alertmanager has no web UI).

Exit status: 0 success; 1 failure (message on stderr); 2 bad usage;
3 (status) not running.

Examples:
  monitoring/monitoring.sh start && monitoring/monitoring.sh status
  PAREDAO_PROM_LISTEN=127.0.0.1:19090 monitoring/monitoring.sh start --data /tmp/mon --no-alertmanager
  monitoring/monitoring.sh stop --data /tmp/mon
EOF
}

die() { echo "$PROG: $*" >&2; exit 1; }
usage_error() { echo "$PROG: $*" >&2; echo "Try '$PROG --help'." >&2; exit 2; }
say() { if [[ "$QUIET" != 1 ]]; then echo "$@"; fi; }

# ---------------------------------------------------------------- settings --
PROM_LISTEN="${PAREDAO_PROM_LISTEN:-127.0.0.1:9090}"
AM_LISTEN="${PAREDAO_AM_LISTEN:-127.0.0.1:9093}"
AM_TARGET="${PAREDAO_ALERTMANAGER_TARGET:-$AM_LISTEN}"
API_TARGET="${PAREDAO_API_METRICS_TARGET:-127.0.0.1:9101}"
CONSUMER_TARGET="${PAREDAO_CONSUMER_METRICS_TARGET:-127.0.0.1:9102}"
RABBITMQ_TARGET="${PAREDAO_RABBITMQ_METRICS_TARGET:-127.0.0.1:15692}"
SUPERVISOR_TARGET="${PAREDAO_SUPERVISOR_METRICS_TARGET:-127.0.0.1:9103}"
SCRAPE_INTERVAL="${PAREDAO_SCRAPE_INTERVAL:-2s}"
SCRAPE_TIMEOUT="${PAREDAO_SCRAPE_TIMEOUT:-$SCRAPE_INTERVAL}"
EVAL_INTERVAL="${PAREDAO_EVAL_INTERVAL:-2s}"
RETENTION="${PAREDAO_PROM_RETENTION:-7d}"
AM_CONFIG="${PAREDAO_ALERTMANAGER_CONFIG:-$MONITORING_DIR/alertmanager.yml}"
PROM_BIN="${PAREDAO_PROMETHEUS_BIN:-prometheus}"
AM_BIN="${PAREDAO_ALERTMANAGER_BIN:-prometheus-alertmanager}"
TEMPLATE="$MONITORING_DIR/prometheus.yml.template"

DATA="${PAREDAO_MONITORING_DATA:-$REPO_ROOT/var/monitoring}"
WITH_AM=1
WAIT=1
TIMEOUT=30
QUIET=0
COMMAND=""

while [[ $# -gt 0 ]]; do
    case "$1" in
        -h|--help) usage; exit 0 ;;
        --data) [[ $# -ge 2 ]] || usage_error "--data needs a folder"; DATA="$2"; shift 2 ;;
        --data=*) DATA="${1#--data=}"; shift ;;
        --no-alertmanager) WITH_AM=0; shift ;;
        --no-wait) WAIT=0; shift ;;
        --wait-ready) WAIT=1; shift ;;
        --timeout) [[ $# -ge 2 ]] || usage_error "--timeout needs seconds"; TIMEOUT="$2"; shift 2 ;;
        --timeout=*) TIMEOUT="${1#--timeout=}"; shift ;;
        -q|--quiet) QUIET=1; shift ;;
        -*) usage_error "unknown option: $1" ;;
        *)
            [[ -z "$COMMAND" ]] || usage_error "only one command, got '$COMMAND' and '$1'"
            COMMAND="$1"; shift ;;
    esac
done
[[ -n "$COMMAND" ]] || usage_error "missing command (start, stop, restart, status, wait-ready, reload, targets, config)"
[[ "$TIMEOUT" =~ ^[0-9]+$ ]] || usage_error "--timeout must be a whole number of seconds"
[[ -n "$DATA" ]] || usage_error "--data must not be empty"
if [[ "$DATA" != /* ]]; then DATA="$PWD/$DATA"; fi

check_setting() { # name value regex
    [[ "$2" =~ $3 ]] || usage_error "bad value for $1: '$2'"
}
ADDR_RE='^[A-Za-z0-9._:-]+:[0-9]+$|^\[[0-9A-Fa-f:.]+\]:[0-9]+$'
DUR_RE='^[0-9]+(ms|s|m|h|d)$'
check_setting PAREDAO_PROM_LISTEN "$PROM_LISTEN" "$ADDR_RE"
check_setting PAREDAO_AM_LISTEN "$AM_LISTEN" "$ADDR_RE"
check_setting PAREDAO_ALERTMANAGER_TARGET "$AM_TARGET" "$ADDR_RE"
check_setting PAREDAO_API_METRICS_TARGET "$API_TARGET" "$ADDR_RE"
check_setting PAREDAO_CONSUMER_METRICS_TARGET "$CONSUMER_TARGET" "$ADDR_RE"
check_setting PAREDAO_RABBITMQ_METRICS_TARGET "$RABBITMQ_TARGET" "$ADDR_RE"
check_setting PAREDAO_SUPERVISOR_METRICS_TARGET "$SUPERVISOR_TARGET" "$ADDR_RE"
check_setting PAREDAO_SCRAPE_INTERVAL "$SCRAPE_INTERVAL" "$DUR_RE"
check_setting PAREDAO_SCRAPE_TIMEOUT "$SCRAPE_TIMEOUT" "$DUR_RE"
check_setting PAREDAO_EVAL_INTERVAL "$EVAL_INTERVAL" "$DUR_RE"
check_setting PAREDAO_PROM_RETENTION "$RETENTION" "$DUR_RE"
[[ "$MONITORING_DIR" != *[\"\\]* ]] || die "the repository path must not contain quotes or backslashes: $MONITORING_DIR"

PROM_PIDFILE="$DATA/prometheus.pid"
AM_PIDFILE="$DATA/alertmanager.pid"
PROM_LOG="$DATA/prometheus.log"
AM_LOG="$DATA/alertmanager.log"
PROM_CONFIG="$DATA/prometheus.yml"
PROM_TSDB="$DATA/prometheus"
AM_STORAGE="$DATA/alertmanager"

# ------------------------------------------------------------------ helpers --
render_config() {
    [[ -r "$TEMPLATE" ]] || die "missing template $TEMPLATE"
    local text name placeholder
    local -A values=(
        [PAREDAO_SCRAPE_INTERVAL]="$SCRAPE_INTERVAL"
        [PAREDAO_SCRAPE_TIMEOUT]="$SCRAPE_TIMEOUT"
        [PAREDAO_EVAL_INTERVAL]="$EVAL_INTERVAL"
        [PAREDAO_ALERTMANAGER_TARGET]="$AM_TARGET"
        [PAREDAO_MONITORING_DIR]="$MONITORING_DIR"
        [PAREDAO_API_METRICS_TARGET]="$API_TARGET"
        [PAREDAO_CONSUMER_METRICS_TARGET]="$CONSUMER_TARGET"
        [PAREDAO_RABBITMQ_METRICS_TARGET]="$RABBITMQ_TARGET"
        [PAREDAO_SUPERVISOR_METRICS_TARGET]="$SUPERVISOR_TARGET"
        [PAREDAO_PROM_LISTEN]="$PROM_LISTEN"
    )
    text="$(<"$TEMPLATE")"
    for name in "${!values[@]}"; do
        placeholder="\${$name}"
        text="${text//"$placeholder"/${values[$name]}}"
    done
    if grep -v '^[[:space:]]*#' <<<"$text" | grep -q '[$]{PAREDAO_'; then
        die "template $TEMPLATE has a placeholder this script does not know"
    fi
    printf '%s\n' "$text"
}

# prom_pid / am_pid -> the PID when the PID file names a live process whose
# command line names our data folder, else nothing.
prom_pid() { proc_pidfile_pid "$PROM_PIDFILE" "--storage.tsdb.path=$PROM_TSDB" || true; }
am_pid() { proc_pidfile_pid "$AM_PIDFILE" "--storage.path=$AM_STORAGE" || true; }

is_ready() { # ADDR
    http_ok "http://$1/-/ready"
}

# wait_ready NAME ADDR PIDFUNC -> 0 when ready within TIMEOUT, 1 otherwise
# (at once when the process is not running or exits meanwhile).
wait_ready() {
    local name="$1" addr="$2" pid
    pid="$($3)"
    if [[ -z "$pid" ]]; then
        echo "$PROG: $name is not running" >&2
        return 1
    fi
    if ! wait_http "http://$addr/-/ready" "$TIMEOUT" "$pid"; then
        echo "$PROG: $name not ready at http://$addr" >&2
        return 1
    fi
}

show_log_tail() { # LOGFILE
    if [[ -f "$1" ]]; then
        echo "--- last lines of $1:" >&2
        tail -n 15 "$1" >&2
    fi
}

need_bin() { # VAR BINARY PACKAGE
    command -v "$2" >/dev/null 2>&1 || die "$2 not found (set $1, or apt-get install $3; see monitoring/install-deps.sh)"
}

# launch PIDFILE LOGFILE COMMAND... : a header line in LOGFILE, then COMMAND
# in the background in its own session with its exact PID in PIDFILE.
launch() {
    local pidfile="$1" logfile="$2"
    shift 2
    echo "=== $(date -u +%Y-%m-%dT%H:%M:%SZ) $PROG start: $*" >>"$logfile"
    start_background "${1##*/}" "$logfile" "$pidfile" "$@" || exit 1
}

# stop_process NAME PIDFILE PIDFUNC: TERM, then KILL after TIMEOUT seconds.
stop_process() {
    local name="$1" pidfile="$2" pidfunc="$3" pid
    pid="$($pidfunc)"
    if [[ -z "$pid" ]]; then
        if [[ -f "$pidfile" ]]; then
            rm -f "$pidfile"
            say "$name: not running (removed stale PID file)"
        else
            say "$name: not running"
        fi
        return 0
    fi
    stop_pid "$pid" "$TIMEOUT" || true
    rm -f "$pidfile"
    say "$name: stopped (pid $pid)"
}

# ----------------------------------------------------------------- commands --
cmd_config() { render_config; }

write_config() {
    mkdir -p "$DATA" "$PROM_TSDB"
    render_config >"$PROM_CONFIG.tmp"
    if command -v promtool >/dev/null 2>&1; then
        local out
        if ! out="$(promtool check config "$PROM_CONFIG.tmp" 2>&1)"; then
            echo "$out" >&2
            die "rendered configuration is invalid (see above)"
        fi
    fi
    mv -f "$PROM_CONFIG.tmp" "$PROM_CONFIG"
}

start_alertmanager() {
    local pid
    pid="$(am_pid)"
    if [[ -n "$pid" ]]; then
        say "alertmanager: already running (pid $pid, http://$AM_LISTEN)"
        return 0
    fi
    need_bin PAREDAO_ALERTMANAGER_BIN "$AM_BIN" prometheus-alertmanager
    [[ -r "$AM_CONFIG" ]] || die "missing Alertmanager config $AM_CONFIG"
    if is_ready "$AM_LISTEN"; then
        die "something else already answers on http://$AM_LISTEN (set PAREDAO_AM_LISTEN)"
    fi
    mkdir -p "$AM_STORAGE"
    launch "$AM_PIDFILE" "$AM_LOG" "$AM_BIN" \
        "--config.file=$AM_CONFIG" \
        "--storage.path=$AM_STORAGE" \
        "--web.listen-address=$AM_LISTEN" \
        "--cluster.listen-address=" \
        "--log.level=info"
    say "alertmanager: started (pid $(tr -dc '0-9' <"$AM_PIDFILE"), http://$AM_LISTEN, log $AM_LOG)"
}

start_prometheus() {
    local pid
    pid="$(prom_pid)"
    if [[ -n "$pid" ]]; then
        say "prometheus: already running (pid $pid, http://$PROM_LISTEN)"
        return 0
    fi
    need_bin PAREDAO_PROMETHEUS_BIN "$PROM_BIN" prometheus
    if is_ready "$PROM_LISTEN"; then
        die "something else already answers on http://$PROM_LISTEN (set PAREDAO_PROM_LISTEN)"
    fi
    write_config
    launch "$PROM_PIDFILE" "$PROM_LOG" "$PROM_BIN" \
        "--config.file=$PROM_CONFIG" \
        "--storage.tsdb.path=$PROM_TSDB" \
        "--storage.tsdb.retention.time=$RETENTION" \
        "--web.listen-address=$PROM_LISTEN" \
        "--web.console.templates=$MONITORING_DIR/consoles" \
        "--web.console.libraries=$MONITORING_DIR/console_libraries" \
        "--web.enable-lifecycle"
    say "prometheus: started (pid $(tr -dc '0-9' <"$PROM_PIDFILE"), http://$PROM_LISTEN, log $PROM_LOG)"
}

cmd_wait_ready() {
    local ok=0
    if ! wait_ready prometheus "$PROM_LISTEN" prom_pid; then
        show_log_tail "$PROM_LOG"
        ok=1
    fi
    if [[ -f "$AM_PIDFILE" ]]; then
        if ! wait_ready alertmanager "$AM_LISTEN" am_pid; then
            show_log_tail "$AM_LOG"
            ok=1
        fi
    fi
    if [[ $ok == 0 ]]; then say "ready: http://$PROM_LISTEN"; fi
    return "$ok"
}

cmd_start() {
    mkdir -p "$DATA"
    if [[ "$WITH_AM" == 1 ]]; then
        start_alertmanager
    fi
    start_prometheus
    if [[ "$WAIT" == 1 ]]; then
        cmd_wait_ready || exit 1
        say "consoles: http://$PROM_LISTEN/consoles/executions.html latency.html errors.html"
    fi
}

cmd_stop() {
    stop_process prometheus "$PROM_PIDFILE" prom_pid
    stop_process alertmanager "$AM_PIDFILE" am_pid
}

# print_status NAME PID ADDR WHY -> one line; 0 when running and ready, 3 otherwise
# (WHY says what an empty PID means).
print_status() {
    local name="$1" pid="$2" addr="$3"
    if [[ -z "$pid" ]]; then
        echo "$name: not running ($4)"
        return 3
    fi
    if is_ready "$addr"; then
        echo "$name: running (pid $pid, http://$addr, ready)"
        return 0
    fi
    echo "$name: running (pid $pid, http://$addr, NOT ready)"
    return 3
}

cmd_status() {
    local rc=0
    print_status prometheus "$(prom_pid)" "$PROM_LISTEN" "data $DATA" || rc=3
    if [[ -f "$AM_PIDFILE" ]]; then
        print_status alertmanager "$(am_pid)" "$AM_LISTEN" "stale PID file" || rc=3
    else
        echo "alertmanager: not started"
    fi
    return "$rc"
}

cmd_reload() {
    [[ -n "$(prom_pid)" ]] || die "prometheus is not running (data $DATA)"
    write_config
    curl -fsS -X POST --max-time 10 "http://$PROM_LISTEN/-/reload" >/dev/null ||
        die "reload failed; see $PROM_LOG"
    say "prometheus: configuration reloaded"
}

cmd_targets() {
    local json
    json="$(curl -fsS --max-time 5 "http://$PROM_LISTEN/api/v1/targets?state=active")" ||
        die "cannot reach Prometheus at http://$PROM_LISTEN"
    printf '%s' "$json" | python3 -c '
import json, sys
targets = json.load(sys.stdin)["data"]["activeTargets"]
bad = 0
for t in sorted(targets, key=lambda t: t["labels"].get("job", "")):
    print(t["labels"].get("job", "?"), t["labels"].get("instance", "?"), t["health"], t.get("lastError") or "-")
    bad += t["health"] != "up"
sys.exit(1 if bad else 0)
'
}

if [[ "$COMMAND" != config ]]; then
    need_bin PATH curl curl
fi

case "$COMMAND" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    restart) cmd_stop; cmd_start ;;
    status) cmd_status ;;
    wait-ready) cmd_wait_ready ;;
    reload) cmd_reload ;;
    targets) cmd_targets ;;
    config) cmd_config ;;
    *) usage_error "unknown command: $COMMAND" ;;
esac
