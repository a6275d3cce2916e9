#!/usr/bin/env bash
# Starts and stops the local Plumbline stack that `make up` / `make down` manage:
# the demo upstream (127.0.0.1:8000), the collector (127.0.0.1:7070) and Envoy with the
# filter (listener 127.0.0.1:10000, admin 127.0.0.1:9901). Logs, pids and the collector's
# data directory live in .run/. PLUMBLINE_STACK_CONFIG names a collector config file to use.
set -Eeuo pipefail
cd "$(dirname "$0")/.."

RUN=.run
DATA=${PLUMBLINE_STACK_DATA:-$RUN/data}
ENVOY=${ENVOY:-.venv/bin/envoy}
CONCURRENCY=${PLUMBLINE_ENVOY_CONCURRENCY:-2}

# The demo secrets of envoy/envoy.yaml: fine for a laptop, never for production. The
# operator token guards the collector's API (reads too): export the same value to use the CLI.
# A secret given as a file (PLUMBLINE_..._FILE) is left alone.
if [ -z "${PLUMBLINE_INGEST_TOKEN_FILE:-}" ]; then
  export PLUMBLINE_INGEST_TOKEN=${PLUMBLINE_INGEST_TOKEN:-plumbline-demo-token}
fi
if [ -z "${PLUMBLINE_SALT_FILE:-}" ]; then
  export PLUMBLINE_SALT=${PLUMBLINE_SALT:-plumbline-demo-salt-change-me}
fi
export PLUMBLINE_OPERATOR_TOKEN=${PLUMBLINE_OPERATOR_TOKEN:-plumbline-demo-operator-token}

port_busy() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

start() {
  local name=$1
  shift
  setsid nohup "$@" >"$RUN/$name.log" 2>&1 </dev/null &
  echo $! >"$RUN/$name.pid"
}

wait_ready() {
  local name=$1 url=$2
  for _ in $(seq 1 100); do
    if curl -fsS -o /dev/null "$url" 2>/dev/null; then
      return 0
    fi
    if ! kill -0 "$(cat "$RUN/$name.pid")" 2>/dev/null; then
      echo "$name exited while starting; last lines of $RUN/$name.log:" >&2
      tail -n 20 "$RUN/$name.log" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "$name did not become ready at $url within 10 s; see $RUN/$name.log" >&2
  return 1
}

up() {
  mkdir -p "$RUN"
  for port in 8000 7070 10000 9901; do
    if port_busy "$port"; then
      echo "127.0.0.1:$port is in use: is a stack already up? (make down stops it)" >&2
      exit 1
    fi
  done
  # From here on, a failure stops whatever this call started.
  trap 'down' ERR
  start upstream target/debug/demo-upstream --listen 127.0.0.1:8000
  start collector target/debug/plumbline ${PLUMBLINE_STACK_CONFIG:+--config "$PLUMBLINE_STACK_CONFIG"} \
    serve --listen 127.0.0.1:7070 --data "$DATA"
  wait_ready upstream http://127.0.0.1:8000/__demo/stats
  wait_ready collector http://127.0.0.1:7070/healthz
  start envoy "$ENVOY" -c envoy/envoy.yaml --concurrency "$CONCURRENCY" \
    --disable-hot-restart --log-level warn \
    --service-node "${PLUMBLINE_NODE:-demo-envoy}" --service-cluster demo
  wait_ready envoy http://127.0.0.1:9901/ready
  trap - ERR
  echo "stack up: envoy 127.0.0.1:10000 -> upstream 127.0.0.1:8000; collector 127.0.0.1:7070;" \
    "logs in $RUN/"
}

stop() {
  local name=$1 pidfile="$RUN/$1.pid" pid
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}

down() {
  # Envoy first, so its last batches can still reach the collector.
  stop envoy
  stop collector
  stop upstream
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
