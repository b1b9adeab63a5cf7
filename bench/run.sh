#!/usr/bin/env bash
# Benchmarks `kopilka serve` (Release build, durable defaults) with
# bench/loadgen on loopback, checks the ledger with `kopilka verify`, then runs
# the PostgreSQL peer for the same number of seconds and prints the ratio.
# With --pg, Kopilka's own database is PostgreSQL too: a throwaway cluster
# with the peer's settings (fsync and synchronous_commit on), served by
# --instances N `kopilka serve` processes (the connections split between them).
#
# With --notify, the server runs with notifications on (`serve --notify`: a
# channels file with e-mail and SMS to loopback fakes (tests/integration/
# fakes.py) and one webhook endpoint, made through POST /v1/admin/webhooks,
# whose deliveries go to the SMS fake's HTTP server; the dispatcher and the
# delivery workers run, every purchase writes its event and makes one webhook
# delivery): the purchase path's cost of the outbox (bench/notify_load.sh
# measures delivery itself).
#
# Issue 16's goals in the same run: after the closed-loop run (the maximum
# rate), the load generator at a fixed rate of 25 %, 50 % and 90 % of it
# (LATENCY_SECS each: p50/p99/p99.9 from each purchase's due time), then,
# with the server stopped, bench/http_floor (libmicrohttpd alone, suspend/
# resume) under the same load generator and connections for FLOOR_SECS: the
# server's CPU a purchase as a multiple of the floor's CPU a request.
# --no-latency and --no-floor skip those parts; --latency-only is
# --no-floor --no-peer.
#
# Usage: bench/run.sh [seconds=10] [connections=64] [--no-peer] [--pg] [--instances N] [--notify]
#                     [--no-latency] [--no-floor] [--latency-only]
# Environment: WARMUP (seconds, default 1), LOADGEN_THREADS (1 or 2, default 1),
#              LATENCY_SECS (each fixed-rate run, default 5), FLOOR_SECS
#              (default 5), PEER_SH (the peer's run.sh, default
#              ../shared/peers/postgres/run.sh from the repository),
#              PORT (default: a free port from 20000..59999),
#              KOPILKA_PG_WRITERS (writer connections an instance, with --pg),
#              BENCH_BESIDE (a program run beside the load, from the warm-up's
#              start to the load's end, with BENCH_PORT, BENCH_TOKEN (an
#              auditor's session) and BENCH_OUT (a file whose lines it counts
#              in the summary): bench/report_load.sh's report loop),
#              DB and CARDS (an existing SQLite database and the card numbers
#              to draw from, e.g. one bench/bench_fill filled: served as it
#              is, a terminal added, no cards issued; not deleted after),
#              VERIFY=0 (skip `kopilka verify` after the load).
set -euo pipefail

secs=10
conns=64
peer=1
pg=0
notify=0
instances=1
latency=1
floor=1
positional=()
want_instances=0
for arg in "$@"; do
    if [ "$want_instances" -eq 1 ]; then instances=$arg; want_instances=0; continue; fi
    case "$arg" in
        --no-peer) peer=0 ;;
        --pg) pg=1 ;;
        --notify) notify=1 ;;
        --instances) want_instances=1 ;;
        --instances=*) instances=${arg#--instances=} ;;
        --no-latency) latency=0 ;;
        --no-floor) floor=0 ;;
        --latency-only) floor=0; peer=0 ;;
        -h|--help) sed -n '2,41p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) echo "run.sh: unknown option $arg" >&2; exit 2 ;;
        *) positional+=("$arg") ;;
    esac
done
[ "${#positional[@]}" -ge 1 ] && secs=${positional[0]}
[ "${#positional[@]}" -ge 2 ] && conns=${positional[1]}
[ "${#positional[@]}" -le 2 ] || { echo "run.sh: too many arguments" >&2; exit 2; }
[[ "$secs" =~ ^[0-9]+$ && "$secs" -ge 1 && "$secs" -le 3600 ]] \
    || { echo "run.sh: seconds must be 1..3600" >&2; exit 2; }
[[ "$conns" =~ ^[0-9]+$ && "$conns" -ge 1 && "$conns" -le 4096 ]] \
    || { echo "run.sh: connections must be 1..4096" >&2; exit 2; }
[ "$want_instances" -eq 0 ] || { echo "run.sh: --instances needs a number" >&2; exit 2; }
[[ "$instances" =~ ^[0-9]+$ && "$instances" -ge 1 && "$instances" -le 8 ]] \
    || { echo "run.sh: --instances must be 1..8, got '$instances'" >&2; exit 2; }
[ "$instances" -eq 1 ] || [ "$pg" -eq 1 ] \
    || { echo "run.sh: --instances above 1 needs --pg (a SQLite file has one server)" >&2; exit 2; }
[ "$conns" -ge "$instances" ] || { echo "run.sh: fewer connections than instances" >&2; exit 2; }
warmup=${WARMUP:-1}
threads=${LOADGEN_THREADS:-1}
lat_secs=${LATENCY_SECS:-5}
floor_secs=${FLOOR_SECS:-5}
[[ "$lat_secs" =~ ^[0-9]+$ && "$lat_secs" -ge 1 && "$lat_secs" -le 600 ]] \
    || { echo "run.sh: LATENCY_SECS must be 1..600" >&2; exit 2; }
[[ "$floor_secs" =~ ^[0-9]+$ && "$floor_secs" -ge 1 && "$floor_secs" -le 600 ]] \
    || { echo "run.sh: FLOOR_SECS must be 1..600" >&2; exit 2; }

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
build="build-bench"
kopilka=$build/kopilka
loadgen=$build/loadgen
say() { echo "== $*" >&2; }

tmp=$(mktemp -d /tmp/kopilka-bench.XXXXXX)
server_pids=()
fake_pids=() # loopback providers of --notify and bench/http_floor, stopped like the servers
pg_dir=
pgbin=
# shellcheck disable=SC2317  # called from the EXIT trap
cleanup() {
    for pid in "${server_pids[@]}" "${fake_pids[@]}"; do
        kill -0 "$pid" 2>/dev/null || continue
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [ -n "$pg_dir" ]; then
        runuser -u postgres -- "$pgbin/pg_ctl" -D "$pg_dir/data" -m fast stop >/dev/null 2>&1 || true
        rm -rf "$pg_dir"
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Runs a build step quietly; shows its output only when it fails.
quiet() {
    local log=$tmp/step.log
    if ! "$@" >"$log" 2>&1; then
        cat "$log" >&2
        echo "run.sh: failed: $*" >&2
        exit 1
    fi
}

say "building Kopilka (Release) in $build"
quiet cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release
quiet cmake --build "$build" -j2 --target kopilka_bin
[ -x "$kopilka" ] || { echo "run.sh: $kopilka was not built" >&2; exit 1; }
if [ "$floor" -eq 1 ]; then
    quiet cmake --build "$build" -j2 --target http_floor
fi
say "building loadgen"
quiet cc -std=c17 -Wall -Wextra -Werror -O2 -pthread -o "$loadgen" bench/loadgen.c

# Is anything listening on 127.0.0.1:$1?
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {
    local p
    for _ in $(seq 50); do
        p=$((20000 + RANDOM % 40000))
        listening "$p" || { echo "$p"; return; }
    done
    echo "run.sh: no free port" >&2; exit 1
}

db=$tmp/bench.db
given_db=${DB:-}
if [ -n "$given_db" ]; then
    [ "$pg" -eq 0 ] || { echo "run.sh: DB= is a SQLite file; not with --pg" >&2; exit 2; }
    [ -f "$given_db" ] || { echo "run.sh: DB=$given_db does not exist" >&2; exit 2; }
    [ -s "${CARDS:-}" ] || { echo "run.sh: DB= needs CARDS=file of its card numbers" >&2; exit 2; }
    db=$given_db
fi
if [ "$pg" -eq 1 ]; then
    # The peer's settings (../shared/peers/postgres/run.sh), so the two
    # databases differ only in who drives them.
    [ "$(id -u)" -eq 0 ] || { echo "run.sh: --pg runs PostgreSQL as user postgres: run as root" >&2; exit 1; }
    pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
    [ -x "$pgbin/initdb" ] || { echo "run.sh: --pg needs Debian's postgresql (scripts/deps.sh --test)" >&2; exit 1; }
    pg_dir=$(mktemp -d /tmp/kopilka-bench-pg.XXXXXX); chown postgres "$pg_dir"
    pg_port=$(free_port)
    say "PostgreSQL cluster on 127.0.0.1:$pg_port ($pg_dir)"
    quiet runuser -u postgres -- "$pgbin/initdb" -D "$pg_dir/data" -A trust
    quiet runuser -u postgres -- "$pgbin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/log" -w \
        -o "-c listen_addresses=127.0.0.1 -p $pg_port -k $pg_dir -c shared_buffers=512MB -c max_connections=200" start
    db="postgresql://postgres@127.0.0.1:$pg_port/postgres"
    export KOPILKA_KEY_FILE=$tmp/bench.key
fi
if [ -z "$given_db" ]; then
    say "creating $db"
    "$kopilka" init "$db" --program examples/autoservice-case1.json >"$tmp/init.log"
fi
key=$("$kopilka" terminal add "$db" --store bench)
key=${key//$'\r'/}
if [ -z "$key" ] || [ "$(printf '%s\n' "$key" | wc -l)" -ne 1 ]; then
    echo "run.sh: 'terminal add' did not print one key line" >&2
    exit 1
fi
if [ -n "$given_db" ]; then
    ln -s "$(realpath "$CARDS")" "$tmp/cards.txt"
else
    "$kopilka" cards issue "$db" --count 100000 >"$tmp/cards.txt"
fi
ncards=$(grep -c . "$tmp/cards.txt" || true)
[ "$ncards" -ge 1 ] || { echo "run.sh: 'cards issue' printed no card" >&2; exit 1; }
say "issued $ncards cards"

notify_args=()
# start_fake KIND: starts a fake of tests/integration/fakes.py (stopped with
# the servers); its port into $fake_port.
start_fake() {
    local py=python3
    "$py" -c 'import aiosmtpd' 2>/dev/null || py=/usr/bin/python3
    "$py" tests/integration/fakes.py "$1" --port-file "$tmp/$1.port" --log /dev/null \
        --record envelope >"$tmp/$1.out" 2>&1 &
    fake_pids+=($!)
    for _ in $(seq 100); do [ -s "$tmp/$1.port" ] && break; sleep 0.1; done
    [ -s "$tmp/$1.port" ] || { cat "$tmp/$1.out" >&2; echo "run.sh: the $1 fake did not start" >&2; exit 1; }
    fake_port=$(cat "$tmp/$1.port")
}
if [ "$notify" -eq 1 ]; then
    # The loadgen's cards belong to nobody, so their events make no e-mail or
    # SMS; each makes a delivery to the webhook endpoint added below. The
    # channels point at fast loopback fakes with no rate limit.
    start_fake smtp; smtp_port=$fake_port
    start_fake sms; sms_port=$fake_port
    cat >"$tmp/notify.json" <<JSON
{"email": {"url": "smtp://127.0.0.1:$smtp_port", "starttls": "off",
           "from": "Bench <bench@example.com>", "rate_per_second": 0},
 "sms": {"profile": "generic", "url": "http://127.0.0.1:$sms_port/send", "rate_per_second": 0},
 "webhooks": {"enabled": true, "rate_per_second": 0}}
JSON
    notify_args=(--notify "$tmp/notify.json")
    printf 'bench staff password\n' >"$tmp/staff.pw"
    quiet "$kopilka" staff add "$db" --login bench --role admin --password-file "$tmp/staff.pw"
fi
if [ -n "${BENCH_BESIDE:-}" ]; then
    printf 'bench staff password\n' >"$tmp/auditor.pw"
    quiet "$kopilka" staff add "$db" --login bench_auditor --role auditor \
        --password-file "$tmp/auditor.pw"
fi
ports=()
for i in $(seq "$instances"); do
    if [ "$i" -eq 1 ] && [ -n "${PORT:-}" ]; then port=$PORT; else port=$(free_port); fi
    listening "$port" && { echo "run.sh: port $port is busy" >&2; exit 1; }
    say "starting kopilka serve on 127.0.0.1:$port"
    start_t0=$(date +%s.%N)
    "$kopilka" serve "$db" --listen "127.0.0.1:$port" "${notify_args[@]}" >"$tmp/serve$i.log" 2>&1 &
    server_pid=$!
    server_pids+=("$server_pid")
    ports+=("$port")
    # A given database is quick_checked at start: up to 10 min for it.
    tries=100; [ -n "$given_db" ] && tries=6000
    for t in $(seq "$tries"); do
        if ! kill -0 "$server_pid" 2>/dev/null; then
            cat "$tmp/serve$i.log" >&2
            echo "run.sh: kopilka serve exited before listening" >&2
            exit 1
        fi
        listening "$port" && break
        [ "$t" -eq "$tries" ] && { cat "$tmp/serve$i.log" >&2; echo "run.sh: server not up after $((tries / 10)) s" >&2; exit 1; }
        sleep 0.1
    done
    echo "server start-up s: $(echo "$(date +%s.%N) - $start_t0" | bc -l | awk '{printf "%.2f", $1}')"
done

if [ "$notify" -eq 1 ]; then
    token=$(curl -sf -X POST "http://127.0.0.1:${ports[0]}/v1/admin/login" \
        -H 'Content-Type: application/json' \
        -d '{"login": "bench", "password": "bench staff password"}' \
        | sed -n 's/.*"token": *"\([^"]*\)".*/\1/p')
    [ -n "$token" ] || { echo "run.sh: the staff login failed" >&2; exit 1; }
    curl -sf -X POST "http://127.0.0.1:${ports[0]}/v1/admin/webhooks" \
        -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
        -d "{\"url\": \"http://127.0.0.1:$sms_port/hook\", \"description\": \"bench\"}" \
        >/dev/null || { echo "run.sh: making the webhook endpoint failed" >&2; exit 1; }
    say "notifications on: e-mail, SMS and one webhook endpoint to loopback fakes"
fi

# The servers' CPU time by thread name (utime + stime in clock ticks).
thread_ticks() {
    local pid t
    for pid in "${server_pids[@]}"; do for t in /proc/"$pid"/task/*; do
        printf '%s %s\n' "$(cat "$t/comm" 2>/dev/null)" \
            "$(awk '{print $14 + $15}' "$t/stat" 2>/dev/null)"
    done; done | awk 'NF == 2 {sum[$1] += $2} END {for (k in sum) print k, sum[k]}' | sort
}

beside_pid=
if [ -n "${BENCH_BESIDE:-}" ]; then
    token=$(curl -sf -X POST "http://127.0.0.1:${ports[0]}/v1/admin/login" \
        -H 'Content-Type: application/json' \
        -d '{"login": "bench_auditor", "password": "bench staff password"}' \
        | sed -n 's/.*"token": *"\([^"]*\)".*/\1/p')
    [ -n "$token" ] || { echo "run.sh: the auditor's login failed" >&2; exit 1; }
    : >"$tmp/beside.out"
    BENCH_PORT=${ports[0]} BENCH_TOKEN=$token BENCH_OUT=$tmp/beside.out \
        "$BENCH_BESIDE" >"$tmp/beside.log" 2>&1 &
    beside_pid=$!
    fake_pids+=("$beside_pid")
    say "beside the load: $BENCH_BESIDE"
fi

say "loadgen: $conns connections over $instances server(s), ${warmup}s warm-up + ${secs}s"
lg_rc=0
lg_pids=()
for i in $(seq "$instances"); do
    # The connections split as evenly as they go; one run id a loadgen, so
    # receipts never repeat across instances.
    c=$(( conns / instances + (i <= conns % instances ? 1 : 0) ))
    "$loadgen" --host 127.0.0.1 --port "${ports[$((i - 1))]}" --key "$key" --cards "$tmp/cards.txt" \
        --connections "$c" --seconds "$secs" --warmup "$warmup" --threads "$threads" \
        --run-id "$$-$i" >"$tmp/loadgen$i.out" &
    lg_pids+=($!)
done
sleep "$warmup"
thread_ticks >"$tmp/ticks0"
for pid in "${lg_pids[@]}"; do wait "$pid" || lg_rc=$?; done
thread_ticks >"$tmp/ticks1"
for pid in "${server_pids[@]}"; do
    awk '/^VmRSS|^VmHWM/ {printf "server %s %.0f MiB\n", $1, $2 / 1024}' "/proc/$pid/status"
done
if [ -n "$beside_pid" ]; then
    kill -TERM "$beside_pid" 2>/dev/null || true
    wait "$beside_pid" 2>/dev/null || true
    echo "beside: $(grep -c . "$tmp/beside.out" || true) lines from $BENCH_BESIDE"
fi
for i in $(seq "$instances"); do
    [ "$instances" -eq 1 ] || echo "-- instance $i (port ${ports[$((i - 1))]})"
    cat "$tmp/loadgen$i.out"
done
# One summary over every instance: rates and errors add up; latencies are
# the worst instance's.
cat "$tmp"/loadgen*.out | awk '
    /^purchases\/s:/ { r += $2 } /^errors:/ { e += $2 }
    /^p50 ms:/ { if ($3 > p50) p50 = $3 } /^p99 ms:/ { if ($3 > p99) p99 = $3 }
    END { printf "purchases/s: %d\np50 ms: %.3f\np99 ms: %.3f\nerrors: %d\n", r, p50, p99, e }' \
    >"$tmp/loadgen.out"
[ "$instances" -eq 1 ] || { echo "-- all instances"; cat "$tmp/loadgen.out"; }
# CPU per purchase by server thread over the measured window.
rps=$(awk '/^purchases\/s:/ {print $2}' "$tmp/loadgen.out")
join "$tmp/ticks0" "$tmp/ticks1" | awk -v hz="$(getconf CLK_TCK)" -v rps="${rps:-0}" -v s="$secs" '
    rps > 0 { us = ($3 - $2) / hz * 1e6 / (rps * s); total += us
              if (us >= 0.05) printf "server cpu us per purchase: %-14s %6.1f\n", $1, us }
    END { if (rps > 0) printf "server cpu us per purchase: %-14s %6.1f\n", "(all)", total }' \
    | tee "$tmp/cpu.out"
server_cpu_us=$(awk '$6 == "(all)" { print $7 }' "$tmp/cpu.out")

# Latency at fixed rates below the maximum just measured: open loop, each
# purchase's latency from the time it was due (bench/README.md).
lat_levels=(25 50 90)
if [ "$latency" -eq 1 ] && [ "${rps:-0}" -gt 0 ]; then
    for pct in "${lat_levels[@]}"; do
        rate=$(( rps * pct / 100 ))
        [ "$rate" -ge 1 ] || rate=1
        say "loadgen at $pct % of the maximum: $rate purchases/s for ${warmup}s + ${lat_secs}s"
        lat_pids=()
        for i in $(seq "$instances"); do
            c=$(( conns / instances + (i <= conns % instances ? 1 : 0) ))
            share=$(awk -v r="$rate" -v c="$c" -v n="$conns" 'BEGIN { printf "%.3f", r * c / n }')
            "$loadgen" --host 127.0.0.1 --port "${ports[$((i - 1))]}" --key "$key" \
                --cards "$tmp/cards.txt" --connections "$c" --seconds "$lat_secs" \
                --warmup "$warmup" --threads "$threads" --rate "$share" \
                --run-id "$$-$i-r$pct" >"$tmp/lat$pct-$i.out" &
            lat_pids+=($!)
        done
        for pid in "${lat_pids[@]}"; do wait "$pid" || lg_rc=$?; done
        # Several instances: rates and errors add up, latencies are the worst
        # instance's (as above).
        cat "$tmp"/lat"$pct"-*.out | awk -v pct="$pct" -v rate="$rate" '
            /^latency ms:/ { for (i = 3; i < NF; i += 2) if ($(i + 1) + 0 > v[$i]) v[$i] = $(i + 1) + 0 }
            /^purchases\/s:/ { r += $2 } /^errors:/ { e += $2 }
            /^rate:/ { late += $NF }
            /^send lag ms:/ { if ($7 + 0 > lag) lag = $7 + 0 }
            END { printf "latency at %d %% of max (%d/s due, %d/s answered): p50 %.3f ms  p99 %.3f ms  p99.9 %.3f ms  max %.3f ms  send lag p99 %.3f ms  late %d  errors %d\n",
                         pct, rate, r, v["p50"], v["p99"], v["p99.9"], v["max"], lag, late, e }' \
            | tee "$tmp/lat$pct.line"
        awk '{ for (i = 1; i < NF; i++) if (($i == "late" || $i == "errors") && $(i + 1) != "0") bad = 1 }
             END { exit !bad }' "$tmp/lat$pct.line" \
            && echo "run.sh: warning: late purchases or errors at $pct % (see the line above)" >&2
    done
fi

say "stopping the server(s)"
server_rc=0
for i in $(seq "$instances"); do
    pid=${server_pids[$((i - 1))]}
    kill -TERM "$pid"
    rc=0
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
        echo "run.sh: server ignored SIGTERM for 10 s; killing it" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" || rc=$?
    if [ "$rc" -eq 143 ]; then
        # Killed by SIGTERM's default action: no graceful shutdown, but nothing
        # an acknowledged purchase should depend on; verify below is the judge.
        echo "run.sh: warning: kopilka serve has no SIGTERM handler (status 143)" >&2
    elif [ "$rc" -ne 0 ]; then
        echo "run.sh: kopilka serve exited with status $rc; its log:" >&2
        tail -n 20 "$tmp/serve$i.log" >&2
        server_rc=$rc
    fi
done
server_pids=()
# The writer's own figures, printed at stop (operations, commits; the
# SQLite writer's cache: hits, clears, memory).
grep -h "^kopilka: writer" "$tmp"/serve*.log 2>/dev/null || true

verify_rc=0
if [ "${VERIFY:-1}" != 0 ]; then
    say "kopilka verify"
    v_t0=$(date +%s.%N)
    "$kopilka" verify "$db" || verify_rc=$?
    echo "verify s: $(echo "$(date +%s.%N) - $v_t0" | bc -l | awk '{printf "%.1f", $1}')"
fi
if [ -n "$pg_dir" ]; then
    # Stopped before the peer starts its own cluster: one PostgreSQL at a time.
    runuser -u postgres -- "$pgbin/pg_ctl" -D "$pg_dir/data" -m fast stop >/dev/null
    rm -rf "$pg_dir"
    pg_dir=
fi

# The HTTP floor in the same run: libmicrohttpd alone answering a canned
# purchase-sized JSON after suspend/resume (bench/http_floor.c, the way the
# server answers a durable purchase), the same load generator, connections
# and threads, closed loop; its CPU a request.
floor_us=
if [ "$floor" -eq 1 ]; then
    fport=$(free_port)
    say "http floor: $build/http_floor suspend 0 on 127.0.0.1:$fport, ${warmup}s + ${floor_secs}s"
    "$build/http_floor" "$fport" suspend 0 >"$tmp/floor.log" 2>&1 &
    floor_pid=$!
    fake_pids+=("$floor_pid")
    for _ in $(seq 50); do listening "$fport" && break; sleep 0.1; done
    "$loadgen" --host 127.0.0.1 --port "$fport" --key floor --cards "$tmp/cards.txt" \
        --connections "$conns" --seconds "$floor_secs" --warmup "$warmup" --threads "$threads" \
        --run-id "$$-floor" >"$tmp/floor.out" &
    floor_lg=$!
    sleep "$warmup"
    f0=$(awk '{print $14 + $15}' "/proc/$floor_pid/stat")
    wait "$floor_lg" || echo "run.sh: the floor's loadgen failed" >&2
    f1=$(awk '{print $14 + $15}' "/proc/$floor_pid/stat")
    kill -TERM "$floor_pid" 2>/dev/null || true
    wait "$floor_pid" 2>/dev/null || true
    frps=$(awk '/^purchases\/s:/ {print $2}' "$tmp/floor.out")
    floor_us=$(awk -v t=$((f1 - f0)) -v hz="$(getconf CLK_TCK)" -v r="${frps:-0}" -v s="$floor_secs" \
        'BEGIN { if (r > 0) printf "%.1f", t / hz * 1e6 / (r * s) }')
    echo "http floor (suspend/resume): requests/s: ${frps:-?}  server cpu us per request: ${floor_us:-?}  errors: $(awk '/^errors:/ {print $2}' "$tmp/floor.out")"
fi

field() { awk -v k="$1" 'index($0, k) == 1 { print $NF; exit }' "$tmp/loadgen.out"; }
kp_rate=$(field "purchases/s:")
kp_errors=$(field "errors:")

pg_tps=
if [ "$peer" -eq 1 ]; then
    peer_sh=${PEER_SH:-../shared/peers/postgres/run.sh}
    if [ -f "$peer_sh" ]; then
        say "PostgreSQL peer: $peer_sh $secs 8"
        if bash "$peer_sh" "$secs" 8 | tee "$tmp/peer.out"; then
            pg_tps=$(awk '$1 == "tps" { print $3; exit }' "$tmp/peer.out")
        else
            echo "run.sh: the peer failed; no ratio" >&2
        fi
    else
        echo "run.sh: no peer at $peer_sh (relative to $root); skipping the ratio" >&2
    fi
fi

echo
echo "summary (same machine, same session):"
store=sqlite; [ "$pg" -eq 1 ] && store="postgresql, $instances instance(s)"
echo "kopilka purchases/s: ${kp_rate:-?}  errors: ${kp_errors:-?}  connections: $conns  seconds: $secs  store: $store"
if [ -n "$pg_tps" ]; then
    echo "postgres purchases/s: $pg_tps  clients: 8  seconds: $secs"
    if [ -n "$kp_rate" ]; then
        awk -v a="$kp_rate" -v b="$pg_tps" \
            'BEGIN { if (b > 0) printf "ratio kopilka/postgres: %.2f\n", a / b }'
    fi
fi

pg_ratio=
if [ -n "$pg_tps" ] && [ -n "$kp_rate" ]; then
    pg_ratio=$(awk -v a="$kp_rate" -v b="$pg_tps" 'BEGIN { if (b > 0) printf "%.2f", a / b }')
fi
echo
echo "goals (issue 16), this run:"
if [ -n "$floor_us" ] && [ -n "${server_cpu_us:-}" ]; then
    awk -v s="$server_cpu_us" -v f="$floor_us" -v r="${pg_ratio:-not run}" 'BEGIN {
        if (f > 0) printf "server cpu per purchase %.1f us / http floor %.1f us a request: goal 2.5×: now %.1f×   (kopilka/postgres: %s)\n", s, f, s / f, r }'
else
    echo "server cpu per purchase / http floor: not measured (--no-floor)   (kopilka/postgres: ${pg_ratio:-not run})"
fi
if [ -s "$tmp/lat50.line" ]; then
    awk '{ for (i = 1; i <= NF; i++) if ($i == "p99") { print "p99 at 50 % of max: goal 5 ms: now " $(i + 1) " ms"; exit } }' "$tmp/lat50.line"
    for pct in "${lat_levels[@]}"; do
        awk '{ sub(/  late.*/, ""); print }' "$tmp/lat$pct.line"
    done
else
    echo "latency: not measured (--no-latency)"
fi
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)  cores: $(nproc)"

status=0
[ "$lg_rc" -eq 0 ] || { echo "run.sh: loadgen failed (status $lg_rc)" >&2; status=1; }
[ "$server_rc" -eq 0 ] || status=1
[ "$verify_rc" -eq 0 ] || { echo "run.sh: kopilka verify failed (status $verify_rc)" >&2; status=1; }
[ "${kp_errors:-0}" = 0 ] || echo "run.sh: warning: $kp_errors errors during the load" >&2
exit "$status"
