# shellcheck shell=bash
# Source me: `source scripts/services.sh`
#
# Makes sure PostgreSQL and Redis are reachable for the test suite and exports
#   HEJNAL_TEST_POSTGRES_URL  admin URL; tests create their own databases in it
#   HEJNAL_TEST_REDIS_URL
# Values set by the caller are tried first. If nothing answers, throwaway
# instances are started on 127.0.0.1:55432 / :56379 (installing the packages
# with apt-get when missing), or reused if a previous run left them running.
# If a service is still unreachable: with CI=true this returns 1; otherwise
# the variable is unset and the tests that need it skip themselves.
#
# This file runs inside the caller's shell, which may have `set -euo pipefail`:
# every command that may fail is guarded, and helpers are `_hejnal_*`
# functions that are unset again at the end.

_HEJNAL_PG_PORT=55432
_HEJNAL_REDIS_PORT=56379

_hejnal_log() { echo "$*" >&2; }

# Hide a password in URLs before printing them: //user:secret@ -> //user:***@
_hejnal_redact() { sed -E 's#(//[^:/@]*):[^@/]*@#\1:***@#' <<<"$1"; }

# scheme://[user[:pass]@]host[:port][/path] -> "host port" (port defaults to $2)
_hejnal_host_port() {
    local rest=${1#*://}
    rest=${rest%%/*}
    rest=${rest##*@}
    if [[ $rest == *:* ]]; then
        echo "${rest%:*} ${rest##*:}"
    else
        echo "$rest $2"
    fi
}

_hejnal_postgres_ok() {
    local host port
    read -r host port <<<"$(_hejnal_host_port "$1" 5432)"
    command -v pg_isready >/dev/null && command -v psql >/dev/null || return 1
    # pg_isready is cheap but ignores auth; psql proves we can actually log in.
    pg_isready -q -t 3 -h "$host" -p "$port" || return 1
    PGCONNECT_TIMEOUT=3 psql -X -q -At -d "$1" -c 'select 1' >/dev/null 2>&1
}

_hejnal_redis_ok() {
    local host port
    read -r host port <<<"$(_hejnal_host_port "$1" 6379)"
    command -v redis-cli >/dev/null || return 1
    [[ $(timeout 3 redis-cli -h "$host" -p "$port" ping 2>/dev/null) == PONG ]]
}

# Newest Debian server bin dir (initdb/pg_ctl are not on PATH there), else PATH.
_hejnal_pg_bindir() {
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    if [[ -n $dir && -x $dir/initdb ]]; then
        echo "$dir"
    elif command -v initdb >/dev/null; then
        dirname "$(command -v initdb)"
    else
        return 1
    fi
}

_hejnal_apt_updated=
_hejnal_apt_install() {
    if [[ $(id -u) != 0 ]] || ! command -v apt-get >/dev/null; then
        _hejnal_log "$1: cannot install (needs root and apt-get); install it yourself"
        return 1
    fi
    _hejnal_log "$1: installing package(s): ${*:2}"
    if [[ -z $_hejnal_apt_updated ]]; then
        apt-get update -qq >&2 || return 1
        _hejnal_apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${@:2}" >&2
}

# Run a command as the postgres user when we are root (initdb refuses root).
_hejnal_as_pg() {
    if [[ $(id -u) == 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

_hejnal_start_postgres() {
    local bin dir
    if ! bin=$(_hejnal_pg_bindir) || ! command -v psql >/dev/null || ! command -v pg_isready >/dev/null; then
        _hejnal_apt_install postgres postgresql || return 1
        bin=$(_hejnal_pg_bindir) || return 1
    fi
    dir=$(mktemp -d /tmp/hejnal-test-pg.XXXXXX) || return 1
    if [[ $(id -u) == 0 ]]; then chown postgres: "$dir" || return 1; fi
    _hejnal_as_pg "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C --no-sync \
        >"$dir/initdb.log" 2>&1 || { _hejnal_log "postgres: initdb failed, see $dir/initdb.log"; return 1; }
    # Test-only settings: no durability, and room for many parallel test pools.
    cat >>"$dir/data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $_HEJNAL_PG_PORT
unix_socket_directories = '$dir'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
EOF
    _hejnal_as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 30 start >/dev/null \
        || { _hejnal_log "postgres: pg_ctl start failed, see $dir/postgres.log"; return 1; }
    _hejnal_log "postgres: started throwaway on 127.0.0.1:$_HEJNAL_PG_PORT (stop: runuser -u postgres -- $bin/pg_ctl -D $dir/data stop)"
}

_hejnal_start_redis() {
    local dir i
    if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
        _hejnal_apt_install redis redis-server || return 1
    fi
    dir=$(mktemp -d /tmp/hejnal-test-redis.XXXXXX) || return 1
    redis-server --bind 127.0.0.1 --port "$_HEJNAL_REDIS_PORT" --save '' --appendonly no \
        --daemonize yes --dir "$dir" --logfile "$dir/redis.log" >&2 \
        || { _hejnal_log "redis: redis-server failed, see $dir/redis.log"; return 1; }
    # --daemonize returns before the server listens; wait up to ~5 s.
    for i in $(seq 50); do
        _hejnal_redis_ok "redis://127.0.0.1:$_HEJNAL_REDIS_PORT" && break
        sleep 0.1
    done
    _hejnal_log "redis: started throwaway on 127.0.0.1:$_HEJNAL_REDIS_PORT (stop: redis-cli -p $_HEJNAL_REDIS_PORT shutdown nosave)"
}

# _hejnal_ensure NAME VAR DEFAULT_URL THROWAWAY_URL
# Exports VAR with a working URL. If there is none, VAR is unset and the
# function returns 1 under CI=true (0 otherwise: tests skip).
_hejnal_ensure() {
    local name=$1 var=$2 throwaway=$4 wanted url
    wanted=${!var:-$3}
    url=$wanted
    if "_hejnal_${name}_ok" "$url"; then
        _hejnal_log "$name: found at $(_hejnal_redact "$url")"
    elif [[ $url != "$throwaway" ]] && "_hejnal_${name}_ok" "$throwaway"; then
        _hejnal_log "$name: nothing at $(_hejnal_redact "$url"); reusing throwaway at $throwaway"
        url=$throwaway
    else
        _hejnal_log "$name: nothing at $(_hejnal_redact "$url"); starting a throwaway instance"
        url=$throwaway
        if ! "_hejnal_start_${name}" || ! "_hejnal_${name}_ok" "$url"; then
            unset "$var"
            if [[ ${CI:-} == true ]]; then
                _hejnal_log "ERROR: $name unreachable at $(_hejnal_redact "$wanted") and $throwaway; CI cannot run without it"
                return 1
            fi
            _hejnal_log "WARNING: $name unreachable at $(_hejnal_redact "$wanted"); tests that need $name will be skipped"
            return 0
        fi
    fi
    export "$var=$url"
}

_hejnal_ok=true
_hejnal_ensure postgres HEJNAL_TEST_POSTGRES_URL postgres://postgres@127.0.0.1:5432/postgres \
    "postgres://postgres@127.0.0.1:$_HEJNAL_PG_PORT/postgres" || _hejnal_ok=false
_hejnal_ensure redis HEJNAL_TEST_REDIS_URL redis://127.0.0.1:6379 \
    "redis://127.0.0.1:$_HEJNAL_REDIS_PORT" || _hejnal_ok=false

# Commands some tests run as independent peers: openssl (the DKIM test's public key) and
# python3 with venv (schemathesis, dkimpy from PyPI). Those tests fail under CI=true without them.
command -v openssl >/dev/null || _hejnal_apt_install openssl openssl || true
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || _hejnal_apt_install python3 python3 python3-venv || true

unset -f _hejnal_log _hejnal_redact _hejnal_host_port _hejnal_postgres_ok _hejnal_redis_ok \
    _hejnal_pg_bindir _hejnal_apt_install _hejnal_as_pg _hejnal_start_postgres _hejnal_start_redis _hejnal_ensure
unset _HEJNAL_PG_PORT _HEJNAL_REDIS_PORT _hejnal_apt_updated
if [[ $_hejnal_ok == true ]]; then unset _hejnal_ok; return 0; fi
unset _hejnal_ok
return 1
