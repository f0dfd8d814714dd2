#!/usr/bin/env bash
# Starts a single-node Apache Kafka broker in KRaft mode on 127.0.0.1.
#
#   test/kafka/start.sh [RUN_DIR] [PORT]
#
# RUN_DIR (default test/kafka/run) holds server.properties, the data, the
# log and the PID; PORT (default: a free one) is the client port. Starting
# again on an existing RUN_DIR keeps its data (a broker restart). Prints
# "127.0.0.1:PORT" once the broker answers metadata requests; exits non-zero
# with the broker's log tail if it does not within 90 s.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
run="${1:-$here/run}"
port="${2:-}"
mkdir -p "$run"
run="$(cd "$run" && pwd)"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

if [ ! -d "$here/target/lib" ] || [ -z "$(ls -A "$here/target/lib" 2>/dev/null)" ]; then
  echo "resolving the Kafka broker's jars with Maven (cached in ~/.m2)" >&2
  mvn -B -q -f "$here/pom.xml" dependency:copy-dependencies -DoutputDirectory="$here/target/lib" -DincludeScope=runtime >&2
fi

if [ -f "$run/server.properties" ]; then
  port="$(sed -n 's/^listeners=PLAINTEXT:\/\/127.0.0.1:\([0-9]*\),.*/\1/p' "$run/server.properties")"
  cport="$(sed -n 's/.*CONTROLLER:\/\/127.0.0.1:\([0-9]*\)$/\1/p' "$run/server.properties")"
else
  port="${port:-$(free_port)}"
  cport="$(free_port)"
  cat > "$run/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
advertised.listeners=PLAINTEXT://127.0.0.1:$port
log.dirs=$run/data
num.partitions=1
default.replication.factor=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
message.max.bytes=10485760
replica.fetch.max.bytes=10485760
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
PROPS
fi

cat > "$run/log4j.properties" <<'LOG'
log4j.rootLogger=WARN, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File=${kafka.logs.dir}/broker.log
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.server.KafkaServer=INFO
log4j.logger.kafka.server.BrokerServer=INFO
LOG

cp="$here/target/lib/*"
java_opts=(-Xms256m -Xmx768m -XX:+UseG1GC -Dkafka.logs.dir="$run" -Dlog4j.configuration="file:$run/log4j.properties")
if [ ! -f "$run/data/meta.properties" ]; then
  cluster_id="$(java -cp "$cp" "${java_opts[@]}" kafka.tools.StorageTool random-uuid)"
  java -cp "$cp" "${java_opts[@]}" kafka.tools.StorageTool format -t "$cluster_id" -c "$run/server.properties" >"$run/format.log" 2>&1 || {
    cat "$run/format.log" >&2; exit 1; }
fi

nohup java -cp "$cp" "${java_opts[@]}" kafka.Kafka "$run/server.properties" >"$run/stdout.log" 2>&1 &
echo $! > "$run/kafka.pid"

for _ in $(seq 1 180); do
  if ! kill -0 "$(cat "$run/kafka.pid")" 2>/dev/null; then
    echo "FATAL: the Kafka broker exited; its log:" >&2
    tail -40 "$run/stdout.log" "$run/broker.log" >&2 2>/dev/null || true
    exit 1
  fi
  if kcat -L -b "127.0.0.1:$port" -m 2 >/dev/null 2>&1; then
    echo "127.0.0.1:$port"
    exit 0
  fi
  sleep 0.5
done
echo "FATAL: the Kafka broker on 127.0.0.1:$port did not answer within 90 s; its log:" >&2
tail -40 "$run/stdout.log" "$run/broker.log" >&2 2>/dev/null || true
exit 1
