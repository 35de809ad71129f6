#!/usr/bin/env bash
# Writes an htpasswd file for the producers' panel.
#   make-htpasswd.sh USER PASSWORD_FILE OUT
# PASSWORD_FILE holds the password (first line). If it does not exist, a random
# password is generated and written there (mode 600). No secret lives in the repo.
set -euo pipefail

usage() {
    cat <<USAGE
Usage: $(basename "$0") USER PASSWORD_FILE OUT

  USER           login name for the panel (letters, digits, '.', '_', '-')
  PASSWORD_FILE  file with the password on its first line; created with a random
                 password (mode 600) when it does not exist
  OUT            htpasswd file to write (apr1 hash, mode 600), e.g. for
                 render.sh --htpasswd OUT
USAGE
}

case "${1:-}" in -h|--help) usage; exit 0 ;; esac
[[ $# -eq 3 ]] || { usage >&2; exit 2; }
user="$1" password_file="$2" out="$3"

[[ "$user" =~ ^[A-Za-z0-9._-]+$ ]] || { echo "make-htpasswd.sh: bad user name: $user" >&2; exit 2; }

mkdir -p "$(dirname "$password_file")" "$(dirname "$out")"
umask 077
if [[ ! -e "$password_file" ]]; then
    if command -v openssl >/dev/null; then
        password="$(openssl rand -base64 24 | tr -dc 'A-Za-z0-9' | cut -c1-24)"
    else
        password="$(head -c 64 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | cut -c1-24)"
    fi
    printf '%s\n' "$password" > "$password_file"
    echo "make-htpasswd.sh: generated a random password in ${password_file}" >&2
fi
IFS= read -r password < "$password_file" || true
[[ -n "$password" ]] || { echo "make-htpasswd.sh: empty password in ${password_file}" >&2; exit 2; }

tmp="$(mktemp "${out}.XXXXXX")"
trap 'rm -f "$tmp"' EXIT
if command -v openssl >/dev/null; then
    hash="$(printf '%s\n' "$password" | openssl passwd -apr1 -stdin)"
else
    # {SSHA}: base64(sha1(password + salt) + salt), understood by nginx.
    hash="$(PASSWORD="$password" python3 -c '
import base64, hashlib, os
salt = os.urandom(8)
pw = os.environ["PASSWORD"].encode()
print("{SSHA}" + base64.b64encode(hashlib.sha1(pw + salt).digest() + salt).decode())')"
fi
printf '%s:%s\n' "$user" "$hash" > "$tmp"
mv -f "$tmp" "$out"
trap - EXIT
echo "make-htpasswd.sh: wrote ${out} for user ${user}" >&2
