package main

import (
	"net"
	"strings"
	"testing"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestParseDefaultsEnvAndFlags(t *testing.T) {
	o, err := parse(nil, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if o.listen != ":9092" || o.dataDir != "./klite-data" || o.defaultPartitions != 1 || !o.autoCreateTopics || o.maxFrameBytes != 100<<20 {
		t.Fatalf("defaults: %+v", o)
	}
	o, err = parse([]string{"--default-partitions", "4"}, env(map[string]string{
		"KLITE_DEFAULT_PARTITIONS": "9", "KLITE_NODE_ID": "1", "KLITE_DATA_DIR": "/tmp/x", "KLITE_AUTO_CREATE_TOPICS": "false", "KLITE_WAL_SEGMENT_BYTES": "2097152",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if o.defaultPartitions != 4 || o.nodeID != 1 || o.dataDir != "/tmp/x" || o.autoCreateTopics || o.walSegmentBytes != 2097152 {
		t.Fatalf("flag over env, env over default: %+v", o)
	}
}

func TestParseRejectsBadValues(t *testing.T) {
	bad := [][]string{
		{"--listen", "nope"},
		{"--default-partitions", "0"},
		{"--node-id", "-1"},
		{"--group-min-session-timeout", "10s", "--group-max-session-timeout", "5s"},
		{"--offsets-retention", "1s"},
		{"--transaction-max-timeout", "0s"},
		{"--group-initial-rebalance-delay", "-1s"},
		{"--default-partitions", "x"},
		{"--log-level", "loud"},
		{"--max-frame-bytes", "10"},
		{"--wal-segment-bytes", "5"},
		{"--wal-segment-age", "-1s"},
		{"--wal-single-copy-bytes-per-sec", "0"},
		{"--advertised-addr", "h:notaport"},
		{"--sasl-mechanism", "GSSAPI"},
		{"--sasl-enabled"},
		{"--s3-flush-interval", "-1s"},
		{"--health-addr", "8080"},
		{"--unknown-flag"},
		{"extra-arg"},
	}
	for _, args := range bad {
		if _, err := parse(args, env(nil)); err == nil || strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: err %v, want a one-line error", args, err)
		}
	}
	if _, err := parse(nil, env(map[string]string{"KLITE_MAX_FRAME_BYTES": "abc"})); err == nil || !strings.Contains(err.Error(), "KLITE_MAX_FRAME_BYTES") {
		t.Errorf("bad env value: %v", err)
	}
}

func TestAdvertised(t *testing.T) {
	bound := &net.TCPAddr{IP: net.IPv4zero, Port: 1234}
	cases := []struct{ listen, adv, want string }{
		{"127.0.0.1:0", "", "127.0.0.1:1234"},
		{"localhost:9092", "", "localhost:1234"},
		{":9092", "broker.example:9999", "broker.example:9999"},
		{":9092", "broker.example", "broker.example:1234"},
	}
	for _, c := range cases {
		if got := advertised(&options{listen: c.listen, advertisedAddr: c.adv}, bound); got != c.want {
			t.Errorf("listen %q adv %q: %q, want %q", c.listen, c.adv, got, c.want)
		}
	}
	// An empty host resolves to something reachable: the hostname if it resolves, else loopback.
	got := advertised(&options{listen: ":9092"}, bound)
	host, _, _ := net.SplitHostPort(got)
	if host == "" || host == "0.0.0.0" {
		t.Fatalf("empty listen host advertised as %q", got)
	}
	if _, err := net.LookupHost(host); err != nil {
		t.Fatalf("advertised host %q does not resolve: %v", host, err)
	}
}

func TestParseSASLMechanisms(t *testing.T) {
	o, err := parse([]string{"--sasl-enabled", "--sasl-mechanism", "plain, SCRAM-SHA-256,SCRAM-SHA-512,PLAIN"},
		env(map[string]string{"KLITE_SASL_USER": "admin", "KLITE_SASL_PASSWORD": "pw"}))
	if err != nil {
		t.Fatal(err)
	}
	m, _ := o.saslMechanisms()
	if strings.Join(m, ",") != "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512" || o.saslUser != "admin" || o.saslPassword != "pw" {
		t.Fatalf("mechanisms %v user %q", m, o.saslUser)
	}
	for _, args := range [][]string{{"--sasl-mechanism", "PLAIN,GSSAPI"}, {"--sasl-mechanism", ""}, {"--sasl-enabled", "--sasl-user", "a"}, {"--sasl-max-reauth-ms", "-1"}} {
		if _, err := parse(args, env(nil)); err == nil || strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: err %v, want a one-line error", args, err)
		}
	}
}

func TestParseACLFlags(t *testing.T) {
	o, err := parse([]string{"--acl-enabled"}, env(map[string]string{"KLITE_SUPER_USERS": "User:admin; User:ops"}))
	if err != nil || !o.aclEnabled || o.superUsers != "User:admin; User:ops" {
		t.Fatalf("%+v %v", o, err)
	}
	if _, err := parse([]string{"--super-users", "admin"}, env(nil)); err == nil || !strings.Contains(err.Error(), "--super-users") {
		t.Fatalf("--super-users admin: %v", err)
	}
}

func TestParseGroupSizeFlags(t *testing.T) {
	o, err := parse([]string{"--group-max-size", "5"}, env(map[string]string{"KLITE_GROUP_CONSUMER_MAX_SIZE": "7"}))
	if err != nil {
		t.Fatal(err)
	}
	if o.groupMaxSize != 5 || o.groupConsumerMaxSize != 7 {
		t.Fatalf("group sizes: %d %d", o.groupMaxSize, o.groupConsumerMaxSize)
	}
	if o.groupMigrationPolicy != "bidirectional" {
		t.Fatalf("default migration policy %q", o.groupMigrationPolicy)
	}
	if o, err := parse(nil, env(map[string]string{"KLITE_GROUP_CONSUMER_MIGRATION_POLICY": "upgrade"})); err != nil || o.groupMigrationPolicy != "upgrade" {
		t.Fatalf("migration policy from env: %v", err)
	}
	for _, args := range [][]string{{"--group-max-size", "-1"}, {"--group-consumer-max-size", "-2"}, {"--group-consumer-migration-policy", "sideways"}} {
		if _, err := parse(args, env(nil)); err == nil || strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: err %v, want a one-line error", args, err)
		}
	}
}

func TestParseInternalTopicPartitions(t *testing.T) {
	o, err := parse(nil, env(nil))
	if err != nil || o.offsetsPartitions != 50 || o.txnStatePartitions != 50 {
		t.Fatalf("defaults (Kafka's): %d %d %v", o.offsetsPartitions, o.txnStatePartitions, err)
	}
	o, err = parse([]string{"--offsets-topic-partitions", "3"}, env(map[string]string{"KLITE_TRANSACTION_STATE_LOG_PARTITIONS": "1"}))
	if err != nil || o.offsetsPartitions != 3 || o.txnStatePartitions != 1 {
		t.Fatalf("flag and env: %d %d %v", o.offsetsPartitions, o.txnStatePartitions, err)
	}
	for _, args := range [][]string{{"--offsets-topic-partitions", "0"}, {"--transaction-state-log-partitions", "-1"}} {
		if _, err := parse(args, env(nil)); err == nil || !strings.Contains(err.Error(), args[0]) {
			t.Errorf("%v: err %v, want one naming the flag", args, err)
		}
	}
}
