#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests (scripts/test.sh), from
# Debian's `postgresql` package.
#
#   scripts/pg.sh start   initdb in a temp folder if needed, start the server,
#                         print the base URL (postgresql://postgres@SOCKETDIR:PORT);
#                         a database name goes after it: BASE/kp_1
#   scripts/pg.sh url     print the base URL of the running cluster
#   scripts/pg.sh stop    stop the server and remove the folder
#
# Every command is idempotent: `start` on a running cluster only prints its
# URL, `stop` on none does nothing. Where: $KOPILKA_PG_DIR (default
# /tmp/kopilka-pg-<uid>); port: $KOPILKA_PG_PORT (default: a free one, kept
# in the folder). The server listens on a unix socket in the folder (what
# the URL names) and on 127.0.0.1:PORT. As root it runs as the `postgres`
# user (initdb refuses root), as another user it runs as that user.
# Messages go to stderr; only URLs go to stdout.
set -euo pipefail

die() { echo "scripts/pg.sh: $*" >&2; exit 1; }

dir=${KOPILKA_PG_DIR:-${TMPDIR:-/tmp}/kopilka-pg-$(id -u)}
case "$dir" in /*) ;; *) dir="$PWD/$dir" ;; esac
# A unix socket path has at most 107 bytes: "$dir/.s.PGSQL.NNNNN" must fit.
case "$dir" in *[[:space:]]*) die "KOPILKA_PG_DIR=$dir has a space: the server's options cannot carry it" ;; esac
[ ${#dir} -le 88 ] || die "KOPILKA_PG_DIR=$dir is too long for a unix socket path (at most 88 characters)"

pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
[ -n "$pgbin" ] && [ -x "$pgbin/initdb" ] ||
  die "PostgreSQL's server programs are not installed (no /usr/lib/postgresql/*/bin/initdb): run scripts/deps.sh --test, which installs Debian's postgresql"

# The user the server runs as, and a runner for its commands.
if [ "$(id -u)" -eq 0 ]; then
  owner=postgres
  id -u "$owner" >/dev/null 2>&1 || owner=nobody
  as_owner() { runuser -u "$owner" -- "$@"; }
else
  owner=$(id -un)
  as_owner() { "$@"; }
fi

# Percent-encodes the socket folder for the host part of a libpq URI.
url_of() {
  local port=$1 host
  host=$(printf '%s' "$dir" | sed -e 's/%/%25/g' -e 's,/,%2F,g' -e 's/ /%20/g' -e 's/@/%40/g' -e 's/:/%3A/g')
  printf 'postgresql://postgres@%s:%s\n' "$host" "$port"
}

running() {
  [ -f "$dir/data/PG_VERSION" ] && as_owner "$pgbin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

log_tail() {
  [ -f "$dir/log" ] && { echo "--- last lines of $dir/log:" >&2; tail -n 20 "$dir/log" >&2; }
  return 0
}

start() {
  if running; then
    url_of "$(cat "$dir/port")"
    return
  fi
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    # Nothing usable there (a first run, or an initdb cut short): start over.
    rm -rf "$dir"
    mkdir -m 0700 "$dir" || die "cannot create $dir"
    [ "$owner" = "$(id -un)" ] || chown "$owner" "$dir"
    # A linguistic collation (ICU en-US), as a production cluster has, not C:
    # Kopilka's schema declares byte order (COLLATE "C") for card numbers,
    # which it pages and exports by, and the suite then shows they order as
    # SQLite's BINARY does.
    if ! as_owner "$pgbin/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --locale=C.UTF-8 \
        --locale-provider=icu --icu-locale=en-US \
        >"$dir/initdb.log" 2>&1; then
      cat "$dir/initdb.log" >&2
      die "initdb failed in $dir/data (its output is above)"
    fi
  fi
  local port=${KOPILKA_PG_PORT:-}
  if [ -z "$port" ] && [ -f "$dir/port" ]; then port=$(cat "$dir/port"); fi
  [ -n "$port" ] || port=$(free_port)
  case "$port" in ''|*[!0-9]*) die "KOPILKA_PG_PORT=$port is not a port number (1024..65535)" ;; esac
  [ "$port" -ge 1024 ] && [ "$port" -le 65535 ] || die "KOPILKA_PG_PORT=$port is outside 1024..65535"
  printf '%s\n' "$port" >"$dir/port"
  # fsync=off and full_page_writes=off: the cluster lives for one test run
  # and is removed after it; no test cuts the power under PostgreSQL (the
  # crash tests kill `kopilka serve`, whose committed work PostgreSQL keeps
  # in its own memory and files), so syncing to the disk would only make
  # every commit, CREATE DATABASE and DROP DATABASE slower. synchronous_commit
  # stays on: a commit still waits for PostgreSQL's WAL write, as in production.
  # max_connections: ctest -j2 runs two suites, each with a few servers of
  # a writer pool and readers at once.
  if ! as_owner "$pgbin/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 60 -o \
      "-k $dir -c listen_addresses=127.0.0.1 -p $port -c fsync=off -c full_page_writes=off \
       -c max_connections=300 -c shared_buffers=64MB" start >/dev/null 2>&1; then
    log_tail
    die "the PostgreSQL server in $dir/data did not start on port $port (is the port in use? set KOPILKA_PG_PORT)"
  fi
  echo "scripts/pg.sh: PostgreSQL $("$pgbin/postgres" -V | awk '{print $3}') running in $dir (socket and 127.0.0.1:$port, as $owner)" >&2
  url_of "$port"
}

stop() {
  if [ ! -d "$dir" ]; then
    echo "scripts/pg.sh: no cluster in $dir" >&2
    return
  fi
  if running && ! as_owner "$pgbin/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null 2>&1; then
    log_tail
    die "pg_ctl stop failed for $dir/data; the folder is left for a look"
  fi
  rm -rf "$dir"
  echo "scripts/pg.sh: stopped and removed $dir" >&2
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  url)
    running || die "no PostgreSQL server runs in $dir: run scripts/pg.sh start"
    url_of "$(cat "$dir/port")" ;;
  *) echo "usage: scripts/pg.sh start|stop|url   (folder \$KOPILKA_PG_DIR, port \$KOPILKA_PG_PORT)" >&2; exit 2 ;;
esac
