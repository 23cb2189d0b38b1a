#!/usr/bin/env bash
# Ingest benchmark on loopback, driven by wrk (Debian's, a C load generator
# that leaves the exporter most of the machine): the same realistic media
# server events (exporter/testdata/webhook.lua) posted to a bare net/http
# handler that only drains the body and answers 204 (the bound), to the
# exporter in memory, with its durable store, and as a replica on a local
# redis-server (appendonly yes, appendfsync always); and the Pushgateway
# alternative (a PUT of each server's state, pushgateway.lua). One table:
# requests/s, ratio to the bare handler, p50 and p99 of the acknowledgement,
# and the CPU time the server (with redis-server for the replica) spent per
# request.
# On a shared machine the speed drifts from minute to minute, so the targets
# are run in turn ROUNDS times and each figure is the median of its rounds.
#
#   exporter/testdata/bench.sh                          # wrk -t2 -c64 -d10s, 3 rounds
#   DURATION=30s CONNECTIONS=128 exporter/testdata/bench.sh
#   REDIS=0 PUSHGATEWAY=0 exporter/testdata/bench.sh    # skip those runs
#   TIMEOUT=60s exporter/testdata/bench.sh               # wrk's per-request timeout (30s)
#   EXPORTER=/path/to/liveswitch_exporter exporter/testdata/bench.sh  # another build
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
WARMUP=${WARMUP:-3s}
TIMEOUT=${TIMEOUT:-30s}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-64}
export SERVERS=${SERVERS:-2000} # per wrk thread
PORT=${PORT:-19818}

command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]:-}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

exporter=${EXPORTER:-$work/liveswitch_exporter}
[ -n "${EXPORTER:-}" ] || go build -o "$exporter" ./cmd/liveswitch_exporter
go build -o "$work/baseline" ./exporter/testdata/baseline

wait_http() { # url
  for _ in $(seq 1 200); do
    if curl -fsS -o /dev/null "$1" 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "no answer from $1" >&2; return 1
}

start() { # name cmd...
  "${@:2}" >"$work/$1.log" 2>&1 &
  pids+=($!)
}

stop_last() {
  local p=${pids[-1]}
  kill "$p" 2>/dev/null || true
  wait "$p" 2>/dev/null || true
  unset 'pids[-1]'
}

# cpu_ticks pid...: the CPU time (user + system, in clock ticks) the
# processes have used so far.
cpu_ticks() {
  local t=0 p
  for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done
  echo "$t"
}

# load url script pid...: prints "requests/s p50 p99 errors cpu" of one wrk
# run after a warm-up run, cpu being the µs of CPU the server processes (pid...)
# spent per request: unlike the rate, it hardly moves when a neighbour on a
# shared machine takes the CPU. wrk leaves requests that exceed its timeout
# out of the latencies and the rate, so the timeout is long (TIMEOUT) and
# requests that still exceed it count as errors.
load() {
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" --timeout "$TIMEOUT" -s "$2" "$1" >/dev/null 2>&1
  local out before after
  before=$(cpu_ticks "${@:3}")
  out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --timeout "$TIMEOUT" --latency -s "$2" "$1" 2>"$work/wrk.err")
  after=$(cpu_ticks "${@:3}")
  echo "$out" >>"$work/wrk.out"
  local rps p50 p99 errors requests cpu
  rps=$(awk '/^Requests\/sec:/ {printf "%d", $2}' <<<"$out")
  requests=$(awk '/ requests in / {print $1}' <<<"$out")
  cpu=$(awk -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" -v n="$requests" \
    'BEGIN { if (n > 0) printf "%.0f", t / hz * 1e6 / n; else print "-" }')
  p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  errors=$(awk '/Non-2xx or 3xx responses:/ {n += $5} /Socket errors:/ {n += $4 + $6 + $8 + $10} END {print n + 0}' <<<"$out")
  echo "$rps $p50 $p99 $errors $cpu"
}

declare -A rps p50 p99 errs cpu
# run name url script pid...: one round of one target, its figures appended
# (and shown on stderr, so that the spread between rounds can be seen)
run() {
  local r a b c u
  read -r r a b c u < <(load "${@:2}")
  rps[$1]+="$r " p50[$1]+="$a " p99[$1]+="$b " errs[$1]=$((${errs[$1]:-0} + c)) cpu[$1]+="$u "
  echo "$1: $r requests/s, p99 $b, $u µs CPU/request" >&2
}

# median of a list of figures with units (ms, s, us), in ms or s
median() {
  tr ' ' '\n' <<<"$1" | grep -v '^$' |
    awk '{ v = $1; u = v; sub(/^[0-9.]+/, "", u); n = v + 0
           if (u == "s") n *= 1000; else if (u == "us") n /= 1000; print n }' | sort -g |
    awk '{ a[NR] = $1 } END { x = a[int((NR + 1) / 2)]
      if (x >= 1000) printf "%.2fs", x / 1000; else if (x >= 1) printf "%.2fms", x; else printf "%.0fus", x * 1000 }'
}
median_int() { tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

modes=(in-memory durable)
if [ "${REDIS:-1}" = 1 ] && command -v redis-server >/dev/null; then modes+=(redis); fi
for round in $(seq 1 "$ROUNDS"); do
  start baseline "$work/baseline" -listen "127.0.0.1:$PORT"
  wait_http "http://127.0.0.1:$PORT/"
  run bare "http://127.0.0.1:$PORT/webhook" exporter/testdata/webhook.lua "${pids[-1]}"
  stop_last
  for mode in "${modes[@]}"; do
    rm -rf "$work/data" && mkdir -p "$work/data"
    case $mode in
      durable) flags=(--storage.path="$work/data") ;;
      in-memory) flags=(--storage.in-memory) ;;
      redis)
        start redis redis-server --bind 127.0.0.1 --port $((PORT + 1)) --dir "$work/data" \
          --appendonly yes --appendfsync always --save "" --loglevel warning
        until redis-cli -p $((PORT + 1)) ping >/dev/null 2>&1; do sleep 0.05; done
        flags=(--storage.redis-url="redis://127.0.0.1:$((PORT + 1))/0") ;;
    esac
    start "exporter-$mode" "$exporter" --web.listen-address="127.0.0.1:$PORT" --log.level=warn "${flags[@]}"
    wait_http "http://127.0.0.1:$PORT/-/ready"
    servers=("${pids[-1]}")
    if [ "$mode" = redis ]; then servers+=("${pids[-2]}"); fi
    run "$mode" "http://127.0.0.1:$PORT/webhook" exporter/testdata/webhook.lua "${servers[@]}"
    stop_last
    if [ "$mode" = redis ]; then stop_last; fi
  done
done

if [ "${PUSHGATEWAY:-1}" = 1 ] && command -v prometheus-pushgateway >/dev/null; then
  start pushgateway prometheus-pushgateway --web.listen-address="127.0.0.1:$PORT"
  wait_http "http://127.0.0.1:$PORT/-/ready"
  run pushgateway "http://127.0.0.1:$PORT" exporter/testdata/pushgateway.lua "${pids[-1]}"
  stop_last
fi

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
echo
echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION (after a $WARMUP warm-up), $((SERVERS * THREADS)) media servers, median of $ROUNDS rounds (Pushgateway: 1); $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
printf '| %-23s | %10s | %6s | %9s | %9s | %12s | %s\n' target "requests/s" ratio p50 p99 "CPU/request" "non-2xx or failed"
printf '|%s|%s|%s|%s|%s|%s|%s\n' ------------------------- ------------ -------- ----------- ----------- -------------- ---------
for name in bare in-memory durable redis pushgateway; do
  [ -n "${rps[$name]:-}" ] || continue
  label=$name
  case $name in
    bare) label="bare net/http handler" ;;
    in-memory) label="exporter, in memory" ;;
    durable) label="exporter, durable" ;;
    redis) label="exporter, Redis replica" ;;
    pushgateway) label="Pushgateway" ;;
  esac
  r=$(median_int "${rps[$name]}")
  printf '| %-23s | %10s | %6s | %9s | %9s | %12s | %s\n' "$label" "$r" "$(ratio "$r" "$(median_int "${rps[bare]}")")" \
    "$(median "${p50[$name]}")" "$(median "${p99[$name]}")" "$(median_int "${cpu[$name]}") µs" "${errs[$name]}"
done
