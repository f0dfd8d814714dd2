#!/usr/bin/env bash
# Runs `cxstream bench` against a real Kafka broker (test/kafka) and a real
# redis-server, both started here on free loopback ports and stopped after.
#   test/bench/run.sh [--quick] [--json FILE] [other bench flags]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
work="$(mktemp -d)"
trap 'test/kafka/stop.sh "$work/kafka" >/dev/null 2>&1 || true; [ -f "$work/redis.pid" ] && kill "$(cat "$work/redis.pid")" 2>/dev/null; rm -rf "$work"' EXIT
cd "$root"
brokers="$(test/kafka/start.sh "$work/kafka")"
rport="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
redis-server --port "$rport" --bind 127.0.0.1 --save "" --appendonly no --daemonize yes --pidfile "$work/redis.pid" --dir "$work" >/dev/null
for _ in $(seq 1 50); do redis-cli -p "$rport" ping >/dev/null 2>&1 && break; sleep 0.1; done
go build -o "$work/cxstream" ./cmd/cxstream
"$work/cxstream" bench --brokers "$brokers" --redis "127.0.0.1:$rport" "$@"
