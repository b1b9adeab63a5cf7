#!/usr/bin/env bash
# README command 2: install what is missing, build with AddressSanitizer and
# UndefinedBehaviorSanitizer (-Wall -Wextra -Werror), start a throwaway
# PostgreSQL cluster (scripts/pg.sh) and run every test with CTest: each
# suite on SQLite, and its *_pg entry on PostgreSQL. The cluster is stopped
# and removed when the script ends, whether the tests passed or not.
# With KOPILKA_TEST_PG already set (a base URL, postgresql://...), that
# cluster is used instead and left alone. Arguments go to ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh --test
cmake -S . -B build-test -DCMAKE_BUILD_TYPE=Debug -DKOPILKA_SANITIZE=ON >/dev/null
cmake --build build-test -j"$(nproc)"

if [ -z "${KOPILKA_TEST_PG:-}" ]; then
  KOPILKA_PG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/kopilka-pg.XXXXXX")
  export KOPILKA_PG_DIR
  pg="$PWD/scripts/pg.sh"
  trap '"$pg" stop' EXIT
  # An interrupted run stops the cluster too (EXIT runs after these exits).
  trap 'exit 130' INT
  trap 'exit 143' TERM
  KOPILKA_TEST_PG=$("$pg" start)
  export KOPILKA_TEST_PG
fi
echo "test: PostgreSQL at $KOPILKA_TEST_PG" >&2

cd build-test
ctest --output-on-failure -j2 "$@"
