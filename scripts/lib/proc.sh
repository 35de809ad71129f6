# shellcheck shell=bash
# Processes and waits for the scripts: is a PID alive (and ours), start one in the
# background with its PID recorded, stop one by PID, wait for a condition or a URL.
# Source it; it only defines functions (all safe under set -euo pipefail).
# Messages go to standard error, prefixed with the calling script's name.

# proc_log MESSAGE...: one line on standard error, prefixed with the script's name.
proc_log() {
  printf '%s: %s\n' "${0##*/}" "$*" >&2
}

# proc_state PID: prints the one-letter state from /proc/PID/stat; nothing when there
# is no such process. The name field may hold spaces and parentheses: cut at the last ") ".
proc_state() {
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 0
  stat="${stat##*) }"
  printf '%s' "${stat%% *}"
}

# proc_alive PID: succeeds when PID is a running process. Zombies count as gone:
# kill -0 succeeds on them, and orphans are not always reaped at once here.
proc_alive() {
  local state
  [[ "${1:-}" =~ ^[0-9]+$ ]] || return 1
  state="$(proc_state "$1")"
  [[ -n "$state" && "$state" != Z && "$state" != X ]]
}

# proc_gone PID: the opposite of proc_alive (a condition for wait_until).
proc_gone() {
  ! proc_alive "$1"
}

# proc_pidfile_pid FILE [MARKER]: prints the PID that FILE names when that process is
# alive and, given MARKER, its command line contains MARKER (so a reused PID is not
# taken for ours); fails otherwise.
proc_pidfile_pid() {
  local file="$1" marker="${2:-}" pid cmdline
  [[ -f "$file" ]] || return 1
  pid="$(tr -dc '0-9' <"$file")"
  proc_alive "$pid" || return 1
  if [[ -n "$marker" ]]; then
    cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
    [[ "$cmdline" == *"$marker"* ]] || return 1
  fi
  printf '%s\n' "$pid"
}

# proc_alive_pidfile FILE [MARKER]: succeeds when FILE names a live process of ours.
proc_alive_pidfile() {
  proc_pidfile_pid "$@" >/dev/null
}

# wait_until SECONDS COMMAND...: runs COMMAND every 0.2 s until it succeeds; fails when
# SECONDS pass first. Prints nothing: the caller knows what it waited for.
wait_until() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}

# proc_wait_gone PID [SECONDS]: waits (default 15 s) until PID is gone; fails on time-out.
proc_wait_gone() {
  wait_until "${2:-15}" proc_gone "$1"
}

# stop_pid PID [SECONDS] [SIGNAL]: sends SIGNAL (default TERM) to PID alone, waits up to
# SECONDS (default 15) for it to go; a gentler SIGNAL than TERM (nginx's QUIT) is followed
# by TERM and 5 s more; then KILL. Succeeds when the process is gone (or never ran).
stop_pid() {
  local pid="$1" seconds="${2:-15}" signal="${3:-TERM}"
  if [[ ! "$pid" =~ ^[0-9]+$ ]] || ((10#$pid <= 1)); then
    proc_log "stop_pid: not a process id: '$pid'"
    return 1
  fi
  proc_alive "$pid" || return 0
  kill "-$signal" "$pid" 2>/dev/null || true
  proc_wait_gone "$pid" "$seconds" && return 0
  if [[ "$signal" != TERM ]]; then
    proc_log "pid $pid still running ${seconds}s after SIG$signal; sending SIGTERM"
    kill -TERM "$pid" 2>/dev/null || true
    proc_wait_gone "$pid" 5 && return 0
    signal=TERM seconds=5
  fi
  proc_log "pid $pid still running ${seconds}s after SIG$signal; sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  proc_wait_gone "$pid" 5 || { proc_log "pid $pid survived SIGKILL"; return 1; }
}

# http_ok URL: one GET that answers 2xx or 3xx within 2 s.
http_ok() {
  curl -fsS -o /dev/null --max-time 2 "$1" 2>/dev/null
}

# (wait_http's condition) URL answers, or PID (when given) is gone and waiting is pointless.
http_ok_or_gone() {
  http_ok "$1" || { [[ -n "${2:-}" ]] && proc_gone "$2"; }
}

# wait_http URL [SECONDS] [PID]: waits (default 30 s) until URL answers; with PID, stops
# early when that process dies. Fails with a message saying which of the two happened.
wait_http() {
  local url="$1" seconds="${2:-30}" pid="${3:-}"
  if ! wait_until "$seconds" http_ok_or_gone "$url" "$pid"; then
    proc_log "timed out after ${seconds}s waiting for $url"
    return 1
  fi
  if [[ -n "$pid" ]] && proc_gone "$pid"; then
    proc_log "pid $pid exited before $url answered"
    return 1
  fi
}

# start_background NAME LOGFILE PIDFILE COMMAND...: starts COMMAND in its own session,
# stdin from /dev/null, output appended to LOGFILE. The process writes its own PID to
# PIDFILE just before exec, so the PID is exact; returns once PIDFILE is written.
start_background() {
  local name="$1" logfile="$2" pidfile="$3"
  shift 3
  mkdir -p "$(dirname "$logfile")" "$(dirname "$pidfile")" || return 1
  rm -f "$pidfile" || return 1
  # shellcheck disable=SC2016  # $$ and $@ expand in the child shell
  setsid bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$@" >>"$logfile" 2>&1 </dev/null &
  if ! wait_until 5 test -s "$pidfile"; then
    proc_log "$name did not start (no PID in $pidfile; see $logfile)"
    return 1
  fi
}
