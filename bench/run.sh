#!/usr/bin/env bash
# Load harness: drives the real stack (RabbitMQ + VoteConsumer + VoteAPI + nginx, release
# build) with wrk, checks that every accepted vote was stored exactly once, and measures
# the machine's ceilings in the same run.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BENCH="$ROOT/var/bench"
BIN=""
NIO_PID=""
DURATION=60
RATE=1000
CONNECTIONS=64
MAX_CONNECTIONS=1024
TOKENS=256
MODES="paced-nginx paced-direct open1000-nginx open1000-direct open10000-nginx open10000-direct max-nginx max-direct"
OPEN_MAX_CONNECTIONS=256
SOAK_MINUTES=0
PROFILE=0
CEILINGS=1
API_PORT=18180
WEB_PORT=18100
CEIL_NGINX_PORT=18200
CEIL_NIO_PORT=18201
CEIL_PROXY_PORT=18202
FAILED=0
# nginx `return 204` (req/s, p99, CPU µs per request) and RabbitMQ's publish rate, at the end.
C_NGINX="" C_NGINX_P99="" C_NGINX_US="" C_PUBLISH=""

usage() {
  cat <<'TXT'
Usage: bench/run.sh [--duration S] [--rate N] [--connections C] [--max-connections C] [--tokens N]
                    [--modes "paced-nginx paced-direct open1000-nginx … max-direct"] [--no-ceilings] [--profile]
       bench/run.sh --soak MINUTES [--rate N]

Starts its own RabbitMQ (port 5692, data in var/bench), VoteConsumer, VoteAPI (port 18180)
and nginx (port 18100) from the release build, mints session tokens with paredao-token
(real proof-of-work challenges), then for each mode runs wrk against POST /api/v1/votes:
  paced-*  a constant --rate votes/s (wrk Lua delay()), default 1,000
  max-*    as fast as wrk can push with --max-connections connections (default 1024;
           paced runs use --connections, default 64); the ceilings use the same count.
           Every vote waits for RabbitMQ's confirm (an fsync) and, above 4,000 votes/s,
           up to 6 ms for its AMQP message to fill: fewer connections leave the CPUs idle
           (at 512 they were ≈ 170 % busy of 200).
  openN-*  open loop (paredao-load): N votes/s leave on schedule whatever the answers do,
           latency counted from each request's scheduled time (HdrHistogram), so a stall
           counts in every request due during it (wrk's paced mode waits for each answer
           before the next send on that connection: coordinated omission); also reports
           the service time from the send. Default: open1000 and open10000.
  *-nginx through nginx; *-direct straight to VoteAPI
Per mode: CPU of every process (% of a core and microseconds per accepted vote); once per
run: this disk's fdatasync latency, the floor under every confirmed vote.
--profile: during each max-* run, 10 s of perf samples of VoteAPI, nginx and the consumer;
the top symbols per process go into the results (needs linux-perf).
--soak MINUTES: only a soak instead: --rate votes/s (default 1,000) open loop through nginx
for MINUTES, every process's resident memory sampled every 30 s (var/bench/soak-rss.csv),
a table of the samples and the growth after minute 5, stored = accepted checked.
After each run it waits until the consumer drained the queue and checks that the store
counted exactly the votes the API accepted (0 lost, 0 extra); a mismatch fails the run.
Then it measures the ceilings: nginx `return 204`, a bare SwiftNIO 204 server, nginx in
front of that server, and RabbitMQ's confirmed-publish rate. The machine's speed drifts by
15-25 % within minutes, so each max-* mode's own ceiling (bare SwiftNIO for max-direct,
nginx -> bare SwiftNIO for max-nginx) is measured right before and right after it, and the
mode's ratio is to the mean of the two; each ceiling also reports the CPU its processes
(server, nginx, wrk) spend per request. Results: a Markdown table on standard output and
in var/bench/results-<time>.md.

The benchmark raises the per-token limits (PAREDAO_VOTE_RATE=100000, budget 10^9) and
nginx's per-IP limits, because all load comes from one address and a few hundred tokens.
Any other PAREDAO_* setting in the environment reaches the services (PAREDAO_EVENT_LOOPS=1
bench/run.sh: one event loop instead of one per core).
PAREDAO_BENCH_BIN=DIR runs the binaries in DIR instead of building (to compare two builds
in the same window; the nginx config is always this checkout's).
Traffic goes to 127.0.0.1 only; every run stops by itself.
TXT
}

# shellcheck source=SCRIPTDIR/../scripts/lib/stack.sh
source "$ROOT/scripts/lib/stack.sh"

log() { printf '[bench] %s\n' "$*" >&2; }

cleanup() {
  stack_stop "$BENCH"
  "$ROOT/nginx/nginx.sh" stop --prefix "$BENCH/nginx-ceiling" >/dev/null 2>&1 || true
  if [[ -n "$NIO_PID" ]]; then stop_pid "$NIO_PID" || true; fi
  broker stop >/dev/null 2>&1 || true
}

broker() {
  PAREDAO_SECRETS_DIR="$BENCH/secrets" PAREDAO_RABBITMQ_DIR="$BENCH/rabbitmq" PAREDAO_RABBITMQ_PORT=5692 PAREDAO_RABBITMQ_DIST_PORT=25692 \
    PAREDAO_RABBITMQ_EPMD_PORT=4393 PAREDAO_RABBITMQ_PROMETHEUS_PORT=15694 PAREDAO_RABBITMQ_NODE=paredao-bench@localhost \
    "$ROOT/scripts/rabbitmq.sh" "$@"
}

# cpu_ticks PID...: user+system clock ticks used so far by those processes.
cpu_ticks() {
  local total=0 pid fields
  for pid in "$@"; do
    [[ -r "/proc/$pid/stat" ]] || continue
    fields="$(sed 's/^.*) //' "/proc/$pid/stat")"
    total=$((total + $(awk '{print $12 + $13}' <<<"$fields")))
  done
  echo "$total"
}

# cpu_ticks_of COMMAND...: cpu_ticks of the PIDs that COMMAND prints.
cpu_ticks_of() {
  local pids
  read -ra pids <<<"$("$@" | tr '\n' ' ')"
  cpu_ticks "${pids[@]}"
}

nginx_pids() {
  local master
  master="$(cat "$1/nginx.pid" 2>/dev/null || true)"
  [[ -n "$master" ]] || return 0
  echo "$master"
  pgrep -P "$master" || true
}

beam_pid() {
  cat "$BENCH/rabbitmq/rabbitmq.pid" 2>/dev/null || true
}

api_accepted() {
  curl -fsS http://127.0.0.1:19191/metrics | awk '/^paredao_votes_accepted_total /{print $2}' | head -n1
}

stored_total() {
  # The first "total" is the overall one; each hour in the list has its own.
  curl -fsS "http://127.0.0.1:$API_PORT/total" | grep -o '"total":[0-9]*' | head -n1 | cut -d: -f2
}

start_stack() {
  rm -rf "$BENCH"
  mkdir -p "$BENCH/log"
  "$ROOT/scripts/make-secrets.sh" --dir "$BENCH/secrets" >/dev/null
  broker start >&2
  # Each service logs in as its own broker user, with its password from $BENCH/secrets.
  export PAREDAO_AMQP_URL=amqp://127.0.0.1:5692/ PAREDAO_SECRETS_DIR="$BENCH/secrets"
  export PAREDAO_SQLITE_PATH="$BENCH/votes.sqlite"
  export PAREDAO_API_PORT=$API_PORT PAREDAO_API_METRICS_PORT=19191 PAREDAO_CONSUMER_METRICS_PORT=19192
  export PAREDAO_VOTE_RATE=100000 PAREDAO_VOTE_BURST=100000 PAREDAO_SESSION_BUDGET=1000000000 PAREDAO_NETWORK_SESSION_RATE=1000000 PAREDAO_NETWORK_SESSION_BURST=1000000
  export PAREDAO_POW_DIFFICULTY=16 PAREDAO_POW_MAX_DIFFICULTY=16
  export PAREDAO_LOG_LEVEL=info
  head -c 12 /dev/urandom | base64 >"$BENCH/panel-password"
  # PIDs in var/bench/run/, logs in var/bench/log/, nginx in var/bench/nginx/.
  stack_start --dir "$BENCH" --bin "$BIN" --api-port "$API_PORT" --web-port "$WEB_PORT" \
    --password "$BENCH/panel-password" --htpasswd "$BENCH/htpasswd" -- \
    --workers 1 --vote-rate 1000000r/s --vote-burst 1000000 --session-rate 100000r/s --session-burst 100000 --conn-limit 65000
  CONSUMER_PID="$(stack_pid "$BENCH" consumer)"
  API_PID="$(stack_pid "$BENCH" api)"
  log "minting $TOKENS session tokens (difficulty 16, real challenges)"
  local started=$SECONDS
  "$BIN/paredao-token" --url "http://127.0.0.1:$API_PORT" --count "$TOKENS" --concurrency 2 >"$BENCH/tokens.txt"
  log "minted $(wc -l <"$BENCH/tokens.txt") tokens in $((SECONDS - started)) s"
}

# wait_drained: until the stored total equals the API's accepted count and stays there.
wait_drained() {
  local deadline=$((SECONDS + 180)) accepted stored
  while ((SECONDS < deadline)); do
    accepted="$(api_accepted)"
    stored="$(stored_total)"
    if [[ "$accepted" == "$stored" ]]; then
      sleep 2
      if [[ "$(stored_total)" == "$accepted" ]]; then echo "$stored"; return 0; fi
    fi
    sleep 0.5
  done
  echo "${stored:-?}"
  return 1
}

json_field() {
  sed -E "s/.*\"$2\":([0-9]+).*/\1/" <<<"$1"
}

# run_load MODE URL CONNS PAUSE: runs the mode's load generator and prints one line:
# "202s-measured 202s-overall requests seconds p50_us p99_us p999_us service_p99_us generator-CPU%".
run_load() {
  local mode="$1" url="$2" conns="$3" pause="$4" rate=0 output result
  if [[ "$mode" == open* ]]; then
    rate="${mode#open}"; rate="${rate%%-*}"
    # Open loop: requests leave on schedule, latency counted from the schedule (paredao-load).
    output="$("$BIN/paredao-load" --url "${url%/}" --rate "$rate" --duration "$DURATION" --warmup 2 \
      --connections "$CONNECTIONS" --max-connections "$OPEN_MAX_CONNECTIONS" --tokens "$BENCH/tokens.txt" 2>&1; times)"
    echo "$output" >"$BENCH/load-$mode.txt"
    result="$(grep '^RESULT ' <<<"$output" | sed 's/^RESULT //')"
    local seconds
    seconds="$(sed -E 's/.*"seconds":([0-9.]+).*/\1/' <<<"$result")"
    echo "$(json_field "$result" accepted) $(json_field "$result" accepted_overall) $(json_field "$result" scheduled) $seconds" \
      "$(json_field "$result" p50_us) $(json_field "$result" p99_us) $(json_field "$result" p999_us) $(json_field "$result" service_p99_us)" \
      "$(generator_cpu "$output" $((DURATION + 2)))"
    return 0
  fi
  [[ "$mode" == paced-* ]] && rate=$RATE
  output="$(PAREDAO_BENCH_TOKENS="$BENCH/tokens.txt" PAREDAO_BENCH_RATE=$rate PAREDAO_BENCH_CONNECTIONS=$conns \
    PAREDAO_BENCH_PAUSE_MS="$pause" wrk -t1 -c"$conns" -d"${DURATION}s" --timeout 10s --latency -s "$ROOT/bench/votes.lua" "$url" 2>&1; times)"
  echo "$output" >"$BENCH/wrk-$mode.txt"
  result="$(grep '^RESULT ' <<<"$output" | sed 's/^RESULT //')"
  local ok202 seconds
  ok202="$(json_field "$result" accepted)"
  [[ "$ok202" =~ ^[0-9]+$ ]] || ok202=0
  seconds=$(awk -v us="$(json_field "$result" duration_us)" 'BEGIN{printf "%.2f", us/1e6}')
  echo "$ok202 $ok202 $(json_field "$result" requests) $seconds $(json_field "$result" p50_us) $(json_field "$result" p99_us)" \
    "$(json_field "$result" p999_us) - $(generator_cpu "$output" "$DURATION")"
}

# generator_cpu OUTPUT SECONDS: the load generator's CPU (% of a core), from the last line of
# OUTPUT (what `times` printed: the CPU time of the subshell's children).
generator_cpu() {
  tail -n1 <<<"$1" | awk -v d="$2" '{
    n = 0; for (i = 1; i <= 2; i++) { split($i, p, /[ms]/); n += p[1] * 60 + p[2] }
    printf "%d", 100 * n / d }'
}

# run_mode NAME: one load run; appends a row to $ROWS and one to $CPU_ROWS.
run_mode() {
  local mode="$1" url target
  case "$mode" in
    *-nginx) url="http://127.0.0.1:$WEB_PORT/" ; target="nginx → API" ;;
    *-direct) url="http://127.0.0.1:$API_PORT/" ; target="API direct" ;;
  esac
  # Paced runs use fewer connections (each pauses between votes); max runs need more,
  # because every vote waits for the broker's confirm (throughput = connections / latency).
  local conns=$CONNECTIONS pause=""
  [[ "$mode" == max-* ]] && conns=$MAX_CONNECTIONS
  if [[ "$mode" == paced-* ]]; then
    pause="$(calibrate_pause "$url" "$RATE")"
    wait_drained >/dev/null || true
  fi
  if ((CEILINGS)) && [[ "$mode" == max-* ]]; then
    ceiling_servers_start
    ceiling_around "$mode" before
  fi
  local before_accepted before_stored
  before_accepted="$(api_accepted)"
  before_stored="$(stored_total)"
  local cpu_api0 cpu_consumer0 cpu_broker0 cpu_nginx0
  cpu_api0=$(cpu_ticks "$API_PID"); cpu_consumer0=$(cpu_ticks "$CONSUMER_PID")
  cpu_broker0=$(cpu_ticks_of beam_pid); cpu_nginx0=$(cpu_ticks_of nginx_pids "$BENCH/nginx")
  local started=$SECONDS
  case "$mode" in
    paced-*) log "$mode: wrk -t1 -c$conns -d${DURATION}s ($RATE votes/s, pause ${pause} ms per connection)" ;;
    max-*) log "$mode: wrk -t1 -c$conns -d${DURATION}s (as fast as it goes)" ;;
    open*) log "$mode: paredao-load open loop, ${mode#open} votes/s scheduled, ${DURATION}s (+2 s warm-up), up to $OPEN_MAX_CONNECTIONS connections" ;;
  esac
  local profiler=""
  if ((PROFILE)) && [[ "$mode" == max-* ]]; then
    profile_during "$mode" &
    profiler=$!
  fi
  local ok202 all202 requests seconds p50 p99 p999 service99 cpu_gen
  read -r ok202 all202 requests seconds p50 p99 p999 service99 cpu_gen < <(run_load "$mode" "$url" "$conns" "$pause")
  if [[ -n "$profiler" ]]; then wait "$profiler" || true; fi
  local elapsed=$((SECONDS - started))
  ((elapsed > 0)) || elapsed=1
  local d_api d_consumer d_broker d_nginx
  d_api=$(( $(cpu_ticks "$API_PID") - cpu_api0 ))
  d_consumer=$(( $(cpu_ticks "$CONSUMER_PID") - cpu_consumer0 ))
  d_broker=$(( $(cpu_ticks_of beam_pid) - cpu_broker0 ))
  d_nginx=$(( $(cpu_ticks_of nginx_pids "$BENCH/nginx") - cpu_nginx0 ))
  local drained stored_after stored_delta accepted_delta
  drained="ok"
  stored_after="$(wait_drained)" || drained="NOT DRAINED"
  accepted_delta=$(( $(api_accepted) - before_accepted ))
  stored_delta=$(( stored_after - before_stored ))
  local rps verdict
  rps=$(awk -v n="$ok202" -v s="$seconds" 'BEGIN{ if (s > 0) printf "%d", n/s; else print 0 }')
  # wrk abandons requests still in flight when time is up, so the API may have accepted
  # up to one per connection more than the generator saw answered.
  local slack=$conns
  [[ "$mode" == open* ]] && slack=$OPEN_MAX_CONNECTIONS
  if [[ "$drained" == ok && "$stored_delta" == "$accepted_delta" && $accepted_delta -ge $all202 && $accepted_delta -le $((all202 + slack)) ]]; then
    verdict="ok (stored $stored_delta = accepted $accepted_delta; load saw $all202 × 202)"
  else
    verdict="FAILED (stored $stored_delta, API accepted $accepted_delta, load 202s $all202, $drained)"
    FAILED=$((FAILED + 1))
  fi
  local non202=$((requests - ok202)) latency
  latency="$(us_ms "$p50") | $(us_ms "$p99") | $(us_ms "$p999")"
  if [[ "$service99" == - ]]; then service99=""; else service99="$(us_ms "$service99")"; fi
  ROWS+=("| $mode | $target | $rps | $latency | $service99 | $non202 | $(percent_of_core "$d_api" "$elapsed")% | $(percent_of_core "$d_consumer" "$elapsed")% | $(percent_of_core "$d_broker" "$elapsed")% | $(percent_of_core "$d_nginx" "$elapsed")% | $cpu_gen% | $verdict |")
  # The load generator does the same work per request in every run: its CPU per request is
  # a yardstick for how fast the (shared) machine is right then, and the process's CPU per
  # vote divided by it compares builds across runs far better than either figure alone.
  local api_us nginx_us load_us
  api_us="$(per_vote "$d_api" "$accepted_delta")"
  nginx_us="$(per_vote "$d_nginx" "$accepted_delta")"
  load_us="$(awk -v c="$cpu_gen" -v r="$rps" 'BEGIN { if (r > 0 && c > 0) printf "%.1f", c * 10000 / r; else print "n/a" }')"
  # (Only at the max: in the paced and open runs the generator's few percent of a core are
  # mostly its own timers, and too coarse a yardstick.)
  local api_ratio="-" nginx_ratio="-"
  if [[ "$mode" == max-* ]]; then
    api_ratio="$(ratio_of "$api_us" "$load_us")"
    [[ "$mode" == *-nginx ]] && nginx_ratio="$(ratio_of "$nginx_us" "$load_us")"
  fi
  local all_us
  all_us="$(per_vote $((d_api + d_consumer + d_broker + d_nginx)) "$accepted_delta")"
  CPU_ROWS+=("| $mode | $rps | $api_us | $(per_vote "$d_consumer" "$accepted_delta") | $(per_vote "$d_broker" "$accepted_delta") | $nginx_us | $all_us | $load_us | $api_ratio | $nginx_ratio |")
  RPS["$mode"]=$rps
  ALL_US["$mode"]="$(awk -v a="$all_us" -v l="$load_us" 'BEGIN { if (a + 0 > 0 && l + 0 > 0) printf "%.1f", a + l; else print "n/a" }')"
  if ((CEILINGS)) && [[ "$mode" == max-* ]]; then ceiling_around "$mode" after; fi
}

# percent_of_core TICKS SECONDS: CPU ticks as a percentage of one core over SECONDS.
percent_of_core() {
  echo $(( $1 * 100 / $(getconf CLK_TCK) / $2 ))
}

# fsync_probe FILE: this disk's fdatasync latency (500 × 4 KiB appended, each synced): the
# floor under every confirmed publish (RabbitMQ syncs its write-ahead log before confirming).
fsync_probe() {
  python3 - "$1" <<'PY'
import os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
samples = []
try:
    for _ in range(500):
        os.write(fd, b"x" * 4096)
        started = time.perf_counter()
        os.fdatasync(fd)
        samples.append((time.perf_counter() - started) * 1000)
finally:
    os.close(fd)
    os.unlink(sys.argv[1])
samples.sort()
print(f"fdatasync of 4 KiB on this disk: p50 {samples[250]:.2f} ms, p99 {samples[494]:.2f} ms, max {samples[-1]:.2f} ms (500 samples)")
PY
}

# rss_kb PID...: resident memory (KiB) of those processes together.
rss_kb() {
  local total=0 pid kb
  for pid in "$@"; do
    kb="$(awk '/^VmRSS:/{print $2}' "/proc/$pid/status" 2>/dev/null || true)"
    total=$((total + ${kb:-0}))
  done
  echo "$total"
}

# soak MINUTES: RATE votes/s open loop through nginx for MINUTES, the resident memory of every
# process sampled every 30 s; a table of the samples and the growth after the warm-up.
soak() {
  local minutes="$1" csv="$BENCH/soak-rss.csv" started=$SECONDS load_pid
  local before_accepted before_stored
  before_accepted="$(api_accepted)"
  before_stored="$(stored_total)"
  log "soak: $RATE votes/s through nginx for $minutes min (paredao-load), RSS sampled every 30 s into $csv"
  "$BIN/paredao-load" --url "http://127.0.0.1:$WEB_PORT" --rate "$RATE" --duration $((minutes * 60)) --warmup 0 \
    --connections "$CONNECTIONS" --max-connections "$OPEN_MAX_CONNECTIONS" --tokens "$BENCH/tokens.txt" >"$BENCH/load-soak.txt" 2>&1 &
  load_pid=$!
  echo "seconds,api_kb,consumer_kb,broker_kb,nginx_kb" >"$csv"
  local beam nginx_list
  while kill -0 "$load_pid" 2>/dev/null; do
    beam="$(beam_pid)"
    read -ra nginx_list <<<"$(nginx_pids "$BENCH/nginx" | tr '\n' ' ')"
    echo "$((SECONDS - started)),$(rss_kb "$API_PID"),$(rss_kb "$CONSUMER_PID"),$(rss_kb "$beam"),$(rss_kb "${nginx_list[@]}")" >>"$csv"
    local waited=0
    while ((waited < 30)) && kill -0 "$load_pid" 2>/dev/null; do sleep 1; waited=$((waited + 1)); done
  done
  wait "$load_pid" || true
  local result stored_after accepted_delta stored_delta drained=ok
  result="$(grep '^RESULT ' "$BENCH/load-soak.txt" | sed 's/^RESULT //')"
  stored_after="$(wait_drained)" || drained="NOT DRAINED"
  accepted_delta=$(( $(api_accepted) - before_accepted ))
  stored_delta=$(( stored_after - before_stored ))
  local verdict="ok (stored $stored_delta = accepted $accepted_delta)"
  if [[ "$drained" != ok || "$stored_delta" != "$accepted_delta" || "$accepted_delta" -lt "$(json_field "$result" accepted_overall)" ]]; then
    verdict="FAILED (stored $stored_delta, API accepted $accepted_delta, load 202s $(json_field "$result" accepted_overall), $drained)"
    FAILED=$((FAILED + 1))
  fi
  local file
  file="$BENCH/soak-$(date -u +%Y%m%dT%H%M%SZ).md"
  {
    echo "## Soak of $(date -u +%Y-%m-%dT%H:%M:%SZ): $RATE votes/s through nginx for $minutes min, open loop"
    echo
    echo "Votes: $(json_field "$result" accepted_overall) × 202; $verdict. Latency from the schedule:" \
      "p50 $(us_ms "$(json_field "$result" p50_us)"), p99 $(us_ms "$(json_field "$result" p99_us)")," \
      "p99.9 $(us_ms "$(json_field "$result" p999_us)"), max $(us_ms "$(json_field "$result" max_us)")."
    echo
    echo "Resident memory (MiB), sampled every 30 s (every 5th sample shown; all in $csv):"
    echo
    echo "| minute | VoteAPI | VoteConsumer | RabbitMQ | nginx |"
    echo "| --- | --- | --- | --- | --- |"
    awk -F, 'NR > 1 && (NR - 2) % 5 == 0 { printf "| %.1f | %.1f | %.1f | %.1f | %.1f |\n", $1/60, $2/1024, $3/1024, $4/1024, $5/1024 }' "$csv"
    echo
    # Growth over the last 10 minutes says whether a curve is flat (or has reached the
    # ceiling its setting puts on it: SQLite's page cache, the quorum WAL file), and from
    # minute 5 how much it took to get there.
    local last
    last="$(tail -n1 "$csv" | cut -d, -f1)"
    echo "Growth, MiB: from minute 5 (after the warm-up) to the end | over the last 10 minutes:"
    awk -F, -v last="$last" 'NR > 1 {
        if (!base && $1 >= 300) { base = 1; a = $2; c = $3; b = $4; n = $5 }
        if (!recent && $1 >= last - 600) { recent = 1; ra = $2; rc = $3; rb = $4; rn = $5 }
        la = $2; lc = $3; lb = $4; ln = $5 }
      END { if (base && last >= 900) printf "VoteAPI %+.1f | %+.1f, VoteConsumer %+.1f | %+.1f, RabbitMQ %+.1f | %+.1f, nginx %+.1f | %+.1f\n",
              (la-a)/1024, (la-ra)/1024, (lc-c)/1024, (lc-rc)/1024, (lb-b)/1024, (lb-rb)/1024, (ln-n)/1024, (ln-rn)/1024;
            else print "(the soak was shorter than 15 minutes)" }' "$csv"
  } | tee "$file"
  log "soak results in $file"
}

# profile_during MODE: from 5 s into the run, 10 s of perf samples (cpu-clock, 999 Hz, call
# graphs) of VoteAPI, the nginx workers and the consumer; the top symbols of each process
# (self time, % of that process's samples) go to var/bench/profile-MODE.txt; the samples stay
# in var/bench/perf-MODE.data for `perf report -i` (call graphs included) until the next run.
profile_during() {
  local mode="$1" data="$BENCH/perf-$1.data" out="$BENCH/profile-$1.txt" workers
  sleep 5
  workers="$(pgrep -d, -P "$(cat "$BENCH/nginx/nginx.pid")" || true)"
  perf record -q -e cpu-clock -F 999 -g -o "$data" -p "$API_PID,$CONSUMER_PID${workers:+,$workers}" -- sleep 10 >/dev/null 2>&1 || {
    echo "perf record failed (is linux-perf installed, kernel.perf_event_paranoid ≤ 2?)" >"$out"
    return 0
  }
  {
    local pid name
    for pid in "$API_PID" ${workers//,/ } "$CONSUMER_PID"; do
      name="$(tr -d '\0' <"/proc/$pid/comm" 2>/dev/null || echo "$pid")"
      echo "### $name (pid $pid): top symbols, self time"
      echo
      echo '```'
      perf report -i "$data" --stdio --no-children --pid "$pid" --sort symbol --percent-limit 1.5 -g none 2>/dev/null \
        | grep -E '^ +[0-9.]+%' | head -n 15 | { swift demangle --simplified 2>/dev/null || cat; } | cut -c1-160
      echo '```'
      echo
    done
  } >"$out"
}

# ratio_of A B: A / B with two decimals ("-" when either is missing or zero).
ratio_of() {
  awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else print "-" }'
}

# per_vote TICKS VOTES: CPU microseconds per vote.
per_vote() {
  awk -v t="$1" -v n="$2" -v hz="$(getconf CLK_TCK)" 'BEGIN{ if (n > 0) printf "%.1f", t * 1e6 / hz / n; else print "n/a" }'
}

# calibrate_pause URL RATE: each connection sends, waits for the answer, then pauses, so
# rate = connections / (pause + latency). A 5-second run measures the latency; the pause
# that gives RATE is connections/RATE minus that latency.
calibrate_pause() {
  local url="$1" rate="$2" pause0 output result requests seconds
  pause0=$(awk -v c="$CONNECTIONS" -v r="$rate" 'BEGIN{printf "%.3f", 1000*c/r}')
  output="$(PAREDAO_BENCH_TOKENS="$BENCH/tokens.txt" PAREDAO_BENCH_PAUSE_MS="$pause0" \
    wrk -t1 -c"$CONNECTIONS" -d5s -s "$ROOT/bench/votes.lua" "$url" 2>&1)"
  result="$(grep '^RESULT ' <<<"$output" | sed 's/^RESULT //')"
  requests="$(json_field "$result" requests)"
  seconds="$(json_field "$result" duration_us)"
  awk -v c="$CONNECTIONS" -v r="$rate" -v p="$pause0" -v n="$requests" -v us="$seconds" 'BEGIN{
    measured = n / (us / 1e6); latency = 1000 * c / measured - p; pause = 1000 * c / r - latency;
    if (pause < 0) pause = 0; printf "%.3f", pause }'
}

us_ms() {
  awk -v us="$1" 'BEGIN{printf "%.2f ms", us/1000}'
}

# ceiling_servers_start: nginx (`return 204`, and a plain proxy to the bare server) and a
# bare SwiftNIO 204 server on one event loop; they stay up, idle between ceiling runs.
ceiling_servers_start() {
  [[ -n "$NIO_PID" ]] && return 0
  mkdir -p "$BENCH/nginx-ceiling/logs" "$BENCH/nginx-ceiling/tmp"
  cat >"$BENCH/nginx-ceiling/nginx.conf" <<CONF
worker_processes 1;
pid $BENCH/nginx-ceiling/nginx.pid;
error_log $BENCH/nginx-ceiling/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $BENCH/nginx-ceiling/tmp;
  upstream bare { server 127.0.0.1:$CEIL_NIO_PORT; keepalive 1024; }
  server { listen 127.0.0.1:$CEIL_NGINX_PORT; location / { return 204; } }
  server { listen 127.0.0.1:$CEIL_PROXY_PORT;
    location / { proxy_pass http://bare; proxy_http_version 1.1; proxy_set_header Connection ""; } }
}
CONF
  # "-p DIR/", as nginx.sh starts it, so that nginx.sh stop knows the master for ours.
  nginx -p "$BENCH/nginx-ceiling/" -c "$BENCH/nginx-ceiling/nginx.conf" -e "$BENCH/nginx-ceiling/logs/error.log"
  "$BIN/paredao-ceilings" http204 "$CEIL_NIO_PORT" 1 &
  NIO_PID=$!
  wait_http "http://127.0.0.1:$CEIL_NIO_PORT/" 30 "$NIO_PID" || true
}

ceiling_servers_stop() {
  [[ -n "$NIO_PID" ]] || return 0
  stop_pid "$NIO_PID" || true
  NIO_PID=""
  "$ROOT/nginx/nginx.sh" stop --prefix "$BENCH/nginx-ceiling" >/dev/null || true
}

# ceiling KIND: one ceiling run, wrk -c$MAX_CONNECTIONS for $CEILING_SECONDS s (a 74-byte
# JSON POST); KIND is nginx (`return 204`), nio (bare SwiftNIO 204) or proxy (nginx in front
# of it). Prints "req/s p99 µs": the last is the CPU per request of the server processes
# and wrk together.
ceiling() {
  local kind="$1" url pids=()
  case "$kind" in
    nginx) url="http://127.0.0.1:$CEIL_NGINX_PORT/"; read -ra pids <<<"$(nginx_pids "$BENCH/nginx-ceiling" | tr '\n' ' ')" ;;
    nio) url="http://127.0.0.1:$CEIL_NIO_PORT/"; pids=("$NIO_PID") ;;
    proxy) url="http://127.0.0.1:$CEIL_PROXY_PORT/"; read -ra pids <<<"$(nginx_pids "$BENCH/nginx-ceiling" | tr '\n' ' ') $NIO_PID" ;;
  esac
  local ticks0 ticks output rps p99 gen
  ticks0=$(cpu_ticks "${pids[@]}")
  output="$(wrk -t1 -c"$MAX_CONNECTIONS" -d"${CEILING_SECONDS}s" --latency -s "$ROOT/bench/post74.lua" "$url" 2>&1; times)"
  ticks=$(( $(cpu_ticks "${pids[@]}") - ticks0 ))
  rps="$(awk '/^Requests\/sec:/{printf "%d", $2}' <<<"$output")"
  p99="$(awk '/^ +99%/{print $2}' <<<"$output")"
  gen="$(generator_cpu "$output" "$CEILING_SECONDS")"
  awk -v r="${rps:-0}" -v p="${p99:--}" -v t="$ticks" -v g="$gen" -v s="$CEILING_SECONDS" -v hz="$(getconf CLK_TCK)" \
    'BEGIN { if (r > 0) printf "%d %s %.1f\n", r, p, (t / hz + g / 100 * s) * 1e6 / (r * s); else printf "0 %s n/a\n", p }'
}

# ceiling_around MODE WHEN: the ceiling that MODE is compared with, measured WHEN (before or
# after it, or end); kept in CEIL_RPS/CEIL_P99/CEIL_US["MODE WHEN"].
ceiling_around() {
  local mode="$1" when="$2" kind=nio rps p99 us
  [[ "$mode" == *-nginx ]] && kind=proxy
  log "ceiling of $mode ($kind), $when, ${CEILING_SECONDS} s"
  read -r rps p99 us < <(ceiling "$kind")
  CEIL_RPS["$mode $when"]=$rps; CEIL_P99["$mode $when"]=$p99; CEIL_US["$mode $when"]=$us
}

measure_ceilings() {
  ceiling_servers_start
  log "ceilings: nginx return 204"
  read -r C_NGINX C_NGINX_P99 C_NGINX_US < <(ceiling nginx)
  # Without a max mode in this run, bare SwiftNIO and the proxy are measured once, here.
  local mode
  for mode in max-direct max-nginx; do
    [[ -n "$(ceiling_of "$mode" before rps)" ]] || ceiling_around "$mode" end
  done
  ceiling_servers_stop
  log "ceilings: RabbitMQ confirmed publishes (200,000 messages, 2,000 in flight, quorum queue)"
  C_PUBLISH="$("$BIN/paredao-ceilings" publish "amqp://paredao-admin:$(cat "$BENCH/secrets/rabbitmq-paredao-admin.password")@127.0.0.1:5692/" 200000 2000 | sed -E 's/.*"per_second":([0-9]+).*/\1/')"
}

# ceiling_of MODE WHEN FIELD: MODE's ceiling (bare SwiftNIO for max-direct, nginx → bare
# SwiftNIO for max-nginx) measured WHEN (before or after MODE, or once at the end of a run
# without MODE); FIELD is rps, p99 or us (CPU µs per request).
ceiling_of() {
  case "$3" in
    rps) echo "${CEIL_RPS[$1 $2]:-}" ;;
    p99) echo "${CEIL_P99[$1 $2]:-}" ;;
    us) echo "${CEIL_US[$1 $2]:-}" ;;
  esac
}

# ceiling_mean MODE rps|us: the mean of MODE's ceiling right before and right after it, or
# the one measured at the end when it was not measured around MODE.
ceiling_mean() {
  local mode="$1" field="$2" before after
  before="$(ceiling_of "$mode" before "$field")"
  after="$(ceiling_of "$mode" after "$field")"
  if [[ -z "$before" || -z "$after" ]]; then
    ceiling_of "$mode" end "$field"
    return 0
  fi
  awk -v a="$before" -v b="$after" -v f="$field" 'BEGIN { if (f == "rps") printf "%d", (a + b) / 2; else printf "%.1f", (a + b) / 2 }'
}

# ceiling_rows MODE LABEL: MODE's ceiling rows, right before and after it when it was
# measured around it, else the one measured at the end.
ceiling_rows() {
  local mode="$1" label="$2" when name
  local whens=(before after)
  [[ -n "$(ceiling_of "$mode" before rps)" ]] || whens=(end)
  for when in "${whens[@]}"; do
    name="$label"
    [[ "$when" == end ]] || name+=", right $when $mode"
    echo "| $name | $(ceiling_of "$mode" "$when" rps) | $(ceiling_of "$mode" "$when" p99) | $(ceiling_of "$mode" "$when" us) |"
  done
}

ratio() {
  awk -v a="$1" -v b="$2" 'BEGIN{ if (b > 0) printf "%.0f%%", 100*a/b; else print "n/a" }'
}

report() {
  local file
  file="$BENCH/results-$(date -u +%Y%m%dT%H%M%SZ).md"
  {
    echo "## Run of $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(nproc) cores ($(uname -r))"
    echo
    echo "wrk -t1, paced runs -c$CONNECTIONS, max runs and ceilings -c$MAX_CONNECTIONS, ${DURATION} s per mode, $TOKENS tokens; per-token limits raised to 100,000 votes/s (PAREDAO_VOTE_RATE), nginx per-IP limits raised; VoteAPI event loops: ${PAREDAO_EVENT_LOOPS:-one per core}."
    echo
    echo "Latency: paced-*/max-* as wrk measures it (from each request's send: closed loop);"
    echo "open*-* from each request's scheduled time (paredao-load, HdrHistogram; \"service p99\" is the same run from the send)."
    echo
    echo "| mode | path | votes/s (202) | p50 | p99 | p99.9 | service p99 | non-202 | CPU API | CPU consumer | CPU broker | CPU nginx | CPU load | stored = accepted |"
    echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    printf '%s\n' "${ROWS[@]}"
    echo
    echo "CPU microseconds per accepted vote (user + system, over the run); the load generator's per"
    echo "request, and at the max VoteAPI's and nginx's per vote divided by it (steadier across runs on a shared machine):"
    echo
    echo "| mode | votes/s | VoteAPI | VoteConsumer | RabbitMQ | nginx | all four | load | VoteAPI ÷ load | nginx ÷ load |"
    echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    printf '%s\n' "${CPU_ROWS[@]}"
    local profile
    for profile in "$BENCH"/profile-*.txt; do
      [[ -f "$profile" ]] || continue
      echo
      echo "Profile during $(basename "$profile" .txt | sed 's/^profile-//') (perf, 10 s):"
      echo
      cat "$profile"
    done
    if [[ -n "$FSYNC" ]]; then
      echo
      echo "The floor under a confirmed vote: $FSYNC."
    fi
    if ((CEILINGS)); then
      echo
      echo "| ceiling (same run) | req/s | p99 | CPU µs per request (server, nginx, wrk) |"
      echo "| --- | --- | --- | --- |"
      echo "| nginx \`return 204\` | $C_NGINX | $C_NGINX_P99 | $C_NGINX_US |"
      ceiling_rows max-direct "bare SwiftNIO 204"
      ceiling_rows max-nginx "nginx → bare SwiftNIO 204"
      echo "| RabbitMQ confirmed publishes (msg/s) | $C_PUBLISH | | |"
      echo
      local proxy nio
      proxy="$(ceiling_mean max-nginx rps)"
      nio="$(ceiling_mean max-direct rps)"
      local parts=()
      [[ -n "${RPS[max-nginx]:-}" ]] && parts+=("max through nginx = $(ratio "${RPS[max-nginx]}" "$proxy") of nginx → bare SwiftNIO ($proxy req/s)")
      [[ -n "${RPS[max-direct]:-}" ]] && parts+=("max direct = $(ratio "${RPS[max-direct]}" "$nio") of bare SwiftNIO ($nio req/s)" \
        "max direct = $(ratio "${RPS[max-direct]}" "$C_PUBLISH") of RabbitMQ's confirmed-publish rate (one vote per message)")
      if ((${#parts[@]})); then
        local line="" part
        for part in "${parts[@]}"; do line+="${line:+; }$part"; done
        echo "Ratios (to the mean of a mode's ceiling right before and right after it): $line."
      fi
      local mode us
      for mode in max-nginx max-direct; do
        [[ -n "${ALL_US[$mode]:-}" ]] || continue
        us="$(ceiling_mean "$mode" us)"
        echo
        echo "CPU per request, $mode: its ceiling ${us} µs, the vote path ${ALL_US[$mode]} µs (the four services and the load generator);" \
          "with the cores as busy in both, the ratio would be $(ratio "$us" "${ALL_US[$mode]}")."
      done
    fi
  } | tee "$file"
  log "results in $file"
}

main() {
  while (($#)); do
    case "$1" in
      --duration) DURATION="$2"; shift 2 ;;
      --rate) RATE="$2"; shift 2 ;;
      --connections) CONNECTIONS="$2"; shift 2 ;;
      --max-connections) MAX_CONNECTIONS="$2"; shift 2 ;;
      --tokens) TOKENS="$2"; shift 2 ;;
      --modes) MODES="$2"; shift 2 ;;
      --no-ceilings) CEILINGS=0; shift ;;
      --soak) SOAK_MINUTES="$2"; shift 2 ;;
      --profile) PROFILE=1; shift ;;
      -h|--help) usage; return 0 ;;
      *) echo "unknown option: $1" >&2; usage >&2; return 2 ;;
    esac
  done
  command -v wrk >/dev/null || { echo "wrk is missing: run ./preflight.sh" >&2; return 1; }
  if [[ -n "${PAREDAO_BENCH_BIN:-}" ]]; then
    # Another build's binaries (an A/B in the same window: copy .build/release/VoteAPI,
    # VoteConsumer and paredao-* of the older build to a folder first).
    BIN="$PAREDAO_BENCH_BIN"
    local tool
    for tool in VoteAPI VoteConsumer paredao-token paredao-load paredao-ceilings; do
      [[ -x "$BIN/$tool" ]] || { echo "PAREDAO_BENCH_BIN=$BIN has no $tool" >&2; return 2; }
    done
  else
    swift build -c release >&2
    BIN="$(swift build -c release --show-bin-path)"
  fi
  declare -gA RPS=() ALL_US=() CEIL_RPS=() CEIL_P99=() CEIL_US=()
  ROWS=()
  CPU_ROWS=()
  FSYNC=""
  CEILING_SECONDS=$(( DURATION < 15 ? DURATION : 15 ))
  trap cleanup EXIT
  start_stack
  if ((SOAK_MINUTES > 0)); then
    soak "$SOAK_MINUTES"
    if ((FAILED)); then log "the soak did not store exactly the accepted votes"; return 1; fi
    return 0
  fi
  local mode
  FSYNC="$(fsync_probe "$BENCH/fsync-probe")"
  log "$FSYNC"
  for mode in $MODES; do run_mode "$mode"; done
  if ((CEILINGS)); then measure_ceilings; fi
  report
  if ((FAILED)); then log "$FAILED run(s) did not store exactly the accepted votes"; return 1; fi
}

main "$@"
