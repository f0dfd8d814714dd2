#!/usr/bin/env bash
# Stops the broker started by start.sh in RUN_DIR (default test/kafka/run).
#   test/kafka/stop.sh [RUN_DIR] [--kill]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
run="${1:-$here/run}"
sig=TERM
[ "${2:-}" = "--kill" ] && sig=KILL
pidfile="$run/kafka.pid"
[ -f "$pidfile" ] || exit 0
pid="$(cat "$pidfile")"
if kill -0 "$pid" 2>/dev/null; then
  kill -s "$sig" "$pid"
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
fi
rm -f "$pidfile"
