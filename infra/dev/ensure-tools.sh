#!/usr/bin/env bash
# ensure-tools.sh TOOL... — makes sure the system tools Vitals' dev and test
# commands need are installed. As root on Debian/Ubuntu it installs what is
# missing with apt-get; otherwise it stops with the exact command to run.
# Tools: redis (redis-server), chromium (headless browser for the UI test).
set -euo pipefail

missing=()
for tool in "$@"; do
  case "$tool" in
    redis)    command -v redis-server >/dev/null 2>&1 || missing+=(redis-server) ;;
    chromium) command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 \
                || command -v google-chrome >/dev/null 2>&1 || missing+=(chromium) ;;
    *) echo "ensure-tools: unknown tool $tool" >&2; exit 2 ;;
  esac
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "ensure-tools: installing ${missing[*]} with apt-get" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  exit 0
fi

echo "ensure-tools: missing ${missing[*]}. Install with:" >&2
if command -v apt-get >/dev/null 2>&1; then
  echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
else
  echo "  your package manager's ${missing[*]} package (e.g. brew install redis chromium)" >&2
fi
exit 1
