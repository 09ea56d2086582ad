package main

import (
	"strings"
	"testing"
	"time"
)

func TestParseS3Flags(t *testing.T) {
	o, err := parse([]string{"--s3-bucket", "b", "--s3-prefix", "k/p"}, env(map[string]string{
		"KLITE_S3_ENDPOINT": "http://127.0.0.1:9000", "KLITE_S3_REGION": "eu-west-1", "KLITE_S3_FLUSH_INTERVAL": "3s",
		"KLITE_S3_CACHE_BYTES": "2097152", "KLITE_S3_TARGET_OBJECT_BYTES": "8388608", "KLITE_S3_BUCKET": "ignored",
		"KLITE_S3_LEASE_TTL": "4s", "KLITE_S3_LOCAL_BUDGET_BYTES": "33554432",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if o.s3Bucket != "b" || o.s3Prefix != "k/p" || o.s3Endpoint != "http://127.0.0.1:9000" || o.s3Region != "eu-west-1" ||
		o.s3FlushInterval != 3*time.Second || o.s3CacheBytes != 2<<20 || o.s3TargetObjectBytes != 8<<20 ||
		o.s3LeaseTTL != 4*time.Second || o.s3LocalBudgetBytes != 32<<20 {
		t.Fatalf("S3 options: %+v", o)
	}
	for _, args := range [][]string{
		{"--s3-endpoint", "http://127.0.0.1:9000"},
		{"--s3-prefix", "p"},
		{"--s3-bucket", "b", "--s3-cache-bytes", "5"},
		{"--s3-bucket", "b", "--s3-target-object-bytes", "0"},
		{"--s3-bucket", "b", "--s3-local-budget-bytes", "1048576"},
		{"--s3-bucket", "b", "--s3-target-object-bytes", "6442450944"},
		{"--s3-bucket", "b", "--s3-lease-ttl", "100ms"},
	} {
		if _, err := parse(args, env(nil)); err == nil || strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: err %v, want a one-line error", args, err)
		}
	}
}
