#!/usr/bin/env bash
# A report in a loop, one request after another, for bench/run.sh's
# BENCH_BESIDE (bench/report_load.sh): GET /v1/admin/reports/$BENCH_REPORT
# (points, the default, or members) over 36 months, one line to $BENCH_OUT
# a report answered 200, until killed.
set -u
url="http://127.0.0.1:$BENCH_PORT/v1/admin/reports/${BENCH_REPORT:-points}"
from=$(date -u -d '-35 months' +%Y-%m-01)
while :; do
    code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $BENCH_TOKEN" \
        "$url?from=$from")
    [ "$code" = 200 ] && echo ok >>"$BENCH_OUT"
    [ "$code" = 200 ] || { echo "report: HTTP $code" >&2; sleep 0.1; }
done
