#!/usr/bin/env bash
# Fails when the library or the binary calls a banned function: unbounded
# copies and formats, and number parsers that cannot report errors
# (STYLE.md: as git's banned.h and curl's checksrc do).
set -euo pipefail
cd "$(dirname "$0")/../.."
pattern='\b(strcpy|strcat|sprintf|vsprintf|gets|atoi|atol|atoll|sscanf|strtok|tmpnam)[[:space:]]*\('
if grep -rnE "$pattern" src include --include='*.c' --include='*.h'; then
    echo "banned function used (see lines above): use snprintf, strtoll with end checks, memcpy with a bound" >&2
    exit 1
fi
echo "no banned functions in src/ and include/"
