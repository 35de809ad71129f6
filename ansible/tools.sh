#!/usr/bin/env bash
# ansible-core and ansible-lint, pinned, in a virtual environment of their own (var/tools/ansible).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=SCRIPTDIR/../scripts/lib/venv.sh
source "$ROOT/scripts/lib/venv.sh"
VENV="$ROOT/var/tools/ansible"
# Pinned: a new ansible-lint may add rules (and failures) on its own. ansible-core 2.19 is
# the newest that runs on Python 3.11 (2.20 wants 3.12).
PACKAGES=(ansible-core==2.19.14 ansible-lint==26.10.1)

usage() {
  cat <<'TXT'
Usage: ansible/tools.sh install|check|bin

  install  create var/tools/ansible (python3 -m venv) and pip-install the pinned
           ansible-core and ansible-lint (nothing to do when they are there)
  check    exit 0 when they are installed
  bin      print the environment's bin folder (ansible-playbook, ansible-lint)
TXT
}

installed() {
  [[ -x "$VENV/bin/ansible-playbook" && -x "$VENV/bin/ansible-lint" ]] || return 1
  venv_has_pins "$VENV" "${PACKAGES[@]}"
}

install() {
  if installed; then return 0; fi
  echo "[ansible-tools] pip install ${PACKAGES[*]}"
  venv_pip_install "$VENV" "${PACKAGES[@]}"
  installed
}

main() {
  case "${1:-}" in
    install) install ;;
    check) installed ;;
    bin) echo "$VENV/bin" ;;
    -h|--help) usage ;;
    *) usage >&2; exit 2 ;;
  esac
}

main "$@"
