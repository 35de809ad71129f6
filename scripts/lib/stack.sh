# shellcheck shell=bash
# The application stack (VoteConsumer, VoteAPI and nginx in front of it) started from one
# folder of binaries into one state folder DIR, and stopped again by the PIDs kept there:
#   DIR/run/consumer.pid, DIR/run/api.pid   PID files
#   DIR/run/api.sock                        the API's unix socket, nginx's upstream (the API
#                                           believes X-Real-IP only there)
#   DIR/log/consumer.log, DIR/log/api.log   output of the two processes (appended)
#   DIR/nginx/                              nginx prefix (nginx.conf, nginx.pid, logs/)
# Used by scripts/test-stack.sh and bench/run.sh (./run.sh uses supervise.sh). Source it; it only
# defines functions (and sources proc.sh, which does the same).

# shellcheck source=SCRIPTDIR/proc.sh
source "$(dirname "${BASH_SOURCE[0]}")/proc.sh"

# stack_root: prints the repository's folder (nginx/*.sh live there).
stack_root() {
  (cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
}

# stack_pid DIR NAME: prints the PID of the stack's NAME (consumer or api) when it runs.
stack_pid() {
  local dir="$1" name="$2" binary
  case "$name" in
    consumer) binary=VoteConsumer ;;
    api) binary=VoteAPI ;;
    *) proc_log "stack_pid: unknown process '$name'"; return 1 ;;
  esac
  proc_pidfile_pid "$dir/run/$name.pid" "$binary"
}

# stack_start_process DIR NAME COMMAND...: starts NAME in the background unless it runs.
stack_start_process() {
  local dir="$1" name="$2" pid
  shift 2
  if pid="$(stack_pid "$dir" "$name")"; then
    proc_log "$name already running (pid $pid)"
    return 0
  fi
  start_background "$name" "$dir/log/$name.log" "$dir/run/$name.pid" "$@"
}

# stack_fail DIR NAME MESSAGE: reports MESSAGE with the end of NAME's log; fails.
stack_fail() {
  proc_log "$3"
  tail -n 20 "$1/log/$2.log" >&2 || true
  return 1
}

# stack_options ARGS...: reads the options of stack_start and supervise_write_conf into the
# caller's locals dir, bin, api_port, web_port, password, htpasswd and metrics, and the
# words after `--` (options for nginx.sh) into its array extra.
stack_options() {
  while (($#)); do
    case "$1" in
      --dir) dir="$2"; shift 2 ;;
      --bin) bin="$2"; shift 2 ;;
      --api-port) api_port="$2"; shift 2 ;;
      --web-port) web_port="$2"; shift 2 ;;
      --password) password="$2"; shift 2 ;;
      --htpasswd) htpasswd="$2"; shift 2 ;;
      --metrics) metrics="$2"; shift 2 ;;
      --) shift; extra=("$@"); break ;;
      *) proc_log "${FUNCNAME[1]}: unknown option '$1'"; return 2 ;;
    esac
  done
}

# stack_start --dir DIR --bin BIN --api-port PORT --web-port PORT --password FILE
#             [--htpasswd FILE] [-- NGINX_OPTION...]
# Starts VoteConsumer and VoteAPI from BIN (each unless it already runs) with the caller's
# environment plus PAREDAO_API_PORT=PORT, waits for the API's /readyz, writes the panel's
# htpasswd (default DIR/nginx/htpasswd) from the password FILE, starts nginx on
# 127.0.0.1:--web-port in front of the API (extra options go to nginx.sh start) and waits
# until it answers.
stack_start() {
  # shellcheck disable=SC2034  # metrics: stack_options sets it, the supervisor's config uses it
  local dir="" bin="" api_port="" web_port="" password="" htpasswd="" metrics="" extra=() root api_pid socket
  stack_options "$@" || return 2
  if [[ -z "$dir" || -z "$bin" || -z "$api_port" || -z "$web_port" || -z "$password" ]]; then
    proc_log "stack_start: --dir, --bin, --api-port, --web-port and --password are required"
    return 2
  fi
  root="$(stack_root)"
  htpasswd="${htpasswd:-$dir/nginx/htpasswd}"
  mkdir -p "$dir/run" || return 1
  socket="$(cd "$dir/run" && pwd)/api.sock"

  stack_start_process "$dir" consumer "$bin/VoteConsumer" || return 1
  stack_start_process "$dir" api env PAREDAO_API_PORT="$api_port" PAREDAO_API_SOCKET="$socket" "$bin/VoteAPI" || return 1
  api_pid="$(stack_pid "$dir" api)" || { stack_fail "$dir" api "VoteAPI exited at once"; return 1; }
  wait_http "http://127.0.0.1:$api_port/readyz" 60 "$api_pid" || { stack_fail "$dir" api "VoteAPI is not ready"; return 1; }
  stack_pid "$dir" consumer >/dev/null || { stack_fail "$dir" consumer "VoteConsumer exited"; return 1; }

  "$root/nginx/make-htpasswd.sh" produtor "$password" "$htpasswd" >/dev/null || return 1
  if "$root/nginx/nginx.sh" status --prefix "$dir/nginx" >/dev/null; then
    proc_log "nginx already running for $dir/nginx"
  else
    "$root/nginx/nginx.sh" start --prefix "$dir/nginx" --listen "127.0.0.1:$web_port" \
      --api "unix:$socket" --htpasswd "$htpasswd" "${extra[@]}" >/dev/null || return 1
  fi
  wait_http "http://127.0.0.1:$web_port/" 30
}

# stack_stop DIR: stops nginx, then VoteAPI, then VoteConsumer: only the processes whose
# PIDs the stack recorded in DIR (TERM, then KILL after 15 s).
stack_stop() {
  local dir="$1" name pid
  if [[ -f "$dir/nginx/nginx.pid" ]]; then
    "$(stack_root)/nginx/nginx.sh" stop --prefix "$dir/nginx" >/dev/null || true
  fi
  for name in api consumer; do
    if pid="$(stack_pid "$dir" "$name")" && stop_pid "$pid" 15; then
      proc_log "stopped $name (pid $pid)"
    fi
    rm -f "$dir/run/$name.pid"
  done
}

# stack_status DIR: prints one line per process of the stack: running (pid N) or stopped.
stack_status() {
  local dir="$1" name pid
  for name in consumer api; do
    if pid="$(stack_pid "$dir" "$name")"; then echo "$name: running (pid $pid)"; else echo "$name: stopped"; fi
  done
  if [[ -f "$dir/nginx/nginx.pid" ]] && "$(stack_root)/nginx/nginx.sh" status --prefix "$dir/nginx" >/dev/null; then
    echo "nginx: running (pid $(tr -dc '0-9' <"$dir/nginx/nginx.pid"))"
  else
    echo "nginx: stopped"
  fi
}
