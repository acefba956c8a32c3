#!/usr/bin/env bash
# Reporter footprint next to Prometheus node_exporter, measured in one run:
# stripped binary size, steady RSS, CPU time per sample (reporter, run mode,
# 1 s interval, spooling and sending every sample) and per scrape
# (node_exporter, default collectors, scraped every second on loopback).
#
# usage: [FOOTPRINT_TLS=1] reporter/bench/footprint.sh [seconds] [node_exporter binary]
#   FOOTPRINT_TLS=1 sends over HTTPS (a self-signed loopback certificate,
#   trusted through SSL_CERT_FILE), as in production.
#   node_exporter is not part of Vitals; build one for the comparison only:
#   GOBIN=$(mktemp -d) CGO_ENABLED=0 go install -trimpath -ldflags "-s -w" github.com/prometheus/node_exporter@v1.12.1
set -euo pipefail
dur=${1:-60}
ne=${2:-${NODE_EXPORTER:-}}
root=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
hz=$(getconf CLK_TCK)
freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cputicks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }   # utime + stime
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

(cd "$root" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$tmp/vitals-reporter" ./reporter/cmd/vitals-reporter)
rep_size=$(stat -c %s "$tmp/vitals-reporter")

sinkport=$(freeport)
scheme=http; tlsargs=()
if [[ "${FOOTPRINT_TLS:-}" == 1 ]]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 -keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>/dev/null
  scheme=https; tlsargs=("$tmp/cert.pem" "$tmp/key.pem"); export SSL_CERT_FILE="$tmp/cert.pem"
fi
python3 "$root/reporter/bench/sink.py" "$sinkport" "$tmp/received" "${tlsargs[@]}" & pids+=($!)
sleep 0.5
VITALS_HOST_KEY=$(openssl rand -hex 32) "$tmp/vitals-reporter" run --server-id footprint --interval 1s \
  --ingest-url "$scheme://127.0.0.1:$sinkport/api/ingest" --state-dir "$tmp/state" --log-level warn 2>"$tmp/reporter.log" &
rep=$!; pids+=($rep)

if [[ -n "$ne" ]]; then
  neport=$(freeport)
  "$ne" --web.listen-address="127.0.0.1:$neport" --log.level=warn 2>"$tmp/ne.log" & nepid=$!; pids+=($nepid)
  sleep 1
  ne_size=$(stat -c %s "$ne")
  ( while :; do curl -sf -o /dev/null "http://127.0.0.1:$neport/metrics" && echo x >>"$tmp/scrapes"; sleep 1; done ) & pids+=($!)
fi

sleep 10 # warm-up: first baseline, first connections, heap settled
touch "$tmp/received" "$tmp/scrapes"
r0=$(cputicks $rep); s0=$(wc -l <"$tmp/received")
[[ -n "$ne" ]] && { n0=$(cputicks $nepid); c0=$(wc -l <"$tmp/scrapes"); }
rep_rss=(); ne_rss=()
for ((i = 0; i < dur; i++)); do
  rep_rss+=($(rss_kib $rep)); [[ -n "$ne" ]] && ne_rss+=($(rss_kib $nepid))
  sleep 1
done
r1=$(cputicks $rep); s1=$(wc -l <"$tmp/received")
[[ -n "$ne" ]] && { n1=$(cputicks $nepid); c1=$(wc -l <"$tmp/scrapes"); }

stats() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { printf "%.1f MiB median, %.1f MiB max", a[int((NR+1)/2)]/1024, a[NR]/1024 }'; }
per() { awk -v t="$1" -v n="$2" -v hz="$hz" 'BEGIN { if (n > 0) printf "%.2f ms (%d ticks / %d)", t * 1000 / hz / n, t, n; else print "n/a" }'; }

echo "| | vitals-reporter (run, 1 s, $scheme) | node_exporter |"
echo "|---|---|---|"
printf '| stripped binary | %.2f MiB (%d B) | %s |\n' "$(echo "$rep_size/1048576" | bc -l)" "$rep_size" \
  "$([[ -n "$ne" ]] && printf '%.2f MiB (%d B)' "$(echo "$ne_size/1048576" | bc -l)" "$ne_size" || echo n/a)"
echo "| steady RSS over ${dur} s | $(stats "${rep_rss[@]}") | $([[ -n "$ne" ]] && stats "${ne_rss[@]}" || echo n/a) |"
echo "| CPU per sample / scrape | $(per $((r1 - r0)) $((s1 - s0))) | $([[ -n "$ne" ]] && per $((n1 - n0)) $((c1 - c0)) || echo n/a) |"
if [[ -s "$tmp/reporter.log" ]]; then echo; echo "reporter log:"; cat "$tmp/reporter.log"; fi
