package conformance

// TLS variants of a target for the scenarios with `security: tls | mtls | sasl-ssl`, started on
// first use: the harness makes a throwaway CA, a server certificate for 127.0.0.1 and a client
// certificate (subject CN=klite-conformance-client,O=klite) with crypto/x509, and hands the
// drivers the PEM file paths in hello's `tls`. Kafka gets one more process with SSL, SASL_SSL
// and client-authenticating SSL listeners (run-kafka.sh, KAFKA_TLS_DIR); klite one process per
// kind (--tls-cert, --tls-key, --tls-client-ca, --sasl-enabled).

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TLSFiles are the PEM files of a TLS target; ServerPEM is key and chain in one file (Kafka's
// PEM keystore).
type TLSFiles struct {
	CA, ServerCert, ServerKey, ServerPEM, ClientCert, ClientKey string
}

// writeTLSFiles creates a CA, a server and a client certificate in dir.
func writeTLSFiles(dir string) (*TLSFiles, error) {
	now := time.Now()
	newKey := func() (*rsa.PrivateKey, error) { return rsa.GenerateKey(rand.Reader, 2048) }
	caKey, err := newKey()
	if err != nil {
		return nil, err
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "klite-conformance-ca"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	ca, _ := x509.ParseCertificate(caDER)
	leaf := func(serial int64, subject pkix.Name, usage x509.ExtKeyUsage, server bool) ([]byte, []byte, error) {
		k, err := newKey()
		if err != nil {
			return nil, nil, err
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: subject, NotBefore: now.Add(-time.Hour),
			NotAfter: now.Add(24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
			ExtKeyUsage: []x509.ExtKeyUsage{usage}}
		if server {
			tmpl.IPAddresses, tmpl.DNSNames = []net.IP{net.IPv4(127, 0, 0, 1)}, []string{"localhost"}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			return nil, nil, err
		}
		kder, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			return nil, nil, err
		}
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), nil
	}
	srvCert, srvKey, err := leaf(2, pkix.Name{CommonName: "127.0.0.1"}, x509.ExtKeyUsageServerAuth, true)
	if err != nil {
		return nil, err
	}
	cliCert, cliKey, err := leaf(3, pkix.Name{CommonName: "klite-conformance-client", Organization: []string{"klite"}}, x509.ExtKeyUsageClientAuth, false)
	if err != nil {
		return nil, err
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	f := &TLSFiles{CA: filepath.Join(dir, "ca.pem"), ServerCert: filepath.Join(dir, "server-cert.pem"), ServerKey: filepath.Join(dir, "server-key.pem"),
		ServerPEM: filepath.Join(dir, "server.pem"), ClientCert: filepath.Join(dir, "client-cert.pem"), ClientKey: filepath.Join(dir, "client-key.pem")}
	for path, data := range map[string][]byte{f.CA: caPEM, f.ServerCert: srvCert, f.ServerKey: srvKey,
		f.ServerPEM: append(append([]byte{}, srvKey...), srvCert...), f.ClientCert: cliCert, f.ClientKey: cliKey} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// tlsOpts are the harness's own client options for a TLS target of this kind.
func (f *TLSFiles) tlsOpts(kind string) ([]kgo.Opt, error) {
	caPEM, err := os.ReadFile(f.CA)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if kind == "mtls" {
		cert, err := tls.LoadX509KeyPair(f.ClientCert, f.ClientKey)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return []kgo.Opt{kgo.DialTLSConfig(cfg)}, nil
}

// TLSVariant returns the target for `security: tls | mtls | sasl-ssl`, starting it on first use.
func (t *Target) TLSVariant(ctx context.Context, kind string) (*Target, error) {
	t.saslMu.Lock()
	defer t.saslMu.Unlock()
	if v := t.tlsVariants[kind]; v != nil {
		return v, nil
	}
	if t.cmd == nil {
		return nil, fmt.Errorf("%s target at %s: TLS scenarios need a target the harness starts", t.Name, t.Addr)
	}
	if t.tlsVariants == nil {
		t.tlsVariants = map[string]*Target{}
	}
	var v *Target
	switch t.Name {
	case "klite", S3TargetName:
		var err error
		if v, err = startTarget(ctx, t.root, t.Name, "", kind); err != nil {
			return nil, err
		}
	case "kafka":
		if t.tlsKafka == nil {
			p, err := startTarget(ctx, t.root, t.Name, "", "tls")
			if err != nil {
				return nil, err
			}
			t.tlsKafka = p
		}
		p := t.tlsKafka
		v = &Target{Name: p.Name, Version: p.Version, APIs: p.APIs, cmd: p.cmd, done: p.done, log: p.log, shared: true, TLS: p.TLS}
		v.Addr = p.tlsAddrs[kind]
		if err := v.setTLSOpts(kind); err != nil {
			return nil, err
		}
		if err := v.connectAdmin(); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("unknown target %q", t.Name)
	}
	t.tlsVariants[kind] = v
	return v, nil
}

// setTLSOpts sets the harness's client options for a TLS target of this kind.
func (t *Target) setTLSOpts(kind string) error {
	opts, err := t.TLS.tlsOpts(kind)
	if err != nil {
		return err
	}
	t.connOpts = opts
	t.saslOpts = nil
	if kind == "sasl-ssl" {
		t.saslOpts = saslAdminOpts()
	}
	return nil
}
