package dev.klite.driver.spring;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.klite.driver.Driver;
import java.io.InputStream;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClient;
import org.apache.kafka.clients.consumer.Consumer;
import org.apache.kafka.clients.consumer.ConsumerGroupMetadata;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.utils.AppInfoParser;
import org.springframework.kafka.core.DefaultKafkaConsumerFactory;
import org.springframework.kafka.core.DefaultKafkaProducerFactory;
import org.springframework.kafka.core.KafkaAdmin;
import org.springframework.kafka.core.KafkaOperations;
import org.springframework.kafka.core.KafkaTemplate;
import org.springframework.kafka.core.TransactionIdSuffixStrategy;
import org.springframework.kafka.listener.ConsumerAwareRebalanceListener;
import org.springframework.kafka.listener.ContainerProperties;
import org.springframework.kafka.listener.KafkaMessageListenerContainer;
import org.springframework.kafka.listener.MessageListener;
import org.springframework.kafka.support.SendResult;

/**
 * Conformance driver for Spring Kafka. Produces through a {@link KafkaTemplate}, runs
 * transactions with {@link KafkaTemplate#executeInTransaction}, and consumes groups with a
 * {@link KafkaMessageListenerContainer} whose listener queues records for group_poll.
 *
 * <p>Shared with the plain driver (the kafka-clients API underneath, as Spring apps use it):
 * admin actions go through an AdminClient built from {@link KafkaAdmin}'s configuration
 * (KafkaAdmin itself only creates/modifies topics, and folds "already exists" into success);
 * assign-mode consume and metadata use a consumer from a {@link DefaultKafkaConsumerFactory};
 * list_offsets and group_committed are admin calls.
 */
public class SpringDriver extends Driver {
  private DefaultKafkaProducerFactory<byte[], byte[]> producerFactory;
  private KafkaTemplate<byte[], byte[]> template;
  private String templateKey;

  private DefaultKafkaProducerFactory<byte[], byte[]> txnFactory;
  private KafkaTemplate<byte[], byte[]> txnTemplate;
  /** executeInTransaction binds its producer to the calling thread: one thread runs it. */
  private final ExecutorService txnThread =
      Executors.newSingleThreadExecutor(
          r -> {
            Thread t = new Thread(r, "klite-txn");
            t.setDaemon(true);
            return t;
          });
  /** Work handed to the open transaction's callback; null while no transaction is open. */
  private BlockingQueue<TxnStep> txnSteps;
  private Future<?> txnRun;

  private KafkaMessageListenerContainer<byte[], byte[]> container;
  private String containerGroup;
  private final LinkedBlockingQueue<ConsumerRecord<byte[], byte[]>> received =
      new LinkedBlockingQueue<>();
  /** Work that must run on the container's consumer thread (the consumer is not thread-safe). */
  private final ConcurrentLinkedQueue<Runnable> consumerTasks = new ConcurrentLinkedQueue<>();
  private volatile Throwable lastPollError;

  public static void main(String[] args) throws Exception {
    SpringDriver d = new SpringDriver();
    if (args.length > 0 && args[0].equals("--warmup")) {
      d.warmup();
      return;
    }
    d.run();
  }

  @Override
  protected List<String> warmupPackages() {
    List<String> l = new ArrayList<>(super.warmupPackages());
    l.add("org/springframework/kafka/core/");
    l.add("org/springframework/kafka/listener/");
    l.add("org/springframework/kafka/support/");
    l.add("org/springframework/core/");
    l.add("org/springframework/beans/");
    l.add("org/springframework/context/");
    l.add("org/springframework/util/");
    l.add("org/springframework/scheduling/");
    l.add("org/springframework/transaction/");
    l.add("io/micrometer/");
    return l;
  }

  @Override
  protected String clientName() {
    return "spring-kafka";
  }

  @Override
  protected String libraryVersion() {
    Properties p = new Properties();
    try (InputStream in = SpringDriver.class.getResourceAsStream("/klite-driver.properties")) {
      p.load(in);
    } catch (Exception e) {
      System.err.println("version file: " + e);
    }
    return p.getProperty("spring-kafka", "unknown")
        + " (kafka-clients "
        + AppInfoParser.getVersion()
        + ")";
  }

  @Override
  protected Admin admin() {
    if (admin == null) {
      Map<String, Object> p = base();
      p.put("default.api.timeout.ms", 10000);
      p.put("request.timeout.ms", 8000);
      KafkaAdmin ka = new KafkaAdmin(p);
      admin = AdminClient.create(ka.getConfigurationProperties());
    }
    return admin;
  }

  @Override
  protected Consumer<byte[], byte[]> newConsumer(Map<String, Object> props) {
    return new DefaultKafkaConsumerFactory<>(
            props, new ByteArrayDeserializer(), new ByteArrayDeserializer())
        .createConsumer();
  }

  // ---------------------------------------------------------------- produce

  @Override
  protected void produce(JsonNode c, ObjectNode res) throws Exception {
    String topic = c.path("topic").asText();
    List<JsonNode> recs = new ArrayList<>();
    c.path("records").forEach(recs::add);
    List<Future<RecordMetadata>> futures;
    if (bool(c, "transactional", false)) {
      if (txnSteps == null && txnTemplate != null) {
        // No transaction open: the transactional template refuses each send itself.
        futures = send(txnTemplate, topic, recs);
      } else {
        futures = inTxn(ops -> send(ops, topic, recs));
      }
    } else {
      Map<String, Object> props = producerProps(c);
      String key = new java.util.TreeMap<>(props).toString();
      if (template == null || !key.equals(templateKey)) {
        if (producerFactory != null) {
          producerFactory.destroy();
        }
        producerFactory =
            new DefaultKafkaProducerFactory<>(
                props, new ByteArraySerializer(), new ByteArraySerializer());
        producerFactory.setPhysicalCloseTimeout(5);
        template = new KafkaTemplate<>(producerFactory);
        templateKey = key;
        // Build the (shared, cached) producer now so that a bad setting fails the op as a
        // whole, as in the plain driver; close() on the shared producer is a no-op.
        try {
          producerFactory.createProducer().close();
        } catch (RuntimeException e) {
          template = null;
          templateKey = null;
          throw e;
        }
      }
      futures = send(template, topic, recs);
    }
    collectResults(recs, futures, res);
  }

  private static List<Future<RecordMetadata>> send(
      KafkaOperations<byte[], byte[]> ops, String topic, List<JsonNode> recs) {
    List<Future<RecordMetadata>> futures = new ArrayList<>();
    for (JsonNode r : recs) {
      ProducerRecord<byte[], byte[]> pr = record(topic, r);
      try {
        futures.add(ops.send(pr).thenApply(SendResult::getRecordMetadata));
      } catch (Exception e) {
        futures.add(CompletableFuture.failedFuture(e));
      }
    }
    return futures;
  }

  // ---------------------------------------------------------------- transactions

  /** One piece of work inside the open transaction, or the signal to end it. */
  private record TxnStep(
      Function<KafkaOperations<byte[], byte[]>, Object> work,
      boolean end,
      boolean commit,
      CompletableFuture<Object> done) {}

  /** Thrown out of the transaction callback to make executeInTransaction abort. */
  private static final class AbortRequested extends RuntimeException {
    AbortRequested() {
      super("abort requested", null, false, false);
    }
  }

  @Override
  protected void txnInit(JsonNode c, ObjectNode res) throws Exception {
    if (txnSteps != null) {
      endTxn(false);
    }
    if (txnFactory != null) {
      txnFactory.destroy();
      txnFactory = null;
      txnTemplate = null;
    }
    Map<String, Object> props = txnProducerProps(c);
    DefaultKafkaProducerFactory<byte[], byte[]> f =
        new DefaultKafkaProducerFactory<>(
            props, new ByteArraySerializer(), new ByteArraySerializer());
    f.setPhysicalCloseTimeout(5);
    // Spring appends a suffix to the transactional.id so that concurrent producers differ;
    // the harness names the exact id (fencing scenarios rely on it), so the suffix is empty.
    f.setTransactionIdSuffixStrategy(
        new TransactionIdSuffixStrategy() {
          @Override
          public String acquireSuffix(String prefix) {
            return "";
          }

          @Override
          public void releaseSuffix(String prefix, String suffix) {}
        });
    // Creating the first producer runs initTransactions; closing returns it to the cache.
    txnThread.submit(() -> f.createProducer().close()).get();
    txnFactory = f;
    txnTemplate = new KafkaTemplate<>(f);
  }

  @Override
  protected void txnBegin(JsonNode c, ObjectNode res) throws Exception {
    if (txnTemplate == null) {
      throw new Fail("CLIENT_ERROR", "no transactional producer: txn_init first");
    }
    if (txnSteps != null) {
      throw new Fail("CLIENT_ERROR", "a transaction is already open");
    }
    BlockingQueue<TxnStep> steps = new LinkedBlockingQueue<>();
    CompletableFuture<Void> begun = new CompletableFuture<>();
    KafkaTemplate<byte[], byte[]> t = txnTemplate;
    txnRun =
        txnThread.submit(
            () -> {
              TxnStep[] end = new TxnStep[1];
              try {
                t.executeInTransaction(
                    ops -> {
                      begun.complete(null);
                      while (true) {
                        TxnStep s = take(steps);
                        if (s.end()) {
                          end[0] = s;
                          if (!s.commit()) {
                            throw new AbortRequested(); // executeInTransaction aborts
                          }
                          return null; // executeInTransaction commits
                        }
                        try {
                          s.done().complete(s.work().apply(ops));
                        } catch (Throwable e) {
                          s.done().completeExceptionally(e);
                        }
                      }
                    });
                end[0].done().complete(null);
              } catch (Throwable e) {
                begun.completeExceptionally(e); // beginTransaction failed
                TxnStep s = end[0];
                if (s == null) {
                  return;
                }
                if (e instanceof AbortRequested) {
                  // A failed abortTransaction is attached as suppressed.
                  if (e.getSuppressed().length > 0) {
                    s.done().completeExceptionally(e.getSuppressed()[0]);
                  } else {
                    s.done().complete(null);
                  }
                } else {
                  s.done().completeExceptionally(e); // commitTransaction failed
                }
              }
            });
    try {
      begun.get(OP_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
    } catch (java.util.concurrent.ExecutionException e) {
      txnRun = null;
      throw e;
    }
    txnSteps = steps;
  }

  private static TxnStep take(BlockingQueue<TxnStep> q) {
    try {
      return q.take();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new AbortRequested();
    }
  }

  /** Runs work inside the open transaction, on the transaction thread. */
  @SuppressWarnings("unchecked")
  private <T> T inTxn(Function<KafkaOperations<byte[], byte[]>, T> work) throws Exception {
    if (txnSteps == null) {
      throw new Fail("CLIENT_ERROR", "no open transaction: txn_begin first");
    }
    CompletableFuture<Object> done = new CompletableFuture<>();
    txnSteps.add(new TxnStep((Function<KafkaOperations<byte[], byte[]>, Object>) work, false, false, done));
    return (T) done.get(OP_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
  }

  private void endTxn(boolean commit) throws Exception {
    if (txnSteps == null) {
      throw new Fail("CLIENT_ERROR", "no open transaction: txn_begin first");
    }
    CompletableFuture<Object> done = new CompletableFuture<>();
    TxnStep s = new TxnStep(null, true, commit, done);
    BlockingQueue<TxnStep> steps = txnSteps;
    txnSteps = null;
    steps.add(s);
    try {
      done.get(OP_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
    } finally {
      txnRun.get(OP_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
      txnRun = null;
    }
  }

  @Override
  protected void txnCommit(JsonNode c, ObjectNode res) throws Exception {
    endTxn(true);
  }

  @Override
  protected void txnAbort(JsonNode c, ObjectNode res) throws Exception {
    endTxn(false);
  }

  @Override
  protected void txnSendOffsets(JsonNode c, ObjectNode res) throws Exception {
    String g = c.path("group").asText();
    Map<TopicPartition, OffsetAndMetadata> offs = offsets(c.path("offsets"));
    ConsumerGroupMetadata md = groupMetadata(g);
    inTxn(
        ops -> {
          ops.sendOffsetsToTransaction(offs, md);
          return null;
        });
  }

  @Override
  protected ConsumerGroupMetadata groupMetadata(String g) {
    if (container != null && container.isRunning() && g.equals(containerGroup)) {
      try {
        return onConsumerThread(Consumer::groupMetadata);
      } catch (Exception e) {
        System.err.println("group metadata from the container: " + e);
      }
    }
    return new ConsumerGroupMetadata(g);
  }

  // ---------------------------------------------------------------- group consumer

  /**
   * Wraps the container's consumer so that queued tasks (commits, group metadata) run on the
   * consumer thread right before each poll, and poll failures are remembered for group_poll.
   */
  @SuppressWarnings("unchecked")
  private Consumer<byte[], byte[]> hooked(Consumer<byte[], byte[]> real) {
    return (Consumer<byte[], byte[]>)
        Proxy.newProxyInstance(
            SpringDriver.class.getClassLoader(),
            new Class<?>[] {Consumer.class},
            (proxy, m, args) -> {
              boolean poll = m.getName().equals("poll");
              if (poll) {
                Runnable task;
                while ((task = consumerTasks.poll()) != null) {
                  task.run();
                }
              }
              try {
                return m.invoke(real, args);
              } catch (InvocationTargetException e) {
                if (poll) {
                  lastPollError = e.getCause();
                }
                throw e.getCause();
              }
            });
  }

  private volatile Consumer<byte[], byte[]> liveConsumer;

  @Override
  protected void groupSubscribe(JsonNode c, ObjectNode res) throws Exception {
    if (c.hasNonNull("topic_regex")) {
      // A listener container takes topic names or a java.util.regex.Pattern resolved by the
      // client; it has no broker-side (KIP-848) SubscriptionPattern.
      throw new Unsupported("topic_regex: Spring's listener container has no broker-side pattern subscription");
    }
    stopContainer();
    Map<String, Object> props = groupProps(c);
    boolean autoCommit = bool(c, "auto_commit", false);
    DefaultKafkaConsumerFactory<byte[], byte[]> cf =
        new DefaultKafkaConsumerFactory<>(
            props, new ByteArrayDeserializer(), new ByteArrayDeserializer());
    cf.addPostProcessor(
        real -> {
          Consumer<byte[], byte[]> h = hooked(real);
          liveConsumer = real;
          return h;
        });
    ContainerProperties cp = new ContainerProperties(strings(c.get("topics")).toArray(String[]::new));
    // Commits happen only on group_commit (MANUAL, no acknowledgments ever given), or by the
    // client's own auto-commit when asked (then the container commits nothing itself).
    cp.setAckMode(autoCommit ? ContainerProperties.AckMode.BATCH : ContainerProperties.AckMode.MANUAL);
    // Short polls so that work queued for the consumer thread runs promptly.
    cp.setPollTimeout(100);
    cp.setMessageListener((MessageListener<byte[], byte[]>) received::add);
    cp.setConsumerRebalanceListener(
        new ConsumerAwareRebalanceListener() {
          @Override
          public void onPartitionsRevokedAfterCommit(
              Consumer<?, ?> consumer, Collection<TopicPartition> tps) {
            System.err.println("revoked " + tps);
          }

          @Override
          public void onPartitionsAssigned(Consumer<?, ?> consumer, Collection<TopicPartition> tps) {
            System.err.println("assigned " + tps);
          }

          @Override
          public void onPartitionsLost(Consumer<?, ?> consumer, Collection<TopicPartition> tps) {
            System.err.println("lost " + tps);
          }
        });
    KafkaMessageListenerContainer<byte[], byte[]> k = new KafkaMessageListenerContainer<>(cf, cp);
    k.setBeanName("klite-" + c.path("group").asText());
    received.clear();
    consumerTasks.clear();
    lastPollError = null;
    groupId = c.path("group").asText();
    containerGroup = groupId;
    k.start(); // returns once the consumer thread runs; joining goes on there
    container = k;
  }

  private void stopContainer() {
    if (container != null) {
      KafkaMessageListenerContainer<byte[], byte[]> k = container;
      container = null;
      containerGroup = null;
      k.stop(); // closes the consumer on its thread: the member leaves the group
    }
    received.clear();
    // Anything still waiting for a consumer thread will not get one.
    Runnable t;
    while ((t = consumerTasks.poll()) != null) {
      t.run();
    }
  }

  private KafkaMessageListenerContainer<byte[], byte[]> requireContainer() {
    if (container == null) {
      throw new Fail("CLIENT_ERROR", "no listener container: group_subscribe first");
    }
    return container;
  }

  /** Runs f on the consumer thread (before its next poll) and waits for the result. */
  private <T> T onConsumerThread(Function<Consumer<byte[], byte[]>, T> f) throws Exception {
    KafkaMessageListenerContainer<byte[], byte[]> k = requireContainer();
    CompletableFuture<T> done = new CompletableFuture<>();
    consumerTasks.add(
        () -> {
          Consumer<byte[], byte[]> cons = liveConsumer;
          if (cons == null || container != k || !k.isRunning()) {
            done.completeExceptionally(new Fail("CLIENT_ERROR", "listener container stopped"));
            return;
          }
          try {
            done.complete(f.apply(cons));
          } catch (Throwable e) {
            done.completeExceptionally(e);
          }
        });
    try {
      return done.get(OP_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
    } catch (java.util.concurrent.ExecutionException e) {
      throw e.getCause() instanceof Exception ex ? ex : e;
    }
  }

  @Override
  protected void groupPoll(JsonNode c, ObjectNode res) throws Exception {
    KafkaMessageListenerContainer<byte[], byte[]> k = requireContainer();
    int max = integer(c, "max_records", Integer.MAX_VALUE);
    long deadline = System.currentTimeMillis() + integer(c, "timeout_ms", 5000);
    ArrayNode out = res.putArray("records");
    int n = 0;
    while (n < max) {
      long rem = deadline - System.currentTimeMillis();
      ConsumerRecord<byte[], byte[]> r =
          rem > 0 ? received.poll(rem, TimeUnit.MILLISECONDS) : received.poll();
      if (r == null) {
        break;
      }
      out.add(recordJson(r));
      n++;
    }
    Throwable err = lastPollError;
    if (n == 0 && err != null && !k.isRunning()) {
      throw new Fail(errorName(err), "listener container stopped: " + errorMessage(err));
    }
    Collection<TopicPartition> assigned = k.getAssignedPartitions();
    res.set("assignment", assignmentJson(assigned == null ? Set.of() : new HashSet<>(assigned)));
  }

  @Override
  protected void groupCommit(JsonNode c, ObjectNode res) throws Exception {
    String g = str(c, "group", null);
    if (g != null && (container == null || !g.equals(containerGroup))) {
      standaloneCommit(g, c); // no Spring equivalent: the admin client, as in the plain driver
      return;
    }
    requireContainer();
    if (c.hasNonNull("offsets")) {
      Map<TopicPartition, OffsetAndMetadata> offs = offsets(c.get("offsets"));
      onConsumerThread(
          cons -> {
            cons.commitSync(offs, Duration.ofSeconds(10));
            return null;
          });
      return;
    }
    // "What has been consumed": records group_poll handed out. The listener may have queued
    // more; for those partitions commit the first one still queued, else the position.
    onConsumerThread(
        cons -> {
          Map<TopicPartition, Long> firstQueued = new HashMap<>();
          for (ConsumerRecord<byte[], byte[]> r : received) {
            firstQueued.merge(
                new TopicPartition(r.topic(), r.partition()), r.offset(), Math::min);
          }
          Map<TopicPartition, OffsetAndMetadata> offs = new HashMap<>();
          for (TopicPartition tp : cons.assignment()) {
            Long q = firstQueued.get(tp);
            offs.put(tp, new OffsetAndMetadata(q != null ? q : cons.position(tp)));
          }
          cons.commitSync(offs, Duration.ofSeconds(10));
          return null;
        });
  }

  @Override
  protected void groupLeave(JsonNode c, ObjectNode res) throws Exception {
    stopContainer();
  }

  @Override
  protected void closeAll() {
    try {
      stopContainer();
    } catch (Throwable t) {
      System.err.println("stop container: " + t);
    }
    try {
      if (txnSteps != null) {
        endTxn(false);
      }
    } catch (Throwable t) {
      System.err.println("abort open transaction: " + t);
    }
    try {
      if (producerFactory != null) {
        producerFactory.destroy();
      }
      if (txnFactory != null) {
        txnFactory.destroy();
      }
    } catch (Throwable t) {
      System.err.println("close producers: " + t);
    }
    super.closeAll();
  }
}
