#!/usr/bin/env bash
# `make demo`: starts the stack, drives partner traffic against the paths of GitHub's REST API
# through Envoy (a learning phase, then an abuse phase in which three partners turn abusive),
# then prints what Plumbline learned (inventory, consumers, reporting filters), the alerts it
# raised with their evidence, the decision its policy made and how many requests were
# blocked, and stops everything, also when a step fails.
set -euo pipefail
cd "$(dirname "$0")/.."

spec=${1:?usage: demo.sh GITHUB_OPENAPI_JSON}
consumers=${PLUMBLINE_DEMO_CONSUMERS:-25}
learn=${PLUMBLINE_DEMO_LEARN_SECONDS:-16}
abuse=${PLUMBLINE_DEMO_ABUSE_SECONDS:-10}
rate=${PLUMBLINE_DEMO_RATE:-300}
bin=target/debug/plumbline
operations=.run/operations.txt
answered_file=.run/answered.txt

# The collector learns each partner in seconds and enforces its policy (enumeration: block).
export PLUMBLINE_STACK_CONFIG=${PLUMBLINE_STACK_CONFIG:-scripts/demo-collector.toml}
# The stack's demo operator token; the CLI below presents it.
export PLUMBLINE_OPERATOR_TOKEN=${PLUMBLINE_OPERATOR_TOKEN:-plumbline-demo-operator-token}

# The demo learns from a clean slate each time; `make up` keeps its own data in .run/data.
export PLUMBLINE_STACK_DATA=.run/demo-data
rm -rf "$PLUMBLINE_STACK_DATA"
scripts/stack.sh up
trap 'scripts/stack.sh down' EXIT

echo
echo "== driving $consumers partner keys through Envoy: $learn s of learning, then $abuse s of abuse"
target/debug/demo-traffic --spec "$spec" --target http://127.0.0.1:10000 \
  --consumers "$consumers" --learn-seconds "$learn" --abuse-seconds "$abuse" --rate "$rate" \
  --operations-out "$operations" --answered-out "$answered_file"
requests=$(cat "$answered_file")

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

echo
echo "== alerts (newest first; evidence: the feature that moved, its baseline and current value)"
"$bin" alerts
echo
echo "== evidence, in words"
"$bin" alerts --json |
  jq -r '.alerts[] | "alert \(.id) \(.detector) \(.status) \(.label // .consumer): \(.evidence.summary)"'
echo
echo "== decisions (the policy blocks a consumer on an enumeration alert)"
"$bin" decisions
blocked=$(curl -fsS "http://127.0.0.1:9901/stats?filter=plumbline.requests_blocked" |
  awk -F': ' '{ n += $2 } END { print n + 0 }')
echo
echo "requests blocked by Plumbline at Envoy (wasmcustom.plumbline.requests_blocked): $blocked"
by_policy=$("$bin" decisions --json | jq '[.decisions[] | select(.created_by == "policy")] | length')
if [ "$by_policy" -eq 0 ] || [ "$blocked" -eq 0 ]; then
  echo "no abusive consumer was blocked during the demo" >&2
  exit 1
fi

exercised=$(wc -l <"$operations")
endpoints=$("$bin" inventory --json | jq '.endpoints | length')
echo
echo "operations exercised: $exercised; endpoints learned: $endpoints"
if [ $((endpoints * 10)) -lt $((exercised * 9)) ] || [ $((endpoints * 10)) -gt $((exercised * 11)) ]; then
  echo "endpoints learned differ from operations exercised by more than 10 %" >&2
  exit 1
fi
