"""klite conformance driver for confluent-kafka-python (librdkafka).

Speaks the JSON-lines protocol of clients/README.md: one command per stdin line, one answer per
stdout line. Logs go to stderr only.
"""

import logging
import os
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "internal"))

import confluent_kafka  # noqa: E402
from confluent_kafka import (  # noqa: E402
    Consumer, KafkaError, KafkaException, Producer, TopicPartition, ConsumerGroupTopicPartitions,
    IsolationLevel, OFFSET_BEGINNING, OFFSET_END,
    TIMESTAMP_CREATE_TIME, TIMESTAMP_LOG_APPEND_TIME,
)
from confluent_kafka.admin import (  # noqa: E402
    AdminClient, NewTopic, NewPartitions, ConfigResource, ConfigEntry, ResourceType,
    AlterConfigOpType, OffsetSpec,
)

from kafka_error_names import name_of  # noqa: E402
from pydriver import (  # noqa: E402
    AUTH_FAILED, DEFAULT_TIMEOUT_S, DriverBase, OpError, Unsupported, check_compression, enc,
    isolation_of, log, offset_spec, poll_records, send_kwargs, serve,
)


# librdkafka-internal (negative) error codes that have a Kafka protocol equivalent.
_INTERNAL = {
    KafkaError._TIMED_OUT: "TIMEOUT",
    KafkaError._MSG_TIMED_OUT: "TIMEOUT",
    KafkaError._TIMED_OUT_QUEUE: "TIMEOUT",
    KafkaError._UNKNOWN_TOPIC: "UNKNOWN_TOPIC_OR_PARTITION",
    KafkaError._UNKNOWN_PARTITION: "UNKNOWN_TOPIC_OR_PARTITION",
    KafkaError._AUTHENTICATION: "SASL_AUTHENTICATION_FAILED",
    KafkaError._FENCED: "PRODUCER_FENCED",
    KafkaError._UNKNOWN_GROUP: "GROUP_ID_NOT_FOUND",
}


def err_name(err):
    """Kafka error name for a librdkafka KafkaError."""
    code = err.code()
    if code >= -1:
        return name_of(code)
    return _INTERNAL.get(code, "CLIENT_ERROR")


def to_op_error(exc):
    if isinstance(exc, OpError):
        return exc
    if isinstance(exc, KafkaException) and exc.args and isinstance(exc.args[0], KafkaError):
        err = exc.args[0]
        return OpError(err_name(err), "%s: %s" % (err.name(), err.str()))
    if isinstance(exc, KafkaError):
        return OpError(err_name(exc), "%s: %s" % (exc.name(), exc.str()))
    return OpError("CLIENT_ERROR", "%s: %s" % (type(exc).__name__, exc))


def ts_type(t):
    if t == TIMESTAMP_CREATE_TIME:
        return "create"
    if t == TIMESTAMP_LOG_APPEND_TIME:
        return "log_append"
    return None


def record_of(msg):
    tstype, ts = msg.timestamp()
    headers = []
    for k, v in (msg.headers() or []):
        headers.append({"key": k, "value": enc(v)})
    return {
        "topic": msg.topic(),
        "partition": msg.partition(),
        "offset": msg.offset(),
        "key": enc(msg.key()),
        "value": enc(msg.value()),
        "headers": headers,
        "timestamp": ts if tstype != confluent_kafka.TIMESTAMP_NOT_AVAILABLE else -1,
        "timestamp_type": ts_type(tstype),
    }


# librdkafka's error callback fills AUTH_FAILED when a broker refused our SASL credentials.
# librdkafka keeps retrying such a connection, so waits check it to fail fast with the Kafka
# error name.
def on_error(err):
    log.warning("client error: %s", err)
    if err.code() == KafkaError._AUTHENTICATION:
        AUTH_FAILED.append(err)


def check_auth():
    if AUTH_FAILED:
        raise OpError("SASL_AUTHENTICATION_FAILED", AUTH_FAILED[-1].str())


def fut_result(fut, timeout=DEFAULT_TIMEOUT_S, handle=None):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return fut.result(timeout=0.2)
        except KafkaException:
            raise
        except Exception as e:  # concurrent.futures.TimeoutError and friends
            if type(e).__name__ != "TimeoutError":
                raise
        if handle is not None:
            handle.poll(0)
        check_auth()
        if time.monotonic() > deadline:
            raise OpError("TIMEOUT", "admin request timed out")


def lib_version():
    v = confluent_kafka.version()
    return v[0] if isinstance(v, tuple) else v


# Kafka's ConfigSource values (DescribeConfigs v1+), by protocol number.
CONFIG_SOURCES = {0: "UNKNOWN", 1: "DYNAMIC_TOPIC_CONFIG", 2: "DYNAMIC_BROKER_CONFIG",
                  3: "DYNAMIC_DEFAULT_BROKER_CONFIG", 4: "STATIC_BROKER_CONFIG", 5: "DEFAULT_CONFIG",
                  6: "DYNAMIC_BROKER_LOGGER_CONFIG", 7: "CLIENT_METRICS_CONFIG", 8: "GROUP_CONFIG"}


def protocol_type_of(simple):
    # librdkafka lists only consumer-protocol groups and flags those with an empty protocol type.
    return "" if simple else "consumer"


GROUP_STATES = {
    "UNKNOWN": "Unknown",
    "PREPARING_REBALANCING": "PreparingRebalance",
    "PREPARING_REBALANCE": "PreparingRebalance",
    "COMPLETING_REBALANCING": "CompletingRebalance",
    "COMPLETING_REBALANCE": "CompletingRebalance",
    "STABLE": "Stable",
    "DEAD": "Dead",
    "EMPTY": "Empty",
}


def group_state(s):
    if s is None:
        return None
    n = getattr(s, "name", str(s))
    return GROUP_STATES.get(n, n)


class Driver(DriverBase):
    to_op_error = staticmethod(to_op_error)

    def __init__(self):
        super().__init__()  # producers: (acks, compression, idempotent) -> Producer
        self.txn_id = None

    def auth_message(self, entry):
        return entry.str()

    # ---- helpers -------------------------------------------------------------------------

    def get_admin(self):
        if self.admin is None:
            # librdkafka admin handles are producer-type: without this, their metadata refreshes
            # for a looked-up topic ask the broker to auto-create it.
            self.admin = AdminClient(self.conf(**{"allow.auto.create.topics": False}))
        return self.admin

    @staticmethod
    def list_topics(handle, topic=None):
        deadline = time.monotonic() + DEFAULT_TIMEOUT_S
        while True:
            try:
                if topic is None:
                    return handle.list_topics(timeout=1.0)
                return handle.list_topics(topic=topic, timeout=1.0)
            except KafkaException as e:
                if e.args[0].code() not in (KafkaError._TIMED_OUT, KafkaError._TRANSPORT):
                    raise
            handle.poll(0)
            check_auth()
            if time.monotonic() > deadline:
                raise OpError("TIMEOUT", "metadata request timed out")

    def partitions_of(self, topic):
        md = self.list_topics(self.get_admin(), topic)
        t = md.topics.get(topic)
        if t is None:
            raise OpError("UNKNOWN_TOPIC_OR_PARTITION", "topic %s not in metadata" % topic)
        if t.error is not None:
            raise OpError(err_name(t.error), t.error.str())
        return sorted(t.partitions.keys())

    # ---- ops -----------------------------------------------------------------------------

    def op_hello(self, a):
        c = {
            "bootstrap.servers": a["bootstrap"],
            "client.id": a.get("client_id") or "klite-driver",
            "log_level": 4,
            "error_cb": on_error,
        }
        sasl = a.get("sasl")
        if sasl:
            c["security.protocol"] = "SASL_PLAINTEXT"
            c["sasl.mechanisms"] = sasl["mechanism"]
            c["sasl.username"] = sasl["user"]
            c["sasl.password"] = sasl["password"]
        tls = a.get("tls")
        if tls:
            c["security.protocol"] = "SASL_SSL" if sasl else "SSL"
            c["ssl.ca.location"] = tls["ca_file"]
            if tls.get("cert_file"):
                c["ssl.certificate.location"] = tls["cert_file"]
                c["ssl.key.location"] = tls["key_file"]
        self.base = c
        del AUTH_FAILED[:]
        return {
            "client": "confluent-kafka-python",
            "library_version": "%s (librdkafka %s)" % (lib_version(),
                                                      confluent_kafka.libversion()[0]),
        }

    def op_create_topic(self, a):
        nt = NewTopic(a["topic"], num_partitions=a.get("partitions", 1),
                      replication_factor=a.get("replication_factor", 1),
                      config=a.get("configs") or {})
        futs = self.get_admin().create_topics([nt], validate_only=bool(a.get("validate_only")),
                                              operation_timeout=DEFAULT_TIMEOUT_S,
                                              request_timeout=DEFAULT_TIMEOUT_S)
        fut_result(futs[a["topic"]], handle=self.admin)
        return {}

    def op_delete_topic(self, a):
        futs = self.get_admin().delete_topics([a["topic"]], operation_timeout=DEFAULT_TIMEOUT_S,
                                              request_timeout=DEFAULT_TIMEOUT_S)
        fut_result(futs[a["topic"]], handle=self.admin)
        return {}

    def op_metadata(self, a):
        topics = a.get("topics") or []
        auto = bool(a.get("allow_auto_create"))
        out = []
        if not topics:
            md = self.list_topics(self.get_admin())
            names = sorted(md.topics.keys())
            for name in names:
                t = md.topics[name]
                out.append({"topic": name, "partitions": len(t.partitions),
                            "error": err_name(t.error) if t.error is not None else None})
            return {"topics": out}
        # librdkafka asks the broker to auto-create only from a producer handle configured so
        # (a consumer or admin handle never does); pick the handle by allow_auto_create.
        if auto:
            handle = self.get_metadata_producer()
        else:
            handle = self.get_admin()
        for name in topics:
            md = self.list_topics(handle, name)
            t = md.topics.get(name)
            if t is None:
                out.append({"topic": name, "partitions": 0, "error": "UNKNOWN_TOPIC_OR_PARTITION"})
                continue
            out.append({"topic": name, "partitions": len(t.partitions),
                        "error": err_name(t.error) if t.error is not None else None})
        return {"topics": out}

    def get_metadata_producer(self):
        key = ("metadata-autocreate",)
        p = self.producers.get(key)
        if p is None:
            p = Producer(self.conf(**{"allow.auto.create.topics": True}))
            self.producers[key] = p
        return p

    def get_producer(self, acks, compression, idempotent):
        key = (acks, compression, idempotent)
        p = self.producers.get(key)
        if p is None:
            c = self.conf(**{
                "acks": str(acks),
                "compression.type": compression,
                "enable.idempotence": idempotent,
                "linger.ms": 5,
                "message.timeout.ms": 20000,
            })
            p = Producer(c)
            self.producers[key] = p
        return p

    def op_produce(self, a):
        compression = check_compression(a)
        if a.get("transactional"):
            p = self.need_txn()
        else:
            acks = a.get("acks", -1)
            p = self.get_producer(acks if acks is not None else -1, compression,
                                  bool(a.get("idempotent", False)))
        records = a.get("records") or []
        results = [None] * len(records)

        def cb_for(i):
            def cb(err, msg):
                if err is not None:
                    results[i] = {"partition": msg.partition() if msg is not None else -1,
                                  "offset": -1, "timestamp": -1, "error": err_name(err)}
                    log.info("record %d failed: %s", i, err)
                    return
                _, ts = msg.timestamp()
                off = msg.offset()
                results[i] = {"partition": msg.partition(),
                              "offset": off if off is not None and off >= 0 else -1,
                              "timestamp": ts if ts is not None else -1, "error": None}
            return cb

        topic = a["topic"]
        for i, r in enumerate(records):
            kw = send_kwargs(r, "timestamp")
            kw["on_delivery"] = cb_for(i)
            deadline = time.monotonic() + DEFAULT_TIMEOUT_S
            while True:
                try:
                    p.produce(topic, **kw)
                    break
                except BufferError:
                    if time.monotonic() > deadline:
                        raise OpError("TIMEOUT", "producer queue stayed full")
                    p.poll(0.1)
                except KafkaException as e:
                    err = e.args[0]
                    results[i] = {"partition": r.get("partition", -1), "offset": -1,
                                  "timestamp": -1, "error": err_name(err)}
                    break
        deadline = time.monotonic() + DEFAULT_TIMEOUT_S
        remaining = p.flush(0)
        while remaining and time.monotonic() < deadline and not AUTH_FAILED:
            remaining = p.flush(0.2)
        if remaining:
            log.warning("%d records still in flight after flush", remaining)
        out = []
        for i, res in enumerate(results):
            if res is None:
                res = {"partition": -1, "offset": -1, "timestamp": -1,
                       "error": "SASL_AUTHENTICATION_FAILED" if AUTH_FAILED else "TIMEOUT"}
            out.append(res)
        return {"results": out}

    def op_produce_for(self, a):
        """Produce as fast as acknowledged for warmup_ms + duration_ms (clients/README.md);
        librdkafka reports broker throttle times through throttle_cb (KIP-219)."""
        size = a.get("record_bytes") or 1000
        in_flight = a.get("in_flight") or 64
        acks = a.get("acks", -1)
        throttle = {"max": 0}

        def on_throttle(ev):
            throttle["max"] = max(throttle["max"], int(ev.throttle_time * 1000))

        p = Producer(self.conf(**{
            "acks": str(acks if acks is not None else -1),
            "compression.type": "none",  # quotas count the bytes on the wire
            "enable.idempotence": False,
            "linger.ms": 5,
            "message.timeout.ms": 20000,
            "throttle_cb": on_throttle,
        }))
        value = (b"0123456789abcdef" * (size // 16 + 1))[:size]
        state = {"out": 0, "acked": 0, "failed": 0, "counted": 0, "err": None}
        start = time.monotonic()
        warm_end = start + (a.get("warmup_ms") or 0) / 1000.0
        end = warm_end + (a.get("duration_ms") or 5000) / 1000.0

        def on_delivery(err, msg):
            now = time.monotonic()
            state["out"] -= 1
            if err is not None:
                state["failed"] += 1
                state["err"] = state["err"] or str(err)
                return
            state["acked"] += 1
            if warm_end <= now <= end:
                state["counted"] += len(value)

        topic, partition = a["topic"], a.get("partition") or 0
        while time.monotonic() < end:
            if state["out"] >= in_flight:
                p.poll(0.005)
                continue
            try:
                p.produce(topic, value=value, partition=partition, on_delivery=on_delivery)
                state["out"] += 1
            except BufferError:
                p.poll(0.01)
            p.poll(0)
        deadline = time.monotonic() + DEFAULT_TIMEOUT_S
        while p.flush(0.2) and time.monotonic() < deadline:
            pass
        p.poll(0)
        res = {"records": state["acked"], "errors": state["failed"],
               "bytes_per_sec": round(state["counted"] / ((a.get("duration_ms") or 5000) / 1000.0)),
               "throttle_time_ms": throttle["max"], "throttled": throttle["max"] > 0}
        if state["err"]:
            res["message"] = state["err"]
        return res

    def consumer_conf(self, a, group_id, auto_commit=False, reset="earliest"):
        c = self.conf(**{
            "group.id": group_id,
            "enable.auto.commit": auto_commit,
            "auto.offset.reset": reset,
            "isolation.level": isolation_of(a),
            "enable.partition.eof": False,
        })
        if a.get("fetch_max_bytes") is not None:
            # librdkafka insists on fetch.max.bytes >= message.max.bytes >= 1000: go as low as it
            # lets us (a fetch still returns at least one batch, as in Kafka).
            want = a["fetch_max_bytes"]
            c["message.max.bytes"] = max(1000, min(want, 1000000))
            c["fetch.max.bytes"] = max(want, c["message.max.bytes"])
            if c["fetch.max.bytes"] != want:
                log.info("fetch_max_bytes %d raised to %d (librdkafka minimum)", want,
                         c["fetch.max.bytes"])
        if a.get("partition_max_bytes") is not None:
            c["max.partition.fetch.bytes"] = a["partition_max_bytes"]
        if a.get("fetch_max_wait_ms") is not None:
            c["fetch.wait.max.ms"] = a["fetch_max_wait_ms"]
        if a.get("fetch_min_bytes") is not None:
            c["fetch.min.bytes"] = a["fetch_min_bytes"]
        return c

    @staticmethod
    def poll_records(consumer, max_records, timeout_ms):
        def fetch(want, left):
            msgs = consumer.consume(num_messages=want, timeout=min(left, 0.5))
            check_auth()
            records = []
            for m in msgs:
                if m.error() is not None:
                    err = m.error()
                    if err.code() == KafkaError._PARTITION_EOF:
                        continue
                    log.warning("consumer error: %s", err)
                    if err.fatal():
                        raise OpError(err_name(err), err.str())
                    continue
                records.append(record_of(m))
            return records
        return poll_records(max_records, timeout_ms, fetch)

    def op_consume(self, a):
        topic = a["topic"]
        parts = a.get("partitions")
        if parts is None:
            parts = self.partitions_of(topic)
        frm = a.get("from", "earliest")
        if frm == "earliest":
            off = OFFSET_BEGINNING
        elif frm == "latest":
            off = OFFSET_END
        else:
            off = int(frm)
        c = Consumer(self.consumer_conf(a, "klite-driver-assign-%s" % uuid.uuid4().hex))
        try:
            c.assign([TopicPartition(topic, p, off) for p in parts])
            records = self.poll_records(c, a.get("max_records", 1 << 30), a.get("timeout_ms", 5000))
        finally:
            c.close()
        return {"records": records}

    def op_list_offsets(self, a):
        os_ = offset_spec(a, OffsetSpec.earliest, OffsetSpec.latest, OffsetSpec.max_timestamp,
                          OffsetSpec.for_timestamp)
        iso = IsolationLevel.READ_COMMITTED if isolation_of(a) == "read_committed" \
            else IsolationLevel.READ_UNCOMMITTED
        tp = TopicPartition(a["topic"], a["partition"])
        futs = self.get_admin().list_offsets({tp: os_}, isolation_level=iso,
                                             request_timeout=DEFAULT_TIMEOUT_S)
        res = None
        for k, f in futs.items():
            try:
                res = fut_result(f, handle=self.admin)
            except KafkaException as e:
                if e.args[0].code() == KafkaError._NOENT:  # no leader: partition not in metadata
                    raise OpError("UNKNOWN_TOPIC_OR_PARTITION", e.args[0].str())
                raise
        ts = res.timestamp if res.timestamp is not None else -1
        return {"offset": res.offset, "timestamp": ts}

    # ---- groups ------------------------------------------------------------------------------

    def op_group_subscribe(self, a):
        protocol = a.get("group_protocol") or "classic"
        if protocol == "consumer":
            return self.subscribe_consumer_protocol(a)
        if protocol != "classic":
            raise Unsupported("group protocol %s" % protocol)
        assignor = a.get("assignor") or "range"
        strategies = {"range": "range", "roundrobin": "roundrobin",
                      "cooperative-sticky": "cooperative-sticky"}
        if assignor not in strategies:
            raise Unsupported("librdkafka has no %s assignor (only range, roundrobin, "
                              "cooperative-sticky)" % assignor)
        self.close_group()
        c = self.consumer_conf(a, a["group"], auto_commit=bool(a.get("auto_commit", False)),
                               reset=a.get("from") or "earliest")
        c["partition.assignment.strategy"] = strategies[assignor]
        if a.get("instance_id"):
            c["group.instance.id"] = a["instance_id"]
        if a.get("session_timeout_ms") is not None:
            c["session.timeout.ms"] = a["session_timeout_ms"]
        if a.get("heartbeat_interval_ms") is not None:
            c["heartbeat.interval.ms"] = a["heartbeat_interval_ms"]
        if a.get("rebalance_timeout_ms") is not None:
            # librdkafka sends max.poll.interval.ms as the JoinGroup rebalance timeout.
            c["max.poll.interval.ms"] = max(a["rebalance_timeout_ms"],
                                            c.get("session.timeout.ms", 45000))
        if bool(a.get("auto_commit", False)):
            c["auto.commit.interval.ms"] = 1000
        return self.join_group(Consumer(c), a)

    def subscribe_consumer_protocol(self, a):
        """KIP-848: the broker assigns (group.remote.assignor) and sets the session time-out and
        heartbeat interval, which librdkafka refuses to configure with this protocol."""
        assignor = a.get("assignor") or "uniform"
        if assignor not in ("uniform", "range"):
            raise Unsupported("server assignor %s" % assignor)
        self.close_group()
        c = self.consumer_conf(a, a["group"], auto_commit=bool(a.get("auto_commit", False)),
                               reset=a.get("from") or "earliest")
        c["group.protocol"] = "consumer"
        c["group.remote.assignor"] = assignor
        if a.get("instance_id"):
            c["group.instance.id"] = a["instance_id"]
        if a.get("rebalance_timeout_ms") is not None:
            c["max.poll.interval.ms"] = a["rebalance_timeout_ms"]
        if bool(a.get("auto_commit", False)):
            c["auto.commit.interval.ms"] = 1000
        if a.get("topic_regex"):
            # librdkafka takes a regex subscription as a topic starting with ^; with this
            # protocol it hands it to the broker.
            a = dict(a, topics=["^" + a["topic_regex"]])
        return self.join_group(Consumer(c), a)

    def commit_standalone(self, a):
        """Commit as a non-member (generation -1): a consumer with the group id that never joins."""
        offs = a.get("offsets") or []
        if not offs:
            return {}
        c = Consumer(self.conf(**{"group.id": a["group"], "enable.auto.commit": False}))
        try:
            tps = [TopicPartition(o["topic"], o["partition"], o["offset"], metadata=o.get("metadata"))
                   if o.get("metadata") is not None
                   else TopicPartition(o["topic"], o["partition"], o["offset"]) for o in offs]
            res = c.commit(offsets=tps, asynchronous=False)
            for tp in res or []:
                if tp.error is not None:
                    raise OpError(err_name(tp.error), tp.error.str())
        finally:
            c.close()
        return {}

    def op_group_commit(self, a):
        if a.get("group") is not None and (self.group is None or self.group_id != a["group"]):
            return self.commit_standalone(a)
        c = self.need_group()
        offs = a.get("offsets")
        try:
            if offs is None:
                c.commit(asynchronous=False)
            else:
                tps = [TopicPartition(o["topic"], o["partition"], o["offset"],
                                      metadata=o.get("metadata")) if o.get("metadata") is not None
                       else TopicPartition(o["topic"], o["partition"], o["offset"])
                       for o in offs]
                res = c.commit(offsets=tps, asynchronous=False)
                for tp in res or []:
                    if tp.error is not None:
                        raise OpError(err_name(tp.error), tp.error.str())
        except KafkaException as e:
            err = e.args[0]
            if err.code() == KafkaError._NO_OFFSET:
                return {}  # nothing consumed: nothing to commit, as a no-op
            raise
        return {}

    def op_group_committed(self, a):
        tps = [TopicPartition(a["topic"], p) for p in a.get("partitions") or []]
        futs = self.get_admin().list_consumer_group_offsets(
            [ConsumerGroupTopicPartitions(a["group"], tps or None)],
            request_timeout=DEFAULT_TIMEOUT_S)
        res = fut_result(futs[a["group"]], handle=self.admin)
        out = []
        for tp in res.topic_partitions:
            if tp.topic != a["topic"]:
                continue
            out.append({"partition": tp.partition,
                        "offset": tp.offset if tp.offset is not None and tp.offset >= 0 else -1,
                        "metadata": tp.metadata if tp.metadata is not None else "",
                        "error": err_name(tp.error) if tp.error is not None else None})
        out.sort(key=lambda x: x["partition"])
        return {"offsets": out}

    # ---- transactions ------------------------------------------------------------------------

    def op_txn_init(self, a):
        if self.txn is not None:
            self.txn.flush(5)
            self.txn = None
        c = self.conf(**{
            "transactional.id": a["transactional_id"],
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
        })
        if a.get("transaction_timeout_ms") is not None:
            c["transaction.timeout.ms"] = a["transaction_timeout_ms"]
        p = Producer(c)
        self.txn_id = a["transactional_id"]
        self.txn = p
        p.init_transactions(DEFAULT_TIMEOUT_S)
        return {}

    def op_txn_commit(self, a):
        self.need_txn().commit_transaction(DEFAULT_TIMEOUT_S)
        return {}

    def op_txn_abort(self, a):
        self.need_txn().abort_transaction(DEFAULT_TIMEOUT_S)
        return {}

    def op_txn_send_offsets(self, a):
        p = self.need_txn()
        tps = [TopicPartition(o["topic"], o["partition"], o["offset"]) for o in a["offsets"]]
        if self.group is not None and self.group_id == a["group"]:
            p.send_offsets_to_transaction(tps, self.group.consumer_group_metadata(),
                                          DEFAULT_TIMEOUT_S)
            return {}
        # No member of that group here: a plain handle's metadata carries only the group id.
        c = Consumer(self.conf(**{"group.id": a["group"], "enable.auto.commit": False}))
        try:
            p.send_offsets_to_transaction(tps, c.consumer_group_metadata(), DEFAULT_TIMEOUT_S)
        finally:
            c.close()
        return {}

    # ---- admin ---------------------------------------------------------------------------

    def admin_list_groups(self, a):
        res = fut_result(self.get_admin().list_consumer_groups(request_timeout=DEFAULT_TIMEOUT_S),
                         handle=self.admin)
        groups = [{"group": g.group_id, "protocol_type": protocol_type_of(g.is_simple_consumer_group),
                   "state": group_state(g.state)} for g in res.valid]
        groups.sort(key=lambda g: g["group"])
        return {"groups": groups}

    def admin_describe_groups(self, a):
        futs = self.get_admin().describe_consumer_groups(list(a["groups"]),
                                                         request_timeout=DEFAULT_TIMEOUT_S)
        out = []
        for g in a["groups"]:
            try:
                d = fut_result(futs[g], handle=self.admin)
            except KafkaException as e:
                out.append({"group": g, "error": err_name(e.args[0])})
                continue
            members = []
            for m in d.members:
                tps = m.assignment.topic_partitions if m.assignment else []
                members.append({
                    "member_id": m.member_id, "client_id": m.client_id,
                    "instance_id": m.group_instance_id,
                    "assignment": sorted([{"topic": t.topic, "partition": t.partition}
                                          for t in tps],
                                         key=lambda x: (x["topic"], x["partition"])),
                })
            out.append({"group": g, "state": group_state(d.state),
                        "protocol_type": protocol_type_of(d.is_simple_consumer_group),
                        "protocol": d.partition_assignor, "members": members, "error": None})
        return {"groups": out}

    def admin_describe_consumer_groups(self, a):
        futs = self.get_admin().describe_consumer_groups(list(a["groups"]),
                                                         request_timeout=DEFAULT_TIMEOUT_S)
        out = []
        for g in sorted(set(a["groups"])):
            try:
                d = fut_result(futs[g], handle=self.admin)
            except KafkaException as e:
                out.append({"group": g, "error": err_name(e.args[0])})
                continue
            members = []
            for m in d.members:
                tps = m.assignment.topic_partitions if m.assignment else []
                members.append({
                    "member_id": m.member_id, "instance_id": m.group_instance_id,
                    "assignment": sorted([{"topic": t.topic, "partition": t.partition}
                                          for t in tps],
                                         key=lambda x: (x["topic"], x["partition"])),
                })
            members.sort(key=lambda m: (m["instance_id"] or "", m["member_id"]))
            out.append({"group": g, "state": group_state(d.state),
                        "assignor": d.partition_assignor, "members": members, "error": None})
        return {"groups": out}

    def admin_delete_groups(self, a):
        futs = self.get_admin().delete_consumer_groups(list(a["groups"]),
                                                       request_timeout=DEFAULT_TIMEOUT_S)
        out = []
        for g in a["groups"]:
            try:
                fut_result(futs[g], handle=self.admin)
                out.append({"group": g, "error": None})
            except KafkaException as e:
                out.append({"group": g, "error": err_name(e.args[0])})
        return {"groups": out}

    def admin_offset_delete(self, a):
        raise Unsupported("confluent-kafka-python's AdminClient has no delete consumer group "
                          "offsets (OffsetDelete) call")

    def admin_delete_records(self, a):
        tp = TopicPartition(a["topic"], a["partition"], a["offset"])
        futs = self.get_admin().delete_records([tp], request_timeout=DEFAULT_TIMEOUT_S,
                                               operation_timeout=DEFAULT_TIMEOUT_S)
        res = None
        for _, f in futs.items():
            res = fut_result(f, handle=self.admin)
        return {"low_watermark": res.low_watermark}

    def admin_describe_configs(self, a):
        res = ConfigResource(ResourceType.TOPIC, a["topic"])
        futs = self.get_admin().describe_configs([res], request_timeout=DEFAULT_TIMEOUT_S)
        entries = None
        for _, f in futs.items():
            entries = fut_result(f, handle=self.admin)
        names = a.get("names")
        out = []
        for name in sorted(entries):
            if names and name not in names:
                continue
            e = entries[name]
            src = getattr(e.source, "value", e.source)
            out.append({"name": name, "value": e.value, "source": CONFIG_SOURCES.get(src, "UNKNOWN")})
        return {"configs": out}

    def admin_alter_configs(self, a):
        entries = [ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) if v is not None
                   else ConfigEntry(k, None, incremental_operation=AlterConfigOpType.DELETE)
                   for k, v in (a.get("configs") or {}).items()]
        res = ConfigResource(ResourceType.TOPIC, a["topic"], incremental_configs=entries)
        futs = self.get_admin().incremental_alter_configs([res], request_timeout=DEFAULT_TIMEOUT_S)
        for _, f in futs.items():
            fut_result(f, handle=self.admin)
        return {}

    def admin_create_partitions(self, a):
        futs = self.get_admin().create_partitions([NewPartitions(a["topic"], a["count"])],
                                                  operation_timeout=DEFAULT_TIMEOUT_S,
                                                  request_timeout=DEFAULT_TIMEOUT_S)
        for _, f in futs.items():
            fut_result(f, handle=self.admin)
        return {}

    def admin_describe_cluster(self, a):
        d = fut_result(self.get_admin().describe_cluster(request_timeout=DEFAULT_TIMEOUT_S),
                       handle=self.admin)
        return {"cluster_id": d.cluster_id,
                "controller": d.controller.id if d.controller is not None else -1,
                "brokers": len(d.nodes)}

    # ---- lifecycle -----------------------------------------------------------------------

    def close(self):
        try:
            self.close_group()
        except Exception as e:  # closing must not stop the exit
            log.warning("closing group consumer: %s", e)
        for p in list(self.producers.values()) + ([self.txn] if self.txn else []):
            try:
                p.flush(0 if AUTH_FAILED else 5)
            except Exception as e:
                log.warning("flushing producer: %s", e)
        self.producers = {}
        self.txn = None


def main():
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return serve(Driver())


if __name__ == "__main__":
    sys.exit(main())
