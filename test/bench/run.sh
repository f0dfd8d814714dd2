#!/usr/bin/env bash
# Runs `cxstream bench` against a real Kafka broker (test/kafka) and a real
# redis-server, both started here on free loopback ports and stopped after.
#   test/bench/run.sh [--quick] [--json FILE] [--cpus A:B] [--peer kstreams] [other bench flags]
# With --cpus A:B the broker starts on cores B and redis-server on cores A
# (taskset); the bench then keeps cxstream, the peer's JVM and redis-server
# on A and its own dataset production on B. With --peer kstreams the peer's
# jar is built with Maven first if it is missing.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
work="$(mktemp -d)"
trap 'test/kafka/stop.sh "$work/kafka" >/dev/null 2>&1 || true; [ -f "$work/redis.pid" ] && kill "$(cat "$work/redis.pid")" 2>/dev/null; rm -rf "$work"' EXIT
cd "$root"

cpus="" peer=""
prev=""
for a in "$@"; do
  case "$prev" in --cpus) cpus="$a" ;; --peer) peer="$a" ;; esac
  case "$a" in --cpus=*) cpus="${a#--cpus=}" ;; --peer=*) peer="${a#--peer=}" ;; esac
  prev="$a"
done
sut=() load=()
if [ -n "$cpus" ]; then
  sut=(taskset -c "${cpus%%:*}")
  load=(taskset -c "${cpus##*:}")
fi
if [ "$peer" = kstreams ] && [ ! -f test/peers/kstreams/target/kstreams-peer.jar ]; then
  echo "building the Kafka Streams peer (mvn, cached in ~/.m2)" >&2
  mvn -B -q -f test/peers/kstreams/pom.xml package >&2
fi

brokers="$("${load[@]}" test/kafka/start.sh "$work/kafka")"
rport="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
"${sut[@]}" redis-server --port "$rport" --bind 127.0.0.1 --save "" --appendonly no --daemonize yes --pidfile "$work/redis.pid" --dir "$work" >/dev/null
for _ in $(seq 1 50); do redis-cli -p "$rport" ping >/dev/null 2>&1 && break; sleep 0.1; done
go build -o "$work/cxstream" ./cmd/cxstream
"$work/cxstream" bench --brokers "$brokers" --redis "127.0.0.1:$rport" "$@"
