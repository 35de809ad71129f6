#!/usr/bin/env bash
# The contract suite's Python tools in a virtual environment of their own (var/tools/venv)
# and Swagger UI's static files for nginx's /api/docs/ (var/tools/swagger-ui).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=SCRIPTDIR/lib/venv.sh
source "$ROOT/scripts/lib/venv.sh"
TOOLS="$ROOT/var/tools"
VENV="$TOOLS/venv"
# Pinned: a new schemathesis may add checks (and failures) on its own.
PACKAGES=(schemathesis==4.32.5 openapi-spec-validator==0.9.0)
# Swagger UI 5 (renders OpenAPI 3.1) as static files: drf-spectacular-sidecar ships the
# swagger-ui-dist build (5.33.1), installed without its Django dependency, which only its
# Django app needs. swagger-ui-bundle 1.1.0, the newest, ships Swagger UI 4.15.5, which
# answers "Unable to render this definition" to any 3.1 document.
SWAGGER_UI_PACKAGE=drf-spectacular-sidecar==2026.10.1

usage() {
  cat <<'TXT'
Usage: scripts/contract-tools.sh install|check|python

  install  create var/tools/venv (python3 -m venv), pip-install the pinned schemathesis and
           openapi-spec-validator, and Swagger UI 5's static files (from the
           drf-spectacular-sidecar package, without Django) copied to var/tools/swagger-ui
           (served by nginx at /api/docs/swagger-ui/)
  check    exit 0 when all of that is in place
  python   print the path of the environment's python
TXT
}

installed() {
  [[ -f "$TOOLS/swagger-ui/swagger-ui-bundle.js" ]] || return 1
  venv_has_pins "$VENV" "${PACKAGES[@]}" "$SWAGGER_UI_PACKAGE"
}

install() {
  if installed; then return 0; fi
  echo "[contract-tools] pip install ${PACKAGES[*]}"
  venv_pip_install "$VENV" "${PACKAGES[@]}"
  venv_pip_install "$VENV" --no-deps "$SWAGGER_UI_PACKAGE"
  local dist
  dist="$("$VENV/bin/python" -c 'import importlib.util, os; print(os.path.dirname(importlib.util.find_spec("drf_spectacular_sidecar").origin))')"
  dist="$dist/static/drf_spectacular_sidecar/swagger-ui-dist"
  rm -rf "$TOOLS/swagger-ui"
  mkdir -p "$TOOLS/swagger-ui"
  cp "$dist"/swagger-ui-bundle.js "$dist"/swagger-ui.css "$dist"/favicon-32x32.png "$TOOLS/swagger-ui/"
  installed
}

main() {
  case "${1:-}" in
    install) install ;;
    check) installed ;;
    python) echo "$VENV/bin/python" ;;
    -h|--help) usage ;;
    *) usage >&2; exit 2 ;;
  esac
}

main "$@"
