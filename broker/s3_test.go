package broker

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/klite/klite/broker/logstore"
	"github.com/klite/klite/internal/motoserver"
)

func motoS3Config(t *testing.T, srv *motoserver.Server, prefix string) S3Config {
	return S3Config{Bucket: "klite", Endpoint: srv.Endpoint, Region: motoserver.Region, Prefix: prefix,
		Credentials: motoserver.Credentials()}
}

// Lease: a second broker on a bucket and prefix in use is refused with a message naming
// the holder, before it touches its data directory; a broker on another prefix starts;
// after the first closes (releasing the lease), the second starts.
func TestS3LeaseRefusesSecondBroker(t *testing.T) {
	srv := motoserver.Start(t)
	srv.CreateBucket(t, "klite")
	first := startBroker(t, t.TempDir(), func(c *Config) { c.S3 = motoS3Config(t, srv, "cluster-a") })

	secondDir := t.TempDir() + "/data"
	cfg := Config{DataDir: secondDir, AdvertisedAddr: "127.0.0.1:1", S3: motoS3Config(t, srv, "cluster-a")}
	b, err := Open(cfg)
	if err == nil {
		b.Close()
		t.Fatal("a second broker opened on a prefix in use")
	}
	if !errors.Is(err, logstore.ErrLeaseHeld) || !strings.Contains(err.Error(), "s3://klite/cluster-a/lease is held by another klite") {
		t.Fatalf("second Open: %v, want the lease-held refusal", err)
	}
	if _, statErr := os.Stat(secondDir); statErr == nil {
		t.Error("the refused broker created its data directory")
	}

	other := startBroker(t, t.TempDir(), func(c *Config) { c.S3 = motoS3Config(t, srv, "cluster-b") })
	other.Close()

	if err := first.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	b, err = Open(cfg)
	if err != nil {
		t.Fatalf("Open after the first broker closed: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
}

// An unreachable S3 (or a missing bucket) stops Open with the reason, not a hang.
func TestS3MissingBucketRefusesStart(t *testing.T) {
	srv := motoserver.Start(t)
	cfg := Config{DataDir: t.TempDir(), AdvertisedAddr: "127.0.0.1:1", S3: motoS3Config(t, srv, "p")}
	start := time.Now()
	b, err := Open(cfg)
	if err == nil {
		b.Close()
		t.Fatal("Open succeeded without the bucket")
	}
	if !strings.Contains(err.Error(), "bucket klite does not exist") {
		t.Errorf("Open: %v, want it to name the bucket", err)
	}
	t.Logf("refused after %v: %v", time.Since(start), err)
}

// The open broker renews its lease: well past the TTL a second broker is still refused.
func TestS3LeaseRenewedWhileOpen(t *testing.T) {
	srv := motoserver.Start(t)
	srv.CreateBucket(t, "klite")
	s3cfg := motoS3Config(t, srv, "p")
	s3cfg.LeaseTTL = 6 * time.Second // renewed every 2s; margin for a loaded machine
	first := startBroker(t, t.TempDir(), func(c *Config) { c.S3 = s3cfg })
	st, err := logstore.NewS3Store(t.Context(), s3cfg.StoreOptions(""))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// Await four renewals (about eight seconds, more than the TTL), bounded.
	var tags []string
	deadline := time.Now().Add(30 * time.Second)
	for len(tags) < 5 && time.Now().Before(deadline) {
		b, err := st.Get("lease", 0, -1)
		if err != nil {
			t.Fatal(err)
		}
		rec, err := logstore.ParseLeaseRecord(b)
		if err != nil {
			t.Fatal(err)
		}
		if tag := fmt.Sprint(rec.RenewedMs); len(tags) == 0 || tags[len(tags)-1] != tag {
			tags = append(tags, tag)
		}
		time.Sleep(100 * time.Millisecond) // polling S3: no event to wait on
	}
	if len(tags) < 5 {
		t.Fatalf("saw %d lease writes in 30s, want the acquire and four renewals", len(tags))
	}
	_, err = Open(Config{DataDir: t.TempDir(), AdvertisedAddr: "127.0.0.1:1", S3: s3cfg})
	if !errors.Is(err, logstore.ErrLeaseHeld) {
		t.Fatalf("second Open after %d renewals: %v, want ErrLeaseHeld", len(tags)-1, err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
}
