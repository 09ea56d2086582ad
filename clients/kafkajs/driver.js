'use strict'
// klite conformance driver for KafkaJS.
//
// Speaks the JSON-lines protocol of clients/README.md: one command per stdin line, one answer per
// stdout line, in order. Everything logged goes to stderr.
//
// KafkaJS has no manual partition assignment: `consume` is served by a throwaway consumer group
// (unique id, a driver-side assigner that hands this one member exactly the asked partitions, no
// commits) which is deleted again afterwards.

const readline = require('readline')
const crypto = require('crypto')
const fs = require('fs')
const {
  Kafka,
  logLevel,
  CompressionTypes,
  CompressionCodecs,
  AssignerProtocol,
  PartitionAssigners,
  ConfigResourceTypes,
  Partitioners,
} = require('kafkajs')
const KAFKAJS_VERSION = require('kafkajs/package.json').version
const ERROR_NAMES = require('../internal/kafka-error-names.json')

// ---- compression codecs ------------------------------------------------------------------------
// KafkaJS ships gzip only; the others are plugged in from npm packages when they load.
const codecProblems = {}
try {
  CompressionCodecs[CompressionTypes.Snappy] = require('kafkajs-snappy')
} catch (e) {
  codecProblems.snappy = `kafkajs-snappy failed to load: ${e.message}`
}
try {
  const LZ4Codec = require('@2l/kafkajs-lz4')
  CompressionCodecs[CompressionTypes.LZ4] = new LZ4Codec().codec
} catch (e) {
  codecProblems.lz4 = `@2l/kafkajs-lz4 failed to load: ${e.message}`
}
try {
  const zstd = require('@mongodb-js/zstd')
  CompressionCodecs[CompressionTypes.ZSTD] = () => ({
    compress: async encoder => zstd.compress(encoder.buffer),
    decompress: async buffer => zstd.decompress(buffer),
  })
} catch (e) {
  codecProblems.zstd = `@mongodb-js/zstd failed to load: ${e.message}`
}
const COMPRESSION = {
  none: CompressionTypes.None,
  gzip: CompressionTypes.GZIP,
  snappy: CompressionTypes.Snappy,
  lz4: CompressionTypes.LZ4,
  zstd: CompressionTypes.ZSTD,
}

const DEFAULT_TIMEOUT_MS = 30000
// Kafka's ConfigSource values (DescribeConfigs v1+), by protocol number.
const CONFIG_SOURCES = {
  0: 'UNKNOWN',
  1: 'DYNAMIC_TOPIC_CONFIG',
  2: 'DYNAMIC_BROKER_CONFIG',
  3: 'DYNAMIC_DEFAULT_BROKER_CONFIG',
  4: 'STATIC_BROKER_CONFIG',
  5: 'DEFAULT_CONFIG',
  6: 'DYNAMIC_BROKER_LOGGER_CONFIG',
  7: 'CLIENT_METRICS_CONFIG',
  8: 'GROUP_CONFIG',
}
const QUEUE_CAP = 500

// ---- errors ------------------------------------------------------------------------------------

class OpError extends Error {
  constructor(name, message) {
    super(message)
    this.errName = name
  }
}
class Unsupported extends Error {}

function errName(e, depth = 0) {
  if (!e || depth > 5) return 'CLIENT_ERROR'
  if (e instanceof OpError) return e.errName
  if (e.name === 'KafkaJSSASLAuthenticationError') return 'SASL_AUTHENTICATION_FAILED'
  if (typeof e.code === 'number' && ERROR_NAMES[String(e.code)]) return ERROR_NAMES[String(e.code)]
  if (typeof e.type === 'string' && /^[A-Z_]+$/.test(e.type) && e.type !== 'UNKNOWN') return e.type
  if (Array.isArray(e.errors) && e.errors.length) return errName(e.errors[0], depth + 1)
  if (e.originalError) return errName(e.originalError, depth + 1)
  if (e.cause) return errName(e.cause, depth + 1)
  if (/Timeout/i.test(e.name || '')) return 'TIMEOUT'
  return 'CLIENT_ERROR'
}

function errMessage(e) {
  const parts = [`${e.name || 'Error'}: ${e.message}`]
  if (e.originalError) parts.push(`cause: ${e.originalError.message}`)
  return parts.join('; ').slice(0, 600)
}

// ---- helpers -----------------------------------------------------------------------------------

const enc = b => (b === null || b === undefined ? null : Buffer.isBuffer(b) ? b.toString('utf8') : String(b))
const dec = s => (s === null || s === undefined ? null : Buffer.from(s, 'utf8'))

function headersToObject(list) {
  // KafkaJS takes headers as an object; repeated keys become an array (kept in order per key).
  const out = {}
  for (const h of list || []) {
    const v = dec(h.value)
    if (Object.prototype.hasOwnProperty.call(out, h.key)) {
      if (!Array.isArray(out[h.key])) out[h.key] = [out[h.key]]
      out[h.key].push(v)
    } else {
      out[h.key] = v
    }
  }
  return out
}

function headersFromObject(obj) {
  const out = []
  for (const [k, v] of Object.entries(obj || {})) {
    if (Array.isArray(v)) for (const x of v) out.push({ key: k, value: enc(x) })
    else out.push({ key: k, value: enc(v) })
  }
  return out
}

function recordOf(topic, partition, m) {
  // KafkaJS does not expose the batch's timestamp type.
  return {
    topic,
    partition,
    offset: Number(m.offset),
    key: enc(m.key),
    value: enc(m.value),
    headers: headersFromObject(m.headers),
    timestamp: m.timestamp !== undefined ? Number(m.timestamp) : -1,
    timestamp_type: null,
  }
}

function groupState(s) {
  return s === undefined || s === null ? null : s
}

// A group assigner that gives the asked partitions to the (single) member: used by `consume`.
function fixedAssigner(assignment) {
  return () => ({
    name: 'KliteDriverFixed',
    version: 0,
    async assign({ members }) {
      return members.map((m, i) => ({
        memberId: m.memberId,
        memberAssignment: AssignerProtocol.MemberAssignment.encode({
          version: 0,
          assignment: i === 0 ? assignment : {},
          userData: Buffer.alloc(0),
        }),
      }))
    },
    protocol({ topics }) {
      return {
        name: 'KliteDriverFixed',
        metadata: AssignerProtocol.MemberMetadata.encode({ version: 0, topics, userData: Buffer.alloc(0) }),
      }
    },
  })
}

// Collects records from a running KafkaJS consumer into a bounded queue the driver drains.
class RecordSink {
  constructor() {
    this.queue = []
    this.waiters = []
    this.paused = false
  }
  push(r) {
    this.queue.push(r)
    for (const w of this.waiters.splice(0)) w()
  }
  changed() {
    for (const w of this.waiters.splice(0)) w()
  }
  wait(ms) {
    return new Promise(resolve => {
      const t = setTimeout(resolve, Math.max(0, ms))
      this.waiters.push(() => {
        clearTimeout(t)
        resolve()
      })
    })
  }
  async take(max, timeoutMs) {
    const deadline = Date.now() + timeoutMs
    while (this.queue.length < max && Date.now() < deadline && !this.closed) {
      await this.wait(deadline - Date.now())
    }
    return this.queue.splice(0, max)
  }
}

const makeLogCreator = () => () => ({ namespace, level, label, log }) => {
  const { message, ...extra } = log
  process.stderr.write(`${label} [${namespace}] ${message} ${JSON.stringify(extra)}\n`)
}

// ---- driver ------------------------------------------------------------------------------------

class Driver {
  constructor() {
    this.kafka = null
    this.adminClient = null
    this.producers = new Map()
    this.txnProducer = null
    this.txn = null
    this.group = null // {consumer, sink, groupId, assignment, delivered}
    this.partitionOf = new WeakMap()
    this.clusters = new Map()
  }

  need() {
    if (!this.kafka) throw new OpError('CLIENT_ERROR', 'hello was not sent')
    return this.kafka
  }

  async admin() {
    if (!this.adminClient) {
      const a = this.need().admin()
      await a.connect()
      this.adminClient = a
    }
    return this.adminClient
  }

  // A KafkaJS cluster object (the library's own metadata and ListOffsets code) built with the
  // given isolation level and auto-creation flag, which the public admin API does not expose.
  async cluster(isolationLevel, allowAutoTopicCreation) {
    const key = `${isolationLevel}/${allowAutoTopicCreation}`
    let c = this.clusters.get(key)
    if (!c) {
      const sym = Object.getOwnPropertySymbols(this.need()).find(s => String(s).includes('createCluster'))
      c = this.kafka[sym]({ allowAutoTopicCreation, isolationLevel })
      await c.connect()
      this.clusters.set(key, c)
    }
    return c
  }

  async op_hello(a) {
    const cfg = {
      clientId: a.client_id || 'klite-driver',
      brokers: [a.bootstrap],
      logLevel: logLevel.WARN,
      logCreator: makeLogCreator(),
      retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 2000 },
    }
    if (a.sasl) {
      cfg.sasl = { mechanism: a.sasl.mechanism.toLowerCase(), username: a.sasl.user, password: a.sasl.password }
    }
    if (a.tls) {
      cfg.ssl = { ca: [fs.readFileSync(a.tls.ca_file, 'utf8')] }
      if (a.tls.cert_file) {
        cfg.ssl.cert = fs.readFileSync(a.tls.cert_file, 'utf8')
        cfg.ssl.key = fs.readFileSync(a.tls.key_file, 'utf8')
      }
    }
    this.kafka = new Kafka(cfg)
    this.cfg = cfg
    return { client: 'kafkajs', library_version: KAFKAJS_VERSION }
  }

  async op_create_topic(a) {
    const admin = await this.admin()
    const created = await admin.createTopics({
      validateOnly: !!a.validate_only,
      waitForLeaders: !a.validate_only,
      timeout: DEFAULT_TIMEOUT_MS,
      topics: [
        {
          topic: a.topic,
          numPartitions: a.partitions === undefined ? 1 : a.partitions,
          replicationFactor: a.replication_factor === undefined ? 1 : a.replication_factor,
          configEntries: Object.entries(a.configs || {}).map(([name, value]) => ({ name, value })),
        },
      ],
    })
    if (created === false) {
      // KafkaJS turns TOPIC_ALREADY_EXISTS into a `false` result.
      throw new OpError('TOPIC_ALREADY_EXISTS', 'kafkajs createTopics returned false (topic already exists)')
    }
    return {}
  }

  async op_delete_topic(a) {
    const admin = await this.admin()
    await admin.deleteTopics({ topics: [a.topic], timeout: DEFAULT_TIMEOUT_MS })
    return {}
  }

  async op_metadata(a) {
    const topics = a.topics || []
    const cluster = await this.cluster(undefined, !!a.allow_auto_create)
    const out = []
    if (topics.length === 0) {
      const admin = await this.admin()
      const md = await admin.fetchTopicMetadata({ topics: [] })
      for (const t of md.topics.sort((x, y) => (x.name < y.name ? -1 : 1))) {
        out.push({ topic: t.name, partitions: t.partitions.length, error: null })
      }
      return { topics: out }
    }
    for (const name of topics) {
      try {
        const broker = await cluster.brokerPool.findConnectedBroker()
        const md = await broker.metadata([name])
        const t = md.topicMetadata.find(x => x.topic === name)
        if (!t) {
          out.push({ topic: name, partitions: 0, error: 'UNKNOWN_TOPIC_OR_PARTITION' })
        } else {
          out.push({
            topic: name,
            partitions: t.partitionMetadata.length,
            error: t.topicErrorCode ? ERROR_NAMES[String(t.topicErrorCode)] || 'UNKNOWN_SERVER_ERROR' : null,
          })
        }
      } catch (e) {
        const n = errName(e)
        if (n === 'CLIENT_ERROR' || n === 'TIMEOUT') throw e
        out.push({ topic: name, partitions: 0, error: n })
      }
    }
    return { topics: out }
  }

  async producer(acks, compression, idempotent) {
    const key = `${acks}/${compression}/${idempotent}`
    let p = this.producers.get(key)
    if (!p) {
      p = this.need().producer({
        idempotent,
        maxInFlightRequests: idempotent ? 1 : undefined,
        createPartitioner: this.recordingPartitioner(),
        retry: idempotent ? { retries: Number.MAX_SAFE_INTEGER, maxRetryTime: 2000 } : undefined,
      })
      await p.connect()
      this.producers.set(key, p)
    }
    return p
  }

  // Wraps KafkaJS's default (Java-compatible murmur2) partitioner to learn where each record went:
  // KafkaJS answers one base offset per partition, not a partition per record.
  recordingPartitioner() {
    const self = this
    return () => {
      const inner = Partitioners.DefaultPartitioner()
      return args => {
        const p = inner(args)
        self.partitionOf.set(args.message, p)
        return p
      }
    }
  }

  async op_produce(a) {
    const compression = a.compression || 'none'
    if (!(compression in COMPRESSION)) throw new Unsupported(`compression ${compression}`)
    if (codecProblems[compression]) throw new Unsupported(codecProblems[compression])
    const records = a.records || []
    if (records.some(r => (r.headers || []).some(h => h.value === null || h.value === undefined))) {
      throw new Unsupported('kafkajs cannot encode a null header value')
    }
    const messages = records.map(r => {
      const m = { key: dec(r.key), value: dec(r.value), headers: headersToObject(r.headers) }
      if (r.partition !== undefined && r.partition !== null) m.partition = r.partition
      if (r.timestamp !== undefined && r.timestamp !== null) m.timestamp = String(r.timestamp)
      return m
    })
    let acks = a.acks === undefined || a.acks === null ? -1 : a.acks
    let sender
    if (a.transactional) {
      if (!this.txn) throw new OpError('CLIENT_ERROR', 'no open transaction (txn_begin first)')
      sender = this.txn
      acks = -1
    } else {
      try {
        sender = await this.producer(acks, compression, !!a.idempotent)
      } catch (e) {
        // Could not connect: every record failed with the connection's error.
        process.stderr.write(`producer connect failed: ${errMessage(e)}\n`)
        return { results: messages.map(m => ({ partition: m.partition !== undefined ? m.partition : -1, offset: -1, timestamp: -1, error: errName(e) })) }
      }
    }
    let res
    try {
      res = await sender.send({ topic: a.topic, messages, acks, compression: COMPRESSION[compression], timeout: DEFAULT_TIMEOUT_MS })
    } catch (e) {
      const name = errName(e)
      process.stderr.write(`produce failed: ${errMessage(e)}\n`)
      return {
        results: messages.map(m => ({
          partition: this.partitionOf.has(m) ? this.partitionOf.get(m) : m.partition !== undefined ? m.partition : -1,
          offset: -1,
          timestamp: -1,
          error: name,
        })),
      }
    }
    const byPartition = new Map()
    for (const r of res || []) byPartition.set(r.partition, r)
    const seen = new Map()
    const results = messages.map(m => {
      const partition = this.partitionOf.has(m) ? this.partitionOf.get(m) : m.partition
      const idx = seen.get(partition) || 0
      seen.set(partition, idx + 1)
      const pr = byPartition.get(partition)
      if (acks !== 0 && !pr) {
        // KafkaJS drops records for partitions missing from metadata without an error.
        return { partition, offset: -1, timestamp: -1, error: 'CLIENT_ERROR' }
      }
      if (acks === 0) {
        return { partition, offset: -1, timestamp: m.timestamp !== undefined ? Number(m.timestamp) : -1, error: null }
      }
      if (pr.errorCode) {
        return { partition, offset: -1, timestamp: -1, error: ERROR_NAMES[String(pr.errorCode)] || 'UNKNOWN_SERVER_ERROR' }
      }
      const lat = pr.logAppendTime !== undefined ? Number(pr.logAppendTime) : -1
      const ts = lat >= 0 ? lat : m.timestamp !== undefined ? Number(m.timestamp) : -1
      return { partition, offset: Number(pr.baseOffset) + idx, timestamp: ts, error: null }
    })
    return { results }
  }

  consumerOptions(a, groupId, extra = {}) {
    const o = {
      groupId,
      readUncommitted: (a.isolation || 'read_uncommitted') !== 'read_committed',
      allowAutoTopicCreation: false,
      retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 2000 },
      ...extra,
    }
    if (a.fetch_max_bytes !== undefined) o.maxBytes = a.fetch_max_bytes
    if (a.partition_max_bytes !== undefined) o.maxBytesPerPartition = a.partition_max_bytes
    // KafkaJS waits up to 5 s per fetch by default, and disconnect() waits for the fetch in
    // flight; use the Java client's default (500 ms) unless the scenario says otherwise.
    o.maxWaitTimeInMs = a.fetch_max_wait_ms !== undefined ? a.fetch_max_wait_ms : 500
    if (a.fetch_min_bytes !== undefined) o.minBytes = a.fetch_min_bytes
    return o
  }

  // Starts consumer.run() feeding `sink`; pauses fetching while the sink is full.
  startRun(consumer, sink, topics, runOpts = {}, onDeliver = null) {
    const run = consumer.run({
      ...runOpts,
      eachMessage: async ({ topic, partition, message }) => {
        sink.push(recordOf(topic, partition, message))
        if (onDeliver) onDeliver(topic, partition, message)
        if (sink.queue.length >= QUEUE_CAP && !sink.paused) {
          sink.paused = true
          consumer.pause(topics.map(topic => ({ topic })))
        }
      },
    })
    run.catch(e => process.stderr.write(`consumer.run failed: ${errMessage(e)}\n`))
    return run
  }

  resumeIfDrained(consumer, sink, topics) {
    if (sink.paused && sink.queue.length < QUEUE_CAP) {
      sink.paused = false
      consumer.resume(topics.map(topic => ({ topic })))
    }
  }

  // produce_for (clients/README.md). KafkaJS waits out a broker's throttle time (KIP-219) and
  // says so only in a debug log line ("Client side throttling in effect for Nms"), which a
  // logger of this op's own client reads; everything else is logged as the driver does.
  async op_produce_for(a) {
    let throttleMax = 0
    const inner = makeLogCreator()(logLevel.WARN)
    const logCreator = () => entry => {
      const m = /Client side throttling in effect for (\d+)ms/.exec(entry.log.message || '')
      if (m) throttleMax = Math.max(throttleMax, Number(m[1]))
      if (entry.level <= logLevel.WARN && entry.level !== logLevel.NOTHING) inner(entry)
    }
    const kafka = new Kafka({ ...this.cfg, logLevel: logLevel.DEBUG, logCreator })
    const producer = kafka.producer({ idempotent: false, allowAutoTopicCreation: false })
    await producer.connect()
    const size = a.record_bytes || 1000
    const value = Buffer.from('0123456789abcdef'.repeat(Math.ceil(size / 16)).slice(0, size))
    const perSend = 16 // records per send (KafkaJS sends each send() as its own request)
    const sends = Math.max(1, Math.floor((a.in_flight || 64) / perSend))
    const start = Date.now()
    const warmEnd = start + (a.warmup_ms || 0)
    const durationMs = a.duration_ms || 5000
    const end = warmEnd + durationMs
    const acks = a.acks === undefined || a.acks === null ? -1 : a.acks
    const st = { acked: 0, failed: 0, counted: 0, err: null }
    const messages = Array.from({ length: perSend }, () => ({ value, partition: a.partition || 0 }))
    const worker = async () => {
      while (Date.now() < end) {
        try {
          await producer.send({ topic: a.topic, acks, compression: CompressionTypes.None, messages })
          const now = Date.now()
          st.acked += perSend
          if (now >= warmEnd && now <= end) st.counted += perSend * size
        } catch (e) {
          st.failed += perSend
          st.err = st.err || errMessage(e)
        }
      }
    }
    try {
      await Promise.all(Array.from({ length: sends }, worker))
    } finally {
      await producer.disconnect()
    }
    const res = {
      records: st.acked,
      errors: st.failed,
      bytes_per_sec: Math.round(st.counted / (durationMs / 1000)),
      throttle_time_ms: throttleMax,
      throttled: throttleMax > 0,
    }
    if (st.err) res.message = st.err
    return res
  }

  async topicPartitions(topic) {
    const cluster = await this.cluster(undefined, false)
    const broker = await cluster.brokerPool.findConnectedBroker()
    const md = await broker.metadata([topic])
    const t = md.topicMetadata.find(x => x.topic === topic)
    if (!t) throw new OpError('UNKNOWN_TOPIC_OR_PARTITION', `topic ${topic} not in metadata`)
    if (t.topicErrorCode) throw new OpError(ERROR_NAMES[String(t.topicErrorCode)] || 'UNKNOWN_SERVER_ERROR', `metadata for ${topic}`)
    return t.partitionMetadata.map(p => p.partitionId).sort((x, y) => x - y)
  }

  async op_consume(a) {
    const topic = a.topic
    const parts = a.partitions || (await this.topicPartitions(topic))
    const from = a.from === undefined ? 'earliest' : a.from
    const groupId = `klite-driver-assign-${crypto.randomBytes(8).toString('hex')}`
    const consumer = this.need().consumer(
      this.consumerOptions(a, groupId, { partitionAssigners: [fixedAssigner({ [topic]: parts })] })
    )
    const sink = new RecordSink()
    const maxRecords = a.max_records === undefined ? Infinity : a.max_records
    const timeoutMs = a.timeout_ms === undefined ? 5000 : a.timeout_ms
    const deadline = Date.now() + timeoutMs
    let records = []
    try {
      await consumer.connect()
      await consumer.subscribe({ topics: [topic], fromBeginning: from === 'earliest' })
      this.startRun(consumer, sink, [topic], { autoCommit: false })
      if (typeof from === 'number') {
        for (const p of parts) consumer.seek({ topic, partition: p, offset: String(from) })
      }
      while (records.length < maxRecords && Date.now() < deadline) {
        const got = await sink.take(Math.min(maxRecords - records.length, 1 << 30), deadline - Date.now())
        records = records.concat(got)
        this.resumeIfDrained(consumer, sink, [topic])
      }
    } finally {
      await consumer.disconnect().catch(e => process.stderr.write(`disconnect: ${e.message}\n`))
      const admin = await this.admin()
      await admin.deleteGroups([groupId]).catch(e => process.stderr.write(`delete throwaway group: ${e.message}\n`))
    }
    return { records }
  }

  async op_list_offsets(a) {
    const spec = a.spec === undefined ? 'latest' : a.spec
    const isolation = (a.isolation || 'read_uncommitted') === 'read_committed' ? 1 : 0
    let req
    if (spec === 'earliest') req = { fromBeginning: true }
    else if (spec === 'latest') req = { fromBeginning: false }
    else if (spec === 'max_timestamp') throw new Unsupported('kafkajs speaks ListOffsets up to v3 (no MAX_TIMESTAMP spec)')
    else if (spec && typeof spec === 'object' && spec.timestamp !== undefined) req = { fromTimestamp: spec.timestamp }
    else throw new OpError('CLIENT_ERROR', `bad spec ${JSON.stringify(spec)}`)
    const cluster = await this.cluster(isolation, false)
    await cluster.addTargetTopic(a.topic)
    await cluster.refreshMetadata()
    const md = cluster.findTopicPartitionMetadata(a.topic)
    if (!md.some(p => p.partitionId === a.partition)) {
      throw new OpError('UNKNOWN_TOPIC_OR_PARTITION', `partition ${a.partition} of ${a.topic} not in metadata`)
    }
    const res = await cluster.fetchTopicsOffset([{ topic: a.topic, partitions: [{ partition: a.partition }], ...req }])
    const p = res[0].partitions.find(x => x.partition === a.partition)
    return { offset: Number(p.offset), timestamp: p.timestamp !== undefined ? Number(p.timestamp) : -1 }
  }

  // ---- groups ----------------------------------------------------------------------------------

  async op_group_subscribe(a) {
    if ((a.group_protocol || 'classic') !== 'classic') {
      throw new Unsupported('kafkajs has only the classic group protocol')
    }
    const assignor = a.assignor || 'range'
    if (assignor !== 'roundrobin') {
      throw new Unsupported(`kafkajs ships only the roundrobin assignor (no ${assignor})`)
    }
    if (a.instance_id) throw new Unsupported('kafkajs has no static membership (group.instance.id)')
    await this.closeGroup()
    const extra = { partitionAssigners: [PartitionAssigners.roundRobin] }
    if (a.session_timeout_ms !== undefined) {
      extra.sessionTimeout = a.session_timeout_ms
      extra.heartbeatInterval = Math.max(100, Math.floor(a.session_timeout_ms / 3))
    }
    if (a.heartbeat_interval_ms !== undefined) extra.heartbeatInterval = a.heartbeat_interval_ms
    if (a.rebalance_timeout_ms !== undefined) extra.rebalanceTimeout = a.rebalance_timeout_ms
    const consumer = this.need().consumer(this.consumerOptions(a, a.group, extra))
    const g = { consumer, sink: new RecordSink(), groupId: a.group, assignment: [], delivered: new Map(), topics: a.topics }
    consumer.on(consumer.events.GROUP_JOIN, e => {
      const asg = []
      for (const [t, ps] of Object.entries(e.payload.memberAssignment || {})) for (const p of ps) asg.push({ topic: t, partition: p })
      asg.sort((x, y) => (x.topic === y.topic ? x.partition - y.partition : x.topic < y.topic ? -1 : 1))
      g.assignment = asg
      // Records fetched for partitions this member lost must not be handed out any more.
      const keep = new Set(asg.map(x => `${x.topic}/${x.partition}`))
      g.sink.queue = g.sink.queue.filter(r => keep.has(`${r.topic}/${r.partition}`))
      for (const [k, d] of g.delivered) if (!keep.has(`${d.topic}/${d.partition}`)) g.delivered.delete(k)
      g.sink.changed()
    })
    consumer.on(consumer.events.CRASH, e => {
      process.stderr.write(`group consumer crashed (restart: ${e.payload.restart}): ${errMessage(e.payload.error)}\n`)
      if (!e.payload.restart) {
        g.failed = e.payload.error
        g.sink.closed = true
        g.sink.changed()
      }
    })
    this.group = g
    await consumer.connect()
    await consumer.subscribe({ topics: a.topics, fromBeginning: (a.from || 'earliest') === 'earliest' })
    const runOpts = { autoCommit: !!a.auto_commit, autoCommitInterval: a.auto_commit ? 1000 : undefined }
    this.startRun(consumer, g.sink, a.topics, runOpts)
    return {}
  }

  needGroup() {
    if (!this.group) throw new OpError('CLIENT_ERROR', 'no group consumer (group_subscribe first)')
    return this.group
  }

  async op_group_poll(a) {
    const g = this.needGroup()
    const maxRecords = a.max_records === undefined ? Infinity : a.max_records
    const deadline = Date.now() + (a.timeout_ms === undefined ? 5000 : a.timeout_ms)
    let records = []
    while (records.length < maxRecords && Date.now() < deadline) {
      if (g.failed && g.sink.queue.length === 0) {
        if (records.length) break
        throw g.failed
      }
      const got = await g.sink.take(maxRecords - records.length, deadline - Date.now())
      records = records.concat(got)
      this.resumeIfDrained(g.consumer, g.sink, g.topics)
    }
    for (const r of records) g.delivered.set(`${r.topic}\u0000${r.partition}`, { topic: r.topic, partition: r.partition, offset: r.offset + 1 })
    return { records, assignment: g.assignment }
  }

  // Commit as a non-member (generation -1), through KafkaJS's own OffsetCommit request: the
  // public admin setOffsets joins the group instead and drops metadata.
  async commitStandalone(a) {
    const offs = a.offsets || []
    if (!offs.length) return {}
    const cluster = await this.cluster(undefined, false)
    const coordinator = await cluster.findGroupCoordinator({ groupId: a.group })
    const byTopic = new Map()
    for (const o of offs) {
      if (!byTopic.has(o.topic)) byTopic.set(o.topic, [])
      byTopic.get(o.topic).push({ partition: o.partition, offset: String(o.offset), metadata: o.metadata === undefined ? null : o.metadata })
    }
    await coordinator.offsetCommit({
      groupId: a.group,
      groupGenerationId: -1,
      memberId: '',
      topics: Array.from(byTopic.entries()).map(([topic, partitions]) => ({ topic, partitions })),
    })
    return {}
  }

  async op_group_commit(a) {
    if (a.group !== undefined && a.group !== null && (!this.group || this.group.groupId !== a.group)) {
      return this.commitStandalone(a)
    }
    const g = this.needGroup()
    let offsets
    if (a.offsets) {
      offsets = a.offsets.map(o => ({ topic: o.topic, partition: o.partition, offset: String(o.offset), metadata: o.metadata === undefined ? null : o.metadata }))
    } else {
      offsets = Array.from(g.delivered.values()).map(o => ({ topic: o.topic, partition: o.partition, offset: String(o.offset) }))
    }
    if (offsets.length) await g.consumer.commitOffsets(offsets)
    return {}
  }

  async op_group_committed(a) {
    const admin = await this.admin()
    const res = await admin.fetchOffsets({ groupId: a.group, topics: [a.topic] })
    const t = res.find(x => x.topic === a.topic)
    const want = new Set(a.partitions || [])
    const out = []
    for (const p of (t && t.partitions) || []) {
      if (want.size && !want.has(p.partition)) continue
      out.push({
        partition: p.partition,
        offset: Number(p.offset) >= 0 ? Number(p.offset) : -1,
        metadata: p.metadata || '',
        error: null,
      })
    }
    for (const p of want) if (!out.some(x => x.partition === p)) out.push({ partition: p, offset: -1, metadata: '', error: null })
    out.sort((x, y) => x.partition - y.partition)
    return { offsets: out }
  }

  async closeGroup() {
    const g = this.group
    this.group = null
    if (g) await g.consumer.disconnect()
  }

  async op_group_leave() {
    await this.closeGroup()
    return {}
  }

  // ---- transactions ----------------------------------------------------------------------------

  async op_txn_init(a) {
    if (this.txnProducer) {
      await this.txnProducer.disconnect().catch(() => {})
      this.txnProducer = null
      this.txn = null
    }
    const p = this.need().producer({
      transactionalId: a.transactional_id,
      transactionTimeout: a.transaction_timeout_ms,
      idempotent: true,
      maxInFlightRequests: 1,
      createPartitioner: this.recordingPartitioner(),
    })
    await p.connect()
    this.txnProducer = p
    // KafkaJS runs InitProducerId on the first transaction(); an empty transaction ended at once
    // sends nothing else (no partitions were added, so no EndTxn).
    const t = await p.transaction()
    await t.abort()
    return {}
  }

  needTxnProducer() {
    if (!this.txnProducer) throw new OpError('CLIENT_ERROR', 'txn_init was not sent')
    return this.txnProducer
  }

  async op_txn_begin() {
    this.txn = await this.needTxnProducer().transaction()
    return {}
  }

  needTxn() {
    this.needTxnProducer()
    if (!this.txn) throw new OpError('CLIENT_ERROR', 'no open transaction (txn_begin first)')
    return this.txn
  }

  async op_txn_commit() {
    const t = this.needTxn()
    await t.commit()
    this.txn = null
    return {}
  }

  async op_txn_abort() {
    const t = this.needTxn()
    await t.abort()
    this.txn = null
    return {}
  }

  async op_txn_send_offsets(a) {
    const t = this.needTxn()
    const byTopic = new Map()
    for (const o of a.offsets || []) {
      if (!byTopic.has(o.topic)) byTopic.set(o.topic, [])
      byTopic.get(o.topic).push({ partition: o.partition, offset: String(o.offset) })
    }
    await t.sendOffsets({
      consumerGroupId: a.group,
      topics: Array.from(byTopic.entries()).map(([topic, partitions]) => ({ topic, partitions })),
    })
    return {}
  }

  // ---- admin -----------------------------------------------------------------------------------

  async op_admin(a) {
    const fn = this[`admin_${a.action}`]
    if (typeof fn !== 'function') throw new Unsupported(`unknown admin action ${a.action}`)
    return fn.call(this, a, await this.admin())
  }

  async admin_list_groups(a, admin) {
    const res = await admin.listGroups()
    // ListGroups answers no state in KafkaJS; describe the groups for it.
    const ids = res.groups.map(g => g.groupId)
    const ptypes = new Map(res.groups.map(g => [g.groupId, g.protocolType]))
    const states = new Map()
    if (ids.length) {
      const d = await admin.describeGroups(ids)
      for (const g of d.groups) states.set(g.groupId, groupState(g.state))
    }
    const groups = ids.map(id => ({ group: id, protocol_type: ptypes.get(id), state: states.get(id) || null }))
    groups.sort((x, y) => (x.group < y.group ? -1 : 1))
    return { groups }
  }

  async admin_describe_groups(a, admin) {
    const res = await admin.describeGroups(a.groups)
    const out = []
    for (const id of a.groups) {
      const g = res.groups.find(x => x.groupId === id)
      if (!g) {
        out.push({ group: id, error: 'CLIENT_ERROR' })
        continue
      }
      if (g.errorCode) {
        out.push({ group: id, error: ERROR_NAMES[String(g.errorCode)] || 'UNKNOWN_SERVER_ERROR' })
        continue
      }
      const members = g.members.map(m => {
        const asg = []
        try {
          const decoded = m.memberAssignment && m.memberAssignment.length ? AssignerProtocol.MemberAssignment.decode(m.memberAssignment) : null
          for (const [t, ps] of Object.entries((decoded && decoded.assignment) || {})) for (const p of ps) asg.push({ topic: t, partition: p })
        } catch (e) {
          process.stderr.write(`decode assignment: ${e.message}\n`)
        }
        asg.sort((x, y) => (x.topic === y.topic ? x.partition - y.partition : x.topic < y.topic ? -1 : 1))
        return { member_id: m.memberId, client_id: m.clientId, instance_id: m.groupInstanceId || null, assignment: asg }
      })
      out.push({ group: id, state: groupState(g.state), protocol_type: g.protocolType, protocol: g.protocol, members, error: null })
    }
    return { groups: out }
  }

  async admin_delete_groups(a, admin) {
    let res
    try {
      res = await admin.deleteGroups(a.groups)
    } catch (e) {
      if (!Array.isArray(e.groups)) throw e
      res = e.groups
    }
    const out = a.groups.map(id => {
      const r = (res || []).find(x => x.groupId === id)
      let error = null
      if (r && r.errorCode) error = ERROR_NAMES[String(r.errorCode)] || 'UNKNOWN_SERVER_ERROR'
      else if (r && r.error) error = errName(r.error)
      return { group: id, error }
    })
    return { groups: out }
  }

  async admin_offset_delete() {
    throw new Unsupported('kafkajs admin has no OffsetDelete (delete committed offsets of a group)')
  }

  async admin_delete_records(a, admin) {
    // kafkajs throws KafkaJSTopicMetadataNotLoaded unless the topic's metadata is loaded first.
    await admin.fetchTopicMetadata({ topics: [a.topic] })
    try {
      await admin.deleteTopicRecords({ topic: a.topic, partitions: [{ partition: a.partition, offset: String(a.offset) }] })
    } catch (e) {
      // KafkaJSDeleteTopicRecordsError carries the broker's error per partition.
      // The retrier wraps it (KafkaJSNonRetriableError with .cause).
      let inner = e
      while (inner && !inner.partitions && inner.cause && inner.cause !== inner) inner = inner.cause
      const failed = ((inner && inner.partitions) || []).find(x => x.error)
      if (failed && failed.error.type) throw new OpError(failed.error.type, failed.error.message || '')
      throw e
    }
    // deleteTopicRecords does not answer the new low watermark; list it.
    const offs = await admin.fetchTopicOffsets(a.topic)
    const p = offs.find(x => x.partition === a.partition)
    return { low_watermark: p ? Number(p.low) : -1 }
  }

  async admin_describe_configs(a, admin) {
    const res = await admin.describeConfigs({
      includeSynonyms: false,
      resources: [{ type: ConfigResourceTypes.TOPIC, name: a.topic, configNames: a.names && a.names.length ? a.names : undefined }],
    })
    const r = res.resources[0]
    if (r.errorCode) throw new OpError(ERROR_NAMES[String(r.errorCode)] || 'UNKNOWN_SERVER_ERROR', r.errorMessage || '')
    const configs = r.configEntries
      .map(e => ({ name: e.configName, value: e.configValue, source: CONFIG_SOURCES[e.configSource] || 'UNKNOWN' }))
      .sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0))
    return { configs }
  }

  async admin_alter_configs(a, admin) {
    // KafkaJS has only the legacy AlterConfigs API, which resets every dynamic config it is not
    // given. For the protocol's incremental set (null value = delete), send the topic's current
    // dynamic configs merged with the changes.
    const changes = a.configs || {}
    const cur = await admin.describeConfigs({
      includeSynonyms: false,
      resources: [{ type: ConfigResourceTypes.TOPIC, name: a.topic }],
    })
    const r = cur.resources[0]
    if (r.errorCode) throw new OpError(ERROR_NAMES[String(r.errorCode)] || 'UNKNOWN_SERVER_ERROR', r.errorMessage || '')
    const merged = new Map()
    for (const e of r.configEntries) if (e.configSource === 1) merged.set(e.configName, e.configValue)
    for (const [name, value] of Object.entries(changes)) {
      if (value === null || value === undefined) merged.delete(name)
      else merged.set(name, String(value))
    }
    await admin.alterConfigs({
      validateOnly: false,
      resources: [
        {
          type: ConfigResourceTypes.TOPIC,
          name: a.topic,
          configEntries: Array.from(merged.entries()).map(([name, value]) => ({ name, value })),
        },
      ],
    })
    return {}
  }

  async admin_create_partitions(a, admin) {
    await admin.createPartitions({ timeout: DEFAULT_TIMEOUT_MS, topicPartitions: [{ topic: a.topic, count: a.count }] })
    return {}
  }

  async admin_describe_cluster(a, admin) {
    const d = await admin.describeCluster()
    return {
      cluster_id: d.clusterId,
      controller: d.controller === null || d.controller === undefined ? -1 : d.controller,
      brokers: d.brokers.length,
    }
  }

  // ---- lifecycle -------------------------------------------------------------------------------

  async close() {
    const steps = []
    steps.push(this.closeGroup())
    for (const p of this.producers.values()) steps.push(p.disconnect())
    if (this.txnProducer) steps.push(this.txnProducer.disconnect())
    if (this.adminClient) steps.push(this.adminClient.disconnect())
    for (const c of this.clusters.values()) steps.push(c.disconnect())
    const results = await Promise.allSettled(steps)
    for (const r of results) if (r.status === 'rejected') process.stderr.write(`close: ${r.reason && r.reason.message}\n`)
    this.producers.clear()
    this.clusters.clear()
    this.txnProducer = null
    this.adminClient = null
  }

  async op_close() {
    await this.close()
    return {}
  }

  async handle(cmd) {
    const fn = this[`op_${cmd.op}`]
    if (typeof fn !== 'function') return { id: cmd.id, unsupported: true, reason: 'unknown op' }
    try {
      const res = await fn.call(this, cmd)
      return { id: cmd.id, ok: true, ...(res || {}) }
    } catch (e) {
      if (e instanceof Unsupported) return { id: cmd.id, unsupported: true, reason: e.message }
      const name = errName(e)
      process.stderr.write(`op ${cmd.op} failed: ${name} ${errMessage(e)}\n`)
      return { id: cmd.id, ok: false, error: name, message: errMessage(e) }
    }
  }
}

function writeLine(obj) {
  return new Promise(resolve => {
    if (process.stdout.write(JSON.stringify(obj) + '\n')) resolve()
    else process.stdout.once('drain', resolve)
  })
}

async function main() {
  const driver = new Driver()
  const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity })
  let closed = false
  for await (const line of rl) {
    const s = line.trim()
    if (!s) continue
    let cmd
    try {
      cmd = JSON.parse(s)
    } catch (e) {
      process.stderr.write(`bad command line ${s}: ${e.message}\n`)
      continue
    }
    const ans = await driver.handle(cmd)
    await writeLine(ans)
    if (cmd.op === 'close') {
      closed = true
      break
    }
  }
  if (!closed) await driver.close()
  process.exit(0)
}

process.on('unhandledRejection', e => process.stderr.write(`unhandled rejection: ${e && e.stack}\n`))
main().catch(e => {
  process.stderr.write(`driver failed: ${e && e.stack}\n`)
  process.exit(1)
})
