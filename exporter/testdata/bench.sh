#!/usr/bin/env bash
# Ingest benchmark on loopback: the exporter (durable bbolt store, in memory,
# and a replica on a local redis-server with appendfsync always) against a
# bare net/http handler and against Debian's
# prometheus-pushgateway, all driven by `liveswitch_exporter simulate` in load
# mode with distinct, growing servers. Prints one table with the ratios.
#
#   exporter/testdata/bench.sh            # COUNT=20000 events per run
#   COUNT=50000 CONCURRENCY="16 64" exporter/testdata/bench.sh
#   REDIS=0 PUSHGATEWAY=0 exporter/testdata/bench.sh   # skip those runs
set -euo pipefail
cd "$(dirname "$0")/../.."
COUNT=${COUNT:-20000}
# The Pushgateway slows down as groups accumulate (it checks every push
# against everything it holds), so it gets a fixed time instead of a count.
PUSH_DURATION=${PUSH_DURATION:-20s}
CONCURRENCY=${CONCURRENCY:-"1 16 64"}
PORT=${PORT:-19818}

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]:-}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

go build -o "$work/liveswitch_exporter" ./cmd/liveswitch_exporter
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

# load target concurrency [extra simulate flags]: prints "events/s p99"
load() {
  local out rate p99 sent acked
  out=$("$work/liveswitch_exporter" simulate --target "$1" --concurrency "$2" --rate 0 --count "$COUNT" --grow "${@:3}" 2>/dev/null)
  rate=$(sed -n 's/.*acknowledged (\([0-9]*\) events\/s).*/\1/p' <<<"$out")
  p99=$(sed -n 's/.* p99 \([^ ]*\) max.*/\1/p' <<<"$out")
  sent=$(sed -n 's/^sent \([0-9]*\) events.*/\1/p' <<<"$out")
  acked=$(sed -n 's/.*: \([0-9]*\) acknowledged.*/\1/p' <<<"$out")
  if [ "$sent" != "$acked" ]; then
    echo "not every event was acknowledged:" >&2; echo "$out" >&2
  fi
  echo "$rate $p99"
}

declare -A rate p99
for c in $CONCURRENCY; do
  start baseline "$work/baseline" -listen "127.0.0.1:$PORT"
  wait_http "http://127.0.0.1:$PORT/"
  read -r rate[bare,$c] p99[bare,$c] < <(load "http://127.0.0.1:$PORT/webhook" "$c")
  stop_last

  modes=(durable in-memory)
  if [ "${REDIS:-1}" = 1 ] && command -v redis-server >/dev/null; then modes+=(redis); fi
  for mode in "${modes[@]}"; do
    rm -rf "$work/data-$c"
    mkdir -p "$work/data-$c"
    case $mode in
      durable) flags=(--storage.path="$work/data-$c") ;;
      in-memory) flags=(--storage.in-memory) ;;
      redis)
        start redis redis-server --bind 127.0.0.1 --port $((PORT + 1)) --dir "$work/data-$c" \
          --appendonly yes --appendfsync always --save "" --loglevel warning
        until redis-cli -p $((PORT + 1)) ping >/dev/null 2>&1; do sleep 0.05; done
        flags=(--storage.redis-url="redis://127.0.0.1:$((PORT + 1))/0") ;;
    esac
    start "exporter-$mode" "$work/liveswitch_exporter" --web.listen-address="127.0.0.1:$PORT" --server.max=0 "${flags[@]}"
    wait_http "http://127.0.0.1:$PORT/-/ready"
    read -r rate[$mode,$c] p99[$mode,$c] < <(load "http://127.0.0.1:$PORT/webhook" "$c")
    stop_last
    if [ "$mode" = redis ]; then stop_last; fi
  done

  if [ "${PUSHGATEWAY:-1}" = 1 ] && command -v prometheus-pushgateway >/dev/null; then
    start pushgateway prometheus-pushgateway --web.listen-address="127.0.0.1:$PORT"
    wait_http "http://127.0.0.1:$PORT/-/ready"
    read -r rate[push,$c] p99[push,$c] < <(COUNT=0 load "http://127.0.0.1:$PORT" "$c" --pushgateway --duration "$PUSH_DURATION")
    stop_last
  fi
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
printf '\n%-8s | %-18s | %-28s | %-28s | %-28s | %-20s | %s\n' senders "bare handler" "exporter durable (ratio)" "exporter in memory (ratio)" "exporter redis (ratio)" "pushgateway" "durable / pushgateway"
printf -- '---------|--------------------|------------------------------|------------------------------|------------------------------|----------------------|----------------------\n'
for c in $CONCURRENCY; do
  printf '%-8s | %7s/s p99 %-6s | %7s/s (%s) p99 %-8s | %7s/s (%s) p99 %-8s | %7s/s (%s) p99 %-8s | %7s/s p99 %-8s | %s\n' "$c" \
    "${rate[bare,$c]}" "${p99[bare,$c]}" \
    "${rate[durable,$c]}" "$(ratio "${rate[durable,$c]}" "${rate[bare,$c]}")" "${p99[durable,$c]}" \
    "${rate[in-memory,$c]}" "$(ratio "${rate[in-memory,$c]}" "${rate[bare,$c]}")" "${p99[in-memory,$c]}" \
    "${rate[redis,$c]:--}" "$(ratio "${rate[redis,$c]:-0}" "${rate[bare,$c]}")" "${p99[redis,$c]:--}" \
    "${rate[push,$c]:--}" "${p99[push,$c]:--}" "$(ratio "${rate[durable,$c]}" "${rate[push,$c]:-0}")"
done
