#!/usr/bin/env bash
# Ingests a real Apache combined log offline and checks that the result is sensible:
# every line is accounted for, each client address is one consumer, and path templating
# folds the log's raw paths into fewer endpoints; replayed with a short learning period, it
# raises a handful of alerts, each with evidence. Prints one line per check and a summary.
set -euo pipefail
cd "$(dirname "$0")/.."

log=${1:?usage: dataset-check.sh ACCESS_LOG}
if [ ! -f "$log" ]; then
  echo "no access log at $log" >&2
  exit 2
fi

bin=target/debug/plumbline
export PLUMBLINE_SALT=${PLUMBLINE_SALT:-dataset-check-salt}
data=$(mktemp -d)
trap 'rm -rf "$data"' EXIT

passed=0
failed=0
check() {
  local what=$1 ok=$2
  if [ "$ok" = true ]; then
    passed=$((passed + 1))
    echo "ok   $what"
  else
    failed=$((failed + 1))
    echo "FAIL $what"
  fi
}

"$bin" ingest --data "$data" --format combined "$log"
"$bin" inventory --data "$data" --json >"$data/inventory.json"
"$bin" consumers --data "$data" --json >"$data/consumers.json"

lines=$(grep -c . "$log")
addresses=$(awk '{ print $1 }' "$log" | sort -u | wc -l)
raw_paths=$(awk '{ print $7 }' "$log" | sed 's/?.*//' | sort -u | wc -l)
calls=$(jq '[.endpoints[].calls] | add' "$data/inventory.json")
endpoints=$(jq '.endpoints | length' "$data/inventory.json")
consumers=$(jq '.consumers | length' "$data/consumers.json")
consumer_calls=$(jq '[.consumers[].calls] | add' "$data/consumers.json")

echo "lines $lines, addresses $addresses, raw paths $raw_paths;" \
  "endpoints $endpoints, consumers $consumers, calls $calls"
check "every line is counted as a call ($calls of $lines)" \
  "$([ "$calls" -eq "$lines" ] && echo true || echo false)"
check "each client address is one consumer ($consumers of $addresses)" \
  "$([ "$consumers" -eq "$addresses" ] && echo true || echo false)"
check "consumers' calls add up to the inventory's ($consumer_calls)" \
  "$([ "$consumer_calls" -eq "$calls" ] && echo true || echo false)"
check "templating folds raw paths into fewer endpoints ($endpoints < $raw_paths)" \
  "$([ "$endpoints" -lt "$raw_paths" ] && [ "$endpoints" -gt 20 ] && echo true || echo false)"
check "no endpoint keeps a raw numeric id" \
  "$(jq '[.endpoints[].path | test("/[0-9]{4,}(/|$)")] | any | not' "$data/inventory.json")"

# The same log with detection set for a four-day replay (a one-day learning period).
"$bin" --config collector/examples/apache-replay.toml \
  ingest --data "$data/replay" --format combined "$log" >/dev/null
"$bin" alerts --data "$data/replay" --json >"$data/alerts.json"
alerts=$(jq '.alerts | length' "$data/alerts.json")
"$bin" alerts --data "$data/replay"
check "the replay raises between 1 and 20 alerts ($alerts)" \
  "$([ "$alerts" -ge 1 ] && [ "$alerts" -le 20 ] && echo true || echo false)"
check "every alert carries evidence (feature, window, endpoint)" \
  "$(jq '[.alerts[].evidence | (.feature != "") and (.window_start != null) and (.endpoints | length > 0)] | all' "$data/alerts.json")"

echo "dataset-check: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
