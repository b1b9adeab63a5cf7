#!/bin/sh
# Runs a test's PostgreSQL variant (the *_pg entries of tests/CMakeLists.txt):
# the command given, with KOPILKA_TEST_STORE=pg, on the cluster whose base
# URL is $KOPILKA_TEST_PG (scripts/test.sh starts one with scripts/pg.sh).
# Without KOPILKA_TEST_PG it skips (exit 77, CTest's SKIP_RETURN_CODE)
# saying so, except under CI=true, where a skip would hide that PostgreSQL
# was never tested: there it fails.
if [ -z "${KOPILKA_TEST_PG:-}" ]; then
  if [ "${CI:-}" = true ]; then
    echo "KOPILKA_TEST_PG is not set, and CI=true must test PostgreSQL too: run scripts/test.sh, which starts a cluster" >&2
    exit 1
  fi
  echo "skipped: KOPILKA_TEST_PG is not set (scripts/test.sh starts a PostgreSQL cluster; or KOPILKA_TEST_PG=\$(scripts/pg.sh start))" >&2
  exit 77
fi
KOPILKA_TEST_STORE=pg
export KOPILKA_TEST_STORE
exec "$@"
