package dev.klite.driver;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.kafka.clients.producer.Producer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;

/**
 * produce_for (clients/README.md): produce uncompressed records as fast as the broker
 * acknowledges them, keeping in_flight outstanding, for warmup_ms and then duration_ms; report
 * the value bytes per second acknowledged in the second period and the largest throttle time
 * the producer saw (its produce-throttle-time-max metric, KIP-219).
 */
final class ProduceFor {
  private ProduceFor() {}

  static void run(Driver d, JsonNode c, ObjectNode res) throws Exception {
    String topic = c.path("topic").asText();
    int partition = Driver.integer(c, "partition", 0);
    int size = Driver.integer(c, "record_bytes", 1000);
    long warmupMs = Driver.integer(c, "warmup_ms", 0);
    long durationMs = Driver.integer(c, "duration_ms", 5000);
    int inFlight = Driver.integer(c, "in_flight", 64);
    String acks = Driver.str(c, "acks", "-1");
    Map<String, Object> p = d.base();
    p.put(ProducerConfig.ACKS_CONFIG, acks.equals("-1") ? "all" : acks);
    p.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, "none"); // quotas count the bytes on the wire
    p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, false);
    p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, 10000);
    StringBuilder sb = new StringBuilder();
    while (sb.length() < size) {
      sb.append("0123456789abcdef");
    }
    byte[] value = sb.substring(0, size).getBytes(StandardCharsets.UTF_8);
    Semaphore slots = new Semaphore(inFlight);
    AtomicLong acked = new AtomicLong();
    AtomicLong failed = new AtomicLong();
    AtomicLong counted = new AtomicLong();
    AtomicReference<String> firstErr = new AtomicReference<>();
    double throttleMax;
    try (Producer<byte[], byte[]> prod = d.newProducer(p)) {
      long start = System.nanoTime();
      long warmEnd = start + TimeUnit.MILLISECONDS.toNanos(warmupMs);
      long end = warmEnd + TimeUnit.MILLISECONDS.toNanos(durationMs);
      while (System.nanoTime() < end) {
        if (!slots.tryAcquire(Math.max(1, end - System.nanoTime()), TimeUnit.NANOSECONDS)) {
          continue;
        }
        prod.send(
            new ProducerRecord<>(topic, partition, null, value),
            (md, e) -> {
              long now = System.nanoTime();
              slots.release();
              if (e != null) {
                failed.incrementAndGet();
                firstErr.compareAndSet(null, e.toString());
                return;
              }
              acked.incrementAndGet();
              if (now >= warmEnd && now <= end) {
                counted.addAndGet(value.length);
              }
            });
      }
      prod.flush();
      throttleMax = metric(prod, "produce-throttle-time-max");
    }
    res.put("records", acked.get());
    res.put("errors", failed.get());
    res.put("bytes_per_sec", Math.round(counted.get() / (durationMs / 1000.0)));
    res.put("throttle_time_ms", Math.round(throttleMax));
    res.put("throttled", throttleMax > 0);
    if (firstErr.get() != null) {
      res.put("message", firstErr.get());
    }
  }

  /** A producer-metrics value, 0 when it has none (no sample: NaN). */
  private static double metric(Producer<byte[], byte[]> prod, String name) {
    for (var e : prod.metrics().entrySet()) {
      if (e.getKey().name().equals(name) && e.getKey().group().equals("producer-metrics")) {
        Object v = e.getValue().metricValue();
        if (v instanceof Double dv && Double.isFinite(dv)) {
          return dv;
        }
      }
    }
    return 0;
  }
}
