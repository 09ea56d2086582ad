#!/usr/bin/env python3
"""Conformance driver for kcat (librdkafka's command-line tool), see clients/README.md.

Each protocol op becomes one or more kcat invocations. Python 3 standard library only.
Logs go to stderr; stdout carries nothing but answers.
"""
import json
import os
import re
import select
import signal
import subprocess
import sys
import threading
import time

KCAT = os.environ.get("KCAT", "kcat")
KEY_DELIM = "\x1f"  # unit separator between key and value
MSG_DELIM = "\x1e"  # record separator between messages

# librdkafka's error strings (as kcat prints them) for the codes the scenarios meet.
RDKAFKA_ERRORS = {
    "SASL authentication error": "SASL_AUTHENTICATION_FAILED",
    "Broker: Unknown topic or partition": "UNKNOWN_TOPIC_OR_PARTITION",
    "Local: Unknown partition": "UNKNOWN_TOPIC_OR_PARTITION",
    "Local: Unknown topic": "UNKNOWN_TOPIC_OR_PARTITION",
    "Broker: Leader not available": "LEADER_NOT_AVAILABLE",
    "Broker: Not leader for partition": "NOT_LEADER_OR_FOLLOWER",
    "Broker: Offset out of range": "OFFSET_OUT_OF_RANGE",
    "Broker: Invalid topic": "INVALID_TOPIC_EXCEPTION",
    "Broker: Topic authorization failed": "TOPIC_AUTHORIZATION_FAILED",
    "Broker: Group authorization failed": "GROUP_AUTHORIZATION_FAILED",
    "Broker: Cluster authorization failed": "CLUSTER_AUTHORIZATION_FAILED",
    "Broker: SASL Authentication failed": "SASL_AUTHENTICATION_FAILED",
    "Broker: Message size too large": "MESSAGE_TOO_LARGE",
    "Broker: Record list too large": "RECORD_LIST_TOO_LARGE",
    "Broker: Not enough in-sync replicas": "NOT_ENOUGH_REPLICAS",
    "Broker: Request timed out": "REQUEST_TIMED_OUT",
    "Broker: API version not supported": "UNSUPPORTED_VERSION",
    "Broker: Unsupported compression type": "UNSUPPORTED_COMPRESSION_TYPE",
    "Broker: Invalid record": "INVALID_RECORD",
    "Broker: Invalid timestamp": "INVALID_TIMESTAMP",
    "Broker: Policy violation": "POLICY_VIOLATION",
    "Broker: Unknown member": "UNKNOWN_MEMBER_ID",
    "Broker: Group coordinator not available": "COORDINATOR_NOT_AVAILABLE",
    "Broker: Not coordinator": "NOT_COORDINATOR",
    "Broker: Fenced instance ID": "FENCED_INSTANCE_ID",
    "Local: Message timed out": "TIMEOUT",
    "Local: Timed out": "TIMEOUT",
    "Local: All broker connections are down": "CLIENT_ERROR",
    "Local: Authentication failure": "SASL_AUTHENTICATION_FAILED",
    "does not exist": "UNKNOWN_TOPIC_OR_PARTITION",
}


def log(*a):
    print("kcat-driver:", *a, file=sys.stderr, flush=True)


def err_name(text):
    for msg, name in RDKAFKA_ERRORS.items():
        if msg in text:
            return name
    if "timed out" in text.lower():
        return "TIMEOUT"
    return "CLIENT_ERROR"


def kcat_version():
    try:
        out = subprocess.run([KCAT, "-V"], capture_output=True, text=True, timeout=10).stdout
    except Exception as e:  # noqa: BLE001
        return "unknown (%s)" % e
    m = re.search(r"Version (\S+).*?librdkafka (\S+)", out, re.S)
    if not m:
        return out.strip().splitlines()[-1] if out.strip() else "unknown"
    return "kcat %s (librdkafka %s)" % (m.group(1), m.group(2))


def rdkafka_older(version, want):
    m = re.search(r"librdkafka (\d+)\.(\d+)\.(\d+)", version)
    return bool(m) and tuple(int(x) for x in m.groups()) < want


def ok(**fields):
    d = {"ok": True}
    d.update(fields)
    return d


def fail(name, message):
    return {"ok": False, "error": name, "message": message}


def unsupported(reason):
    return {"unsupported": True, "reason": reason}


NO_ADMIN = "kcat has no admin operations"
NO_TXN = ("kcat can only wrap all of one invocation's input in a single transaction committed at "
          "end of input: no begin/abort/send-offsets control")


class Driver:
    def __init__(self):
        self.base = []
        self.group = None

    # ---- helpers ----
    def cmd(self, mode, extra):
        return [KCAT, mode] + self.base + extra

    def run(self, args, data=None, timeout=60):
        log("run", " ".join(a if a.isprintable() else repr(a) for a in args))
        try:
            p = subprocess.run(args, input=data, capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired as e:
            return None, (e.stdout or b"").decode(errors="replace"), "timed out after %ss" % timeout
        return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")

    # ---- ops ----
    def hello(self, c):
        self.blocked = None
        self.base = ["-b", c["bootstrap"]]
        if c.get("client_id"):
            self.base += ["-X", "client.id=" + c["client_id"]]
        s = c.get("sasl")
        version = kcat_version()
        if s and s["mechanism"].startswith("SCRAM") and rdkafka_older(version, (2, 6, 1)):
            # librdkafka before 2.6.1 repeats the client nonce in SCRAM's client-final-message;
            # Kafka 4 checks it strictly and rejects the login (librdkafka#4895).
            self.blocked = "%s: librdkafka before 2.6.1 fails SCRAM against Kafka 4 (nonce bug)" % version
        if s:
            self.base += ["-X", "security.protocol=SASL_PLAINTEXT", "-X", "sasl.mechanisms=" + s["mechanism"],
                          "-X", "sasl.username=" + s["user"], "-X", "sasl.password=" + s["password"]]
        t = c.get("tls")
        if t:
            self.base += ["-X", "security.protocol=" + ("SASL_SSL" if s else "SSL"), "-X", "ssl.ca.location=" + t["ca_file"]]
            if t.get("cert_file"):
                self.base += ["-X", "ssl.certificate.location=" + t["cert_file"], "-X", "ssl.key.location=" + t["key_file"]]
        return ok(client="kcat", library_version=version)

    def metadata(self, c):
        topics = c.get("topics") or []
        auto = "true" if c.get("allow_auto_create") else "false"
        out = []
        for t in (topics or [None]):
            args = self.cmd("-L", ["-J", "-X", "allow.auto.create.topics=" + auto] + (["-t", t] if t else []))
            rc, so, se = self.run(args, timeout=30)
            if rc != 0:
                return fail(err_name(se), se.strip())
            md = json.loads(so)
            for tm in md.get("topics", []):
                e = tm.get("error")
                out.append({"topic": tm["topic"], "partitions": len(tm.get("partitions", [])),
                            "error": err_name(e) if e else None})
        return ok(topics=out)

    def produce(self, c):
        if c.get("transactional"):
            return unsupported(NO_TXN)
        recs = c.get("records", [])
        for r in recs:
            if r.get("timestamp") is not None:
                return unsupported("kcat's producer cannot set record timestamps")
            k, v = r.get("key"), r.get("value")
            if k == "" and v is None:
                return unsupported("kcat cannot send an empty key with a null value (-Z nulls both)")
            if k is None and v == "":
                return unsupported("kcat cannot send a null key with an empty value (it skips empty input)")
            for s in (k, v):
                if s is not None and (KEY_DELIM in s or MSG_DELIM in s):
                    return unsupported("record holds kcat's delimiter bytes")
        codec = c.get("compression") or "none"
        acks = c.get("acks", -1)
        conf = ["-X", "acks=%d" % acks, "-X", "compression.codec=" + codec,
                "-X", "enable.idempotence=" + ("true" if c.get("idempotent") else "false"),
                "-X", "message.timeout.ms=30000", "-X", "linger.ms=5"]
        # Group consecutive records that one kcat invocation can send (same partition, headers, -Z).
        groups = []
        for i, r in enumerate(recs):
            k, v = r.get("key"), r.get("value")
            z = True if v is None else (False if (k == "" or v == "") else None)
            hdrs = tuple((h["key"], h.get("value")) for h in (r.get("headers") or []))
            part = r.get("partition")
            g = groups[-1] if groups else None
            if g and g["part"] == part and g["hdrs"] == hdrs and (z is None or g["z"] is None or g["z"] == z):
                g["idx"].append(i)
                if g["z"] is None:
                    g["z"] = z
            else:
                groups.append({"part": part, "hdrs": hdrs, "z": z, "idx": [i]})
        # kcat prints a delivery report per message at verbosity 3 ("Message delivered to
        # partition P (offset O)"), in delivery order: exact per partition. Records sent through
        # the default partitioner may land on several partitions, so those go one per kcat run
        # (up to a bound; past it their partition and offset are reported as unknown).
        split = []
        for g in groups:
            if g["part"] is None and 1 < len(g["idx"]) <= 50:
                split += [dict(g, idx=[i]) for i in g["idx"]]
            else:
                split.append(g)
        results = [None] * len(recs)
        for g in split:
            args = [KCAT, "-P", "-v", "-v", "-v"] + self.base + ["-t", c["topic"], "-K", KEY_DELIM, "-D", MSG_DELIM] + conf
            if g["part"] is not None:
                args += ["-p", str(g["part"])]
            if g["z"]:
                args += ["-Z"]
            for hk, hv in g["hdrs"]:
                args += ["-H", hk if hv is None else hk + "=" + hv]
            data = ""
            for i in g["idx"]:
                k, v = recs[i].get("key"), recs[i].get("value")
                data += (k + KEY_DELIM if k is not None else "") + (v or "") + MSG_DELIM
            rc, _, se = self.run(args, data=data.encode(), timeout=60)
            reports = []
            for ln in se.splitlines():
                m = re.search(r"Message delivered to partition (-?\d+) \(offset (-?\d+)\)", ln)
                if m:
                    reports.append((int(m.group(1)), int(m.group(2)), None))
                elif "Delivery failed" in ln:
                    reports.append((None, -1, err_name(ln)))
            exact = len(reports) == len(g["idx"]) and (g["part"] is not None or len(g["idx"]) == 1)
            other = None
            if rc != 0 and not any(r[2] for r in reports):
                other = err_name(se) if se.strip() else "CLIENT_ERROR"
                log("kcat exited", rc, se.strip()[-500:])
            for n, i in enumerate(g["idx"]):
                part = g["part"] if g["part"] is not None else -1
                res = {"partition": part, "offset": -1, "timestamp": -1, "error": other}
                if exact:
                    rp, ro, rerr = reports[n]
                    if rp is not None:
                        res["partition"] = rp
                    res["offset"] = ro if (ro >= 0 and acks != 0) else -1
                    res["error"] = rerr
                elif other is None:
                    errs = [r[2] for r in reports if r[2]]
                    if errs:
                        res["error"] = errs[min(n, len(errs) - 1)]
                results[i] = res
        return ok(results=results)

    @staticmethod
    def record(m):
        hs = m.get("headers") or []
        headers = [{"key": hs[j], "value": hs[j + 1]} for j in range(0, len(hs) - 1, 2)]
        tst = {"create": "create", "logappend": "log_append"}.get(m.get("tstype"))
        return {"topic": m["topic"], "partition": m["partition"], "offset": m["offset"], "key": m.get("key"),
                "value": m.get("payload"), "headers": headers, "timestamp": m.get("ts", -1), "timestamp_type": tst}

    def read_records(self, f, max_records, timeout_ms, proc=None):
        recs = []
        deadline = time.monotonic() + timeout_ms / 1000.0
        buf = b""
        fd = f.fileno()
        while not max_records or len(recs) < max_records:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            while b"\n" in buf and (not max_records or len(recs) < max_records):
                line, buf = buf.split(b"\n", 1)
                if line.strip():
                    recs.append(self.record(json.loads(line)))
            if max_records and len(recs) >= max_records:
                break
            r, _, _ = select.select([fd], [], [], min(left, 0.2))
            if r:
                chunk = os.read(fd, 65536)
                if not chunk:
                    if proc is not None and proc.poll() is not None and b"\n" not in buf:
                        break
                    time.sleep(0.05)
                    continue
                buf += chunk
        return recs, buf

    def consume(self, c):
        frm = c.get("from", "earliest")
        off = {"earliest": "beginning", "latest": "end"}.get(frm, str(frm))
        conf = ["-X", "isolation.level=" + (c.get("isolation") or "read_uncommitted")]
        if c.get("fetch_max_bytes") is not None:
            # librdkafka requires fetch.max.bytes >= message.max.bytes, whose minimum is 1000.
            fmb = max(int(c["fetch_max_bytes"]), 1000)
            conf += ["-X", "fetch.max.bytes=%d" % fmb]
            if fmb < 1000000:
                conf += ["-X", "message.max.bytes=%d" % fmb]
        for arg, prop in (("partition_max_bytes", "max.partition.fetch.bytes"),
                          ("fetch_max_wait_ms", "fetch.wait.max.ms"), ("fetch_min_bytes", "fetch.min.bytes")):
            if c.get(arg) is not None:
                conf += ["-X", "%s=%d" % (prop, c[arg])]
        max_records = c.get("max_records") or 0
        timeout_ms = c.get("timeout_ms") or 10000
        parts = c.get("partitions")
        runs = [None] if not parts else list(parts)
        arglists = []
        for p in runs:
            args = self.cmd("-C", ["-J", "-u", "-t", c["topic"], "-o", off] + conf)
            if p is not None:
                args += ["-p", str(p)]
            if max_records:
                args += ["-c", str(max_records)]
            arglists.append(args)
        recs, errs = self.stream_many(arglists, max_records, timeout_ms)
        if not recs and any("ERROR" in e for e in errs):
            e = next(e for e in errs if "ERROR" in e)
            return fail(err_name(e), e.strip())
        return ok(records=recs)

    def stream_many(self, arglists, max_records, timeout_ms):
        """Runs one consuming kcat per argument list (one per partition), reads their JSON
        lines as they come until max_records or the time-out, then stops them."""
        procs = []
        for args in arglists:
            log("run", " ".join(args))
            procs.append(subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE))
        errs = [[] for _ in procs]
        threads = []
        for i, p in enumerate(procs):
            t = threading.Thread(target=lambda p=p, i=i: errs[i].extend(l.decode(errors="replace") for l in p.stderr),
                                 daemon=True)
            t.start()
            threads.append(t)
        bufs = {p.stdout.fileno(): b"" for p in procs}
        open_fds = set(bufs)
        recs = []
        deadline = time.monotonic() + timeout_ms / 1000.0
        while open_fds and (not max_records or len(recs) < max_records):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            ready, _, _ = select.select(list(open_fds), [], [], min(left, 0.2))
            for fd in ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    open_fds.discard(fd)
                    continue
                bufs[fd] += chunk
                while b"\n" in bufs[fd] and (not max_records or len(recs) < max_records):
                    line, bufs[fd] = bufs[fd].split(b"\n", 1)
                    if line.strip():
                        recs.append(self.record(json.loads(line)))
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for t in threads:
            t.join(timeout=5)
        return recs, ["".join(e) for e in errs]

    def list_offsets(self, c):
        spec = c.get("spec")
        if spec == "earliest":
            ts = -2
        elif spec == "latest":
            ts = -1
        elif isinstance(spec, dict) and "timestamp" in spec:
            ts = int(spec["timestamp"])
        elif spec == "max_timestamp":
            return unsupported("kcat's -Q (librdkafka offsets_for_times, ListOffsets v1) has no max-timestamp spec")
        else:
            return fail("CLIENT_ERROR", "bad spec %r" % (spec,))
        if c.get("isolation") == "read_committed":
            return unsupported("kcat's -Q runs on a producer handle: no isolation level")
        args = self.cmd("-Q", ["-J", "-t", "%s:%d:%d" % (c["topic"], c["partition"], ts)])
        rc, so, se = self.run(args, timeout=30)
        if rc != 0:
            return fail(err_name(se), se.strip())
        md = json.loads(so)
        for tm in md.values():
            for k, v in tm.items():
                if isinstance(v, dict) and v.get("partition") == c["partition"]:
                    if v.get("error"):
                        return fail(err_name(v["error"]), v["error"])
                    return ok(offset=v.get("offset", -1), timestamp=-1)
        return fail("CLIENT_ERROR", "no result in %s" % so.strip())

    # ---- groups: one long-running `kcat -G` ----
    def group_subscribe(self, c):
        if (c.get("group_protocol") or "classic") != "classic":
            return unsupported("kcat has no admin operations to describe a consumer-protocol group")
        self.group_leave({})
        assignor = c.get("assignor") or "range"
        if assignor not in ("range", "roundrobin", "cooperative-sticky"):
            return unsupported("librdkafka has no %s assignor (it has range, roundrobin, cooperative-sticky)" % assignor)
        conf = ["-X", "partition.assignment.strategy=" + assignor,
                "-X", "enable.auto.commit=" + ("true" if c.get("auto_commit") else "false"),
                "-X", "auto.offset.reset=" + ("latest" if c.get("from") == "latest" else "earliest"),
                "-X", "isolation.level=" + (c.get("isolation") or "read_uncommitted")]
        if c.get("instance_id"):
            conf += ["-X", "group.instance.id=" + c["instance_id"]]
        if c.get("session_timeout_ms"):
            conf += ["-X", "session.timeout.ms=%d" % c["session_timeout_ms"]]
            if c["session_timeout_ms"] // 3 < 3000:
                conf += ["-X", "heartbeat.interval.ms=%d" % (c["session_timeout_ms"] // 3)]
        if c.get("heartbeat_interval_ms"):
            conf += ["-X", "heartbeat.interval.ms=%d" % c["heartbeat_interval_ms"]]
        if c.get("rebalance_timeout_ms"):
            # librdkafka's rebalance time-out is max.poll.interval.ms, at least session.timeout.ms.
            mpi = max(c["rebalance_timeout_ms"], c.get("session_timeout_ms") or 0)
            conf += ["-X", "max.poll.interval.ms=%d" % mpi]
        args = [KCAT, "-G", c["group"]] + self.base + ["-J", "-u"] + conf + list(c["topics"])
        log("run", " ".join(args))
        p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        g = {"proc": p, "assignment": set(), "buf": b"", "lock": threading.Lock(), "errors": []}

        def watch():
            for raw in p.stderr:
                line = raw.decode(errors="replace").rstrip()
                log("kcat -G:", line)
                if "ERROR" in line:
                    g["errors"].append(line)
                if "rebalanced" not in line:
                    continue
                low = line.lower()
                revoke = "revoke" in low
                incremental = "incremental" in low
                tps = set((t, int(part)) for t, part in re.findall(r"([^\s,(]+) \[(\d+)\]", line))
                with g["lock"]:
                    if revoke:
                        g["assignment"] -= tps
                    elif incremental:
                        g["assignment"] |= tps
                    else:
                        g["assignment"] = tps

        g["thread"] = threading.Thread(target=watch, daemon=True)
        g["thread"].start()
        self.group = g
        return ok()

    def group_poll(self, c):
        g = self.group
        if not g:
            return fail("CLIENT_ERROR", "no group subscription")
        recs, rest = self.read_records_buffered(g, c.get("max_records") or 0, c.get("timeout_ms") or 5000)
        if not recs and g["proc"].poll() is not None:
            last = g["errors"][-1] if g["errors"] else "kcat -G exited %s" % g["proc"].returncode
            return fail(err_name(last), last)
        with g["lock"]:
            asg = sorted(g["assignment"])
        return ok(records=recs, assignment=[{"topic": t, "partition": p} for t, p in asg])

    def read_records_buffered(self, g, max_records, timeout_ms):
        # Records kcat printed beyond an earlier poll's max_records stay in g["buf"].
        recs = []
        buf = g["buf"]
        while b"\n" in buf and (not max_records or len(recs) < max_records):
            line, buf = buf.split(b"\n", 1)
            if line.strip():
                recs.append(self.record(json.loads(line)))
        g["buf"] = buf
        if max_records and len(recs) >= max_records:
            return recs, buf
        more, rest = self.read_records(g["proc"].stdout, max_records - len(recs) if max_records else 0,
                                       timeout_ms, g["proc"])
        # read_records started from an empty buffer: prepend what was left.
        g["buf"] = rest
        return recs + more, rest

    def group_leave(self, c):
        g, self.group = self.group, None
        if g:
            p = g["proc"]
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        return ok()

    def close(self):
        self.group_leave({})


def main():
    d = Driver()
    ops = {
        "hello": d.hello, "metadata": d.metadata, "produce": d.produce, "consume": d.consume,
        "list_offsets": d.list_offsets, "group_subscribe": d.group_subscribe, "group_poll": d.group_poll,
        "group_leave": d.group_leave,
    }
    static = {
        "create_topic": NO_ADMIN, "delete_topic": NO_ADMIN, "admin": NO_ADMIN,
        "group_commit": "kcat commits only automatically in -G mode (enable.auto.commit); it takes no commit commands",
        "group_committed": "kcat cannot read a group's committed offsets",
        "txn_init": NO_TXN, "txn_begin": NO_TXN, "txn_commit": NO_TXN, "txn_abort": NO_TXN,
        "txn_send_offsets": NO_TXN,
    }
    out = sys.stdout
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        cid = None
        try:
            c = json.loads(line)
            cid = c.get("id")
            op = c.get("op")
            if op == "close":
                d.close()
                ans = ok()
            elif op != "hello" and getattr(d, "blocked", None):
                ans = unsupported(d.blocked)
            elif op in ops:
                ans = ops[op](c)
            elif op in static:
                ans = unsupported(static[op])
            else:
                ans = unsupported("unknown op")
        except Exception as e:  # noqa: BLE001  an op never kills the driver
            log("op failed:", repr(e))
            ans = fail("CLIENT_ERROR", "%s: %s" % (type(e).__name__, e))
        ans["id"] = cid
        out.write(json.dumps(ans) + "\n")
        out.flush()
        if line and '"close"' in line and ans.get("ok") and c.get("op") == "close":
            return
    d.close()


if __name__ == "__main__":
    main()
