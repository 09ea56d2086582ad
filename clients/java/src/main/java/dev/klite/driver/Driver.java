package dev.klite.driver;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.BufferedReader;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Future;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.CreateTopicsOptions;
import org.apache.kafka.clients.admin.DescribeTopicsResult;
import org.apache.kafka.clients.admin.ListConsumerGroupOffsetsSpec;
import org.apache.kafka.clients.admin.ListOffsetsOptions;
import org.apache.kafka.clients.admin.ListOffsetsResult.ListOffsetsResultInfo;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.consumer.Consumer;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerGroupMetadata;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.consumer.SubscriptionPattern;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.Producer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.IsolationLevel;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.ApiException;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.protocol.Errors;
import org.apache.kafka.common.record.TimestampType;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.utils.AppInfoParser;

/**
 * Conformance driver for kafka-clients: reads one JSON command per line on stdin, answers one
 * JSON line on stdout (see clients/README.md). Everything else (client logs) goes to stderr.
 *
 * <p>The Spring Kafka driver extends this class and overrides the producing, transaction and
 * group-consumer ops; admin, assign-mode consume and list_offsets are shared.
 */
public class Driver {
  protected static final ObjectMapper JSON = new ObjectMapper();
  /**
   * Client-side bound on blocking calls, so that a stuck op still answers before the harness's
   * own per-step limit (15 s plus the op's timeout_ms). The clients' own time-outs are set
   * below it, so that normally the library's verdict is what answers.
   */
  protected static final Duration OP_TIMEOUT = Duration.ofSeconds(12);

  /** Carries an explicit Kafka error name (or CLIENT_ERROR / TIMEOUT) for the answer. */
  public static final class Fail extends RuntimeException {
    public final String code;

    public Fail(String code, String message) {
      super(message);
      this.code = code;
    }
  }

  /** The library cannot do this op or variant: answered as {"unsupported": true}. */
  public static final class Unsupported extends RuntimeException {
    public Unsupported(String reason) {
      super(reason);
    }
  }

  /** Settings from hello applied to every client: bootstrap, client id, SASL. */
  protected final Map<String, Object> common = new HashMap<>();

  protected Admin admin;
  protected Producer<byte[], byte[]> producer;
  protected String producerKey;
  protected Producer<byte[], byte[]> txnProducer;
  protected Consumer<byte[], byte[]> group;
  protected String groupId;

  public static void main(String[] args) throws Exception {
    Driver d = new Driver();
    if (args.length > 0 && args[0].equals("--warmup")) {
      d.warmup();
      return;
    }
    d.run();
  }

  /** Package prefixes whose classes the build's class-data-sharing archive should hold. */
  protected List<String> warmupPackages() {
    return List.of(
        "org/apache/kafka/clients/",
        "org/apache/kafka/common/",
        "com/fasterxml/jackson/core/",
        "com/fasterxml/jackson/databind/",
        "org/slf4j/",
        "dev/klite/");
  }

  /**
   * Build-time training run for the class-data-sharing archive (see the Makefile): loads the
   * classes a driver run uses and builds each kind of client against an address nothing
   * listens on, so no broker is needed. Start-up of every later run then maps them instead of
   * loading and verifying them again.
   */
  public void warmup() throws Exception {
    String self = Driver.class.getProtectionDomain().getCodeSource().getLocation().getPath();
    int loaded = 0;
    try (java.util.jar.JarFile jar = new java.util.jar.JarFile(self)) {
      ClassLoader cl = Driver.class.getClassLoader();
      for (java.util.Enumeration<java.util.jar.JarEntry> e = jar.entries(); e.hasMoreElements(); ) {
        String n = e.nextElement().getName();
        if (!n.endsWith(".class") || n.contains("-") || n.startsWith("META-INF/")) {
          continue;
        }
        if (warmupPackages().stream().noneMatch(n::startsWith)) {
          continue;
        }
        try {
          Class.forName(n.substring(0, n.length() - 6).replace('/', '.'), false, cl);
          loaded++;
        } catch (Throwable t) {
          // optional dependencies of some classes are absent; those are not needed
        }
      }
    }
    ObjectNode res = JSON.createObjectNode();
    hello(JSON.readTree("{\"id\":1,\"op\":\"hello\",\"bootstrap\":\"127.0.0.1:1\"}"), res);
    JSON.writeValueAsString(res);
    Map<String, Object> p = base();
    p.put("reconnect.backoff.ms", 10000);
    Admin.create(p).close(Duration.ZERO);
    newProducer(producerProps(JSON.readTree("{\"acks\":1,\"compression\":\"gzip\"}")))
        .close(Duration.ZERO);
    newConsumer(p).close(Duration.ZERO);
    System.err.println("warm-up loaded " + loaded + " classes");
  }

  protected String clientName() {
    return "java";
  }

  protected String libraryVersion() {
    return AppInfoParser.getVersion();
  }

  /** The read-dispatch-answer loop. Never exits on a failed op; exits 0 on close or EOF. */
  public void run() throws Exception {
    PrintStream out =
        new PrintStream(new FileOutputStream(FileDescriptor.out), false, StandardCharsets.UTF_8);
    System.setOut(System.err); // stdout carries answers only
    BufferedReader in =
        new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    String line;
    while ((line = in.readLine()) != null) {
      if (line.isBlank()) {
        continue;
      }
      ObjectNode res = JSON.createObjectNode();
      String op = "";
      try {
        JsonNode cmd = JSON.readTree(line);
        res.set("id", cmd.get("id"));
        op = cmd.path("op").asText();
        res.put("ok", true);
        dispatch(op, cmd, res);
      } catch (Unsupported u) {
        JsonNode id = res.get("id");
        res.removeAll();
        res.set("id", id);
        res.put("unsupported", true);
        res.put("reason", u.getMessage());
      } catch (Throwable t) {
        JsonNode id = res.get("id");
        res.removeAll();
        res.set("id", id);
        res.put("ok", false);
        res.put("error", errorName(t));
        res.put("message", errorMessage(t));
        System.err.println("op " + op + " failed: " + t);
      }
      out.println(JSON.writeValueAsString(res));
      out.flush();
      if (op.equals("close")) {
        break;
      }
    }
    closeAll();
    out.flush();
    System.exit(0);
  }

  protected void dispatch(String op, JsonNode c, ObjectNode res) throws Exception {
    switch (op) {
      case "hello" -> hello(c, res);
      case "create_topic" -> createTopic(c, res);
      case "delete_topic" -> deleteTopic(c, res);
      case "metadata" -> metadata(c, res);
      case "produce" -> produce(c, res);
      case "produce_for" -> ProduceFor.run(this, c, res);
      case "consume" -> consume(c, res);
      case "list_offsets" -> listOffsets(c, res);
      case "group_subscribe" -> groupSubscribe(c, res);
      case "group_poll" -> groupPoll(c, res);
      case "group_commit" -> groupCommit(c, res);
      case "group_committed" -> groupCommitted(c, res);
      case "group_leave" -> groupLeave(c, res);
      case "txn_init" -> txnInit(c, res);
      case "txn_begin" -> txnBegin(c, res);
      case "txn_commit" -> txnCommit(c, res);
      case "txn_abort" -> txnAbort(c, res);
      case "txn_send_offsets" -> txnSendOffsets(c, res);
      case "admin" -> admin(c, res);
      case "close" -> {}
      default -> throw new Unsupported("unknown op");
    }
  }

  // ---------------------------------------------------------------- errors

  /**
   * Maps a library failure to a Kafka error name: the first ApiException in the cause chain
   * through the client's own Errors table; client-side time-outs to TIMEOUT; the rest to
   * CLIENT_ERROR.
   */
  public static String errorName(Throwable t) {
    for (Throwable c = t; c != null; c = c.getCause()) {
      if (c instanceof Fail f) {
        return f.code;
      }
      // The Java client raises TimeoutException for its own deadlines (metadata wait,
      // delivery timeout, node assignment); a broker REQUEST_TIMED_OUT reads the same.
      if (c instanceof org.apache.kafka.common.errors.TimeoutException
          || c instanceof java.util.concurrent.TimeoutException) {
        return "TIMEOUT";
      }
      if (c instanceof org.apache.kafka.clients.consumer.OffsetOutOfRangeException) {
        return "OFFSET_OUT_OF_RANGE";
      }
      if (c instanceof ApiException) {
        return Errors.forException(c).name();
      }
    }
    return "CLIENT_ERROR";
  }

  public static String errorMessage(Throwable t) {
    Throwable c = t;
    while ((c instanceof java.util.concurrent.ExecutionException
            || c instanceof java.util.concurrent.CompletionException)
        && c.getCause() != null) {
      c = c.getCause();
    }
    return c instanceof Fail ? c.getMessage() : c.toString();
  }

  // ---------------------------------------------------------------- helpers

  protected static String str(JsonNode c, String field, String dflt) {
    JsonNode n = c.get(field);
    return n == null || n.isNull() ? dflt : n.asText();
  }

  protected static int integer(JsonNode c, String field, int dflt) {
    JsonNode n = c.get(field);
    return n == null || n.isNull() ? dflt : n.asInt();
  }

  protected static boolean bool(JsonNode c, String field, boolean dflt) {
    JsonNode n = c.get(field);
    return n == null || n.isNull() ? dflt : n.asBoolean();
  }

  protected static byte[] bytes(JsonNode n) {
    return n == null || n.isNull() ? null : n.asText().getBytes(StandardCharsets.UTF_8);
  }

  protected static String text(byte[] b) {
    return b == null ? null : new String(b, StandardCharsets.UTF_8);
  }

  protected static List<String> strings(JsonNode n) {
    List<String> l = new ArrayList<>();
    if (n != null && n.isArray()) {
      n.forEach(x -> l.add(x.asText()));
    }
    return l;
  }

  protected static <T> T get(org.apache.kafka.common.KafkaFuture<T> f) throws Exception {
    return f.get(OP_TIMEOUT.toMillis(), java.util.concurrent.TimeUnit.MILLISECONDS);
  }

  /** A fresh copy of the settings every client shares. */
  protected Map<String, Object> base() {
    return new HashMap<>(common);
  }

  protected String isolation(JsonNode c) {
    String iso = str(c, "isolation", "read_uncommitted");
    if (!iso.equals("read_uncommitted") && !iso.equals("read_committed")) {
      throw new Fail("CLIENT_ERROR", "unknown isolation " + iso);
    }
    return iso;
  }

  protected static ObjectNode recordJson(ConsumerRecord<byte[], byte[]> r) {
    ObjectNode o = JSON.createObjectNode();
    o.put("topic", r.topic());
    o.put("partition", r.partition());
    o.put("offset", r.offset());
    o.put("key", text(r.key()));
    o.put("value", text(r.value()));
    ArrayNode hs = o.putArray("headers");
    for (Header h : r.headers()) {
      ObjectNode ho = hs.addObject();
      ho.put("key", h.key());
      ho.put("value", text(h.value()));
    }
    o.put("timestamp", r.timestamp());
    o.put(
        "timestamp_type",
        r.timestampType() == TimestampType.CREATE_TIME
            ? "create"
            : r.timestampType() == TimestampType.LOG_APPEND_TIME ? "log_append" : null);
    return o;
  }

  protected static ArrayNode assignmentJson(Set<TopicPartition> tps) {
    ArrayNode a = JSON.createArrayNode();
    tps.stream()
        .sorted(Comparator.comparing(TopicPartition::topic).thenComparing(TopicPartition::partition))
        .forEach(
            tp -> {
              ObjectNode o = a.addObject();
              o.put("topic", tp.topic());
              o.put("partition", tp.partition());
            });
    return a;
  }

  protected static List<Header> headers(JsonNode hs) {
    List<Header> l = new ArrayList<>();
    if (hs != null && hs.isArray()) {
      for (JsonNode h : hs) {
        l.add(new RecordHeader(h.path("key").asText(), bytes(h.get("value"))));
      }
    }
    return l;
  }

  protected static ProducerRecord<byte[], byte[]> record(String topic, JsonNode r) {
    JsonNode p = r.get("partition");
    JsonNode ts = r.get("timestamp");
    return new ProducerRecord<>(
        topic,
        p == null || p.isNull() ? null : p.asInt(),
        ts == null || ts.isNull() ? null : ts.asLong(),
        bytes(r.get("key")),
        bytes(r.get("value")),
        headers(r.get("headers")));
  }

  /** Waits for every send and fills `results` in the order the records were given. */
  protected static void collectResults(
      List<JsonNode> recs, List<Future<RecordMetadata>> futures, ObjectNode res) {
    ArrayNode results = res.putArray("results");
    for (int i = 0; i < futures.size(); i++) {
      ObjectNode o = results.addObject();
      try {
        RecordMetadata md = futures.get(i).get();
        o.put("partition", md.partition());
        o.put("offset", md.hasOffset() ? md.offset() : -1);
        o.put("timestamp", md.hasTimestamp() ? md.timestamp() : -1);
        o.putNull("error");
      } catch (Throwable t) {
        o.put("partition", integer(recs.get(i), "partition", -1));
        o.put("offset", -1);
        o.put("timestamp", -1);
        o.put("error", errorName(t));
        System.err.println("record " + i + " failed: " + errorMessage(t));
      }
    }
  }

  protected static Map<TopicPartition, OffsetAndMetadata> offsets(JsonNode list) {
    Map<TopicPartition, OffsetAndMetadata> m = new LinkedHashMap<>();
    for (JsonNode o : list) {
      m.put(
          new TopicPartition(o.path("topic").asText(), o.path("partition").asInt()),
          new OffsetAndMetadata(o.path("offset").asLong(), str(o, "metadata", "")));
    }
    return m;
  }

  // ---------------------------------------------------------------- clients

  protected Admin admin() {
    if (admin == null) {
      Map<String, Object> p = base();
      // Below OP_TIMEOUT, so the library's own verdict (error or time-out) is what answers.
      p.put("default.api.timeout.ms", 10000);
      p.put("request.timeout.ms", 8000);
      admin = Admin.create(p);
    }
    return admin;
  }

  /** A consumer for assign-mode reads and metadata look-ups (no group). */
  protected Consumer<byte[], byte[]> newConsumer(Map<String, Object> props) {
    return new KafkaConsumer<>(props, new ByteArrayDeserializer(), new ByteArrayDeserializer());
  }

  protected Producer<byte[], byte[]> newProducer(Map<String, Object> props) {
    return new KafkaProducer<>(props, new ByteArraySerializer(), new ByteArraySerializer());
  }

  /** Producer settings shared by the plain and the Spring driver. */
  protected Map<String, Object> producerProps(JsonNode c) {
    String acks = str(c, "acks", "-1");
    String compression = str(c, "compression", "none");
    if (!List.of("none", "gzip", "snappy", "lz4", "zstd").contains(compression)) {
      throw new Unsupported("compression " + compression);
    }
    Map<String, Object> p = base();
    p.put(ProducerConfig.ACKS_CONFIG, acks.equals("-1") ? "all" : acks);
    p.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, compression);
    p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, bool(c, "idempotent", false));
    p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, 10000);
    p.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, 8000);
    p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, 12000);
    return p;
  }

  protected Map<String, Object> txnProducerProps(JsonNode c) {
    Map<String, Object> p = base();
    p.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, str(c, "transactional_id", "klite-txn"));
    if (c.hasNonNull("transaction_timeout_ms")) {
      p.put(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG, c.get("transaction_timeout_ms").asInt());
    }
    if (c.hasNonNull("compression")) {
      p.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, c.get("compression").asText());
    }
    p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true);
    p.put(ProducerConfig.ACKS_CONFIG, "all");
    p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, 10000);
    p.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, 8000);
    p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, 12000);
    return p;
  }

  /** Group consumer settings shared by the plain and the Spring driver. */
  protected Map<String, Object> groupProps(JsonNode c) {
    Map<String, Object> p = base();
    p.put(ConsumerConfig.GROUP_ID_CONFIG, c.path("group").asText());
    if (c.hasNonNull("instance_id")) {
      p.put(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG, c.get("instance_id").asText());
    }
    String protocol = c.path("group_protocol").asText("classic");
    if (protocol.equals("consumer")) {
      // KIP-848: the broker assigns and sets the session time-out and heartbeat interval;
      // the client refuses those settings with this protocol. Its rebalance time-out is
      // max.poll.interval.ms, the assignor group.remote.assignor.
      p.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, "consumer");
      if (c.hasNonNull("rebalance_timeout_ms")) {
        p.put(ConsumerConfig.MAX_POLL_INTERVAL_MS_CONFIG, c.get("rebalance_timeout_ms").asInt());
      }
      if (c.hasNonNull("assignor")) {
        String a = c.get("assignor").asText();
        if (!a.equals("uniform") && !a.equals("range")) {
          throw new Unsupported("server assignor " + a);
        }
        p.put(ConsumerConfig.GROUP_REMOTE_ASSIGNOR_CONFIG, a);
      }
      p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, bool(c, "auto_commit", false));
      if (c.hasNonNull("from")) {
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, c.get("from").asText());
      }
      p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, isolation(c));
      return p;
    } else if (!protocol.equals("classic")) {
      throw new Unsupported("group protocol " + protocol);
    }
    if (c.hasNonNull("session_timeout_ms")) {
      int st = c.get("session_timeout_ms").asInt();
      p.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, st);
      p.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, Math.max(100, Math.min(3000, st / 3)));
    }
    if (c.hasNonNull("heartbeat_interval_ms")) {
      p.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, c.get("heartbeat_interval_ms").asInt());
    }
    if (c.hasNonNull("rebalance_timeout_ms")) {
      // The classic protocol's rebalance timeout is max.poll.interval.ms in this client.
      p.put(ConsumerConfig.MAX_POLL_INTERVAL_MS_CONFIG, c.get("rebalance_timeout_ms").asInt());
    }
    if (c.hasNonNull("assignor")) {
      String a = c.get("assignor").asText();
      String cls =
          switch (a) {
            case "range" -> "org.apache.kafka.clients.consumer.RangeAssignor";
            case "roundrobin" -> "org.apache.kafka.clients.consumer.RoundRobinAssignor";
            case "sticky" -> "org.apache.kafka.clients.consumer.StickyAssignor";
            case "cooperative-sticky" -> "org.apache.kafka.clients.consumer.CooperativeStickyAssignor";
            default -> throw new Unsupported("assignor " + a);
          };
      p.put(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG, cls);
    }
    p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, bool(c, "auto_commit", false));
    if (c.hasNonNull("from")) {
      p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, c.get("from").asText());
    }
    p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, isolation(c));
    return p;
  }

  protected void closeAll() {
    Duration d = Duration.ofSeconds(5);
    try {
      if (group != null) {
        group.close(d);
      }
    } catch (Throwable t) {
      System.err.println("close group consumer: " + t);
    }
    try {
      if (producer != null) {
        producer.close(d);
      }
    } catch (Throwable t) {
      System.err.println("close producer: " + t);
    }
    try {
      if (txnProducer != null) {
        txnProducer.close(d);
      }
    } catch (Throwable t) {
      System.err.println("close txn producer: " + t);
    }
    try {
      if (admin != null) {
        admin.close(d);
      }
    } catch (Throwable t) {
      System.err.println("close admin: " + t);
    }
    group = null;
    producer = null;
    txnProducer = null;
    admin = null;
  }

  // ---------------------------------------------------------------- ops

  protected void hello(JsonNode c, ObjectNode res) {
    common.clear();
    common.put("bootstrap.servers", str(c, "bootstrap", "127.0.0.1:9092"));
    common.put("client.id", str(c, "client_id", clientName()));
    JsonNode sasl = c.get("sasl");
    if (sasl != null && !sasl.isNull()) {
      String mech = sasl.path("mechanism").asText();
      String module =
          switch (mech) {
            case "PLAIN" -> "org.apache.kafka.common.security.plain.PlainLoginModule";
            case "SCRAM-SHA-256", "SCRAM-SHA-512" ->
                "org.apache.kafka.common.security.scram.ScramLoginModule";
            default -> throw new Unsupported("SASL mechanism " + mech);
          };
      common.put("security.protocol", "SASL_PLAINTEXT");
      common.put("sasl.mechanism", mech);
      common.put(
          "sasl.jaas.config",
          module
              + " required username=\""
              + jaasQuote(sasl.path("user").asText())
              + "\" password=\""
              + jaasQuote(sasl.path("password").asText())
              + "\";");
    }
    JsonNode tls = c.get("tls");
    if (tls != null && !tls.isNull()) {
      common.put("security.protocol", sasl != null && !sasl.isNull() ? "SASL_SSL" : "SSL");
      common.put("ssl.truststore.type", "PEM");
      common.put("ssl.truststore.location", tls.path("ca_file").asText());
      if (tls.hasNonNull("cert_file")) {
        try {
          common.put("ssl.keystore.type", "PEM");
          common.put(
              "ssl.keystore.certificate.chain",
              java.nio.file.Files.readString(java.nio.file.Path.of(tls.path("cert_file").asText())));
          common.put(
              "ssl.keystore.key",
              java.nio.file.Files.readString(java.nio.file.Path.of(tls.path("key_file").asText())));
        } catch (java.io.IOException e) {
          throw new java.io.UncheckedIOException(e);
        }
      }
    }
    res.put("client", clientName());
    res.put("library_version", libraryVersion());
  }

  private static String jaasQuote(String s) {
    return s.replace("\\", "\\\\").replace("\"", "\\\"");
  }

  protected void createTopic(JsonNode c, ObjectNode res) throws Exception {
    NewTopic nt =
        new NewTopic(
            c.path("topic").asText(),
            Optional.of(integer(c, "partitions", 1)),
            Optional.of((short) integer(c, "replication_factor", 1)));
    Map<String, String> configs = new HashMap<>();
    c.path("configs").fields().forEachRemaining(e -> configs.put(e.getKey(), e.getValue().asText()));
    nt.configs(configs);
    get(
        admin()
            .createTopics(
                List.of(nt), new CreateTopicsOptions().validateOnly(bool(c, "validate_only", false)))
            .all());
  }

  protected void deleteTopic(JsonNode c, ObjectNode res) throws Exception {
    get(admin().deleteTopics(List.of(c.path("topic").asText())).all());
  }

  protected void metadata(JsonNode c, ObjectNode res) throws Exception {
    List<String> topics = strings(c.get("topics"));
    if (topics.isEmpty()) {
      topics = new ArrayList<>(get(admin().listTopics().names()));
      topics.sort(null);
    }
    ArrayNode out = res.putArray("topics");
    if (bool(c, "allow_auto_create", false)) {
      // Admin never auto-creates; a consumer's metadata request can, when allowed.
      Map<String, Object> p = base();
      p.put(ConsumerConfig.ALLOW_AUTO_CREATE_TOPICS_CONFIG, true);
      try (Consumer<byte[], byte[]> cons = newConsumer(p)) {
        for (String t : topics) {
          ObjectNode o = out.addObject();
          o.put("topic", t);
          try {
            // The first answer for a topic being auto-created may carry no partitions yet.
            long until = System.currentTimeMillis() + 5000;
            List<PartitionInfo> ps = cons.partitionsFor(t, Duration.ofSeconds(5));
            while ((ps == null || ps.isEmpty()) && System.currentTimeMillis() < until) {
              Thread.sleep(100);
              ps = cons.partitionsFor(t, Duration.ofSeconds(2));
            }
            if (ps == null || ps.isEmpty()) {
              o.put("partitions", 0);
              o.put("error", "UNKNOWN_TOPIC_OR_PARTITION");
            } else {
              o.put("partitions", ps.size());
              o.putNull("error");
            }
          } catch (Exception e) {
            o.put("partitions", 0);
            o.put("error", errorName(e));
          }
        }
      }
      return;
    }
    DescribeTopicsResult r = admin().describeTopics(topics);
    for (String t : topics) {
      ObjectNode o = out.addObject();
      o.put("topic", t);
      try {
        o.put("partitions", get(r.topicNameValues().get(t)).partitions().size());
        o.putNull("error");
      } catch (Exception e) {
        o.put("partitions", 0);
        o.put("error", errorName(e));
      }
    }
  }

  protected void produce(JsonNode c, ObjectNode res) throws Exception {
    String topic = c.path("topic").asText();
    Producer<byte[], byte[]> p;
    if (bool(c, "transactional", false)) {
      p = requireTxnProducer();
    } else {
      Map<String, Object> props = producerProps(c);
      String key = new TreeMap<>(props).toString();
      if (producer == null || !key.equals(producerKey)) {
        if (producer != null) {
          producer.close(Duration.ofSeconds(5));
          producer = null;
        }
        producer = newProducer(props);
        producerKey = key;
      }
      p = producer;
    }
    List<JsonNode> recs = new ArrayList<>();
    c.path("records").forEach(recs::add);
    List<Future<RecordMetadata>> futures = new ArrayList<>();
    for (JsonNode r : recs) {
      try {
        futures.add(p.send(record(topic, r)));
      } catch (Exception e) {
        futures.add(CompletableFuture.failedFuture(e));
      }
    }
    collectResults(recs, futures, res);
  }

  protected void consume(JsonNode c, ObjectNode res) throws Exception {
    String topic = c.path("topic").asText();
    Map<String, Object> p = base();
    p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
    p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "none");
    // Looking up the topic's partitions must not create it (this client's default would).
    p.put(ConsumerConfig.ALLOW_AUTO_CREATE_TOPICS_CONFIG, false);
    p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, isolation(c));
    if (c.hasNonNull("fetch_max_bytes")) {
      p.put(ConsumerConfig.FETCH_MAX_BYTES_CONFIG, c.get("fetch_max_bytes").asInt());
    }
    if (c.hasNonNull("partition_max_bytes")) {
      p.put(ConsumerConfig.MAX_PARTITION_FETCH_BYTES_CONFIG, c.get("partition_max_bytes").asInt());
    }
    if (c.hasNonNull("fetch_max_wait_ms")) {
      p.put(ConsumerConfig.FETCH_MAX_WAIT_MS_CONFIG, c.get("fetch_max_wait_ms").asInt());
    }
    if (c.hasNonNull("fetch_min_bytes")) {
      p.put(ConsumerConfig.FETCH_MIN_BYTES_CONFIG, c.get("fetch_min_bytes").asInt());
    }
    int max = integer(c, "max_records", Integer.MAX_VALUE);
    long deadline = System.currentTimeMillis() + integer(c, "timeout_ms", 5000);
    ArrayNode out = res.putArray("records");
    try (Consumer<byte[], byte[]> cons = newConsumer(p)) {
      List<TopicPartition> tps = new ArrayList<>();
      if (c.hasNonNull("partitions")) {
        c.get("partitions").forEach(x -> tps.add(new TopicPartition(topic, x.asInt())));
      } else {
        List<PartitionInfo> ps = cons.partitionsFor(topic, OP_TIMEOUT);
        if (ps == null || ps.isEmpty()) {
          throw new Fail("UNKNOWN_TOPIC_OR_PARTITION", "topic " + topic + " has no partitions");
        }
        ps.forEach(pi -> tps.add(new TopicPartition(topic, pi.partition())));
        tps.sort(Comparator.comparingInt(TopicPartition::partition));
      }
      cons.assign(tps);
      JsonNode from = c.get("from");
      if (from == null || from.isNull() || from.asText().equals("earliest")) {
        cons.seekToBeginning(tps);
      } else if (from.asText().equals("latest")) {
        cons.seekToEnd(tps);
      } else {
        tps.forEach(tp -> cons.seek(tp, from.asLong()));
      }
      int n = 0;
      while (n < max) {
        long rem = deadline - System.currentTimeMillis();
        if (rem <= 0) {
          break;
        }
        ConsumerRecords<byte[], byte[]> recs = cons.poll(Duration.ofMillis(rem));
        for (ConsumerRecord<byte[], byte[]> r : recs) {
          if (n >= max) {
            break;
          }
          out.add(recordJson(r));
          n++;
        }
      }
    }
  }

  protected void listOffsets(JsonNode c, ObjectNode res) throws Exception {
    TopicPartition tp = new TopicPartition(c.path("topic").asText(), integer(c, "partition", 0));
    JsonNode s = c.get("spec");
    OffsetSpec spec;
    if (s != null && s.isObject()) {
      spec = OffsetSpec.forTimestamp(s.path("timestamp").asLong());
    } else {
      String name = s == null ? "latest" : s.asText();
      spec =
          switch (name) {
            case "earliest" -> OffsetSpec.earliest();
            case "latest" -> OffsetSpec.latest();
            case "max_timestamp" -> OffsetSpec.maxTimestamp();
            default -> throw new Unsupported("offset spec " + name);
          };
    }
    IsolationLevel iso =
        isolation(c).equals("read_committed")
            ? IsolationLevel.READ_COMMITTED
            : IsolationLevel.READ_UNCOMMITTED;
    ListOffsetsResultInfo info =
        get(admin().listOffsets(Map.of(tp, spec), new ListOffsetsOptions(iso)).partitionResult(tp));
    res.put("offset", info.offset());
    res.put("timestamp", info.timestamp());
  }

  // ---- group consumer

  protected void groupSubscribe(JsonNode c, ObjectNode res) throws Exception {
    if (group != null) {
      group.close(Duration.ofSeconds(10));
      group = null;
    }
    Map<String, Object> p = groupProps(c);
    Consumer<byte[], byte[]> cons = newConsumer(p);
    groupId = c.path("group").asText();
    ConsumerRebalanceListener listener =
        new ConsumerRebalanceListener() {
          @Override
          public void onPartitionsRevoked(java.util.Collection<TopicPartition> tps) {
            System.err.println("revoked " + tps);
          }

          @Override
          public void onPartitionsAssigned(java.util.Collection<TopicPartition> tps) {
            System.err.println("assigned " + tps);
          }

          @Override
          public void onPartitionsLost(java.util.Collection<TopicPartition> tps) {
            System.err.println("lost " + tps);
          }
        };
    if (c.hasNonNull("topic_regex")) {
      String regex = c.get("topic_regex").asText();
      if (c.path("group_protocol").asText("classic").equals("consumer")) {
        // KIP-848: the broker resolves the regex (RE2J syntax).
        cons.subscribe(new SubscriptionPattern(regex), listener);
      } else {
        cons.subscribe(java.util.regex.Pattern.compile(regex), listener);
      }
    } else {
      cons.subscribe(strings(c.get("topics")), listener);
    }
    group = cons;
    // This client joins inside poll: one non-blocking poll starts coordinator discovery.
    // Should it already return records, rewind so group_poll hands them out.
    ConsumerRecords<byte[], byte[]> early = cons.poll(Duration.ZERO);
    rewind(cons, early.iterator());
  }

  /** Seeks each partition back to the first of the given (unreturned) records. */
  private static void rewind(
      Consumer<byte[], byte[]> cons, Iterator<ConsumerRecord<byte[], byte[]>> rest) {
    Map<TopicPartition, Long> first = new HashMap<>();
    rest.forEachRemaining(
        r -> first.putIfAbsent(new TopicPartition(r.topic(), r.partition()), r.offset()));
    Set<TopicPartition> assigned = cons.assignment();
    first.forEach(
        (tp, off) -> {
          if (assigned.contains(tp)) {
            cons.seek(tp, off);
          }
        });
  }

  protected Consumer<byte[], byte[]> requireGroup() {
    if (group == null) {
      throw new Fail("CLIENT_ERROR", "no group consumer: group_subscribe first");
    }
    return group;
  }

  protected void groupPoll(JsonNode c, ObjectNode res) throws Exception {
    Consumer<byte[], byte[]> cons = requireGroup();
    int max = integer(c, "max_records", Integer.MAX_VALUE);
    long deadline = System.currentTimeMillis() + integer(c, "timeout_ms", 5000);
    ArrayNode out = res.putArray("records");
    int n = 0;
    do {
      long rem = Math.max(0, deadline - System.currentTimeMillis());
      ConsumerRecords<byte[], byte[]> recs = cons.poll(Duration.ofMillis(rem));
      Iterator<ConsumerRecord<byte[], byte[]>> it = recs.iterator();
      while (n < max && it.hasNext()) {
        out.add(recordJson(it.next()));
        n++;
      }
      if (it.hasNext()) {
        rewind(cons, it); // keep the position at what was handed out
      }
    } while (n < max && System.currentTimeMillis() < deadline);
    res.set("assignment", assignmentJson(cons.assignment()));
  }

  /**
   * A commit for a group this actor is no member of (generation -1): the admin client's
   * alterConsumerGroupOffsets, which keeps each offset's metadata.
   */
  protected void standaloneCommit(String g, JsonNode c) throws Exception {
    if (!c.hasNonNull("offsets")) {
      throw new Fail("CLIENT_ERROR", "no group consumer for " + g + " and no offsets to commit");
    }
    get(admin().alterConsumerGroupOffsets(g, offsets(c.get("offsets"))).all());
  }

  protected void groupCommit(JsonNode c, ObjectNode res) throws Exception {
    String g = str(c, "group", null);
    if (g != null && (group == null || !g.equals(groupId))) {
      standaloneCommit(g, c);
      return;
    }
    Consumer<byte[], byte[]> cons = requireGroup();
    if (c.hasNonNull("offsets")) {
      cons.commitSync(offsets(c.get("offsets")), OP_TIMEOUT);
    } else {
      cons.commitSync(OP_TIMEOUT);
    }
  }

  protected void groupCommitted(JsonNode c, ObjectNode res) throws Exception {
    String g = c.path("group").asText();
    String topic = c.path("topic").asText();
    List<TopicPartition> tps = new ArrayList<>();
    if (c.hasNonNull("partitions")) {
      c.get("partitions").forEach(x -> tps.add(new TopicPartition(topic, x.asInt())));
    } else {
      int n = get(admin().describeTopics(List.of(topic)).topicNameValues().get(topic))
          .partitions()
          .size();
      for (int i = 0; i < n; i++) {
        tps.add(new TopicPartition(topic, i));
      }
    }
    Map<TopicPartition, OffsetAndMetadata> got =
        get(
            admin()
                .listConsumerGroupOffsets(
                    Map.of(g, new ListConsumerGroupOffsetsSpec().topicPartitions(tps)))
                .partitionsToOffsetAndMetadata(g));
    ArrayNode out = res.putArray("offsets");
    for (TopicPartition tp : tps) {
      ObjectNode o = out.addObject();
      o.put("partition", tp.partition());
      OffsetAndMetadata om = got.get(tp);
      o.put("offset", om == null ? -1 : om.offset());
      o.put("metadata", om == null ? "" : om.metadata());
      o.putNull("error");
    }
  }

  protected void groupLeave(JsonNode c, ObjectNode res) throws Exception {
    if (group != null) {
      Consumer<byte[], byte[]> g = group;
      group = null;
      g.close(OP_TIMEOUT);
    }
  }

  // ---- transactions

  protected Producer<byte[], byte[]> requireTxnProducer() {
    if (txnProducer == null) {
      throw new Fail("CLIENT_ERROR", "no transactional producer: txn_init first");
    }
    return txnProducer;
  }

  protected void txnInit(JsonNode c, ObjectNode res) throws Exception {
    if (txnProducer != null) {
      txnProducer.close(Duration.ofSeconds(5));
      txnProducer = null;
    }
    Producer<byte[], byte[]> p = newProducer(txnProducerProps(c));
    try {
      p.initTransactions();
    } catch (Exception e) {
      p.close(Duration.ofSeconds(5));
      throw e;
    }
    txnProducer = p;
  }

  protected void txnBegin(JsonNode c, ObjectNode res) throws Exception {
    requireTxnProducer().beginTransaction();
  }

  protected void txnCommit(JsonNode c, ObjectNode res) throws Exception {
    requireTxnProducer().commitTransaction();
  }

  protected void txnAbort(JsonNode c, ObjectNode res) throws Exception {
    requireTxnProducer().abortTransaction();
  }

  /** The group's metadata: the live member's when this driver's group consumer is in it. */
  protected ConsumerGroupMetadata groupMetadata(String g) {
    if (group != null && g.equals(groupId)) {
      return group.groupMetadata();
    }
    return new ConsumerGroupMetadata(g);
  }

  protected void txnSendOffsets(JsonNode c, ObjectNode res) throws Exception {
    String g = c.path("group").asText();
    requireTxnProducer().sendOffsetsToTransaction(offsets(c.path("offsets")), groupMetadata(g));
  }

  // ---- admin actions

  protected void admin(JsonNode c, ObjectNode res) throws Exception {
    AdminActions.run(admin(), c, res);
  }
}
