#!/usr/bin/env bash
# Install what monitoring/ and Tests/monitoring/ need, from Debian's packages:
#   prometheus (with promtool), prometheus-alertmanager (with amtool), lnav,
#   curl; with --browser also chromium (console rendering test), with --lint
#   also shellcheck. Idempotent: installs only what is missing.
# Usage: monitoring/install-deps.sh [--browser] [--lint]
set -euo pipefail

packages=(prometheus prometheus-alertmanager lnav curl)
for arg in "$@"; do
    case "$arg" in
        --browser) packages+=(chromium) ;;
        --lint) packages+=(shellcheck) ;;
        -h|--help) sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "install-deps.sh: unknown option $arg" >&2; exit 2 ;;
    esac
done

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done
if [[ ${#missing[@]} -eq 0 ]]; then
    echo "install-deps.sh: all present (${packages[*]})"
    exit 0
fi
SUDO=()
if [[ "$(id -u)" != 0 ]]; then SUDO=(sudo); fi
echo "install-deps.sh: installing ${missing[*]}"
"${SUDO[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps.sh: done"
