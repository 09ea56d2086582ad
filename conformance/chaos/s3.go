package chaos

import (
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klite/klite/internal/motoserver"
)

// S3 faults: klite's S3 tier (--s3-*) talks to moto through an HTTP proxy of the harness's
// own, which each cycle, for Config.Pause, answers nothing (S3Down: every connection is
// closed at once, as a stopped server), delays every request (S3Slow: S3SlowBy before
// forwarding) or answers errors (S3Errors: 503 SlowDown and 500 InternalError in turn).
// Produce goes on from local disk meanwhile (or answers KAFKA_STORAGE_ERROR once the
// backlog reaches --s3-local-budget-bytes); afterwards the backlog drains to S3 and the
// checker holds klite to every acknowledged record, read back from S3 where local disk
// evicted it.
const (
	S3Down   = "s3-down"
	S3Slow   = "s3-slow"
	S3Errors = "s3-errors"
	// S3SlowBy is how long S3Slow holds each request.
	S3SlowBy = 1500 * time.Millisecond
)

// proxy modes
const (
	s3Pass int32 = iota
	s3Down
	s3Slow
	s3Errors
)

// S3Env is a moto server behind a fault proxy, with the bucket klite uses.
type S3Env struct {
	Bucket string
	moto   *motoserver.Server
	srv    *http.Server
	url    string
	mode   atomic.Int32
	n      atomic.Int64 // requests answered with an injected fault
	conns  sync.Map     // net.Conn -> struct{}: closed when the mode changes
}

// StartS3 starts moto (`make moto` installs it) and the proxy on loopback, creates bucket
// and sets the AWS credentials moto accepts in this process's environment (klite inherits
// them).
func StartS3(bucket string) (*S3Env, error) {
	m, err := motoserver.Launch()
	if err != nil {
		return nil, fmt.Errorf("S3 mode needs moto (make moto): %w", err)
	}
	if err := m.MakeBucket(bucket); err != nil {
		m.Stop()
		return nil, err
	}
	target, err := url.Parse(m.Endpoint)
	if err != nil {
		m.Stop()
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		m.Stop()
		return nil, err
	}
	e := &S3Env{Bucket: bucket, moto: m, url: "http://" + l.Addr().String()}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.ErrorLog = log.New(io.Discard, "", 0) // aborted requests are the point
	e.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch e.mode.Load() {
			case s3Down:
				e.n.Add(1)
				if hj, ok := w.(http.Hijacker); ok {
					if c, _, err := hj.Hijack(); err == nil {
						c.Close()
						return
					}
				}
				panic(http.ErrAbortHandler)
			case s3Slow:
				e.n.Add(1)
				time.Sleep(S3SlowBy)
			case s3Errors:
				if e.n.Add(1)%2 == 0 {
					http.Error(w, `<Error><Code>SlowDown</Code><Message>injected</Message></Error>`, http.StatusServiceUnavailable)
				} else {
					http.Error(w, `<Error><Code>InternalError</Code><Message>injected</Message></Error>`, http.StatusInternalServerError)
				}
				return
			}
			rp.ServeHTTP(w, r)
		}),
		ConnState: func(c net.Conn, s http.ConnState) {
			switch s {
			case http.StateNew:
				e.conns.Store(c, struct{}{})
			case http.StateClosed, http.StateHijacked:
				e.conns.Delete(c)
			}
		},
		ReadHeaderTimeout: 10 * time.Second,
	}
	go e.srv.Serve(l)
	os.Setenv("AWS_ACCESS_KEY_ID", motoserver.AccessKey)
	os.Setenv("AWS_SECRET_ACCESS_KEY", motoserver.SecretKey)
	os.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	return e, nil
}

// Flags are the klite flags of the S3 tier through the proxy, under prefix: small objects,
// a short flush interval and a small local budget, so that segments go to S3 and leave
// local disk within the run and reads come back from S3; a 1 s lease, so that a restart
// after SIGKILL waits about a second for the dead broker's lease.
func (e *S3Env) Flags(prefix string) []string {
	return []string{"--s3-bucket", e.Bucket, "--s3-endpoint", e.url, "--s3-region", motoserver.Region, "--s3-prefix", prefix,
		"--s3-flush-interval", "500ms", "--s3-target-object-bytes", "1048576", "--s3-local-budget-bytes", "4194304",
		"--s3-cache-bytes", "2097152", "--s3-lease-ttl", "1s"}
}

// Objects counts the objects under prefix in the bucket (at most 1000: the first page).
func (e *S3Env) Objects(prefix string) (int, error) {
	resp, err := http.Get(fmt.Sprintf("%s/%s?list-type=2&prefix=%s", e.moto.Endpoint, e.Bucket, url.QueryEscape(prefix)))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("list %s: %s", prefix, resp.Status)
	}
	return strings.Count(string(b), "<Key>"), nil
}

// Injected counts requests the proxy answered with a fault.
func (e *S3Env) Injected() int64 { return e.n.Load() }

func (e *S3Env) setMode(m int32) {
	e.mode.Store(m)
	// Requests on connections already open must meet the new mode too.
	e.conns.Range(func(k, _ any) bool {
		if m == s3Down {
			k.(net.Conn).Close()
		}
		return true
	})
}

// Close stops the proxy and moto.
func (e *S3Env) Close() {
	e.srv.Close()
	e.moto.Stop()
}

// inject is one cycle of an S3 fault: the mode for hold, then back to passing through.
func (e *S3Env) inject(fault string, hold time.Duration) error {
	m := map[string]int32{S3Down: s3Down, S3Slow: s3Slow, S3Errors: s3Errors}[fault]
	e.setMode(m)
	time.Sleep(hold)
	e.setMode(s3Pass)
	return nil
}
