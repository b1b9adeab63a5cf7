#!/usr/bin/env bash
# README command 2: install what is missing, build with AddressSanitizer and
# UndefinedBehaviorSanitizer (-Wall -Wextra -Werror) and run every test with CTest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh --test
cmake -S . -B build-test -DCMAKE_BUILD_TYPE=Debug -DKOPILKA_SANITIZE=ON >/dev/null
cmake --build build-test -j"$(nproc)"
cd build-test
ctest --output-on-failure -j2 "$@"
