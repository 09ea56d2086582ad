"""klite conformance driver for kafka-python (pure-Python client).

Speaks the JSON-lines protocol of clients/README.md: one command per stdin line, one answer per
stdout line. Logs go to stderr only.
"""

import logging
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "internal"))

import kafka  # noqa: E402
import kafka.errors as Errors  # noqa: E402
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition  # noqa: E402
from kafka.admin import (  # noqa: E402
    AlterConfigOp, ConfigResource, ConfigResourceType, OffsetSpec, OffsetTimestamp,
)
from kafka.coordinator.assignors.cooperative_sticky import CooperativeStickyAssignor  # noqa: E402
from kafka.coordinator.assignors.range import RangePartitionAssignor  # noqa: E402
from kafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor  # noqa: E402
from kafka.coordinator.assignors.sticky.sticky_assignor import StickyPartitionAssignor  # noqa: E402
from kafka.protocol.consumer import IsolationLevel  # noqa: E402
from kafka.structs import OffsetAndMetadata  # noqa: E402

from kafka_error_names import name_of  # noqa: E402
from pydriver import (  # noqa: E402
    AUTH_FAILED, DEFAULT_TIMEOUT_S, DriverBase, OpError, Unsupported, check_compression, enc,
    isolation_of, log, offset_spec, poll_records, send_kwargs, serve,
)

ASSIGNORS = {
    "range": RangePartitionAssignor,
    "roundrobin": RoundRobinPartitionAssignor,
    "sticky": StickyPartitionAssignor,
    "cooperative-sticky": CooperativeStickyAssignor,
}


# kafka-python retries a connection whose SASL credentials the broker refused until its own
# time-out, and then reports only the time-out; its log says why. Remember that in AUTH_FAILED.
class AuthWatch(logging.Handler):
    def emit(self, record):
        msg = record.getMessage()
        if "SaslAuthenticationFailedError" in msg:
            AUTH_FAILED.append(msg[:300])


def err_name_of_class(cls):
    """Kafka error name for a kafka-python error class (or instance)."""
    if not isinstance(cls, type):
        cls = type(cls)
    errno = getattr(cls, "errno", None)
    if isinstance(errno, int) and issubclass(cls, Errors.BrokerResponseError):
        return name_of(errno)
    if issubclass(cls, (Errors.KafkaTimeoutError,)):
        return "TIMEOUT"
    return "CLIENT_ERROR"


def err_name_by_class_name(name):
    """delete_groups answers error class names ('GroupIdNotFoundError'); map to Kafka's."""
    cls = getattr(Errors, name, None)
    if cls is None:
        return "CLIENT_ERROR"
    return err_name_of_class(cls)


def to_op_error(exc):
    if isinstance(exc, OpError):
        return exc
    text = ("%s: %s" % (type(exc).__name__, exc))[:600]
    if isinstance(exc, Errors.KafkaError):
        return OpError(err_name_of_class(exc), text)
    return OpError("CLIENT_ERROR", text)


def record_of(r):
    return {
        "topic": r.topic,
        "partition": r.partition,
        "offset": r.offset,
        "key": enc(r.key),
        "value": enc(r.value),
        "headers": [{"key": k, "value": enc(v)} for k, v in (r.headers or [])],
        "timestamp": r.timestamp if r.timestamp is not None else -1,
        "timestamp_type": {0: "create", 1: "log_append"}.get(r.timestamp_type),
    }


def group_state(s):
    if s is None:
        return None
    s = str(s)
    return {"PreparingRebalance": "PreparingRebalance"}.get(s, s)


class Driver(DriverBase):
    to_op_error = staticmethod(to_op_error)

    def __init__(self):
        super().__init__()
        self.meta_producer = None

    # ---- helpers -------------------------------------------------------------------------

    def get_admin(self):
        if self.admin is None:
            self.admin = KafkaAdminClient(**self.conf())
        return self.admin

    def topic_partitions(self, topic):
        md = self.get_admin().describe_topics([topic])
        for t in md:
            if t["name"] == topic:
                if t["error_code"]:
                    raise OpError(name_of(t["error_code"]), "metadata for %s" % topic)
                return sorted(p["partition_index"] for p in t["partitions"])
        raise OpError("UNKNOWN_TOPIC_OR_PARTITION", "topic %s not in metadata" % topic)

    # ---- ops -----------------------------------------------------------------------------

    def op_hello(self, a):
        c = {"bootstrap_servers": a["bootstrap"], "client_id": a.get("client_id") or "klite-driver",
             "bootstrap_timeout_ms": 10000}
        sasl = a.get("sasl")
        if sasl:
            c["security_protocol"] = "SASL_PLAINTEXT"
            c["sasl_mechanism"] = sasl["mechanism"]
            c["sasl_plain_username"] = sasl["user"]
            c["sasl_plain_password"] = sasl["password"]
        tls = a.get("tls")
        if tls:
            c["security_protocol"] = "SASL_SSL" if sasl else "SSL"
            c["ssl_cafile"] = tls["ca_file"]
            if tls.get("cert_file"):
                c["ssl_certfile"] = tls["cert_file"]
                c["ssl_keyfile"] = tls["key_file"]
        self.base = c
        del AUTH_FAILED[:]
        return {"client": "kafka-python", "library_version": kafka.__version__}

    def op_create_topic(self, a):
        spec = {"num_partitions": a.get("partitions", 1),
                "replication_factor": a.get("replication_factor", 1),
                "configs": a.get("configs") or {}}
        self.get_admin().create_topics({a["topic"]: spec},
                                       validate_only=bool(a.get("validate_only")),
                                       timeout_ms=int(DEFAULT_TIMEOUT_S * 1000))
        return {}

    def op_delete_topic(self, a):
        self.get_admin().delete_topics([a["topic"]], timeout_ms=int(DEFAULT_TIMEOUT_S * 1000))
        return {}

    def op_metadata(self, a):
        topics = a.get("topics") or []
        if topics and a.get("allow_auto_create"):
            # The admin client never asks for auto-creation; a producer's metadata request does.
            if self.meta_producer is None:
                self.meta_producer = KafkaProducer(**self.conf(allow_auto_create_topics=True,
                                                               max_block_ms=5000,
                                                               enable_idempotence=False))
            for t in topics:
                try:
                    self.meta_producer.partitions_for(t)
                except Errors.KafkaError as e:
                    log.info("auto-create metadata for %s: %s", t, e)
        md = self.get_admin().describe_topics(topics or None)
        by_name = {t["name"]: t for t in md}
        out = []
        for name in (topics or sorted(by_name)):
            t = by_name.get(name)
            if t is None:
                out.append({"topic": name, "partitions": 0, "error": "UNKNOWN_TOPIC_OR_PARTITION"})
                continue
            out.append({"topic": name, "partitions": len(t["partitions"] or []),
                        "error": name_of(t["error_code"]) if t["error_code"] else None})
        return {"topics": out}

    def get_producer(self, acks, compression, idempotent):
        key = (acks, compression, idempotent)
        p = self.producers.get(key)
        if p is None:
            p = KafkaProducer(**self.conf(
                acks=acks if acks != -1 else "all",
                compression_type=None if compression == "none" else compression,
                enable_idempotence=idempotent,
                linger_ms=5,
                delivery_timeout_ms=20000,
                request_timeout_ms=15000,
                max_block_ms=10000,
            ))
            self.producers[key] = p
        return p

    def op_produce_for(self, a):
        """Produce as fast as acknowledged for warmup_ms + duration_ms (clients/README.md); the
        throttle time is the producer's throttle-time-max metric (KIP-219)."""
        import threading
        import time
        size = a.get("record_bytes") or 1000
        acks = a.get("acks", -1)
        p = KafkaProducer(**self.conf(
            acks="all" if acks in (None, -1) else acks,
            compression_type=None,  # quotas count the bytes on the wire
            enable_idempotence=False,
            linger_ms=5,
            delivery_timeout_ms=20000,
            request_timeout_ms=15000,
            max_block_ms=10000,
        ))
        value = (b"0123456789abcdef" * (size // 16 + 1))[:size]
        slots = threading.Semaphore(a.get("in_flight") or 64)
        lock = threading.Lock()
        state = {"acked": 0, "failed": 0, "counted": 0, "err": None}
        start = time.monotonic()
        warm_end = start + (a.get("warmup_ms") or 0) / 1000.0
        duration = (a.get("duration_ms") or 5000) / 1000.0
        end = warm_end + duration

        def ok(_md):
            now = time.monotonic()
            with lock:
                state["acked"] += 1
                if warm_end <= now <= end:
                    state["counted"] += len(value)
            slots.release()

        def failed(exc):
            with lock:
                state["failed"] += 1
                state["err"] = state["err"] or str(exc)
            slots.release()

        try:
            while True:
                left = end - time.monotonic()
                if left <= 0 or not slots.acquire(timeout=left):
                    break
                try:
                    f = p.send(a["topic"], value=value, partition=a.get("partition") or 0)
                except Exception as e:  # rejected before it was queued
                    failed(e)
                    continue
                f.add_callback(ok)
                f.add_errback(failed)
            p.flush(timeout=DEFAULT_TIMEOUT_S)
            # throttle-time-max per connection (kafka-python 3; produce-throttle-time-max before)
            maxima = [v for group in (p.metrics() or {}).values() for k, v in group.items()
                      if k in ("throttle-time-max", "produce-throttle-time-max")
                      and isinstance(v, (int, float)) and v == v and v > 0]
        finally:
            p.close(timeout=5)
        throttle = int(max(maxima)) if maxima else 0
        with lock:
            res = {"records": state["acked"], "errors": state["failed"],
                   "bytes_per_sec": round(state["counted"] / duration),
                   "throttle_time_ms": throttle, "throttled": throttle > 0}
            if state["err"]:
                res["message"] = state["err"]
        return res

    def op_produce(self, a):
        compression = check_compression(a)
        if a.get("transactional"):
            p = self.need_txn()
        else:
            acks = a.get("acks", -1)
            try:
                p = self.get_producer(-1 if acks is None else acks, compression,
                                      bool(a.get("idempotent", False)))
            except Errors.KafkaConfigurationError:
                raise
            except Exception as e:  # could not reach the cluster: every record failed
                oe = self.auth_override(to_op_error(e))
                log.info("producer not created: %s", oe.message)
                return {"results": [{"partition": -1, "offset": -1, "timestamp": -1,
                                     "error": oe.name} for _ in a.get("records") or []]}
        for r in a.get("records") or []:
            if any(h.get("value") is None for h in r.get("headers") or []):
                raise Unsupported("kafka-python rejects null header values (headers must be "
                                  "(str, bytes) pairs)")
        acks0 = not a.get("transactional") and a.get("acks", -1) == 0
        topic = a["topic"]
        futures = []
        for r in a.get("records") or []:
            kw = send_kwargs(r, "timestamp_ms")
            try:
                futures.append(p.send(topic, **kw))
            except Exception as e:  # rejected before it was queued
                futures.append(to_op_error(e))
        try:
            p.flush(timeout=DEFAULT_TIMEOUT_S)
        except Exception as e:
            log.warning("flush: %s", e)
        results = []
        for i, f in enumerate(futures):
            if isinstance(f, OpError):
                results.append({"partition": -1, "offset": -1, "timestamp": -1, "error": f.name})
                log.info("record %d rejected: %s", i, f.message)
                continue
            try:
                md = f.get(timeout=DEFAULT_TIMEOUT_S)
                off = md.offset if md.offset is not None and md.offset >= 0 else -1
                if acks0:
                    off = -1  # no produce response with acks=0: the library's offset is made up
                ts = md.timestamp if md.timestamp is not None else -1
                results.append({"partition": md.partition, "offset": off, "timestamp": ts,
                                "error": None})
            except Exception as e:
                oe = self.auth_override(to_op_error(e))
                log.info("record %d failed: %s", i, oe.message)
                results.append({"partition": -1, "offset": -1, "timestamp": -1, "error": oe.name})
        return {"results": results}

    def consumer_conf(self, a, **extra):
        c = self.conf(isolation_level=isolation_of(a), enable_auto_commit=False,
                      auto_offset_reset="earliest", allow_auto_create_topics=False)
        if a.get("fetch_max_bytes") is not None:
            c["fetch_max_bytes"] = a["fetch_max_bytes"]
        if a.get("partition_max_bytes") is not None:
            c["max_partition_fetch_bytes"] = a["partition_max_bytes"]
        if a.get("fetch_max_wait_ms") is not None:
            c["fetch_max_wait_ms"] = a["fetch_max_wait_ms"]
        if a.get("fetch_min_bytes") is not None:
            c["fetch_min_bytes"] = a["fetch_min_bytes"]
        c.update(extra)
        return c

    @staticmethod
    def poll_records(consumer, max_records, timeout_ms):
        def fetch(want, left):
            batch = consumer.poll(timeout_ms=int(min(left, 1.0) * 1000), max_records=want)
            return [record_of(r) for recs in batch.values() for r in recs]
        return poll_records(max_records, timeout_ms, fetch)

    def op_consume(self, a):
        topic = a["topic"]
        parts = a.get("partitions")
        if parts is None:
            parts = self.topic_partitions(topic)
        c = KafkaConsumer(**self.consumer_conf(a, group_id=None))
        try:
            tps = [TopicPartition(topic, p) for p in parts]
            c.assign(tps)
            frm = a.get("from", "earliest")
            if frm == "earliest":
                c.seek_to_beginning(*tps)
            elif frm == "latest":
                c.seek_to_end(*tps)
            else:
                for tp in tps:
                    c.seek(tp, int(frm))
            records = self.poll_records(c, a.get("max_records", 1 << 30),
                                        a.get("timeout_ms", 5000))
        finally:
            c.close(autocommit=False)
        return {"records": records}

    def op_list_offsets(self, a):
        s = offset_spec(a, lambda: OffsetSpec.EARLIEST, lambda: OffsetSpec.LATEST,
                        lambda: OffsetSpec.MAX_TIMESTAMP, OffsetTimestamp)
        iso = IsolationLevel.READ_COMMITTED if isolation_of(a) == "read_committed" \
            else IsolationLevel.READ_UNCOMMITTED
        tp = TopicPartition(a["topic"], a["partition"])
        res = self.get_admin().list_partition_offsets({tp: s}, isolation_level=iso,
                                                      timeout_ms=int(DEFAULT_TIMEOUT_S * 1000))
        ot = res.get(tp)
        if ot is None:
            return {"offset": -1, "timestamp": -1}
        return {"offset": ot.offset if ot.offset is not None else -1,
                "timestamp": ot.timestamp if ot.timestamp is not None else -1}

    # ---- groups ------------------------------------------------------------------------------

    def op_group_subscribe(self, a):
        if (a.get("group_protocol") or "classic") != "classic":
            raise Unsupported("kafka-python has only the classic group protocol")
        assignor = a.get("assignor") or "range"
        if assignor not in ASSIGNORS:
            raise Unsupported("kafka-python has no %s assignor" % assignor)
        self.close_group()
        auto = bool(a.get("auto_commit", False))
        extra = {
            "group_id": a["group"],
            "partition_assignment_strategy": (ASSIGNORS[assignor],),
            "enable_auto_commit": auto,
            "auto_offset_reset": a.get("from") or "earliest",
        }
        if auto:
            extra["auto_commit_interval_ms"] = 1000
        if a.get("instance_id"):
            extra["group_instance_id"] = a["instance_id"]
        if a.get("session_timeout_ms") is not None:
            extra["session_timeout_ms"] = a["session_timeout_ms"]
            extra["heartbeat_interval_ms"] = max(100, a["session_timeout_ms"] // 3)
        if a.get("heartbeat_interval_ms") is not None:
            extra["heartbeat_interval_ms"] = a["heartbeat_interval_ms"]
        if a.get("rebalance_timeout_ms") is not None:
            # kafka-python sends max_poll_interval_ms as the JoinGroup rebalance timeout.
            extra["max_poll_interval_ms"] = a["rebalance_timeout_ms"]
        return self.join_group(KafkaConsumer(**self.consumer_conf(a, **extra)), a)

    def op_group_commit(self, a):
        if a.get("group") is not None and (self.group is None or self.group_id != a["group"]):
            # Commit as a non-member (generation -1): the admin client's OffsetCommit.
            offs = a.get("offsets") or []
            if not offs:
                return {}
            res = self.get_admin().alter_group_offsets(
                a["group"], {TopicPartition(o["topic"], o["partition"]):
                             OffsetAndMetadata(o["offset"], o.get("metadata") or "", -1)
                             for o in offs})
            for _tp, err in res.items():
                if err is not Errors.NoError:
                    raise OpError(err_name_of_class(err), err.__name__)
            return {}
        c = self.need_group()
        offs = a.get("offsets")
        if offs is None:
            c.commit(timeout_ms=int(DEFAULT_TIMEOUT_S * 1000))
        else:
            c.commit(offsets={TopicPartition(o["topic"], o["partition"]):
                              OffsetAndMetadata(o["offset"], o.get("metadata") or "", -1)
                              for o in offs},
                     timeout_ms=int(DEFAULT_TIMEOUT_S * 1000))
        return {}

    def op_group_committed(self, a):
        tps = [TopicPartition(a["topic"], p) for p in a.get("partitions") or []]
        res = self.get_admin().list_group_offsets({a["group"]: tps or None})
        got = res.get(a["group"], {})
        out = []
        seen = set()
        for tp, om in got.items():
            if tp.topic != a["topic"]:
                continue
            seen.add(tp.partition)
            out.append({"partition": tp.partition,
                        "offset": om.offset if om.offset is not None and om.offset >= 0 else -1,
                        "metadata": om.metadata or "", "error": None})
        for tp in tps:
            if tp.partition not in seen:
                out.append({"partition": tp.partition, "offset": -1, "metadata": "",
                            "error": None})
        out.sort(key=lambda x: x["partition"])
        return {"offsets": out}

    # ---- transactions ------------------------------------------------------------------------

    def op_txn_init(self, a):
        if self.txn is not None:
            try:
                self.txn.close(timeout=5)
            except Exception as e:
                log.warning("closing old transactional producer: %s", e)
            self.txn = None
        c = self.conf(transactional_id=a["transactional_id"], enable_idempotence=True, acks="all",
                      linger_ms=5, max_block_ms=int(DEFAULT_TIMEOUT_S * 1000))
        if a.get("transaction_timeout_ms") is not None:
            c["transaction_timeout_ms"] = a["transaction_timeout_ms"]
        self.txn = KafkaProducer(**c)
        self.txn.init_transactions()
        return {}

    def op_txn_commit(self, a):
        self.need_txn().commit_transaction()
        return {}

    def op_txn_abort(self, a):
        self.need_txn().abort_transaction()
        return {}

    def op_txn_send_offsets(self, a):
        p = self.need_txn()
        offsets = {TopicPartition(o["topic"], o["partition"]): OffsetAndMetadata(o["offset"], "", -1)
                   for o in a["offsets"]}
        if self.group is not None and self.group_id == a["group"]:
            meta = self.group.group_metadata()
        else:
            meta = a["group"]
        p.send_offsets_to_transaction(offsets, meta)
        return {}

    # ---- admin ---------------------------------------------------------------------------

    def admin_list_groups(self, a):
        groups = []
        for g in self.get_admin().list_groups():
            groups.append({"group": g.get("group_id"), "protocol_type": g.get("protocol_type"),
                           "state": group_state(g.get("group_state"))})
        groups.sort(key=lambda g: g["group"])
        return {"groups": groups}

    def admin_describe_groups(self, a):
        res = self.get_admin().describe_groups(list(a["groups"]))
        out = []
        for g in a["groups"]:
            d = res.get(g)
            if d is None:
                out.append({"group": g, "error": "CLIENT_ERROR"})
                continue
            if d.get("error"):
                m = re.match(r"\[Error (-?\d+)\]", d["error"])
                out.append({"group": g, "error": name_of(int(m.group(1))) if m else "CLIENT_ERROR"})
                continue
            members = []
            for m in d.get("members") or []:
                asg = []
                ma = m.get("member_assignment")
                if ma is not None and hasattr(ma, "assigned_partitions"):
                    for t, ps in ma.assigned_partitions():
                        for p in ps:
                            asg.append({"topic": t, "partition": p})
                elif isinstance(ma, dict):
                    for t in ma.get("assigned_partitions") or []:
                        for p in t.get("partitions") or []:
                            asg.append({"topic": t.get("topic"), "partition": p})
                members.append({"member_id": m.get("member_id"), "client_id": m.get("client_id"),
                                "instance_id": m.get("group_instance_id"),
                                "assignment": sorted(asg, key=lambda x: (x["topic"],
                                                                         x["partition"]))})
            out.append({"group": g, "state": group_state(d.get("group_state")),
                        "protocol_type": d.get("protocol_type"),
                        "protocol": d.get("protocol_data"), "members": members, "error": None})
        return {"groups": out}

    def admin_delete_groups(self, a):
        res = self.get_admin().delete_groups(list(a["groups"]))
        out = []
        for g in a["groups"]:
            r = res.get(g, "OK")
            out.append({"group": g, "error": None if r == "OK" else err_name_by_class_name(r)})
        return {"groups": out}

    def admin_offset_delete(self, a):
        tps = [TopicPartition(a["topic"], p) for p in a.get("partitions") or []]
        res = self.get_admin().delete_group_offsets(a["group"], tps)
        out = []
        for tp, err in sorted(res.items(), key=lambda kv: kv[0].partition):
            out.append({"partition": tp.partition,
                        "error": None if err is Errors.NoError else err_name_of_class(err)})
        return {"partitions": out}

    def admin_delete_records(self, a):
        tp = TopicPartition(a["topic"], a["partition"])
        res = self.get_admin().delete_records({tp: a["offset"]},
                                              timeout_ms=int(DEFAULT_TIMEOUT_S * 1000))
        r = res.get(tp)
        lw = r.get("low_watermark") if isinstance(r, dict) else getattr(r, "low_watermark", None)
        return {"low_watermark": lw if lw is not None else -1}

    def admin_describe_log_dirs(self, a):
        # The partition's size summed over every broker's log directories (one broker here).
        res = self.get_admin().describe_log_dirs({a["topic"]: [a["partition"]]})
        size, found = 0, False
        for broker in res:
            for d in broker["log_dirs"]:
                if d.get("error_code"):
                    raise OpError(name_of(d["error_code"]), "log dir %s" % d.get("log_dir"))
                for t in d.get("topics") or []:
                    if t.get("name") != a["topic"]:
                        continue
                    for p in t.get("partitions") or []:
                        if p.get("partition_index") == a["partition"]:
                            size += p["partition_size"]
                            found = True
        if not found:
            raise OpError("CLIENT_ERROR", "no log directory holds the partition")
        return {"size": size}

    def admin_describe_configs(self, a):
        names = a.get("names") or None
        res = self.get_admin().describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, a["topic"], names)], config_filter="all")
        entries = res.get("topic", {}).get(a["topic"], {})
        out = []
        for name in sorted(entries):
            if names and name not in names:
                continue
            e = entries[name]
            src = str(e.get("config_source") or "UNKNOWN")
            out.append({"name": name, "value": e.get("value"),
                        "source": {"UNKNOWN_CONFIG": "UNKNOWN"}.get(src, src)})
        return {"configs": out}

    def admin_alter_configs(self, a):
        res = self.get_admin().alter_configs(
            [ConfigResource(ConfigResourceType.TOPIC, a["topic"],
                            {k: (v if v is not None else (AlterConfigOp.DELETE, None))
                             for k, v in (a.get("configs") or {}).items()})],
            raise_on_unknown=False, incremental=True)
        r = res.get("topic", {}).get(a["topic"])
        # kafka-python 3.0 answers the string 'OK' or "[Error NN] Name: message" per resource.
        if isinstance(r, str):
            if r == "OK":
                return {}
            m = re.match(r"\[Error (-?\d+)\]\s*(.*)", r)
            if m:
                raise OpError(name_of(int(m.group(1))), m.group(2))
            raise OpError("CLIENT_ERROR", r)
        if r is not None and isinstance(r, type) and r is not Errors.NoError:
            raise OpError(err_name_of_class(r), r.__name__)
        if isinstance(r, Exception):
            raise r
        return {}

    def admin_create_partitions(self, a):
        self.get_admin().create_partitions({a["topic"]: a["count"]},
                                           timeout_ms=int(DEFAULT_TIMEOUT_S * 1000))
        return {}

    def admin_describe_cluster(self, a):
        d = self.get_admin().describe_cluster()
        return {"cluster_id": d.get("cluster_id"), "controller": d.get("controller_id", -1),
                "brokers": len(d.get("brokers") or [])}

    # ---- lifecycle -----------------------------------------------------------------------

    def close(self):
        try:
            self.close_group()
        except Exception as e:
            log.warning("closing group consumer: %s", e)
        for p in list(self.producers.values()) + [x for x in (self.txn, self.meta_producer) if x]:
            try:
                p.close(timeout=5)
            except Exception as e:
                log.warning("closing producer: %s", e)
        self.producers = {}
        self.txn = None
        self.meta_producer = None
        if self.admin is not None:
            try:
                self.admin.close()
            except Exception as e:
                log.warning("closing admin: %s", e)
            self.admin = None


def main():
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("driver").setLevel(logging.INFO)
    logging.getLogger("kafka").addHandler(AuthWatch(level=logging.WARNING))
    return serve(Driver())


if __name__ == "__main__":
    sys.exit(main())
