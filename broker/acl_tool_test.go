package broker

// Kafka's own kafka-acls (org.apache.kafka.tools.AclCommand from kafka-tools 4.0.2, fetched by
// `make kafka-jars`) manages klite's ACLs over SASL: add, list, remove. Skipped without java or
// the jars.

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestKafkaAclsTool(t *testing.T) {
	libs, _ := filepath.Abs(filepath.Join("..", ".cache", "kafka", "libs"))
	if _, err := os.Stat(filepath.Join(libs, "kafka-tools-4.0.2.jar")); err != nil {
		t.Skip("kafka-tools jar missing: run `make kafka-jars`")
	}
	if _, err := exec.LookPath("java"); err != nil {
		t.Skip("java not installed")
	}
	tb := aclBroker(t, t.TempDir())
	cfg := filepath.Join(t.TempDir(), "admin.properties")
	props := "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\n" +
		`sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="admin-secret";` + "\n"
	if err := os.WriteFile(cfg, []byte(props), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		full := append([]string{"-Xshare:auto", "-XX:TieredStopAtLevel=1", "-cp", libs + "/*", "org.apache.kafka.tools.AclCommand",
			"--bootstrap-server", tb.addr, "--command-config", cfg}, args...)
		out, err := exec.CommandContext(ctx, "java", full...).CombinedOutput()
		if err != nil {
			t.Fatalf("kafka-acls %v: %v\n%s", args, err, out)
		}
		return string(out)
	}

	run("--add", "--allow-principal", "User:alice", "--operation", "Read", "--operation", "Describe", "--topic", "orders")
	run("--add", "--deny-principal", "User:bob", "--deny-host", "10.0.0.1", "--operation", "All",
		"--topic", "logs-", "--resource-pattern-type", "prefixed")
	if !tb.authz.Authorize("User:alice", "127.0.0.1", kmsg.ACLOperationRead, kmsg.ACLResourceTypeTopic, "orders") {
		t.Fatal("alice may not read orders after kafka-acls --add")
	}
	out := run("--list")
	for _, want := range []string{
		"ResourcePattern(resourceType=TOPIC, name=orders, patternType=LITERAL)",
		"(principal=User:alice, host=*, operation=READ, permissionType=ALLOW)",
		"(principal=User:alice, host=*, operation=DESCRIBE, permissionType=ALLOW)",
		"ResourcePattern(resourceType=TOPIC, name=logs-, patternType=PREFIXED)",
		"(principal=User:bob, host=10.0.0.1, operation=ALL, permissionType=DENY)",
	} {
		if !strings.Contains(out, want) {
			t.Fatalf("kafka-acls --list lacks %q:\n%s", want, out)
		}
	}
	run("--remove", "--force", "--topic", "orders")
	out = run("--list", "--topic", "orders")
	if strings.Contains(out, "User:alice") {
		t.Fatalf("ACLs of orders left after --remove:\n%s", out)
	}
	if got := len(tb.acls.All()); got != 1 {
		t.Fatalf("%d bindings left, want the prefixed DENY only: %v", got, tb.acls.All())
	}
}
