#!/usr/bin/env bash
# `make bench`, part one: Envoy with Plumbline's filter against Envoy with a no-op wasm filter,
# both built with the same profile, both answering from a direct_response route, one worker each,
# measured in interleaved rounds in one run, reported as ratios and differences:
#   - throughput with many connections (wrk), Envoy's CPU time per request (utime+stime from
#     /proc divided by Envoy's own request counter), and p99 latency with one connection.
# The table shows medians over rounds; the three results are medians of the ratios and
# differences within each round (no-op and Plumbline measured back to back), which cancels most
# of the drift of a shared machine's load. The collector runs at a lower priority so it competes less with the
# Envoy under test.
# Part two runs the collector's and the detection engine's own benchmarks.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${BENCH_ROUNDS:-3}
LOAD_SECONDS=${BENCH_SECONDS:-5}
LATENCY_SECONDS=${BENCH_LATENCY_SECONDS:-3}
CONNECTIONS=${BENCH_CONNECTIONS:-16}
ENVOY=${ENVOY:-.venv/bin/envoy}
# The collector as it runs in production: a release build (a debug one would take the
# machine's second core away from Envoy and wrk).
COLLECTOR=${COLLECTOR:-target/release/plumbline}
TICK=$(getconf CLK_TCK)

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_ready() {
  for _ in $(seq 1 100); do
    curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "bench: $1 did not become ready" >&2
  exit 1
}

# The plugin configuration of the shipped envoy.yaml, pointed at this run's collector.
plumbline_plugin_config() {
  cat <<JSON
{"collector_cluster": "plumbline_collector", "collector_authority": "127.0.0.1:$1",
 "ingest_token": "bench-token", "hash_salt": "bench-salt-0123456789",
 "identity": [{"type": "header", "name": "x-api-key"}, {"type": "bearer"}],
 "label_header": "x-partner"}
JSON
}

# envoy_config NAME WASM LISTEN ADMIN COLLECTOR PLUGIN_JSON
envoy_config() {
  cat <<YAML
admin:
  address: { socket_address: { address: 127.0.0.1, port_value: $4 } }
static_resources:
  listeners:
    - name: bench
      address: { socket_address: { address: 127.0.0.1, port_value: $3 } }
      filter_chains:
        - filters:
            - name: envoy.filters.network.http_connection_manager
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                stat_prefix: bench
                route_config:
                  virtual_hosts:
                    - name: direct
                      domains: ["*"]
                      routes:
                        - match: { prefix: "/" }
                          direct_response: { status: 200, body: { inline_string: "ok" } }
                http_filters:
                  - name: $1
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
                      config:
                        name: $1
                        root_id: $1
                        failure_policy: FAIL_OPEN
                        vm_config:
                          vm_id: $1
                          runtime: envoy.wasm.runtime.v8
                          code: { local: { filename: $2 } }
                        configuration:
                          "@type": type.googleapis.com/google.protobuf.StringValue
                          value: '$(echo "$6" | tr -d '\n')'
                  - name: envoy.filters.http.router
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
    - name: plumbline_collector
      type: STATIC
      connect_timeout: 1s
      load_assignment:
        cluster_name: plumbline_collector
        endpoints:
          - lb_endpoints:
              - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: $5 } } }
YAML
}

declare -A LISTEN ADMIN PID
start_envoy() {
  local name=$1 wasm=$2 plugin=$3
  LISTEN[$name]=$(free_port)
  ADMIN[$name]=$(free_port)
  envoy_config "$name" "$PWD/$wasm" "${LISTEN[$name]}" "${ADMIN[$name]}" "$collector_port" \
    "$plugin" >"$work/$name.yaml"
  "$ENVOY" -c "$work/$name.yaml" --concurrency 1 --disable-hot-restart --log-level warn \
    --service-node "bench-$name" >"$work/$name.log" 2>&1 &
  PID[$name]=$!
  pids+=("$!")
  wait_ready "http://127.0.0.1:${ADMIN[$name]}/ready"
}

cpu_ticks() {
  awk '{ print $14 + $15 }' "/proc/$1/stat"
}

requests_served() {
  curl -fsS "http://127.0.0.1:$1/stats?filter=^http\\.bench\\.downstream_rq_total$" |
    awk -F': ' '{ print $2 }'
}

# wrk's latency figure ("1.23ms", "850.00us", "1.02s") in microseconds.
to_us() {
  awk -v v="$1" 'BEGIN {
    n = v + 0
    if (v ~ /us$/) print n; else if (v ~ /ms$/) print n * 1000; else print n * 1000000 }'
}

load_round() {
  local name=$1 cpu0 cpu1 rq0 rq1 out rps
  cpu0=$(cpu_ticks "${PID[$name]}")
  rq0=$(requests_served "${ADMIN[$name]}")
  out=$(wrk -t1 -c"$CONNECTIONS" -d"${LOAD_SECONDS}s" -H 'x-api-key: bench-partner-key' \
    -H 'x-partner: bench' "http://127.0.0.1:${LISTEN[$name]}/v1/orders/48151623?page=2")
  cpu1=$(cpu_ticks "${PID[$name]}")
  rq1=$(requests_served "${ADMIN[$name]}")
  rps=$(echo "$out" | awk '/^Requests\/sec/ { print $2 }')
  awk -v c=$((cpu1 - cpu0)) -v r=$((rq1 - rq0)) -v t="$TICK" -v rps="$rps" -v n="$name" \
    'BEGIN { printf "%s load %.0f %.2f\n", n, rps, c / t * 1e6 / r }' >>"$work/results"
}

latency_round() {
  local name=$1 p99
  p99=$(wrk -t1 -c1 -d"${LATENCY_SECONDS}s" --latency -H 'x-api-key: bench-partner-key' \
    "http://127.0.0.1:${LISTEN[$name]}/v1/orders/48151623" | awk '$1 == "99%" { print $2 }')
  echo "$name p99 $(to_us "$p99")" >>"$work/results"
}

median() {
  sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

pick() {
  awk -v n="$1" -v k="$2" -v f="$3" '$1 == n && $2 == k { print $f }' "$work/results" | median
}

# paired KIND FIELD OP: median over rounds of plumbline's FIELD OP (- or /) no-op's, one round
# at a time.
paired() {
  awk -v k="$1" -v f="$2" -v op="$3" '$2 == k { v[$1, ++n[$1]] = $f }
    END { for (i = 1; i <= n["plumbline"]; i++) {
      a = v["plumbline", i]; b = v["noop", i]
      print (op == "/") ? a / b : a - b } }' "$work/results" | median
}

collector_port=$(free_port)
PLUMBLINE_INGEST_TOKEN=bench-token PLUMBLINE_SALT=bench-salt-0123456789 \
  nice -n 10 "$COLLECTOR" serve --listen "127.0.0.1:$collector_port" --data "$work/data" \
  >"$work/collector.log" 2>&1 &
pids+=("$!")
wait_ready "http://127.0.0.1:$collector_port/healthz"

start_envoy noop target/wasm32-wasip1/wasm/plumbline_noop_filter.wasm '{}'
start_envoy plumbline target/wasm32-wasip1/wasm/plumbline_filter.wasm \
  "$(plumbline_plugin_config "$collector_port")"

echo "== Envoy: Plumbline's filter vs a no-op wasm filter ($ROUNDS interleaved rounds," \
  "${LOAD_SECONDS} s at $CONNECTIONS connections, ${LATENCY_SECONDS} s at 1 connection, 1 worker)"
for name in noop plumbline; do
  wrk -t1 -c"$CONNECTIONS" -d1s "http://127.0.0.1:${LISTEN[$name]}/" >/dev/null
done
for round in $(seq 1 "$ROUNDS"); do
  for name in noop plumbline; do
    load_round "$name"
    latency_round "$name"
  done
  echo "  round $round: $(grep -c . "$work/results") measurements"
done

printf '  %-10s %12s %16s %12s\n' variant "req/s" "CPU µs/request" "p99 µs (c=1)"
for name in noop plumbline; do
  printf '  %-10s %12.0f %16.2f %12.1f\n' "$name" "$(pick "$name" load 3)" \
    "$(pick "$name" load 4)" "$(pick "$name" p99 3)"
done
echo "  per-round figures:"
sed 's/^/    /' "$work/results"
awk -v r="$(paired load 3 /)" -v c="$(paired load 4 -)" -v l="$(paired p99 3 -)" 'BEGIN {
    printf "  throughput ratio (plumbline / no-op): %.3f   goal >= 0.97\n", r
    printf "  CPU per request added:                %.2f µs   goal <= 3 µs\n", c
    printf "  p99 latency added (1 connection):     %.1f µs   goal <= 15 µs\n", l
  }'
shipped=$(curl -fsS "http://127.0.0.1:${ADMIN[plumbline]}/stats?filter=records_shipped" |
  awk -F': ' '{ print $2 }')
echo "  records the filter shipped to the collector during the run: $shipped"
# The filter's memory gauges: the sum of its VMs' wasm linear memory, and how many VMs.
gauge() {
  curl -fsS "http://127.0.0.1:${ADMIN[plumbline]}/stats?filter=plumbline.$1\$" |
    awk -F': ' '{ print $2 + 0 }'
}
awk -v bytes="$(gauge vm_memory_bytes)" -v vms="$(gauge vms)" 'BEGIN {
    printf "  filter memory per VM (wasm linear memory, %d VMs): %.2f MiB   goal <= 4 MiB\n",
      vms, (vms > 0 ? bytes / vms : 0) / 1048576
  }'
