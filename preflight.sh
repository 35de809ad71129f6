#!/usr/bin/env bash
# Installs what Paredão needs on a fresh Debian bookworm machine and builds it (release).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$ROOT"

# Build and run: C libraries, the broker, the web server, curl for the scripts.
RUNTIME_PACKAGES=(librabbitmq-dev libsqlite3-dev libmongoc-dev libbson-dev pkg-config
  rabbitmq-server nginx-light gettext-base openssl curl libjs-chart.js supervisor)
# Observability, load and browser tests.
TOOL_PACKAGES=(prometheus prometheus-alertmanager lnav wrk chromium chromium-driver
  python3-selenium python3-pytest fonts-dejavu-core shellcheck python3-venv python3-pip linux-perf)

usage() {
  cat <<'TXT'
Usage: ./preflight.sh [--no-build] [--runtime-only]
       ./preflight.sh ansible [ANSIBLE-PLAYBOOK OPTION...]

Installs Debian packages (apt-get; needs root) and the fault suite's Python requirements
(pip), generates secrets under var/secrets (never overwriting them) and builds the Swift
package in release mode.
  --no-build       install and generate secrets only
  --runtime-only   skip the observability, load-test and browser tools

ansible: deploys with Ansible instead (ansible/site.yml, inventories/single-host: this
machine, local connection): installs the pinned ansible-core in var/tools/ansible, then
the playbook installs the packages, builds the release binaries, installs them under
/opt/paredao and runs RabbitMQ, VoteConsumer, VoteAPI, nginx and Prometheus as their own
users (systemd where it runs, else supervisord). Options go to ansible-playbook, e.g.
  ./preflight.sh ansible -e paredao_api_instances=2
TXT
}

install_packages() {
  local missing=() package
  for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
  done
  ((${#missing[@]} == 0)) && return 0
  echo "[preflight] installing: ${missing[*]}"
  local sudo=()
  ((EUID == 0)) || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

check_toolchain() {
  if ! command -v swift >/dev/null; then
    echo "[preflight] swift is not on PATH; install Swift 6.2 or later first" >&2
    return 1
  fi
}

deploy_with_ansible() {
  check_toolchain
  install_packages python3-venv python3-apt
  "$ROOT/ansible/tools.sh" install
  echo "[preflight] ansible-playbook ansible/site.yml (this machine)"
  cd "$ROOT/ansible"
  "$("$ROOT/ansible/tools.sh" bin)/ansible-playbook" -i inventories/single-host/hosts.yml site.yml "$@"
}

main() {
  local build=1 tools=1
  if [[ "${1:-}" == ansible ]]; then
    shift
    deploy_with_ansible "$@"
    return
  fi
  while (($#)); do
    case "$1" in
      --no-build) build=0; shift ;;
      --runtime-only) tools=0; shift ;;
      -h|--help) usage; return 0 ;;
      *) echo "unknown option: $1" >&2; usage >&2; return 2 ;;
    esac
  done
  check_toolchain
  install_packages "${RUNTIME_PACKAGES[@]}"
  if ((tools)); then
    install_packages "${TOOL_PACKAGES[@]}"
    # schemathesis, openapi-spec-validator and Swagger UI (PyPI, pinned) in var/tools.
    "$ROOT/scripts/contract-tools.sh" install
    # The fault suite's raw AMQP client (pika, Tests/faults/requirements.txt).
    "$ROOT/Tests/faults/run.sh" --setup
    # The MongoDB wire suite's mockupdb, pymongo and pika (var/tools/mongo-venv).
    "$ROOT/Tests/mongo/run.sh" --setup
  fi
  "$ROOT/scripts/make-secrets.sh"
  if ((build)); then
    echo "[preflight] swift build -c release"
    swift build -c release
  fi
  echo "[preflight] ready: ./run.sh starts the stack, ./run.sh test runs the tests"
}

main "$@"
