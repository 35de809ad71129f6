# shellcheck shell=bash
# Pinned Python tools in virtual environments of their own (var/tools/...): what
# ansible/tools.sh and scripts/contract-tools.sh share. Source it; it only defines functions.

# venv_has_pins VENV NAME==VERSION...: exit 0 when the environment exists and has exactly
# those versions installed.
venv_has_pins() {
  local venv="$1"
  shift
  [[ -x "$venv/bin/python" ]] || return 1
  "$venv/bin/python" - "$@" <<'PY'
import sys
from importlib.metadata import version, PackageNotFoundError
for spec in sys.argv[1:]:
    name, wanted = spec.split("==")
    try:
        if version(name) != wanted:
            sys.exit(1)
    except PackageNotFoundError:
        sys.exit(1)
PY
}

# venv_pip_install VENV PIP-ARGUMENT...: creates the environment unless it exists (with the
# first python3 on PATH, else Debian's, whose venv module preflight.sh installs), then
# pip-installs into it, quietly.
venv_pip_install() {
  local venv="$1"
  shift
  if [[ ! -x "$venv/bin/python" ]]; then
    mkdir -p "$(dirname "$venv")"
    python3 -m venv "$venv" 2>/dev/null || { rm -rf "$venv"; /usr/bin/python3 -m venv "$venv"; }
  fi
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$@"
}
