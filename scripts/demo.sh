#!/usr/bin/env bash
# `make demo`: starts the stack, drives partner traffic against the paths of GitHub's REST API
# through Envoy, then prints what Plumbline learned (inventory, consumers, reporting filters)
# and stops everything, also when a step fails.
set -euo pipefail
cd "$(dirname "$0")/.."

spec=${1:?usage: demo.sh GITHUB_OPENAPI_JSON}
requests=${PLUMBLINE_DEMO_REQUESTS:-6000}
consumers=${PLUMBLINE_DEMO_CONSUMERS:-25}
bin=target/debug/plumbline
operations=.run/operations.txt

# The demo learns from a clean slate each time; `make up` keeps its own data in .run/data.
export PLUMBLINE_STACK_DATA=.run/demo-data
rm -rf "$PLUMBLINE_STACK_DATA"
scripts/stack.sh up
trap 'scripts/stack.sh down' EXIT

echo
echo "== driving $requests requests from $consumers partner keys through Envoy"
target/debug/demo-traffic --spec "$spec" --target http://127.0.0.1:10000 \
  --requests "$requests" --consumers "$consumers" --operations-out "$operations"

# Each worker VM ships on its flush tick; wait until the collector holds every request.
echo
echo "== waiting for the filters' last batches"
for _ in $(seq 1 50); do
  calls=$("$bin" inventory --json | jq '[.endpoints[].calls] | add // 0')
  [ "$calls" -ge "$requests" ] && break
  sleep 0.2
done
echo "collector holds $calls of $requests requests"

echo
echo "== inventory (top 25 of $("$bin" inventory --json | jq '.endpoints | length') endpoints)"
"$bin" inventory | head -n 26
echo
echo "== consumers (top 15 of $("$bin" consumers --json | jq '.consumers | length'))"
"$bin" consumers | head -n 16
echo
echo "== reporting filters"
"$bin" filters

exercised=$(wc -l <"$operations")
endpoints=$("$bin" inventory --json | jq '.endpoints | length')
echo
echo "operations exercised: $exercised; endpoints learned: $endpoints"
if [ $((endpoints * 10)) -lt $((exercised * 9)) ] || [ $((endpoints * 10)) -gt $((exercised * 11)) ]; then
  echo "endpoints learned differ from operations exercised by more than 10 %" >&2
  exit 1
fi
