package logstore

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/klite/klite/internal/motoserver"
)

func motoLeases(t *testing.T, n int, ttl time.Duration) ([]*S3Lease, *S3Store) {
	t.Helper()
	st := newMotoStore(t, S3Options{Prefix: "p"})
	var ls []*S3Lease
	for i := 0; i < n; i++ {
		ls = append(ls, NewS3Lease(st.Client(), "klite-test", "p/lease", ttl))
	}
	return ls, st
}

func leaseCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// One writer per prefix: the second broker is refused with a message naming the holder;
// after the first releases, the second starts and the first can no longer renew.
func TestS3LeaseOneWriter(t *testing.T) {
	ls, _ := motoLeases(t, 2, time.Minute)
	a, b := ls[0], ls[1]
	ctx := leaseCtx(t)
	if err := a.Acquire(ctx); err != nil {
		t.Fatalf("first Acquire: %v", err)
	}
	if !a.Valid() {
		t.Error("a freshly acquired lease is not Valid")
	}
	err := b.Acquire(ctx)
	var held *LeaseHeldError
	if !errors.As(err, &held) || !errors.Is(err, ErrLeaseHeld) {
		t.Fatalf("second Acquire: %v, want a LeaseHeldError", err)
	}
	if held.Holder.Owner != a.rec.Owner || held.Holder.PID != a.rec.PID {
		t.Errorf("holder %+v, want a's record %+v", held.Holder, a.rec)
	}
	for _, want := range []string{"s3://klite-test/p/lease", "held by another klite", "--s3-prefix"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q lacks %q", err, want)
		}
	}
	if b.Valid() {
		t.Error("a refused lease is Valid")
	}
	if err := a.Renew(ctx); err != nil {
		t.Fatalf("Renew: %v", err)
	}
	if err := b.Acquire(ctx); !errors.Is(err, ErrLeaseHeld) {
		t.Fatalf("Acquire after a renewal: %v, want ErrLeaseHeld", err)
	}
	if err := a.Release(ctx); err != nil {
		t.Fatalf("Release: %v", err)
	}
	if a.Valid() {
		t.Error("a released lease is Valid")
	}
	if err := b.Acquire(ctx); err != nil {
		t.Fatalf("Acquire after the release: %v", err)
	}
	if err := a.Renew(ctx); err == nil {
		t.Fatal("Renew of a released lease succeeded")
	}
	// A holder whose lease was taken over learns it at its next renewal.
	c := NewS3Lease(b.client, "klite-test", "p/lease", time.Minute)
	c.serverNow = func() time.Time { return time.Now().Add(2 * time.Minute) }
	if err := c.Acquire(ctx); err != nil {
		t.Fatalf("Acquire of an expired lease: %v", err)
	}
	if err := b.Renew(ctx); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("Renew after a takeover: %v, want ErrLeaseLost", err)
	}
	if b.Valid() {
		t.Error("a lost lease is Valid")
	}
}

// Expiry is judged by the S3 server's clock against the object's Last-Modified: a lease
// within its TTL is held, one past it is taken over.
func TestS3LeaseExpiry(t *testing.T) {
	ls, _ := motoLeases(t, 2, 10*time.Second)
	a, b := ls[0], ls[1]
	ctx := leaseCtx(t)
	if err := a.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	b.serverNow = func() time.Time { return time.Now().Add(5 * time.Second) }
	if err := b.Acquire(ctx); !errors.Is(err, ErrLeaseHeld) {
		t.Fatalf("Acquire within the TTL: %v, want ErrLeaseHeld", err)
	}
	b.serverNow = func() time.Time { return time.Now().Add(time.Minute) }
	if err := b.Acquire(ctx); err != nil {
		t.Fatalf("Acquire past the TTL: %v", err)
	}
	if err := a.Renew(ctx); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("Renew by the expired holder: %v, want ErrLeaseLost", err)
	}
}

// Takeovers hinge on one ETag: of contenders that read the same ETag, the first
// If-Match write wins and every later one fails; of creators, only the first If-None-Match
// write succeeds. (S3 makes concurrent conditional writes atomic; moto checks and writes
// without a lock, so the contenders here write one after the other.)
func TestS3LeaseConditionalWritesOneWinner(t *testing.T) {
	ls, _ := motoLeases(t, 3, time.Minute)
	ctx := leaseCtx(t)
	for round := 0; round < 3; round++ {
		etag := ""
		if round > 0 {
			_, e, _, err := ls[0].read(ctx)
			if err != nil {
				t.Fatal(err)
			}
			etag = e
		}
		for i, l := range ls {
			ok, err := l.write(ctx, etag, false)
			if err != nil || ok != (i == 0) {
				t.Fatalf("round %d (If-Match %q), contender %d: won %v, %v; want only the first to win", round, etag, i, ok, err)
			}
		}
	}
	// If-Match on a lease that vanished is a lost condition too, not an error.
	if _, err := ls[0].client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("klite-test"), Key: aws.String("p/lease")}); err != nil {
		t.Fatal(err)
	}
	if ok, err := ls[1].write(ctx, `"gone"`, false); ok || err != nil {
		t.Fatalf("If-Match on a missing lease: won %v, %v; want a lost condition", ok, err)
	}
}

// A lease object that is not a lease (garbage left in the bucket) does not lock the prefix.
func TestS3LeaseUnreadableObjectIsTaken(t *testing.T) {
	ls, st := motoLeases(t, 1, time.Minute)
	ctx := leaseCtx(t)
	if _, err := st.Client().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("klite-test"),
		Key: aws.String("p/lease"), Body: strings.NewReader("not json")}); err != nil {
		t.Fatal(err)
	}
	if err := ls[0].Acquire(ctx); err != nil {
		t.Fatalf("Acquire over garbage: %v", err)
	}
}

// Without a server the lease is not taken and the error says why (not "held").
func TestS3LeaseUnreachable(t *testing.T) {
	srv := motoserver.Start(t)
	st := motoStoreOn(t, srv, S3Options{MaxAttempts: 2, MaxBackoff: 10 * time.Millisecond})
	srv.Stop()
	l := NewS3Lease(st.Client(), "klite-test", "lease", time.Minute)
	err := l.Acquire(leaseCtx(t))
	if err == nil || errors.Is(err, ErrLeaseHeld) || l.Valid() {
		t.Fatalf("Acquire without a server: %v (valid %v)", err, l.Valid())
	}
}

func FuzzLeaseRecord(f *testing.F) {
	f.Add([]byte(`{"owner":"ab","host":"h","pid":1,"renewed_ms":5,"ttl_ms":30000,"released":false}`))
	f.Add([]byte(`{"owner":"","ttl_ms":-1}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseLeaseRecord(b)
		if err != nil {
			return
		}
		if r.Owner == "" || r.TTLMs <= 0 {
			t.Fatalf("accepted %+v", r)
		}
	})
}

// A renewal whose answer was lost and that S3 applied later (a request that timed out
// while S3 stalled, as in an outage) leaves a record of ours with an ETag we never saw:
// the next renewal keeps the lease instead of calling it lost to another broker.
func TestS3LeaseRenewAfterLateAppliedWrite(t *testing.T) {
	ls, st := motoLeases(t, 2, time.Minute)
	a, other := ls[0], ls[1]
	ctx := leaseCtx(t)
	if err := a.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	late := a.rec
	late.RenewedMs += 1234
	body, _ := json.Marshal(late)
	if _, err := st.Client().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("klite-test"),
		Key: aws.String("p/lease"), Body: strings.NewReader(string(body))}); err != nil {
		t.Fatal(err)
	}
	if err := a.Renew(ctx); err != nil {
		t.Fatalf("Renew after our own late write: %v", err)
	}
	if !a.Valid() {
		t.Fatal("lease not valid after the renewal")
	}
	if err := other.Acquire(ctx); !errors.Is(err, ErrLeaseHeld) {
		t.Fatalf("another broker's Acquire: %v, want held", err)
	}
	if err := a.Renew(ctx); err != nil {
		t.Fatalf("second Renew: %v", err)
	}
}
