#!/usr/bin/env bash
# Builds and runs the VoteShared microbenchmarks (package-benchmark) in bench/micro.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: bench/micro/run.sh [--smoke] [--filter REGEX] [--] [extra `swift package benchmark` options]

Builds the ParedaoMicrobenchmarks package (release) and runs its benchmarks:
SessionToken.verify, Challenge.verify, vote request decoding, VoteMessage
decode/encode, Totals folding and building a batch's MongoDB commands. Results print as tables: wall clock per
operation (ns), throughput and mallocs per operation.

Options:
  --smoke         Run every benchmark for a few iterations only (about 1 s in all
                  once built): checks that the benchmarks build, their inputs
                  round-trip and nothing throws. Timings from it mean nothing.
  --filter REGEX  Run only the benchmarks whose whole name matches REGEX
                  (e.g. 'SessionToken.*'; a pattern that matches nothing runs nothing).
  -h, --help      Show this help.

Anything after `--` goes to the benchmark plugin as is (e.g. `-- --format markdown`).

Environment:
  PAREDAO_BENCH_SCRATCH  build folder (default: bench/micro/.build)

Exit status is non-zero when the build fails, a benchmark throws or crashes, or
(without --filter) a benchmark is missing from the output.

A first build from clean takes several minutes on 2 cores (swift-nio, swift-crypto
and the benchmark tooling in release mode); later runs reuse the build folder.
EOF
}

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
scratch="${PAREDAO_BENCH_SCRATCH:-$here/.build}"
smoke=0
plugin_args=()

while (($# > 0)); do
    case "$1" in
        -h | --help) usage; exit 0 ;;
        --smoke) smoke=1 ;;
        --filter)
            (($# >= 2)) || { echo "run.sh: --filter needs a regular expression" >&2; exit 64; }
            plugin_args+=(--filter "$2")
            shift
            ;;
        --) shift; plugin_args+=("$@"); break ;;
        *) echo "run.sh: unknown option '$1' (see --help)" >&2; exit 64 ;;
    esac
    shift
done

# Every benchmark the suite defines; --smoke fails if one of them did not report.
expected=(
    "SessionToken.verify"
    "SessionToken.verify (remembered token)"
    "Challenge.verify (difficulty 16)"
    "Vote request decode (FlatJSON.parseObject + VoteID)"
    "VoteMessage.decode (64 votes)"
    "VoteMessage.encode (64 votes)"
    "Totals fold + json (3 participants x 24 hours)"
    "MongoDB batch commands (10,000 votes -> BSON)"
)

command=(swift package --package-path "$here" --scratch-path "$scratch" benchmark --no-progress "${plugin_args[@]}")

if ((smoke == 1)); then
    export PAREDAO_BENCH_SMOKE=1
fi

# The plugin exits 0 when a benchmark closure throws (it only prints "… failed with …"),
# so the output is checked as well as the exit status.
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
status=0
"${command[@]}" 2>&1 | tee "$log" || status=$?
if ((status != 0)); then
    echo "run.sh: benchmark run failed (exit $status)" >&2
    exit "$status"
fi
if grep -q "failed with\|failed during runtime\|crashed" "$log"; then
    echo "run.sh: a benchmark failed (see above)" >&2
    exit 1
fi
# Without --filter or extra options, every benchmark must have printed its table.
if ((${#plugin_args[@]} == 0)); then
    missing=0
    for name in "${expected[@]}"; do
        if ! grep -qxF "$name" "$log"; then
            echo "run.sh: benchmark '$name' did not report" >&2
            missing=1
        fi
    done
    ((missing == 0)) || exit 1
    if ((smoke == 1)); then
        echo "run.sh: smoke run passed: ${#expected[@]} benchmarks ran (smoke timings are not meaningful)"
    else
        echo "run.sh: ${#expected[@]} benchmarks ran"
    fi
fi
