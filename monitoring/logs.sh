#!/usr/bin/env bash
# Query or browse the Paredão JSON-lines logs with lnav. Run with --help.
set -euo pipefail

MONITORING_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(dirname "$MONITORING_DIR")"
PROG="$(basename "$0")"
LNAV_DIR="$MONITORING_DIR/lnav"

usage() {
    cat <<EOF
Usage: $PROG --live [OPTIONS] [FILE...]
       $PROG --query NAME [OPTIONS] [FILE...]
       $PROG --sql 'SELECT ...' [OPTIONS] [FILE...]
       $PROG --list

Reads the API and consumer logs (one JSON object per line: ts, level, logger,
message, flattened metadata) with lnav and the "paredao_log" format in
monitoring/lnav/. Times are UTC (lnav runs with TZ=UTC).

Modes:
  --live          Interactive lnav on the log files (follows them as they
                  grow). Needs a terminal.
  --query NAME    Run a saved view headless and print the result. NAME:
                    levels-1m    events per level (ERROR, WARNING, INFO, DEBUG)
                                 in the last minute; always four rows
                    errors-1m    the number of ERROR events in the last minute
                                 (a bare number, for scripts)
                    last-errors  the last 20 ERROR lines, newest first
                    http-1m      events per route and status in the last minute
                  or the name of any view in monitoring/lnav/paredao_views.sql.
  --sql SQL       Run one SQL statement headless (table: paredao_log; views:
                  paredao_levels_last_minute, paredao_last_errors,
                  paredao_http_last_minute).
  --list          List the query names and their views.

Options:
  --dir DIR            Log folder (default: \$PAREDAO_LOG_DIR or var/log under
                       the repository root); its api.log and consumer.log are
                       read unless FILEs are given.
  --format FMT         Output of --query/--sql: table (default), csv or json.
  -h, --help           Show this help.

Exit status: 0 success; 1 lnav or SQL error, or no log file to read;
2 bad usage.

Examples:
  monitoring/logs.sh --live
  monitoring/logs.sh --query levels-1m --format csv
  monitoring/logs.sh --query errors-1m          # prints e.g. 12
  monitoring/logs.sh --sql "SELECT count(*) FROM paredao_log WHERE status = '503'"
EOF
}

die() { echo "$PROG: $*" >&2; exit 1; }
usage_error() { echo "$PROG: $*" >&2; echo "Try '$PROG --help'." >&2; exit 2; }

query_sql() { # NAME -> SQL (empty when unknown)
    case "$1" in
        levels-1m) echo "SELECT * FROM paredao_levels_last_minute" ;;
        errors-1m) echo "SELECT events FROM paredao_levels_last_minute WHERE level = 'ERROR'" ;;
        last-errors) echo "SELECT * FROM paredao_last_errors" ;;
        http-1m) echo "SELECT * FROM paredao_http_last_minute" ;;
        paredao_*)
            if [[ "$1" =~ ^[a-z0-9_]+$ ]] && grep -q "CREATE VIEW IF NOT EXISTS $1 " "$LNAV_DIR/paredao_views.sql"; then
                echo "SELECT * FROM $1"
            fi ;;
    esac
}

MODE=""
NAME=""
SQL=""
FORMAT=table
LOG_DIR="${PAREDAO_LOG_DIR:-$REPO_ROOT/var/log}"
FILES=()

set_mode() {
    [[ -z "$MODE" ]] || usage_error "choose one of --live, --query, --sql, --list"
    MODE="$1"
}

while [[ $# -gt 0 ]]; do
    case "$1" in
        -h|--help) usage; exit 0 ;;
        --live) set_mode live; shift ;;
        --list) set_mode list; shift ;;
        --query) [[ $# -ge 2 ]] || usage_error "--query needs a name"; set_mode query; NAME="$2"; shift 2 ;;
        --query=*) set_mode query; NAME="${1#--query=}"; shift ;;
        --sql) [[ $# -ge 2 ]] || usage_error "--sql needs a statement"; set_mode sql; SQL="$2"; shift 2 ;;
        --sql=*) set_mode sql; SQL="${1#--sql=}"; shift ;;
        --dir) [[ $# -ge 2 ]] || usage_error "--dir needs a folder"; LOG_DIR="$2"; shift 2 ;;
        --dir=*) LOG_DIR="${1#--dir=}"; shift ;;
        --format) [[ $# -ge 2 ]] || usage_error "--format needs table, csv or json"; FORMAT="$2"; shift 2 ;;
        --format=*) FORMAT="${1#--format=}"; shift ;;
        --) shift; FILES+=("$@"); break ;;
        -*) usage_error "unknown option: $1" ;;
        *) FILES+=("$1"); shift ;;
    esac
done

[[ -n "$MODE" ]] || usage_error "choose one of --live, --query NAME, --sql SQL, --list"
case "$FORMAT" in table|csv|json) ;; *) usage_error "--format must be table, csv or json" ;; esac

if [[ "$MODE" == list ]]; then
    for n in levels-1m errors-1m last-errors http-1m; do
        printf '%-12s %s\n' "$n" "$(query_sql "$n")"
    done
    exit 0
fi

BARE=0
if [[ "$MODE" == query ]]; then
    SQL="$(query_sql "$NAME")"
    [[ -n "$SQL" ]] || usage_error "unknown query '$NAME' (see --list)"
    # errors-1m prints a bare number in table format.
    if [[ "$NAME" == errors-1m && "$FORMAT" == table ]]; then
        BARE=1
        FORMAT=csv
    fi
fi
if [[ "$MODE" == sql ]]; then
    [[ -n "${SQL//[[:space:]]/}" ]] || usage_error "--sql needs a statement"
    SQL="${SQL#"${SQL%%[![:space:]]*}"}"
    SQL="${SQL#;}"
fi

if [[ "$MODE" == live ]]; then
    [[ -t 0 && -t 1 ]] || usage_error "--live needs a terminal (use --query or --sql from scripts)"
fi

command -v lnav >/dev/null 2>&1 || die "lnav not found (apt-get install lnav; see monitoring/install-deps.sh)"

if [[ ${#FILES[@]} -eq 0 ]]; then
    for f in "$LOG_DIR/api.log" "$LOG_DIR/consumer.log"; do
        if [[ -f "$f" ]]; then FILES+=("$f"); fi
    done
    [[ ${#FILES[@]} -gt 0 ]] || die "no log file in $LOG_DIR (api.log, consumer.log); use --dir or name files"
else
    for f in "${FILES[@]}"; do
        [[ -r "$f" ]] || die "cannot read log file $f"
    done
fi

# lnav loads formats (and their .sql files) from <config dir>/formats/*/:
# build such a folder with links to monitoring/lnav/.
CONFIG_DIR="$(mktemp -d "${TMPDIR:-/tmp}/paredao-lnav.XXXXXX")"
ERR_FILE="$CONFIG_DIR/stderr"
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() { rm -rf "$CONFIG_DIR"; }
trap cleanup EXIT
mkdir -p "$CONFIG_DIR/formats/paredao"
ln -s "$LNAV_DIR/paredao_log.json" "$CONFIG_DIR/formats/paredao/paredao_log.json"
ln -s "$LNAV_DIR/paredao_views.sql" "$CONFIG_DIR/formats/paredao/paredao_views.sql"

export TZ=UTC

if [[ "$MODE" == live ]]; then
    lnav -I "$CONFIG_DIR" "${FILES[@]}"
    exit $?
fi

ARGS=(-I "$CONFIG_DIR" -n -c ";$SQL")
case "$FORMAT" in
    csv) ARGS+=(-c ":write-csv-to -") ;;
    json) ARGS+=(-c ":write-json-to -") ;;
esac

# lnav exits 0 even when a statement fails, and reports on stderr: treat any
# error report there as a failure.
rc=0
if [[ "$BARE" == 1 ]]; then
    out="$(lnav "${ARGS[@]}" "${FILES[@]}" 2>"$ERR_FILE")" || rc=$?
else
    lnav "${ARGS[@]}" "${FILES[@]}" 2>"$ERR_FILE" || rc=$?
fi
if [[ -s "$ERR_FILE" ]]; then
    cat "$ERR_FILE" >&2
    if grep -q 'error' "$ERR_FILE"; then rc=1; fi
fi
if [[ "$BARE" == 1 && "$rc" == 0 ]]; then
    value="$(sed -n 2p <<<"$out")"
    [[ "$value" =~ ^[0-9]+$ ]] || die "unexpected lnav output: $out"
    echo "$value"
fi
exit "$rc"
