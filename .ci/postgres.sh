#!/usr/bin/env bash
# Starts a throwaway PostgreSQL cluster for the replica tests and prints the shell lines that
# point the tests at it:
#
#   eval "$(.ci/postgres.sh start)"   # sets LINKBOX_TEST_POSTGRES and LINKBOX_TEST_POSTGRES_DIR
#   .ci/postgres.sh stop "$LINKBOX_TEST_POSTGRES_DIR"
#
# The cluster lives in a new temporary directory, listens on 127.0.0.1 only, on a free port,
# and trusts local connections (it holds nothing but test data and dies with the directory).
# Run as root, the server runs as the `postgres` user, which Debian's package creates.
set -euo pipefail

bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)"
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
  echo "postgres.sh: no PostgreSQL server found under /usr/lib/postgresql (apt-get install postgresql)" >&2
  exit 1
fi

as_owner() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

case "${1:-}" in
  start)
    dir="$(mktemp -d)"
    [ "$(id -u)" = 0 ] && chown postgres "$dir"
    port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth=trust --no-sync >/dev/null
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c max_connections=300" \
      start >/dev/null
    echo "export LINKBOX_TEST_POSTGRES=postgres://postgres@127.0.0.1:$port/postgres"
    echo "export LINKBOX_TEST_POSTGRES_DIR=$dir"
    ;;
  stop)
    dir="${2:?postgres.sh stop DIR}"
    as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$dir"
    ;;
  *)
    echo "usage: postgres.sh start | stop DIR" >&2
    exit 2
    ;;
esac
