//go:build integration

package main

import (
	"strings"
	"testing"

	"github.com/klite/klite/internal/motoserver"
)

// The writer lease across processes: a second klite on the same bucket and prefix exits
// with one clear error line; once the first has stopped (SIGTERM releases the lease), it
// starts.
func TestProcessS3LeaseRefusesSecondBroker(t *testing.T) {
	srv := motoserver.Start(t)
	srv.CreateBucket(t, "klite")
	t.Setenv("AWS_ACCESS_KEY_ID", motoserver.AccessKey) // the standard chain's environment provider
	t.Setenv("AWS_SECRET_ACCESS_KEY", motoserver.SecretKey)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	s3 := []string{"--s3-bucket", "klite", "--s3-endpoint", srv.Endpoint, "--s3-region", motoserver.Region, "--s3-prefix", "prod/cluster-1"}

	first := startKlite(t, t.TempDir(), s3...)
	line := refusedStart(t, t.TempDir(), s3...)
	t.Logf("refused: %s", line)
	for _, want := range []string{"refusing to start: another broker uses this S3 bucket and prefix", "s3://klite/prod/cluster-1/lease", "--s3-prefix"} {
		if !strings.Contains(line, want) {
			t.Errorf("refusal %q lacks %q", line, want)
		}
	}
	stopKlite(t, first)
	second := startKlite(t, t.TempDir(), s3...)
	stopKlite(t, second)
}
