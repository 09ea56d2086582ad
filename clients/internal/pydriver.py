"""The driver protocol plumbing shared by the Python drivers (clients/README.md).

One command per stdin line, one answer per stdout line, logs on stderr. Each driver subclasses
DriverBase with its library's ops and calls serve() from its main().
"""

import json
import logging
import sys
import time

log = logging.getLogger("driver")

DEFAULT_TIMEOUT_S = 30.0

COMPRESSIONS = ("none", "gzip", "snappy", "lz4", "zstd")

# Set when a broker refused our SASL credentials (each driver says how it notices). Clients keep
# retrying such a connection, so answers that failed with a time-out report this instead.
AUTH_FAILED = []


class OpError(Exception):
    """An op failed as a whole: answered ok:false with a Kafka error name."""

    def __init__(self, name, message):
        super().__init__(message)
        self.name = name
        self.message = message


class Unsupported(Exception):
    pass


def enc(b):
    """Bytes from the wire as the protocol's UTF-8 string (or None)."""
    if b is None:
        return None
    if isinstance(b, str):
        return b
    return bytes(b).decode("utf-8", errors="replace")


def dec(s):
    if s is None:
        return None
    return s.encode("utf-8")


def isolation_of(args):
    return args.get("isolation") or "read_uncommitted"


def check_compression(args):
    """The op's compression codec; Unsupported for one the protocol does not name."""
    compression = args.get("compression") or "none"
    if compression not in COMPRESSIONS:
        raise Unsupported("compression %s" % compression)
    return compression


def send_kwargs(r, timestamp_kw):
    """Keyword arguments for sending one protocol record; timestamp_kw names the timestamp."""
    kw = {"value": dec(r.get("value")), "key": dec(r.get("key"))}
    if r.get("headers"):
        kw["headers"] = [(h["key"], dec(h.get("value"))) for h in r["headers"]]
    if r.get("partition") is not None:
        kw["partition"] = r["partition"]
    if r.get("timestamp") is not None:
        kw[timestamp_kw] = r["timestamp"]
    return kw


def offset_spec(a, earliest, latest, max_timestamp, for_timestamp):
    """The list_offsets spec of an op, built by the library's constructors."""
    spec = a.get("spec", "latest")
    if spec == "earliest":
        return earliest()
    if spec == "latest":
        return latest()
    if spec == "max_timestamp":
        return max_timestamp()
    if isinstance(spec, dict) and "timestamp" in spec:
        return for_timestamp(int(spec["timestamp"]))
    raise OpError("CLIENT_ERROR", "bad spec %r" % (spec,))


def poll_records(max_records, timeout_ms, fetch):
    """Records from fetch(want, seconds_left) until max_records or timeout_ms has passed."""
    records = []
    deadline = time.monotonic() + timeout_ms / 1000.0
    while len(records) < max_records:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        records.extend(fetch(max_records - len(records), left))
    return records


def sorted_assignment(tps):
    return sorted(({"topic": tp.topic, "partition": tp.partition} for tp in tps),
                  key=lambda x: (x["topic"], x["partition"]))


class DriverBase:
    """Client handles and the ops every driver answers the same way."""

    def __init__(self):
        self.base = None
        self.admin = None
        self.producers = {}
        self.txn = None  # transactional producer
        self.group = None  # group consumer
        self.group_id = None

    # Subclasses: to_op_error(exc) -> OpError, poll_records(consumer, max_records, timeout_ms),
    # close() and the op_*/admin_* methods.
    to_op_error = None

    def auth_message(self, entry):
        """The message of an AUTH_FAILED entry."""
        return entry

    def auth_override(self, oe):
        """oe, or SASL_AUTHENTICATION_FAILED if it hides a refused login."""
        if AUTH_FAILED and oe.name in ("TIMEOUT", "CLIENT_ERROR"):
            return OpError("SASL_AUTHENTICATION_FAILED", self.auth_message(AUTH_FAILED[-1]))
        return oe

    def conf(self, **extra):
        if self.base is None:
            raise OpError("CLIENT_ERROR", "hello was not sent")
        c = dict(self.base)
        c.update(extra)
        return c

    def need_group(self):
        if self.group is None:
            raise OpError("CLIENT_ERROR", "no group consumer (group_subscribe first)")
        return self.group

    def close_group(self):
        if self.group is not None:
            try:
                self.group.close()
            finally:
                self.group = None
                self.group_id = None

    def join_group(self, consumer, a):
        """Make consumer the group consumer of group_subscribe a and subscribe it."""
        self.group = consumer
        self.group_id = a["group"]
        self.group.subscribe(list(a["topics"]))
        return {}

    def op_group_poll(self, a):
        c = self.need_group()
        records = self.poll_records(c, a.get("max_records", 1 << 30), a.get("timeout_ms", 5000))
        assignment = sorted_assignment(c.assignment())
        return {"records": records, "assignment": assignment}

    def op_group_leave(self, a):
        self.close_group()
        return {}

    def need_txn(self):
        if self.txn is None:
            raise OpError("CLIENT_ERROR", "txn_init was not sent")
        return self.txn

    def op_txn_begin(self, a):
        self.need_txn().begin_transaction()
        return {}

    def op_admin(self, a):
        action = a.get("action")
        fn = getattr(self, "admin_" + str(action), None)
        if fn is None:
            raise Unsupported("unknown admin action %s" % action)
        return fn(a)

    def op_close(self, a):
        self.close()
        return {}

    def handle(self, cmd):
        cid = cmd.get("id")
        op = cmd.get("op")
        fn = getattr(self, "op_" + str(op), None)
        if fn is None:
            return {"id": cid, "unsupported": True, "reason": "unknown op"}
        try:
            res = fn(cmd)
            out = {"id": cid, "ok": True}
            out.update(res or {})
            return out
        except Unsupported as e:
            return {"id": cid, "unsupported": True, "reason": str(e)}
        except Exception as e:
            oe = self.auth_override(self.to_op_error(e))
            log.info("op %s failed: %s %s", op, oe.name, oe.message,
                     exc_info=not isinstance(e, (OpError, Unsupported)) and oe.name == "CLIENT_ERROR")
            return {"id": cid, "ok": False, "error": oe.name, "message": oe.message}


def serve(d):
    """Answer the commands on stdin until close or end of input."""
    out = sys.stdout
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            cmd = json.loads(line)
        except ValueError as e:
            log.error("bad command line %r: %s", line, e)
            continue
        ans = d.handle(cmd)
        out.write(json.dumps(ans) + "\n")
        out.flush()
        if cmd.get("op") == "close":
            break
    else:
        d.close()
    return 0
