#!/usr/bin/env bash
# Zero-loss check: the reporter runs (1 s interval) against a stand-in ingest
# (sink.py, which records every sample it receives); the ingest goes away for
# OUTAGE seconds, and halfway through the outage the reporter is killed with
# SIGKILL and started again on the same state directory. Afterwards every
# sample the reporter spooled must have reached the ingest.
#
# usage: reporter/bench/outage.sh [outage seconds, default 300]
set -euo pipefail
outage=${1:-300}
root=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
sink=""; rep=""
cleanup() { for p in $sink $rep; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
(cd "$root" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$tmp/vitals-reporter" ./reporter/cmd/vitals-reporter)
export VITALS_HOST_KEY=$(openssl rand -hex 32)

start_sink() { python3 "$root/reporter/bench/sink.py" "$port" "$tmp/received" & sink=$!; sleep 0.5; }
start_reporter() {
  "$tmp/vitals-reporter" run --server-id outage-test --interval 1s --ingest-url "http://127.0.0.1:$port/api/ingest" \
    --state-dir "$tmp/state" --log-format json --log-level debug 2>>"$tmp/reporter.log" & rep=$!
}
log() { echo "[$(date +%T)] $*"; }
spooled() { grep '"msg":"sample spooled"' "$tmp/reporter.log" | sed 's/.*"collectedAt":"\([^"]*\)".*/\1/' | sort -u; }
received() { sort -u "$tmp/received"; }

touch "$tmp/received"
start_sink; start_reporter
log "reporter and ingest up; 10 s of normal operation"
sleep 10
kill "$sink"; wait "$sink" 2>/dev/null || true; sink=""
log "ingest down for ${outage} s"
sleep $((outage / 2))
kill -9 "$rep"; wait "$rep" 2>/dev/null || true
log "reporter killed with SIGKILL ($(spooled | wc -l) samples spooled so far); restarting it"
start_reporter
sleep $((outage - outage / 2))
start_sink
log "ingest back; waiting for the backlog (the retry backoff is at most 60 s)"
for ((i = 0; i < 120; i++)); do
  if [[ -z "$(comm -23 <(spooled) <(received))" ]]; then break; fi
  sleep 1
done
sleep 3
kill -TERM "$rep"; wait "$rep" 2>/dev/null || true; rep=""
missing=$(comm -23 <(spooled) <(received) | wc -l)
log "spooled: $(spooled | wc -l), received (unique): $(received | wc -l), received (with re-sends): $(wc -l <"$tmp/received"), spooled but never received: $missing"
# Seconds with no sample at all: the restart after SIGKILL (process start +
# the first CPU baseline) and at most the one sample being collected when it died.
received | python3 -c '
import sys, datetime
ts = [datetime.datetime.fromisoformat(l.strip().replace("Z", "+00:00")) for l in sys.stdin if l.strip()]
gaps = [(b - a).total_seconds() for a, b in zip(ts, ts[1:])]
big = [g for g in gaps if g > 1.5]
print(f"received samples span {(ts[-1]-ts[0]).total_seconds():.0f} s; gaps over 1.5 s: {[round(g, 1) for g in big]}")
'
grep -E '"level":"(WARN|ERROR)"' "$tmp/reporter.log" | grep -v 'ingest unreachable' | head -5 || true
[[ $missing -eq 0 ]] && log "PASS: zero samples lost" || { log "FAIL: $missing samples lost"; exit 1; }
