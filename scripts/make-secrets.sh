#!/usr/bin/env bash
# Generates the secrets a fresh machine needs; never overwrites existing ones.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

usage() {
  cat <<'TXT'
Usage: scripts/make-secrets.sh [--dir DIR] [--rotate]

Creates, if missing (mode 600):
  DIR/token-keys       HMAC keys for challenges and session tokens (id:base64 per line)
  DIR/panel-password   password of the producers' panel (user "produtor")
  DIR/admin-token      the admin API's credential, "produtor:SECRET" (the panel's admin
                       section asks for it; the API reads PAREDAO_ADMIN_TOKEN_FILE)
  DIR/rabbitmq-USER.password   broker passwords, one per role (scripts/rabbitmq.sh start
                       creates the users with them): paredao-api (publishes votes),
                       paredao-consumer (consumes them), paredao-monitor (reads metrics),
                       paredao-admin (operators, tests and tools)
DIR defaults to $PAREDAO_SECRETS_DIR, else var/secrets. --rotate appends a new token key
(the newest signs; older ones still verify until you delete their line).
TXT
}

random_secret() {
  head -c 32 /dev/urandom | base64 -w0
}

# URL-safe (it may go into an amqp:// URL), no padding.
random_password() {
  head -c 18 /dev/urandom | base64 -w0 | tr '+/' '-_'
}

# make_password FILE: writes a new password into FILE unless it holds one.
make_password() {
  if [[ ! -s "$1" ]]; then
    random_password >"$1"
    echo "created $1"
  fi
}

main() {
  local dir="${PAREDAO_SECRETS_DIR:-$ROOT/var/secrets}" rotate=0 user
  while (($#)); do
    case "$1" in
      --dir) dir="$2"; shift 2 ;;
      --rotate) rotate=1; shift ;;
      -h|--help) usage; return 0 ;;
      *) echo "unknown option: $1" >&2; usage >&2; return 2 ;;
    esac
  done
  mkdir -p "$dir"
  chmod 700 "$dir"
  umask 077
  local keys="$dir/token-keys"
  if [[ ! -s "$keys" ]]; then
    printf '# id:base64 secret; the last line signs, all lines verify\n1:%s\n' "$(random_secret)" >"$keys"
    echo "created $keys"
  elif ((rotate)); then
    local last
    last="$(grep -E '^[0-9]+:' "$keys" | tail -n1 | cut -d: -f1)"
    printf '%d:%s\n' "$((last + 1))" "$(random_secret)" >>"$keys"
    echo "added token key $((last + 1)) to $keys"
  fi
  make_password "$dir/panel-password"
  if [[ ! -s "$dir/admin-token" ]]; then
    printf 'produtor:%s\n' "$(random_password)" >"$dir/admin-token"
    echo "created $dir/admin-token"
  fi
  for user in paredao-api paredao-consumer paredao-monitor paredao-admin; do
    make_password "$dir/rabbitmq-$user.password"
  done
}

main "$@"
