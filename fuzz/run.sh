#!/usr/bin/env bash
# Builds the libFuzzer targets in fuzz/ and runs each one for a while on a copy of its seed
# corpus; exits non-zero when any target crashes, traps, leaks or times out.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: fuzz/run.sh [--seconds N] [--jobs N] [--no-build] [target…]

Builds the fuzz package (debug, -sanitize=fuzzer,address: libFuzzer coverage and
AddressSanitizer on every Swift module, VoteShared included) and runs each target for
N seconds with -rss_limit_mb=2048 -timeout=5. Targets (default: all):

  vote-body       FlatJSON.parseObject + the participant/voteId extraction of a vote
  session-token   SessionToken.verify with a fixed keyring, network and clock
  challenge       Challenge.verify on any text and counter
  base64url       Base64URL.decode / encode
  vote-message    VoteMessage.decode, and encode(decode(x)) == x
  client-network  ClientNetwork(address:) against inet_pton
  http-request    HTTPRequestParser: the same framing in any reads, and as NIO's decoder frames it

Each target starts from fuzz/corpus/<target>/ copied into var/fuzz/<target>/corpus/,
which keeps what the fuzzer finds across runs (never written back into the repository).
A crash, leak or timeout leaves its input in var/fuzz/<target>/ and the command that
replays it is printed. Prints executions per second and coverage per target, then
"fuzz: N passed, N failed" (targets).

Options:
  --seconds N  how long each target runs (default 60)
  --jobs N     targets run at the same time (default 1; 2 on a 2-core machine halves
               the wall clock, each target then gets one core)
  --no-build   use the binaries already built
  -h, --help   show this help

Environment:
  PAREDAO_FUZZ_SCRATCH  build folder (default: fuzz/.build)
  PAREDAO_FUZZ_VAR      where corpora and crash files go (default: var/fuzz)

Long run (an hour per target, both cores):  fuzz/run.sh --seconds 3600 --jobs 2
Replay one input with its outcome traced:   PAREDAO_FUZZ_TRACE=1 fuzz/.build/debug/FuzzVoteBody FILE
EOF
}

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
scratch="${PAREDAO_FUZZ_SCRATCH:-$here/.build}"
var="${PAREDAO_FUZZ_VAR:-$root/var/fuzz}"
seconds=60
jobs=1
build=1
all_targets=(vote-body session-token challenge base64url vote-message client-network http-request)
targets=()

# The executable of a target name (vote-body -> FuzzVoteBody).
binary_of() {
    case "$1" in
        vote-body) echo FuzzVoteBody ;;
        session-token) echo FuzzSessionToken ;;
        challenge) echo FuzzChallenge ;;
        base64url) echo FuzzBase64URL ;;
        vote-message) echo FuzzVoteMessage ;;
        client-network) echo FuzzClientNetwork ;;
        http-request) echo FuzzHTTPRequest ;;
        *) return 1 ;;
    esac
}

parse_args() {
    while (($# > 0)); do
        case "$1" in
            -h | --help) usage; exit 0 ;;
            --seconds | --jobs)
                [[ $# -ge 2 && "$2" =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: $1 needs a positive whole number" >&2; exit 64; }
                if [[ "$1" == --seconds ]]; then seconds="$2"; else jobs="$2"; fi
                shift
                ;;
            --no-build) build=0 ;;
            -*) echo "run.sh: unknown option '$1' (see --help)" >&2; exit 64 ;;
            *)
                binary_of "$1" >/dev/null || { echo "run.sh: unknown target '$1' (see --help)" >&2; exit 64; }
                targets+=("$1")
                ;;
        esac
        shift
    done
    if ((${#targets[@]} == 0)); then targets=("${all_targets[@]}"); fi
}

build_targets() {
    echo "[fuzz] building (debug, -sanitize=fuzzer,address)"
    swift build --package-path "$here" --scratch-path "$scratch" -c debug -Xswiftc -sanitize=fuzzer,address
}

# Runs one target; its libFuzzer output goes to var/fuzz/<target>/last-run.log.
run_target() {
    local target="$1" binary dir
    binary="$scratch/debug/$(binary_of "$target")"
    dir="$var/$target"
    mkdir -p "$dir/corpus"
    cp -R "$here/corpus/$target/." "$dir/corpus/"
    local options=(-max_total_time="$seconds" -rss_limit_mb=2048 -timeout=5 -print_final_stats=1 -artifact_prefix="$dir/")
    if [[ -f "$here/dict/$target.dict" ]]; then options+=(-dict="$here/dict/$target.dict"); fi
    # The Swift runtime's backtracer would wait on a crash; libFuzzer reports it instead.
    SWIFT_BACKTRACE=enable=no ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}" \
        "$binary" "${options[@]}" "$dir/corpus" >"$dir/last-run.log" 2>&1
}

# One line per target from its log: executions per second, coverage and corpus size.
report_target() {
    local target="$1" status="$2" dir="$var/$1" binary done_line execs speed
    binary="$scratch/debug/$(binary_of "$target")"
    done_line="$(grep -E '^#[0-9]+[[:space:]]+DONE' "$dir/last-run.log" | tail -n 1 || true)"
    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/last-run.log" | tail -n 1)"
    speed="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$dir/last-run.log" | tail -n 1)"
    local cov ft corp
    cov="$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$done_line")"
    ft="$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$done_line")"
    corp="$(sed -n 's/.* corp: \([0-9]*\/[0-9]*[kKmM]*b\).*/\1/p' <<<"$done_line")"
    if ((status == 0)); then
        printf '  %-15s passed  %s exec/s  cov %s  ft %s  corpus %s  (%s runs in %s s)\n' \
            "$target" "${speed:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "${execs:-?}" "$seconds"
        return 0
    fi
    printf '  %-15s FAILED  (exit %s; log: %s)\n' "$target" "$status" "$dir/last-run.log"
    grep -E 'ERROR: |Fatal error|property violated|SUMMARY' "$dir/last-run.log" | head -n 5 | sed 's/^/      /' || true
    local artifact
    artifact="$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$dir/last-run.log" | tail -n 1)"
    if [[ -n "$artifact" ]]; then
        echo "      input kept: $artifact"
        echo "      reproduce:  SWIFT_BACKTRACE=enable=no PAREDAO_FUZZ_TRACE=1 $binary $artifact"
    fi
    return 1
}

main() {
    parse_args "$@"
    if ((build == 1)); then build_targets; fi
    local target
    for target in "${targets[@]}"; do
        [[ -x "$scratch/debug/$(binary_of "$target")" ]] || { echo "run.sh: $target is not built (run without --no-build)" >&2; exit 1; }
    done
    echo "[fuzz] ${#targets[@]} targets, ${seconds} s each, ${jobs} at a time; corpora and findings in $var"
    # Start targets up to --jobs at a time; collect each exit status by its PID.
    local -A pid_of=() status_of=()
    local running=()
    for target in "${targets[@]}"; do
        while ((${#running[@]} >= jobs)); do
            wait_first
        done
        run_target "$target" &
        pid_of[$target]=$!
        running+=("$target")
    done
    while ((${#running[@]} > 0)); do wait_first; done
    local passed=0 failed=0
    echo "[fuzz] results"
    for target in "${targets[@]}"; do
        if report_target "$target" "${status_of[$target]}"; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
    done
    echo "fuzz: $passed passed, $failed failed"
    ((failed == 0))
}

# Waits for the oldest running target and records its status (a target runs for the same
# time as the others, so the oldest is the next to end).
wait_first() {
    local target="${running[0]}" status=0
    wait "${pid_of[$target]}" || status=$?
    status_of[$target]=$status
    running=("${running[@]:1}")
}

main "$@"
