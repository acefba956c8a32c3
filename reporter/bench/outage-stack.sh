#!/usr/bin/env bash
# Zero-loss check on the real stack: redis-server, functions/ingest and
# functions/query (net/http mode), a host enrolled with vitalsctl, and the
# reporter at a 1 s interval. The ingest function is stopped for OUTAGE
# seconds; halfway through, the reporter is SIGKILLed and restarted. At the
# end the REST history (GET /api/servers/{id}/metrics?period=1h: 10 s points,
# each saying how many samples it aggregates) must account for every sample
# the reporter spooled.
#
# usage: reporter/bench/outage-stack.sh [outage seconds, default 60]
set -euo pipefail
outage=${1:-60}
root=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
redis=""; ingest=""; query=""; rep=""
cleanup() { for p in $rep $ingest $query $redis; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
log() { echo "[$(date +%T)] $*"; }

(cd "$root" && for p in functions/ingest functions/query infra/vitalsctl reporter/cmd/vitals-reporter; do
  CGO_ENABLED=0 go build -trimpath -o "$tmp/$(basename "$p")" "./$p"; done)
rport=$(freeport); iport=$(freeport); qport=$(freeport)
redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no --dir "$tmp" >"$tmp/redis.log" 2>&1 & redis=$!
sleep 0.5
export VITALS_REDIS_URL="redis://127.0.0.1:$rport" VITALS_JWT_SECRET=$(openssl rand -hex 32) VITALS_LOG_LEVEL=warn
"$tmp/vitalsctl" host add outage-stack >"$tmp/host.env" 2>/dev/null
token=$("$tmp/vitalsctl" token issue --servers outage-stack --ttl 1h 2>/dev/null)

start_ingest() { VITALS_ADDR="127.0.0.1:$iport" "$tmp/ingest" 2>>"$tmp/ingest.log" & ingest=$!; sleep 0.5; }
start_reporter() {
  VITALS_HOST_KEY_FILE="$tmp/host.env" "$tmp/vitals-reporter" run --server-id outage-stack --interval 1s \
    --ingest-url "http://127.0.0.1:$iport/api/ingest" --state-dir "$tmp/state" --log-format json --log-level debug 2>>"$tmp/reporter.log" & rep=$!
}
spooled() { grep '"msg":"sample spooled"' "$tmp/reporter.log" | sed 's/.*"collectedAt":"\([^"]*\)".*/\1/' | sort -u | wc -l; }
stored() {
  curl -sf -H "Authorization: Bearer $token" "http://127.0.0.1:$qport/api/servers/outage-stack/metrics?period=1h" |
    python3 -c 'import json,sys; print(sum(m["samples"] for m in json.load(sys.stdin)["metrics"]))'
}

VITALS_ADDR="127.0.0.1:$qport" "$tmp/query" 2>>"$tmp/query.log" & query=$!
start_ingest; start_reporter
log "redis, ingest, query and reporter up; 10 s of normal operation"
sleep 10
kill "$ingest"; wait "$ingest" 2>/dev/null || true
log "ingest function down for ${outage} s (stored so far: $(stored) samples)"
sleep $((outage / 2))
kill -9 "$rep"; wait "$rep" 2>/dev/null || true
log "reporter killed with SIGKILL ($(spooled) samples spooled so far); restarting it"
start_reporter
sleep $((outage - outage / 2))
start_ingest
log "ingest back; waiting for the backlog (the retry backoff is at most 60 s)"
for ((i = 0; i < 120; i++)); do
  [[ "$(stored)" -ge "$(spooled)" ]] && break
  sleep 1
done
kill -TERM "$rep"; wait "$rep" 2>/dev/null || true; rep=""
s=$(spooled); r=$(stored)
log "spooled by the reporter: $s; stored, as the REST history counts them: $r"
curl -sf -H "Authorization: Bearer $token" "http://127.0.0.1:$qport/api/servers/outage-stack/metrics?period=1h" |
  python3 -c 'import json,sys; m=json.load(sys.stdin)["metrics"]; print("10 s points:", len(m), "samples per point:", [p["samples"] for p in m])'
[[ "$r" -eq "$s" ]] && log "PASS: zero samples lost" || { log "FAIL: spooled $s, stored $r"; tail -5 "$tmp/ingest.log"; exit 1; }
