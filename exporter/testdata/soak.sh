#!/usr/bin/env bash
# Memory soak: a fixed fleet (10 deployments x 3 regions x 30 media servers,
# plus gateways, SIP connectors and recording services: 1,030 servers) sends
# its life (restarts, flaps, heartbeats) for DURATION at RATE events/s to the
# exporter with its durable store. Every INTERVAL the script reads the
# exporter's own metrics; the heap must stay flat: history and counters are
# bounded, only the fleet holds memory.
#
#   exporter/testdata/soak.sh                  # DURATION=10m RATE=1000
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION=${DURATION:-10m}
RATE=${RATE:-1000}
INTERVAL=${INTERVAL:-30}
PORT=${PORT:-19828}

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]:-}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

go build -o "$work/liveswitch_exporter" ./cmd/liveswitch_exporter
"$work/liveswitch_exporter" --web.listen-address="127.0.0.1:$PORT" --storage.path="$work/data" >"$work/exporter.log" 2>&1 &
pids+=($!)
until curl -fsS -o /dev/null "http://127.0.0.1:$PORT/-/ready" 2>/dev/null; do sleep 0.1; done

"$work/liveswitch_exporter" simulate --target "http://127.0.0.1:$PORT/webhook" --scenario stormy --deployments 10 \
  --media-servers 30 --concurrency 16 --rate "$RATE" --duration "$DURATION" >"$work/simulate.log" 2>&1 &
sim=$!
pids+=($sim)

metric() { awk -v m="$1" '$1 == m { printf "%.0f", $2 }' "$work/metrics"; }
printf '%8s | %10s | %14s | %14s | %12s | %s\n' elapsed servers "heap in use MB" "heap objects" "RSS MB" "events applied"
start=$(date +%s)
while kill -0 "$sim" 2>/dev/null; do
  curl -fsS "http://127.0.0.1:$PORT/metrics" >"$work/metrics"
  printf '%7ss | %10s | %14.1f | %14s | %12.1f | %s\n' $(($(date +%s) - start)) \
    "$(metric liveswitch_exporter_servers_tracked)" \
    "$(awk '$1 == "go_memstats_heap_inuse_bytes" { print $2 / 1048576 }' "$work/metrics")" \
    "$(metric go_memstats_heap_objects)" \
    "$(awk '$1 == "process_resident_memory_bytes" { print $2 / 1048576 }' "$work/metrics")" \
    "$(metric 'liveswitch_exporter_events_total{outcome="applied"}')"
  sleep "$INTERVAL"
done
tail -n 4 "$work/simulate.log"
