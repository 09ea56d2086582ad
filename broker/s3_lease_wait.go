package broker

// Taking the writer lease at start. A lease held by another broker is either live (its
// holder renews it every third of its TTL) or left behind by a broker that died without
// releasing it (SIGKILL, a lost machine: the disaster-recovery case). Open cannot tell
// them apart at once, so it watches: it logs that it waits, polls until the lease's TTL has
// run out, and takes it over then; a renewal seen meanwhile means a live holder, and the
// start is refused (at most about a third of the TTL after the first look).

import (
	"context"
	"errors"
	"time"

	"github.com/klite/klite/broker/logstore"
)

func (b *Broker) acquireLease(l *logstore.S3Lease) error {
	var first *logstore.LeaseHeldError
	var deadline time.Time
	started := time.Now()
	for round := 0; ; round++ {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := l.Acquire(ctx)
		cancel()
		var held *logstore.LeaseHeldError
		if !errors.As(err, &held) {
			if err == nil && first != nil {
				b.log.Warn("S3 tier: the previous holder's writer lease expired unrenewed; taken over", "waited", time.Since(started).Round(time.Millisecond))
			}
			return err
		}
		ttl := time.Duration(held.Holder.TTLMs) * time.Millisecond
		if first == nil {
			first = held
			left := ttl - held.Age
			deadline = time.Now().Add(left + ttl/10 + time.Second)
			b.log.Warn("S3 tier: WAITING for the writer lease: another broker holds it, or held it and stopped without releasing it (killed?); "+
				"taking it over once it expires, refusing to start if its holder renews it",
				"lease", "s3://"+held.Bucket+"/"+held.Key, "holder_host", held.Holder.Host, "holder_pid", held.Holder.PID,
				"renewed_ago", held.Age.Round(time.Millisecond), "expires_in", left.Round(time.Millisecond), "ttl", ttl)
		} else if held.Holder.Owner != first.Holder.Owner || held.Holder.RenewedMs != first.Holder.RenewedMs {
			return err // renewed meanwhile: a live broker
		}
		if time.Now().After(deadline) || round >= 10000 {
			return err
		}
		time.Sleep(min(max(ttl/20, 100*time.Millisecond), time.Second, time.Until(deadline)+time.Millisecond))
	}
}
