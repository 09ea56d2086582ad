package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Storage errors injected below the WAL and the metadata logs of the real process, through
// klite's test-only --test-storage-faults endpoint (PUT /debug/storage-faults on its health
// address; the broker needs StartBroker's health address and that flag). Each cycle makes
// every fsync (FsyncError: EIO after the data really reached the file, as a failing disk
// reports it) or every write (WriteError: EIO, nothing written) fail for Config.Pause while
// the workload keeps writing. Meanwhile a probe must be refused with KAFKA_STORAGE_ERROR (never
// acknowledged: what was not fsynced is not promised) and the broker must log the failure;
// once the errors stop, a probe must be acknowledged again without a restart. Every probe
// goes into the history, so the checker holds the broker to whatever it did acknowledge.
const (
	FsyncError = "fsync-error"
	WriteError = "write-error"
)

// StorageFaultFlags are the klite flags the injected storage faults need (besides the health
// address StartBroker gives every broker).
var StorageFaultFlags = []string{"--test-storage-faults"}

// setStorageFault asks the broker to inject (or, with "none", stop injecting) an error.
func setStorageFault(b *Broker, kind, errName string) error {
	if b.HealthAddr == "" {
		return errors.New("the broker has no health address for --test-storage-faults")
	}
	req, err := http.NewRequest(http.MethodPut, fmt.Sprintf("http://%s/debug/storage-faults?%s=%s", b.HealthAddr, kind, errName), nil)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("storage fault endpoint: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("storage fault endpoint (is klite started with --test-storage-faults?): %s: %s", resp.Status, body)
	}
	return nil
}

// injectStorage is one cycle of FsyncError or WriteError.
func (d *diskFull) injectStorage(fault string, hold time.Duration) error {
	kind, want := "sync", "fsync"
	if fault == WriteError {
		kind, want = "write", "WAL write"
	}
	mark := d.b.Lines()
	if err := setStorageFault(d.b, kind, "eio"); err != nil {
		return err
	}
	cleared := false
	clear := func() error {
		if cleared {
			return nil
		}
		cleared = true
		return setStorageFault(d.b, kind, "none")
	}
	defer clear()
	// Every group fails from now on: the first probe already must (bounded: 20 probes, in
	// case one raced the endpoint).
	var err error
	for i := 0; i < 20; i++ {
		if err = d.probe(); err != nil {
			break
		}
	}
	if !errors.Is(err, kerr.KafkaStorageError) {
		return fmt.Errorf("%s: want KAFKA_STORAGE_ERROR, the last probe got %v\n%s", fault, err, d.b.Tail(20))
	}
	// The broker says so in its log (the line may trail the answer a little: 5 s at most).
	said := false
	for i := 0; i < 50 && !said; i++ {
		for _, l := range d.b.LinesSince(mark) {
			if strings.Contains(l, "WAL append failed") && strings.Contains(l, want) && strings.Contains(l, "input/output error") {
				said = true
				break
			}
		}
		if !said {
			time.Sleep(100 * time.Millisecond)
		}
	}
	if !said {
		return fmt.Errorf("%s: produce refused but no \"WAL append failed\" line naming the %s error in the log\n%s", fault, want, d.b.Tail(20))
	}
	time.Sleep(hold) // the workload keeps writing into the failing disk meanwhile
	if err := clear(); err != nil {
		return err
	}
	for i := 0; i < 50; i++ {
		if err = d.probe(); err == nil {
			return nil
		}
		time.Sleep(time.Duration(min(i+1, 10)) * 100 * time.Millisecond)
	}
	return fmt.Errorf("%s: errors stopped but produce still fails: %v\n%s", fault, err, d.b.Tail(20))
}
