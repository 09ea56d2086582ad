#!/usr/bin/env bash
# Starts real Apache Kafka 4.0 as one KRaft broker+controller on loopback, in the foreground.
#   run-kafka.sh PORT DATA_DIR
# PORT is the client listener; the controller listens on PORT+1, and a SASL_PLAINTEXT listener
# (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512; user admin / admin-secret, the SCRAM credentials made
# at format time) on PORT+2 for the scenarios with `security: sasl`. The jars come from
# `make kafka-jars` (.cache/kafka/libs). Used by the conformance harness's kafka target and
# handy by hand: `bash conformance/kafka/run-kafka.sh 19092 /tmp/kafka-dev`.
# With KAFKA_ACL=1 the broker runs StandardAuthorizer with allow.everyone.if.no.acl.found=false
# and super users admin (the harness) and ANONYMOUS (the PLAINTEXT listener, which the broker
# and its controller use between themselves); clients use the SASL listener.
set -euo pipefail
port=${1:?usage: run-kafka.sh PORT DATA_DIR}
dir=${2:?usage: run-kafka.sh PORT DATA_DIR}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
libs=${KAFKA_LIBS:-$root/.cache/kafka/libs}
if ! command -v java >/dev/null 2>&1; then
  echo "run-kafka.sh: java not found; install a JDK 17+ (Debian: apt-get install openjdk-17-jdk-headless)" >&2
  exit 2
fi
if [[ ! -f $libs/kafka_2.13-4.0.2.jar ]]; then
  echo "run-kafka.sh: Kafka jars missing in $libs; run 'make kafka-jars'" >&2
  exit 2
fi
mkdir -p "$dir/logs"
cport=$((port + 1))
sport=$((port + 2))
cat >"$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport,SASL_PLAINTEXT://127.0.0.1:$sport
advertised.listeners=PLAINTEXT://127.0.0.1:$port,SASL_PLAINTEXT://127.0.0.1:$sport
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT
sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="admin-secret" user_admin="admin-secret";
listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
inter.broker.listener.name=PLAINTEXT
log.dirs=$dir/logs
num.partitions=1
default.replication.factor=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
# Client quotas measured over 2 samples of 1 s (default 11): a fresh client may burst
# (samples-1) windows' worth, which would dominate the quotas scenario's few seconds.
# klite's target runs with --quota-window-num 2 likewise.
quota.window.num=2
# On a loaded machine the broker must not fence itself for a late heartbeat to its own controller.
broker.session.timeout.ms=60000
broker.heartbeat.interval.ms=2000
# Retention and compaction act within seconds, so the retention-* and compaction scenarios finish
# quickly (Kafka's defaults: a 30 s initial delay, a 5 min retention check, a 15 s cleaner
# backoff). klite's target gets the same through KLITE_RETENTION_CHECK_INTERVAL and
# KLITE_COMPACTION_BACKOFF (conformance/target.go). log.segment.delete.delay.ms stays at its
# default: it is topic file.delete.delay.ms's broker default, which CreateTopics and
# DescribeConfigs report (a changed one would differ from klite's), and a deleted segment leaves
# the log's size (DescribeLogDirs) at once, before its files go.
log.initial.task.delay.ms=0
log.retention.check.interval.ms=1000
log.cleaner.backoff.ms=1000
PROPS
if [[ -n ${KAFKA_TLS_DIR:-} ]]; then
  # TLS scenarios (conformance/tls.go made the PEM files): SSL on PORT+3, SASL_SSL on PORT+4,
  # SSL requiring a client certificate (listener MTLS) on PORT+5.
  t=$KAFKA_TLS_DIR
  sed -i -e "s#^listeners=.*#&,SSL://127.0.0.1:$((port + 3)),SASL_SSL://127.0.0.1:$((port + 4)),MTLS://127.0.0.1:$((port + 5))#" \
    -e "s#^advertised.listeners=.*#&,SSL://127.0.0.1:$((port + 3)),SASL_SSL://127.0.0.1:$((port + 4)),MTLS://127.0.0.1:$((port + 5))#" \
    -e "s#^listener.security.protocol.map=.*#&,SSL:SSL,SASL_SSL:SASL_SSL,MTLS:SSL#" "$dir/server.properties"
  cat >>"$dir/server.properties" <<PROPS
ssl.keystore.type=PEM
ssl.keystore.location=$t/server.pem
ssl.truststore.type=PEM
ssl.truststore.location=$t/ca.pem
listener.name.mtls.ssl.client.auth=required
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="admin-secret" user_admin="admin-secret";
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
PROPS
fi
if [[ ${KAFKA_ACL:-} == 1 ]]; then
  cat >>"$dir/server.properties" <<PROPS
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:admin;User:ANONYMOUS
PROPS
fi
cp=$(printf '%s:' "$libs"/*.jar)
# KAFKA_JVM_OPTS replaces the heap, GC and JIT settings: the harness wants a quick start
# (C1 only), klite-bench wants Kafka as its own start script runs it (1 GB heap, full JIT).
read -r -a jvmopts <<<"${KAFKA_JVM_OPTS:--Xms256m -Xmx1g -XX:+UseG1GC -XX:TieredStopAtLevel=1}"
jvm=("${jvmopts[@]}" -Xshare:auto
  -Dlog4j2.configurationFile="$here/log4j2.yaml" -Djava.awt.headless=true)
if [[ ! -f $dir/logs/meta.properties ]]; then
  java "${jvm[@]}" -cp "$cp" kafka.tools.StorageTool format \
    -t "${KAFKA_CLUSTER_ID:-kliteconformance00000A}" -c "$dir/server.properties" \
    --add-scram 'SCRAM-SHA-256=[name=admin,password=admin-secret]' \
    --add-scram 'SCRAM-SHA-512=[name=admin,password=admin-secret]' >"$dir/format.log" 2>&1 ||
    { cat "$dir/format.log" >&2; exit 1; }
fi
exec java "${jvm[@]}" -cp "$cp" kafka.Kafka "$dir/server.properties"
