// Command franz-go-driver is the conformance driver for github.com/twmb/franz-go: it reads
// harness commands (JSON lines, clients/README.md) on stdin and answers on stdout.
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// cmd is one decoded command; args stay raw so each op decodes what it needs.
type cmd struct {
	ID int64  `json:"id"`
	Op string `json:"op"`
}

// opErr is an op failing with a Kafka error name.
type opErr struct {
	name, msg string
}

func (e *opErr) Error() string { return e.name + ": " + e.msg }

// unsupported answers `unsupported`.
type unsupported struct{ reason string }

func (e *unsupported) Error() string { return "unsupported: " + e.reason }

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	d := &driver{log: log}
	defer d.closeAll()
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 256<<20)
	out := bufio.NewWriter(os.Stdout)
	for in.Scan() {
		line := in.Bytes()
		var c cmd
		if err := json.Unmarshal(line, &c); err != nil {
			log.Error("bad command line", "err", err)
			continue
		}
		var res map[string]any
		var err error
		if c.Op == "close" {
			d.closeAll()
			res = map[string]any{}
		} else if c.Op == "reset" {
			// Forget everything; the next command is hello (the harness reuses this process).
			d.closeAll()
			d.bootstrap, d.base = "", nil
			res = map[string]any{}
		} else {
			res, err = d.dispatch(c.Op, line)
		}
		ans := map[string]any{"id": c.ID}
		var u *unsupported
		var oe *opErr
		switch {
		case errors.As(err, &u):
			ans["unsupported"], ans["reason"] = true, u.reason
		case err != nil && errors.As(err, &oe):
			ans["ok"], ans["error"], ans["message"] = false, oe.name, oe.msg
		case err != nil:
			name, msg := errName(err)
			ans["ok"], ans["error"], ans["message"] = false, name, msg
		default:
			for k, v := range res {
				ans[k] = v
			}
			ans["ok"] = true
		}
		if err != nil {
			log.Info("op failed", "op", c.Op, "err", err)
		}
		b, _ := json.Marshal(ans)
		out.Write(append(b, '\n'))
		out.Flush()
		if c.Op == "close" {
			return
		}
	}
}

// errName maps a library error to a Kafka error name (clients/README.md).
func errName(err error) (string, string) {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Message, err.Error()
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, kgo.ErrRecordTimeout) {
		return "TIMEOUT", err.Error()
	}
	return "CLIENT_ERROR", err.Error()
}

// nameOf returns the error name for a per-item error, nil for success.
func nameOf(err error) any {
	if err == nil {
		return nil
	}
	n, _ := errName(err)
	return n
}

func libraryVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, m := range bi.Deps {
			if m.Path == "github.com/twmb/franz-go" {
				return m.Version
			}
		}
	}
	return "unknown"
}

func (d *driver) dispatch(op string, line []byte) (map[string]any, error) {
	decode := func(v any) error {
		if err := json.Unmarshal(line, v); err != nil {
			return &opErr{"CLIENT_ERROR", "bad args: " + err.Error()}
		}
		return nil
	}
	if op != "hello" && d.bootstrap == "" {
		return nil, &opErr{"CLIENT_ERROR", "hello must come first"}
	}
	switch op {
	case "hello":
		var a helloArgs
		if err := decode(&a); err != nil {
			return nil, err
		}
		return d.hello(a)
	case "create_topic":
		var a createTopicArgs
		if err := decode(&a); err != nil {
			return nil, err
		}
		return d.createTopic(a)
	case "delete_topic":
		var a struct{ Topic string }
		if err := decode(&a); err != nil {
			return nil, err
		}
		return d.deleteTopic(a.Topic)
	case "metadata":
		var a metadataArgs
		if err := decode(&a); err != nil {
			return nil, err
		}
		return d.metadata(a)
	case "produce":
		var a produceArgs
		if err := decode(&a); err != nil {
			return nil, err
		}
		return d.produce(a)
	case "produce_for":
		var a produceForArgs
		if err := decode(&a); err != nil {
			return nil, err
		}
		return d.produceFor(a)
	case "consume":
		var a consumeArgs
		if err := decode(&a); err != nil {
			return nil, err
		}
		return d.consume(a)
	case "list_offsets":
		var a listOffsetsArgs
		if err := decode(&a); err != nil {
			return nil, err
		}
		return d.listOffsets(a)
	case "group_subscribe":
		var a subscribeArgs
		if err := decode(&a); err != nil {
			return nil, err
		}
		return d.groupSubscribe(a)
	case "group_poll":
		var a pollArgs
		if err := decode(&a); err != nil {
			return nil, err
		}
		return d.groupPoll(a)
	case "group_commit":
		var a commitArgs
		if err := decode(&a); err != nil {
			return nil, err
		}
		return d.groupCommit(a)
	case "group_committed":
		var a committedArgs
		if err := decode(&a); err != nil {
			return nil, err
		}
		return d.groupCommitted(a)
	case "group_leave":
		return d.groupLeave()
	case "txn_init":
		var a txnInitArgs
		if err := decode(&a); err != nil {
			return nil, err
		}
		return d.txnInit(a)
	case "txn_begin":
		return d.txnBegin()
	case "txn_commit":
		return d.txnEnd(true)
	case "txn_abort":
		return d.txnEnd(false)
	case "txn_send_offsets":
		var a sendOffsetsArgs
		if err := decode(&a); err != nil {
			return nil, err
		}
		return d.txnSendOffsets(a)
	case "admin":
		var a adminArgs
		if err := decode(&a); err != nil {
			return nil, err
		}
		return d.admin(a)
	}
	return nil, &unsupported{"unknown op"}
}

type helloArgs struct {
	Bootstrap string `json:"bootstrap"`
	ClientID  string `json:"client_id"`
	SASL      *struct {
		Mechanism string `json:"mechanism"`
		User      string `json:"user"`
		Password  string `json:"password"`
	} `json:"sasl"`
	TLS *struct {
		CAFile   string `json:"ca_file"`
		CertFile string `json:"cert_file"`
		KeyFile  string `json:"key_file"`
	} `json:"tls"`
}

func (d *driver) hello(a helloArgs) (map[string]any, error) {
	if a.Bootstrap == "" {
		return nil, &opErr{"CLIENT_ERROR", "bootstrap missing"}
	}
	d.bootstrap = a.Bootstrap
	d.base = []kgo.Opt{kgo.SeedBrokers(strings.Split(a.Bootstrap, ",")...)}
	if a.ClientID != "" {
		d.base = append(d.base, kgo.ClientID(a.ClientID))
	}
	if a.SASL != nil {
		m, err := saslMechanism(a.SASL.Mechanism, a.SASL.User, a.SASL.Password)
		if err != nil {
			return nil, err
		}
		d.base = append(d.base, kgo.SASL(m))
	}
	if a.TLS != nil {
		cfg, err := tlsConfig(a.TLS.CAFile, a.TLS.CertFile, a.TLS.KeyFile)
		if err != nil {
			return nil, err
		}
		d.base = append(d.base, kgo.DialTLSConfig(cfg))
	}
	return map[string]any{"client": "franz-go", "library_version": libraryVersion()}, nil
}

func fmtErr(f string, a ...any) error { return &opErr{"CLIENT_ERROR", fmt.Sprintf(f, a...)} }

// tlsConfig trusts the CA in caFile and, for mTLS, presents certFile/keyFile.
func tlsConfig(caFile, certFile, keyFile string) (*tls.Config, error) {
	ca, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmtErr("tls ca_file: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, fmtErr("tls ca_file %s: no certificate", caFile)
	}
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmtErr("tls client certificate: %v", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}
