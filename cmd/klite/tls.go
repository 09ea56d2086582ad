package main

// TLS for the --listen listener: --tls-cert and --tls-key make it TLS (SSL, or SASL_SSL with
// --sasl-enabled); --tls-client-ca requires and verifies client certificates (mTLS), whose
// subject becomes the connection's principal (broker/tls.go). SIGHUP reloads the certificate
// and key, so a renewed certificate needs no restart; a reload that fails keeps the old one.

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
)

// certStore holds the serving certificate, swapped on reload.
type certStore struct {
	certFile, keyFile string
	cur               atomic.Pointer[tls.Certificate]
}

func (s *certStore) load() error {
	c, err := tls.LoadX509KeyPair(s.certFile, s.keyFile)
	if err != nil {
		return fmt.Errorf("loading --tls-cert/--tls-key: %w", err)
	}
	s.cur.Store(&c)
	return nil
}

// reload is load that logs instead of failing: the old certificate stays in use.
func (s *certStore) reload(log *slog.Logger) {
	if err := s.load(); err != nil {
		log.Error("TLS certificate reload failed; keeping the previous one", "err", err)
		return
	}
	log.Info("TLS certificate reloaded", "cert", s.certFile)
}

// tlsConfig builds the listener's TLS configuration, or nil when TLS is off.
func tlsConfig(o *options) (*tls.Config, *certStore, error) {
	if o.tlsCert == "" && o.tlsKey == "" {
		if o.tlsClientCA != "" {
			return nil, nil, errors.New("--tls-client-ca needs --tls-cert and --tls-key")
		}
		return nil, nil, nil
	}
	if o.tlsCert == "" || o.tlsKey == "" {
		return nil, nil, errors.New("--tls-cert and --tls-key go together")
	}
	store := &certStore{certFile: o.tlsCert, keyFile: o.tlsKey}
	if err := store.load(); err != nil {
		return nil, nil, err
	}
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return store.cur.Load(), nil
		},
	}
	if o.tlsClientCA != "" {
		pem, err := os.ReadFile(o.tlsClientCA)
		if err != nil {
			return nil, nil, fmt.Errorf("reading --tls-client-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, nil, fmt.Errorf("--tls-client-ca %s: no PEM certificates", o.tlsClientCA)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, store, nil
}
