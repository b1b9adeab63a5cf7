#!/bin/sh
# engine_compare.sh [BASE]: the engine of the working tree against BASE's
# (default: where this branch left main) on test_engine_index's random
# programs (bench/engine_compare.c): every quote, scanned and compiled,
# must print byte for byte the same. Needs the working tree built (BUILD,
# default build/) for the program parser, so BASE's program.h must be
# this tree's. A minute or so.
set -eu
BASE=${1:-$(git merge-base main HEAD)}
BUILD=${BUILD:-build}
ROOT=$(git rev-parse --show-toplevel)
T=$(mktemp -d)
[ -z "${KEEP:-}" ] || echo "engine_compare: in $T"
trap '[ -n "${KEEP:-}" ] || rm -rf "$T"' EXIT
git -C "$ROOT" archive "$BASE" include src/core tests/unit/test_engine_index.c | tar -x -C "$T"
LIBS="$BUILD/libkopilka.a $BUILD/libkopilka_core.a -lsqlite3 -lpq -ljansson -lsodium -llua5.4
      -lpng16 -lcurl -lzint -lphonenumber -lcmocka"
build() { # $1: tree with include/ and src/core/engine.c, $2: output
    cc -O2 -DNDEBUG -I"$1/include" -I"$1/src" -c "$1/src/core/engine.c" -o "$2.engine.o"
    cc -O2 -DNDEBUG -I"$1/include" -I"$T/tests/unit" -c "$ROOT/bench/engine_compare.c" -o "$2.o"
    c++ "$2.o" "$2.engine.o" $LIBS -o "$2"
}
build "$T" "$T/base"
build "$ROOT" "$T/now"
"$T/base" > "$T/base.txt"
"$T/now" > "$T/now.txt"
if cmp -s "$T/base.txt" "$T/now.txt"; then
    echo "engine_compare: $(grep -c '^r' "$T/now.txt") quotes, $(grep -c '^ X' "$T/now.txt") explanations: the same as $BASE's"
else
    echo "engine_compare: the quotes differ from $BASE's:" >&2
    diff "$T/base.txt" "$T/now.txt" | head -20 >&2
    exit 1
fi
