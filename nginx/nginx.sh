#!/usr/bin/env bash
# Starts, stops and reloads nginx as a plain process whose files all live in a prefix
# folder rendered by render.sh.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=SCRIPTDIR/../scripts/lib/proc.sh
source "${here}/../scripts/lib/proc.sh"

usage() {
    cat <<USAGE
Usage: $(basename "$0") COMMAND --prefix DIR [render.sh options]

Commands:
  start    render the config (when render options are given or DIR/nginx.conf does not
           exist yet), check it with nginx -t, start nginx in the background
           (pid file DIR/nginx.pid, logs in DIR/logs)
  run      like start, but stay in the foreground (daemon off) until stopped
  stop     graceful shutdown (waits up to 15 s, then terminates)
  reload   re-render when render options are given, check, then reload the workers
  status   exit 0 and print the pid if nginx runs for DIR, exit 1 otherwise
  test     nginx -t on DIR/nginx.conf

Any other option is passed to render.sh (see render.sh --help), e.g.
  $(basename "$0") start --prefix /tmp/paredao-nginx --listen 127.0.0.1:8000 \\
      --api 127.0.0.1:8080,127.0.0.1:8081 --htpasswd /tmp/paredao-nginx/htpasswd
USAGE
}

die() { echo "nginx.sh: $*" >&2; exit 2; }

[[ $# -ge 1 ]] || { usage >&2; exit 2; }
case "$1" in
    -h|--help) usage; exit 0 ;;
    start|run|stop|reload|status|test) command="$1"; shift ;;
    *) usage >&2; die "unknown command: $1" ;;
esac

prefix=""
render_args=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --prefix)
            [[ $# -ge 2 && -n "$2" ]] || die "--prefix needs a value"
            prefix="$2"; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) render_args+=("$1"); shift ;;
    esac
done
[[ -n "$prefix" ]] || die "--prefix is required"
command -v nginx >/dev/null || die "nginx not found (apt-get install nginx-light)"
mkdir -p "$prefix"
prefix="$(cd "$prefix" && pwd)"
conf="${prefix}/nginx.conf"
pidfile="${prefix}/nginx.pid"
nginx_cmd=(nginx -p "${prefix}/" -c "$conf" -e "${prefix}/logs/error.log")

# The master's pid, when the pid file names a live nginx started with this prefix
# (its command line shows "-p PREFIX/"), so a reused pid is never taken for ours.
running_pid() {
    proc_pidfile_pid "$pidfile" "-p ${prefix}/"
}

render_if_needed() {
    if [[ ${#render_args[@]} -gt 0 || ! -f "$conf" ]]; then
        "${here}/render.sh" --prefix "$prefix" "${render_args[@]}"
    fi
}

check() {
    "${nginx_cmd[@]}" -t -q
}

case "$command" in
    start|run)
        if pid="$(running_pid)"; then
            die "nginx already runs for ${prefix} (pid ${pid}); use reload or stop"
        fi
        render_if_needed
        check
        if [[ "$command" == run ]]; then
            exec "${nginx_cmd[@]}" -g 'daemon off;'
        fi
        rm -f "$pidfile"
        "${nginx_cmd[@]}"
        wait_until 5 running_pid >/dev/null || die "nginx did not start; see ${prefix}/logs/error.log"
        echo "nginx.sh: started (pid $(running_pid)), logs in ${prefix}/logs"
        ;;
    stop)
        if ! pid="$(running_pid)"; then
            echo "nginx.sh: not running for ${prefix}"
            exit 0
        fi
        # QUIT lets the workers finish their requests; TERM after 15 s, KILL 5 s later.
        stop_pid "$pid" 15 QUIT || die "nginx (pid ${pid}) did not stop"
        echo "nginx.sh: stopped"
        ;;
    reload)
        pid="$(running_pid)" || die "nginx does not run for ${prefix}"
        render_if_needed
        check
        kill -HUP "$pid"
        echo "nginx.sh: reloaded (pid ${pid})"
        ;;
    status)
        if pid="$(running_pid)"; then
            echo "nginx.sh: running (pid ${pid})"
        else
            echo "nginx.sh: not running for ${prefix}"
            exit 1
        fi
        ;;
    test)
        check
        echo "nginx.sh: ${conf} ok"
        ;;
esac
