#!/usr/bin/env bash
# README command 1: install what is missing, build Kopilka and start the demo:
# an embedded SQLite database with the example program, a terminal key and
# cards, and the server on localhost. Extra arguments go to `kopilka demo`.
# Run again, it reuses the database, its terminal and cards (the key is kept
# in kopilka-demo.db.demo, mode 0600) and prints a curl with a new receipt.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"
exec build/kopilka demo "$@"
