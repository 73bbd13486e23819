# shellcheck shell=bash
# scripts/lib/replication.sh: sourced after scripts/lib/db.sh. Two local PostgreSQL clusters,
# a primary and a streaming standby, for drill 7 and the synchronous-replication benchmark.
#
#   calltrail_pair_up DIR [SYNC]   initialise DIR/primary (initdb), start it, copy it to
#                                  DIR/standby (pg_basebackup -R), start that; wait until the
#                                  standby streams (and, when synchronous, is the sync standby)
#   calltrail_pair_down DIR        stop both (immediate) and remove DIR
#
# SYNC is the primary's synchronous_commit: remote_apply (default), on, or off for a plain
# asynchronous standby (synchronous_standby_names is then empty). The standby has no
# synchronous_standby_names of its own, so once promoted it commits without waiting for anyone.
# Ports are free ones picked at start, so concurrent runs (other checkouts) do not collide.
# Exports, for the drill and the benchmark:
#   CALLTRAIL_PAIR_PRIMARY_URL, CALLTRAIL_PAIR_STANDBY_URL   one host each, database calltrail
#   CALLTRAIL_PAIR_FAILOVER_URL     both hosts, target_session_attrs=read-write (as DATABASE_URL)
#   CALLTRAIL_PAIR_PRIMARY_DATA, CALLTRAIL_PAIR_STANDBY_DATA, CALLTRAIL_PAIR_PG_CTL (a pg_ctl
#   that runs as the clusters' owner), CALLTRAIL_PAIR_SYNC
# The same PostgreSQL binaries as the private cluster (scripts/lib/db.sh): /usr/lib/postgresql/*/bin,
# installed with apt-get when absent and run as root.

_ct_free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

_ct_pair_conf() { # DATA PORT DIR SYNC_NAMES SYNC_COMMIT
  printf "listen_addresses = '127.0.0.1'\nport = %s\nunix_socket_directories = '%s'\nmax_connections = 200\n" "$2" "$3"
  printf "wal_level = replica\nmax_wal_senders = 4\nhot_standby = on\nhot_standby_feedback = on\n"
  printf "synchronous_standby_names = '%s'\nsynchronous_commit = %s\n" "$4" "$5"
}

calltrail_pair_up() {
  local dir=$1 sync=${2:-remote_apply} bindir pg_ctl p1 p2 names="calltrail_standby"
  case $sync in
    remote_apply | on | remote_write) ;;
    off) names="" sync=on ;;
    *) _ct_fail "calltrail_pair_up: SYNC must be remote_apply, on, remote_write or off, not $sync"; return 1 ;;
  esac
  [[ $dir == /* ]] || dir=$PWD/$dir
  calltrail_pair_down "$dir" 2>/dev/null || true
  _ct_pg_install "$dir.apt.log" || return 1
  bindir=$(_ct_pg_bindir "") || return 1
  mkdir -p "$dir"
  if _ct_is_root; then
    id -u postgres >/dev/null 2>&1 || { _ct_fail "running as root and there is no 'postgres' user"; return 1; }
    chown postgres: "$dir"
  fi
  pg_ctl=$bindir/pg_ctl
  if _ct_is_root; then
    pg_ctl=$dir/pg_ctl
    printf '#!/bin/sh\n# Written by scripts/lib/replication.sh: pg_ctl as the clusters'"'"' owner.\nexec su postgres -s /bin/sh -c '"'"'exec "$0" "$@"'"'"' -- %s "$@"\n' \
      "$bindir/pg_ctl" >"$pg_ctl"
    chmod 755 "$pg_ctl"
  fi
  p1=$(_ct_free_port) && p2=$(_ct_free_port) || { _ct_fail "cannot pick free ports (python3)"; return 1; }
  [[ $p1 != "$p2" ]] || p2=$(_ct_free_port)

  _ct_as_owner "$bindir/initdb" -D "$dir/primary" -U postgres --auth=trust -E UTF8 --locale=C --no-sync \
    >"$dir/initdb.log" 2>&1 || { _ct_fail "initdb failed; see $dir/initdb.log"; return 1; }
  echo "include_if_exists = 'calltrail.conf'" | _ct_as_owner tee -a "$dir/primary/postgresql.conf" >/dev/null
  # Asynchronous until the standby is there: a synchronous primary without its standby waits
  # forever on every commit (CREATE DATABASE included).
  _ct_pair_conf "$dir/primary" "$p1" "$dir" "" on | _ct_as_owner tee "$dir/primary/calltrail.conf" >/dev/null
  _ct_as_owner "$bindir/pg_ctl" -D "$dir/primary" -l "$dir/primary.log" -w -t 60 start >/dev/null ||
    { _ct_fail "the primary did not start; see $dir/primary.log"; return 1; }
  # Created before the copy, so the standby has it too.
  _ct_psql -h 127.0.0.1 -p "$p1" -U postgres -d postgres -c 'create database calltrail' ||
    { _ct_fail "cannot create database calltrail on the primary"; return 1; }

  _ct_as_owner "$bindir/pg_basebackup" -h 127.0.0.1 -p "$p1" -U postgres -D "$dir/standby" -R -X stream -c fast --no-sync \
    >"$dir/basebackup.log" 2>&1 || { _ct_fail "pg_basebackup failed; see $dir/basebackup.log"; return 1; }
  # The standby's own settings: its port, no synchronous standby of its own, and a name the
  # primary's synchronous_standby_names knows (the last primary_conninfo line wins).
  _ct_pair_conf "$dir/standby" "$p2" "$dir" "" on | _ct_as_owner tee "$dir/standby/calltrail.conf" >/dev/null
  echo "primary_conninfo = 'host=127.0.0.1 port=$p1 user=postgres application_name=calltrail_standby'" |
    _ct_as_owner tee -a "$dir/standby/postgresql.auto.conf" >/dev/null
  _ct_as_owner "$bindir/pg_ctl" -D "$dir/standby" -l "$dir/standby.log" -w -t 60 start >/dev/null ||
    { _ct_fail "the standby did not start; see $dir/standby.log"; return 1; }

  _ct_pair_conf "$dir/primary" "$p1" "$dir" "$names" "$sync" | _ct_as_owner tee "$dir/primary/calltrail.conf" >/dev/null
  _ct_as_owner "$bindir/pg_ctl" -D "$dir/primary" reload >/dev/null ||
    { _ct_fail "cannot reload the primary's configuration"; return 1; }
  local want=async state=""
  [[ -z $names ]] || want=sync
  for _ in $(seq 1 100); do
    state=$(_ct_psql -h 127.0.0.1 -p "$p1" -U postgres -d postgres \
      -c "select sync_state from pg_stat_replication where application_name = 'calltrail_standby' and state = 'streaming'" 2>/dev/null)
    [[ $state == "$want" ]] && break
    sleep 0.1
  done
  [[ $state == "$want" ]] || { _ct_fail "the standby is not streaming as a $want standby (state '${state}'); see $dir/standby.log"; return 1; }

  export CALLTRAIL_PAIR_PRIMARY_URL="postgres://postgres@127.0.0.1:$p1/calltrail"
  export CALLTRAIL_PAIR_STANDBY_URL="postgres://postgres@127.0.0.1:$p2/calltrail"
  export CALLTRAIL_PAIR_FAILOVER_URL="postgres://postgres@127.0.0.1:$p1,127.0.0.1:$p2/calltrail?target_session_attrs=read-write"
  export CALLTRAIL_PAIR_PRIMARY_DATA=$dir/primary CALLTRAIL_PAIR_STANDBY_DATA=$dir/standby
  export CALLTRAIL_PAIR_PG_CTL=$pg_ctl CALLTRAIL_PAIR_SYNC=${names:+$sync}
  CALLTRAIL_PAIR_SYNC=${CALLTRAIL_PAIR_SYNC:-off}
  echo "calltrail: primary on 127.0.0.1:$p1, $want standby on 127.0.0.1:$p2 (synchronous_commit=$CALLTRAIL_PAIR_SYNC), data in ${dir#"$CALLTRAIL_ROOT"/}" >&2
}

calltrail_pair_down() {
  local dir=$1 bindir node
  [[ $dir == /* ]] || dir=$PWD/$dir
  [[ -d $dir ]] || return 0
  bindir=$(_ct_pg_bindir "") || return 0
  for node in standby primary; do
    if [[ -f $dir/$node/postmaster.pid ]]; then
      _ct_as_owner "$bindir/pg_ctl" -D "$dir/$node" -m immediate -w stop >/dev/null 2>&1 || true
    fi
  done
  rm -rf "$dir" "$dir.apt.log"
}
