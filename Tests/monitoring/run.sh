#!/usr/bin/env bash
# Run the monitoring tests: bash Tests/monitoring/run.sh [TestClass[.test_name] ...]
# Ends with "N passed, N failed"; exit status 0 only when nothing failed.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$HERE"
exec python3 "$HERE/test_monitoring.py" "$@"
