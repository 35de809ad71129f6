#!/usr/bin/env bash
# Renders nginx/nginx.conf.template into a prefix folder, ready for
#   nginx -p PREFIX -c PREFIX/nginx.conf -e PREFIX/logs/error.log
# Start/stop/reload: see nginx/nginx.sh.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

usage() {
    cat <<USAGE
Usage: $(basename "$0") --prefix DIR [options]

Renders ${here}/nginx.conf.template into DIR/nginx.conf and creates DIR/logs,
DIR/tmp and DIR/cache. Nothing is started (see nginx.sh).

Options:
  --prefix DIR            folder for the rendered config, pid file, logs, temp and cache (required)
  --listen ADDR           address nginx listens on (default 127.0.0.1:8000)
  --api LIST              VoteAPI instances, host:port or unix:/PATH (the API's
                          PAREDAO_API_SOCKET), comma-separated; may be repeated
                          (--api A --api B = --api A,B; default 127.0.0.1:8080). The API
                          believes X-Real-IP only on its unix socket (or from a TCP peer in
                          its PAREDAO_TRUSTED_PROXIES), so a local nginx should use the
                          socket. With two or more, votes are routed by a consistent hash of
                          their session (every vote of a session reaches the same instance)
  --htpasswd FILE         htpasswd file for the producers' panel (default DIR/htpasswd;
                          see make-htpasswd.sh)
  --frontend DIR          static pages (default: the repository's frontend/)
  --chartjs DIR           Chart.js folder from libjs-chart.js (default /usr/share/javascript/chart.js)
  --swagger-ui DIR        Swagger UI's static files for /api/docs/ (default: the repository's
                          var/tools/swagger-ui, installed by scripts/contract-tools.sh)
  --workers N|auto        worker_processes (default auto)
  --worker-connections N  worker_connections (default 4096)
  --vote-rate RATE        per-IP limit on POST /api/v1/votes (default 50r/s)
  --vote-burst N          burst for votes (default 100)
  --session-rate RATE     per-IP limit on challenges and sessions (default 2r/s)
  --session-burst N       burst for challenges and sessions (default 10)
  --admin-rate RATE       per-IP limit on /api/v1/admin/, a zone of its own (default 5r/s)
  --admin-burst N         burst for the admin routes (default 40)
  --admin-allow LIST      producer networks that may reach /api/v1/admin/, comma-separated
                          addresses or CIDRs (e.g. 10.20.0.0/16,2001:db8:7::/48); any other
                          address gets 403 forbidden_network. May be repeated. Default: off
                          (every address; the API's credential still guards the routes)
  --conn-limit N          open connections per client address (IPv6: per /48), 1–65535 (default 128)
  --user USER[:GROUP]     worker user when started as root (default: the user running this)
  --check                 run 'nginx -t' on the rendered config
  -h, --help              show this help

Load tests from one address should raise the per-IP limits, e.g.
  --vote-rate 100000r/s --vote-burst 100000 --session-rate 1000r/s --session-burst 1000
USAGE
}

die() { echo "render.sh: $*" >&2; exit 2; }

prefix=""
listen="127.0.0.1:8000"
api=""
htpasswd=""
frontend="$(cd "${here}/.." && pwd)/frontend"
chartjs="/usr/share/javascript/chart.js"
swagger_ui="$(cd "${here}/.." && pwd)/var/tools/swagger-ui"
api_docs="$(cd "${here}/.." && pwd)/docs/api-docs"
openapi="$(cd "${here}/.." && pwd)/docs/openapi.yaml"
workers="auto"
worker_connections="4096"
vote_rate="50r/s"
vote_burst="100"
session_rate="2r/s"
session_burst="10"
admin_rate="5r/s"
admin_burst="40"
admin_allow=""
conn_limit="128"
user_spec=""
check=0

need_arg() { [[ $# -ge 2 && -n "$2" ]] || die "$1 needs a value"; }

while [[ $# -gt 0 ]]; do
    case "$1" in
        --prefix) need_arg "$@"; prefix="$2"; shift 2 ;;
        --listen) need_arg "$@"; listen="$2"; shift 2 ;;
        --api) need_arg "$@"; api="${api:+$api,}$2"; shift 2 ;;
        --htpasswd) need_arg "$@"; htpasswd="$2"; shift 2 ;;
        --frontend) need_arg "$@"; frontend="$2"; shift 2 ;;
        --chartjs) need_arg "$@"; chartjs="$2"; shift 2 ;;
        --swagger-ui) need_arg "$@"; swagger_ui="$2"; shift 2 ;;
        --workers) need_arg "$@"; workers="$2"; shift 2 ;;
        --worker-connections) need_arg "$@"; worker_connections="$2"; shift 2 ;;
        --vote-rate) need_arg "$@"; vote_rate="$2"; shift 2 ;;
        --vote-burst) need_arg "$@"; vote_burst="$2"; shift 2 ;;
        --session-rate) need_arg "$@"; session_rate="$2"; shift 2 ;;
        --session-burst) need_arg "$@"; session_burst="$2"; shift 2 ;;
        --admin-rate) need_arg "$@"; admin_rate="$2"; shift 2 ;;
        --admin-burst) need_arg "$@"; admin_burst="$2"; shift 2 ;;
        --admin-allow) need_arg "$@"; admin_allow="${admin_allow:+$admin_allow,}$2"; shift 2 ;;
        --conn-limit) need_arg "$@"; conn_limit="$2"; shift 2 ;;
        --user) need_arg "$@"; user_spec="$2"; shift 2 ;;
        --check) check=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
done

[[ -n "$prefix" ]] || { usage >&2; die "--prefix is required"; }
[[ -n "$api" ]] || api="127.0.0.1:8080"
command -v envsubst >/dev/null || die "envsubst not found (apt-get install gettext-base)"

mkdir -p "$prefix"
prefix="$(cd "$prefix" && pwd)"
[[ -n "$htpasswd" ]] || htpasswd="${prefix}/htpasswd"
[[ -d "$frontend" ]] || die "frontend folder not found: $frontend"
frontend="$(cd "$frontend" && pwd)"
[[ -f "${frontend}/index.html" ]] || die "no index.html in $frontend"
[[ -d "$chartjs" ]] || echo "render.sh: warning: Chart.js folder not found: $chartjs (apt-get install libjs-chart.js)" >&2
[[ -f "${swagger_ui}/swagger-ui-bundle.js" ]] || echo "render.sh: warning: Swagger UI not found in $swagger_ui (scripts/contract-tools.sh install); /api/docs/ will not render" >&2
[[ -f "$htpasswd" ]] || echo "render.sh: warning: htpasswd file not found yet: $htpasswd (see make-htpasswd.sh)" >&2
htpasswd="$(cd "$(dirname "$htpasswd")" && pwd)/$(basename "$htpasswd")"

# Validate the values that end up inside the config.
addr_re='^[][A-Za-z0-9.:_-]+$'   # host:port or [v6]:port
unix_re='^unix:/[A-Za-z0-9._/-]+$'
[[ "$listen" =~ $addr_re ]] || die "bad --listen: $listen"
[[ "$workers" =~ ^([0-9]+|auto)$ ]] || die "bad --workers: $workers"
[[ "$worker_connections" =~ ^[0-9]+$ ]] || die "bad --worker-connections: $worker_connections"
for rate in "$vote_rate" "$session_rate" "$admin_rate"; do
    [[ "$rate" =~ ^[0-9]+r/[sm]$ ]] || die "bad rate (want e.g. 50r/s): $rate"
done
for burst in "$vote_burst" "$session_burst" "$admin_burst" "$conn_limit"; do
    [[ "$burst" =~ ^[0-9]+$ ]] || die "bad burst: $burst"
done
((conn_limit >= 1 && conn_limit <= 65535)) || die "--conn-limit must be 1 to 65535 (nginx's limit): $conn_limit"
for path in "$prefix" "$frontend" "$chartjs" "$htpasswd" "$swagger_ui" "$api_docs" "$openapi"; do
    [[ "$path" != *[[:space:]\;\{\}\$\'\"]* ]] || die "paths may not contain spaces, quotes, ';', '{', '}' or '\$': $path"
done

upstream_servers=""
server_count=0
IFS=',' read -r -a api_list <<< "$api"
[[ ${#api_list[@]} -gt 0 ]] || die "--api is empty"
for server in "${api_list[@]}"; do
    server="${server// /}"
    [[ -n "$server" ]] || continue
    [[ "$server" =~ $addr_re || "$server" =~ $unix_re ]] || die "bad --api entry: $server (host:port or unix:/absolute/path)"
    [[ "$upstream_servers" != *" server ${server} "* ]] || die "--api lists ${server} twice"
    upstream_servers+="        server ${server} max_fails=3 fail_timeout=5s;"$'\n'
    server_count=$((server_count + 1))
done
[[ -n "$upstream_servers" ]] || die "--api is empty"
# One instance: plain round robin (nothing to choose). Several: a session's votes always
# reach the same instance (the map $paredao_session_key in the template), and a request
# that cannot reach it goes to the next instance on the ring.
upstream_balancer="        # one API instance: nothing to balance"
if ((server_count > 1)); then
    upstream_balancer="        hash \$paredao_session_key consistent;"
fi

# The geo block of the admin allowlist: 1 (refused) by default and 0 for each listed
# network when there is a list, else 0 for everyone.
admin_geo="        default 0;   # no --admin-allow: every address"
if [[ -n "$admin_allow" ]]; then
    admin_geo="        default 1;"
    IFS=',' read -r -a allow_list <<< "$admin_allow"
    for network in "${allow_list[@]}"; do
        network="${network// /}"
        [[ -n "$network" ]] || continue
        if [[ "$network" =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}(/[0-9]{1,2})?$ ]] \
            || [[ "$network" == *:* && "$network" =~ ^[0-9A-Fa-f:.]+(/[0-9]{1,3})?$ ]]; then
            admin_geo+=$'\n'"        ${network} 0;"
        else
            die "bad --admin-allow entry (want an address or CIDR): $network"
        fi
    done
    [[ "$admin_geo" == *$'\n'* ]] || die "--admin-allow is empty"
fi

# Two descriptors per proxied connection, within the hard limit of this shell.
rlimit_nofile=$((worker_connections * 2))
hard_nofile="$(ulimit -Hn)"
if [[ "$hard_nofile" =~ ^[0-9]+$ && "$hard_nofile" -lt "$rlimit_nofile" ]]; then
    rlimit_nofile="$hard_nofile"
    if [[ "$hard_nofile" -lt "$worker_connections" ]]; then
        echo "render.sh: warning: open-file hard limit ${hard_nofile} < worker_connections ${worker_connections}" >&2
    fi
fi

user_directive="# (not started as root: workers run as the invoking user)"
if [[ "$(id -u)" -eq 0 ]]; then
    if [[ -z "$user_spec" ]]; then
        user_spec="$(id -un):$(id -gn)"
    fi
    user_directive="user ${user_spec%%:*}"
    if [[ "$user_spec" == *:* ]]; then
        user_directive+=" ${user_spec#*:}"
    fi
    user_directive+=";"
    [[ "$user_spec" =~ ^[A-Za-z0-9._-]+(:[A-Za-z0-9._-]+)?$ ]] || die "bad --user: $user_spec"
fi

mkdir -p "${prefix}/logs" "${prefix}/tmp" "${prefix}/cache"

export NGX_PREFIX="$prefix" NGX_LISTEN="$listen" NGX_FRONTEND="$frontend" \
    NGX_HTPASSWD="$htpasswd" NGX_CHARTJS_DIR="${chartjs%/}" NGX_WORKERS="$workers" \
    NGX_SWAGGER_UI="${swagger_ui%/}" NGX_API_DOCS="$api_docs" NGX_OPENAPI="$openapi" \
    NGX_WORKER_CONNECTIONS="$worker_connections" NGX_RLIMIT_NOFILE="$rlimit_nofile" NGX_VOTE_RATE="$vote_rate" \
    NGX_VOTE_BURST="$vote_burst" NGX_SESSION_RATE="$session_rate" \
    NGX_SESSION_BURST="$session_burst" NGX_ADMIN_RATE="$admin_rate" NGX_ADMIN_BURST="$admin_burst" \
    NGX_ADMIN_GEO="$admin_geo" NGX_CONN_LIMIT="$conn_limit" NGX_USER_DIRECTIVE="$user_directive" \
    NGX_UPSTREAM_SERVERS="${upstream_servers%$'\n'}" NGX_UPSTREAM_BALANCER="$upstream_balancer"

# envsubst takes the literal list of ${NAME}s to replace (nginx's own $vars stay).
# shellcheck disable=SC2016
vars='${NGX_PREFIX} ${NGX_LISTEN} ${NGX_FRONTEND} ${NGX_HTPASSWD} ${NGX_CHARTJS_DIR}'
# shellcheck disable=SC2016
vars+=' ${NGX_WORKERS} ${NGX_WORKER_CONNECTIONS} ${NGX_RLIMIT_NOFILE} ${NGX_VOTE_RATE} ${NGX_VOTE_BURST}'
# shellcheck disable=SC2016
vars+=' ${NGX_SESSION_RATE} ${NGX_SESSION_BURST} ${NGX_CONN_LIMIT} ${NGX_USER_DIRECTIVE} ${NGX_UPSTREAM_SERVERS}'
# shellcheck disable=SC2016
vars+=' ${NGX_SWAGGER_UI} ${NGX_API_DOCS} ${NGX_OPENAPI} ${NGX_UPSTREAM_BALANCER}'
# shellcheck disable=SC2016
vars+=' ${NGX_ADMIN_RATE} ${NGX_ADMIN_BURST} ${NGX_ADMIN_GEO}'

tmp="$(mktemp "${prefix}/nginx.conf.XXXXXX")"
trap 'rm -f "$tmp"' EXIT
envsubst "$vars" < "${here}/nginx.conf.template" > "$tmp"
# shellcheck disable=SC2016
if grep -n '\${NGX_' "$tmp" >&2; then
    die "unrendered variables left in the config (above)"
fi
chmod 644 "$tmp"
mv -f "$tmp" "${prefix}/nginx.conf"
trap - EXIT
echo "render.sh: wrote ${prefix}/nginx.conf (listen ${listen}, api ${api}${admin_allow:+, admin from ${admin_allow}})"

if [[ "$check" -eq 1 ]]; then
    nginx -t -q -p "${prefix}/" -c "${prefix}/nginx.conf" -e "${prefix}/logs/error.log"
    echo "render.sh: nginx -t ok"
fi
