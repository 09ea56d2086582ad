package main

// Load from Kafka's own tools (kafka-tools jar in .cache/kafka/libs), so the comparison does
// not rest on franz-go alone:
//
//   - org.apache.kafka.tools.ProducerPerformance: acks=all, 1 KiB records, as fast as it can,
//     one JVM producer with its defaults (linger.ms=5 in 4.0, batch.size 16 KiB, 5 in flight);
//     its last line gives records/s, MB/s and the latency percentiles of every record.
//   - org.apache.kafka.tools.ConsumerPerformance: reads that topic from the start; its one
//     data line gives MB/s.
//
// Each tool is a fresh JVM: start-up is in the elapsed time the bench measures, not in the
// tools' own MB/s figures, which are what the table reports.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

type producerPerf struct {
	records       int64
	recsPerSec    float64
	mbPerSec      float64 // the tool's MB: 2^20 bytes
	avgMs, maxMs  float64
	p50, p95, p99 float64 // ms
	p999          float64
}

var producerPerfLine = regexp.MustCompile(`(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, ([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th, (\d+) ms 99.9th`)

// javaTool runs one Kafka tool class with args, bounded by limit, and returns its stdout.
func javaTool(ctx context.Context, root, class string, limit time.Duration, logTo string, args ...string) (string, error) {
	libs := filepath.Join(root, ".cache", "kafka", "libs")
	if _, err := os.Stat(filepath.Join(libs, "kafka-tools-4.0.2.jar")); err != nil {
		return "", fmt.Errorf("kafka-tools jar missing in %s: run `make kafka-jars`", libs)
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, "java", append([]string{"-Xmx512m", "-cp", libs + "/*",
		"-Dlog4j2.configurationFile=" + filepath.Join(root, "conformance", "kafka", "log4j2.yaml"), class}, args...)...)
	var out strings.Builder
	cmd.Stdout = &out
	if f, err := os.Create(logTo); err == nil {
		defer f.Close()
		cmd.Stderr = f
	}
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("%s: %w (stderr in %s)", class, err, logTo)
	}
	return out.String(), nil
}

// runProducerPerf produces n 1 KiB-style records of size bytes to topic with acks=all.
func runProducerPerf(ctx context.Context, root, addr, topic string, n int64, size int, logTo string) (producerPerf, error) {
	out, err := javaTool(ctx, root, "org.apache.kafka.tools.ProducerPerformance", 5*time.Minute, logTo,
		"--topic", topic, "--num-records", fmt.Sprint(n), "--record-size", fmt.Sprint(size), "--throughput", "-1",
		"--producer-props", "bootstrap.servers="+addr, "acks=all")
	if err != nil {
		return producerPerf{}, err
	}
	return parseProducerPerf(out)
}

// parseProducerPerf reads ProducerPerformance's summary, the last line of its output.
func parseProducerPerf(out string) (producerPerf, error) {
	m := producerPerfLine.FindAllStringSubmatch(out, -1)
	if len(m) == 0 {
		return producerPerf{}, fmt.Errorf("ProducerPerformance: no summary line in %q", tail(out, 400))
	}
	last := m[len(m)-1]
	f := func(i int) float64 { v, _ := strconv.ParseFloat(last[i], 64); return v }
	return producerPerf{records: int64(f(1)), recsPerSec: f(2), mbPerSec: f(3), avgMs: f(4), maxMs: f(5),
		p50: f(6), p95: f(7), p99: f(8), p999: f(9)}, nil
}

type consumerPerf struct {
	mb, mbPerSec, fetchMBPerSec float64 // the tool's MB: 2^20 bytes
	records                     int64
}

// runConsumerPerf reads n records of topic from the start in a fresh group.
func runConsumerPerf(ctx context.Context, root, addr, topic string, n int64, logTo string) (consumerPerf, error) {
	out, err := javaTool(ctx, root, "org.apache.kafka.tools.ConsumerPerformance", 5*time.Minute, logTo,
		"--bootstrap-server", addr, "--topic", topic, "--messages", fmt.Sprint(n), "--timeout", "30000",
		"--group", "bench-perf-"+time.Now().Format("150405.000"))
	if err != nil {
		return consumerPerf{}, err
	}
	return parseConsumerPerf(out)
}

// parseConsumerPerf reads ConsumerPerformance's data line.
func parseConsumerPerf(out string) (consumerPerf, error) {
	// Header "start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg,
	// nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec", then one line.
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		f := strings.Split(lines[i], ",")
		if len(f) < 10 || strings.Contains(lines[i], "start.time") {
			continue
		}
		num := func(j int) float64 { v, _ := strconv.ParseFloat(strings.TrimSpace(f[j]), 64); return v }
		return consumerPerf{mb: num(2), mbPerSec: num(3), records: int64(num(4)), fetchMBPerSec: num(8)}, nil
	}
	return consumerPerf{}, fmt.Errorf("ConsumerPerformance: no data line in %q", tail(out, 400))
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
