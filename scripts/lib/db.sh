# shellcheck shell=bash
# scripts/lib/db.sh: sourced by scripts/*. Finds or starts a PostgreSQL for calltrail.
#
#   calltrail_db_up                      export DATABASE_URL for a reachable server (one line on stderr)
#   calltrail_db_stop_private [MODE]     stop the private cluster in target/pg (MODE: fast|immediate)
#   calltrail_db_admin_url URL           the same server's `postgres` database (CREATE/DROP DATABASE)
#
# calltrail_db_up tries, in order:
#   url      $DATABASE_URL if its server answers (its database is created when missing);
#   local    postgres://postgres@127.0.0.1:5432/calltrail (trust auth; skipped with CALLTRAIL_PG_SKIP_LOCAL=1);
#   private  a cluster of our own in target/pg on 127.0.0.1:${CALLTRAIL_PG_PORT:-54329}, initialised and
#            started when needed (as the `postgres` user when run as root; installs PostgreSQL with
#            apt-get when run as root and no initdb exists).
# Exports DATABASE_URL and CALLTRAIL_PG_MODE=url|local|private; in private mode also
# CALLTRAIL_PG_CTL (a pg_ctl that runs as the cluster's owner), CALLTRAIL_PG_DATA and CALLTRAIL_PG_LOG,
# so that a drill can run e.g. `"$CALLTRAIL_PG_CTL" -D "$CALLTRAIL_PG_DATA" -m immediate stop` and later
# call calltrail_db_up (or `"$CALLTRAIL_PG_CTL" -D "$CALLTRAIL_PG_DATA" -l "$CALLTRAIL_PG_LOG" -w start`).
# Once private mode is chosen, later calls in the same environment stay with it.

CALLTRAIL_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CALLTRAIL_PG_DIR=$CALLTRAIL_ROOT/target/pg

_ct_fail() {
  echo "calltrail: $*" >&2
  return 1
}

_ct_psql() {
  PGCONNECT_TIMEOUT=${PGCONNECT_TIMEOUT:-3} psql -X -q -A -t -v ON_ERROR_STOP=1 "$@"
}

_ct_answers() {
  _ct_psql -d "$1" -c 'select 1' >/dev/null 2>&1
}

# The URL without its password, for messages.
_ct_masked() {
  sed -E 's#(://[^:/@]*):[^@/]*@#\1:***@#; s#(password=)[^[:space:]]*#\1***#' <<<"$1"
}

calltrail_db_admin_url() {
  local url=$1 scheme rest query=""
  if [[ $url == *://* ]]; then
    scheme=${url%%://*}
    rest=${url#*://}
    if [[ $rest == *\?* ]]; then
      query="?${rest#*\?}"
      rest=${rest%%\?*}
    fi
    printf '%s://%s/postgres%s\n' "$scheme" "${rest%%/*}" "$query"
  else
    printf '%s dbname=postgres\n' "$url" # key=value form: a later keyword wins
  fi
}

# The database name a URL asks for (percent-decoded), empty when it names none.
_ct_db_name() {
  local url=$1 rest
  if [[ $url == *://* ]]; then
    rest=${url#*://}
    rest=${rest%%\?*}
    [[ $rest == */* ]] || return 0
    rest=${rest#*/}
    printf '%b\n' "${rest//%/\\x}"
  else
    sed -nE "s/^(.*[[:space:]])?dbname=('?)([^'[:space:]]*)\2.*$/\3/p" <<<"$url"
  fi
}

# Connects to URL, creating its database through the server's `postgres` database when it is
# missing. On failure, _ct_error holds the server's reason.
_ct_ensure_db() {
  local url=$1 admin db
  _ct_error=""
  _ct_answers "$url" && return 0
  db=$(_ct_db_name "$url")
  admin=$(calltrail_db_admin_url "$url")
  [[ -n $db ]] || return 1
  # Another process may create it at the same moment: only the final check decides.
  _ct_error=$(printf 'create database :"db";\n' | _ct_psql -d "$admin" -v db="$db" 2>&1) || true
  _ct_answers "$url" && return 0
  _ct_error=$(head -n 1 <<<"$_ct_error" | sed -E 's/^psql: error: (.*failed: )?//; s/^psql:<stdin>:[0-9]+: //')
  return 1
}

_ct_use() { # MODE URL NOTE
  export DATABASE_URL=$2 CALLTRAIL_PG_MODE=$1
  if [[ $1 != private ]]; then
    unset CALLTRAIL_PG_CTL CALLTRAIL_PG_DATA CALLTRAIL_PG_LOG
  fi
  echo "calltrail: using $1 PostgreSQL $(_ct_masked "$2")${3:+ ($3)}" >&2
}

_ct_is_root() {
  [[ $(id -u) -eq 0 ]]
}

# Runs a command as the private cluster's owner: PostgreSQL refuses to run as root.
_ct_as_owner() {
  if ! _ct_is_root; then
    "$@"
  elif command -v runuser >/dev/null; then
    runuser -u postgres -- "$@"
  else
    # shellcheck disable=SC2016 # expanded by the inner shell
    su postgres -s /bin/sh -c 'exec "$0" "$@"' -- "$@"
  fi
}

# The bin directory of the PostgreSQL to use: the data directory's own major version when
# initialised, else the newest under /usr/lib/postgresql (Debian), else initdb from PATH.
_ct_pg_bindir() {
  local data=$1 dir newest="" initdb
  if [[ -f $data/PG_VERSION && -x /usr/lib/postgresql/$(<"$data/PG_VERSION")/bin/pg_ctl ]]; then
    echo "/usr/lib/postgresql/$(<"$data/PG_VERSION")/bin"
    return 0
  fi
  for dir in /usr/lib/postgresql/*/bin; do
    [[ -x $dir/initdb ]] && newest+="$dir"$'\n'
  done
  if [[ -n $newest ]]; then
    sort -V <<<"${newest%$'\n'}" | tail -n 1
    return 0
  fi
  initdb=$(command -v initdb) || return 1
  dirname "$(readlink -f "$initdb")"
}

# Installs PostgreSQL with apt-get (as root only) when no initdb exists. APT_LOG: where its
# output goes; WHY: what else was tried, for the message when it cannot install.
_ct_pg_install() {
  local apt_log=$1 why=${2:-}
  _ct_pg_bindir "" >/dev/null 2>&1 && return 0
  _ct_is_root || {
    _ct_fail "no PostgreSQL found: ${why}no initdb installed; install PostgreSQL or set DATABASE_URL"
    return 1
  }
  mkdir -p "$(dirname "$apt_log")"
  echo "calltrail: no PostgreSQL installed; installing it with apt-get (log: $apt_log)" >&2
  { DEBIAN_FRONTEND=noninteractive apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql; } >"$apt_log" 2>&1 || {
    _ct_fail "apt-get install postgresql failed; see $apt_log"
    return 1
  }
  _ct_pg_bindir "" >/dev/null 2>&1 || {
    _ct_fail "PostgreSQL was installed but no initdb was found"
    return 1
  }
}

_ct_private_up() {
  local pgdir=$CALLTRAIL_PG_DIR port=${CALLTRAIL_PG_PORT:-54329}
  local data=$pgdir/data log=$pgdir/postgres.log
  local url="postgres://postgres@127.0.0.1:$port/calltrail" bindir pg_ctl wrapper lock_fd rc note="reused"

  # Quick path: ours (its socket lives in target/pg) is already up.
  if _ct_psql -h "$pgdir" -p "$port" -U postgres -d calltrail -c 'select 1' >/dev/null 2>&1; then
    bindir=$(_ct_pg_bindir "$data") || return 1
  else
    mkdir -p "$pgdir"
    # Serialise initdb/start between concurrent scripts (flock is optional).
    [[ -e $pgdir/.lock ]] || : >"$pgdir/.lock"
    exec {lock_fd}<"$pgdir/.lock"
    if command -v flock >/dev/null && ! flock -w 300 "$lock_fd"; then
      exec {lock_fd}>&-
      _ct_fail "timed out waiting for $pgdir/.lock"
      return 1
    fi
    rc=0
    _ct_started=0
    _ct_private_start "$pgdir" "$data" "$log" "$port" "$lock_fd" || rc=$?
    exec {lock_fd}>&-
    [[ $rc -eq 0 ]] || return 1
    bindir=$(_ct_pg_bindir "$data") || return 1
    [[ $_ct_started -eq 0 ]] || note="started"
    _ct_ensure_db "$url" || {
      _ct_fail "the private PostgreSQL in $pgdir runs but database calltrail cannot be created: ${_ct_error:-unknown reason}"
      return 1
    }
  fi

  pg_ctl=$bindir/pg_ctl
  if _ct_is_root; then
    # A pg_ctl that drills can call directly, as the cluster's owner.
    pg_ctl=$pgdir/pg_ctl
    wrapper="#!/bin/sh
# Written by scripts/lib/db.sh: pg_ctl of the private cluster, run as its owner (postgres).
exec su postgres -s /bin/sh -c 'exec \"\$0\" \"\$@\"' -- '$bindir/pg_ctl' \"\$@\""
    if [[ ! -x $pg_ctl || $(<"$pg_ctl") != "$wrapper" ]]; then
      echo "$wrapper" >"$pg_ctl"
      chmod 755 "$pg_ctl"
    fi
  fi
  export CALLTRAIL_PG_CTL=$pg_ctl CALLTRAIL_PG_DATA=$data CALLTRAIL_PG_LOG=$log
  _ct_use private "$url" "$note, data in ${data#"$CALLTRAIL_ROOT"/}"
}

# Initialises (once) and starts the private cluster. Runs under target/pg/.lock (fd LOCK_FD,
# which the server must not inherit, or it would hold the lock for its whole life).
_ct_private_start() {
  local pgdir=$1 data=$2 log=$3 port=$4 lock_fd=$5 bindir apt_log=$1/apt.log

  if ! bindir=$(_ct_pg_bindir "$data"); then
    _ct_pg_install "$apt_log" "DATABASE_URL unset or not answering, nothing on 127.0.0.1:5432, " || return 1
    bindir=$(_ct_pg_bindir "$data") || return 1
  fi

  if _ct_is_root; then
    id -u postgres >/dev/null 2>&1 || {
      _ct_fail "running as root and there is no 'postgres' system user to own $pgdir (PostgreSQL refuses root); create one or set DATABASE_URL"
      return 1
    }
    chown postgres: "$pgdir"
  fi

  if [[ ! -f $data/PG_VERSION ]]; then
    rm -rf "$data" # a half-done initdb: start over
    _ct_as_owner "$bindir/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --locale=C \
      >"$pgdir/initdb.log" 2>&1 || {
      _ct_fail "initdb failed; see $pgdir/initdb.log"
      return 1
    }
    echo "include_if_exists = 'calltrail.conf'" >>"$data/postgresql.conf"
  fi
  # Written on every start so that the socket path follows the checkout and a plain
  # `pg_ctl -D $data start` (a drill's restart) comes back on the same address.
  printf "listen_addresses = '127.0.0.1'\nport = %s\nunix_socket_directories = '%s'\nmax_connections = 200\n" \
    "$port" "$pgdir" >"$data/calltrail.conf"
  if _ct_is_root; then
    chown postgres: "$data/calltrail.conf"
  fi

  if ! _ct_as_owner "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    _ct_as_owner "$bindir/pg_ctl" -D "$data" -l "$log" -w -t 60 start >/dev/null 2>&1 {lock_fd}>&- || {
      _ct_fail "the private PostgreSQL did not start on 127.0.0.1:$port; see $log"
      return 1
    }
    _ct_started=1
  fi
  # Running (maybe started by someone else a moment ago): wait until it accepts connections.
  for _ in $(seq 1 60); do
    pg_isready -q -h "$pgdir" -p "$port" && return 0
    sleep 0.5
  done
  _ct_fail "the private PostgreSQL in $data runs but does not answer on port $port; see $log"
}

calltrail_db_up() {
  local note=""
  if [[ ${CALLTRAIL_PG_MODE:-} == private ]]; then
    _ct_private_up
    return
  fi
  if [[ -n ${DATABASE_URL:-} ]]; then
    if _ct_answers "$DATABASE_URL"; then
      _ct_use url "$DATABASE_URL" "from DATABASE_URL"
      return 0
    fi
    if pg_isready -q -d "$DATABASE_URL" >/dev/null 2>&1; then
      # The server is up: the database may be missing. Falling back elsewhere would hide a mistake.
      _ct_ensure_db "$DATABASE_URL" || {
        _ct_fail "the server of DATABASE_URL $(_ct_masked "$DATABASE_URL") answers but the database cannot be used or created: ${_ct_error:-unknown reason}"
        return 1
      }
      _ct_use url "$DATABASE_URL" "from DATABASE_URL, database created"
      return 0
    fi
    note="DATABASE_URL $(_ct_masked "$DATABASE_URL") did not answer"
  fi
  if [[ ${CALLTRAIL_PG_SKIP_LOCAL:-0} != 1 ]] && _ct_ensure_db "postgres://postgres@127.0.0.1:5432/calltrail" 2>/dev/null; then
    _ct_use local "postgres://postgres@127.0.0.1:5432/calltrail" "$note"
    return 0
  fi
  [[ -n $note ]] && echo "calltrail: $note; trying the private cluster" >&2
  _ct_private_up
}

calltrail_db_stop_private() {
  local mode=${1:-fast} data=$CALLTRAIL_PG_DIR/data bindir
  [[ -f $data/postmaster.pid ]] || return 0
  bindir=$(_ct_pg_bindir "$data") || return 0
  if _ct_as_owner "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    _ct_as_owner "$bindir/pg_ctl" -D "$data" -m "$mode" -w stop >/dev/null
    echo "calltrail: stopped the private PostgreSQL ($mode) in ${data#"$CALLTRAIL_ROOT"/}" >&2
  fi
}
