package broker

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// testPKI is a CA with a server certificate for 127.0.0.1 and a client certificate.
type testPKI struct {
	pool   *x509.CertPool
	server tls.Certificate
	client tls.Certificate
	other  tls.Certificate // signed by a CA the broker does not trust
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	ca, caKey := selfSigned(t, "klite test CA")
	otherCA, otherKey := selfSigned(t, "untrusted CA")
	p := &testPKI{pool: x509.NewCertPool()}
	p.pool.AddCert(ca)
	p.server = leaf(t, ca, caKey, pkix.Name{CommonName: "127.0.0.1"}, x509.ExtKeyUsageServerAuth)
	p.client = leaf(t, ca, caKey, pkix.Name{CommonName: "client", Organization: []string{"klite"}, OrganizationalUnit: []string{"eng"}}, x509.ExtKeyUsageClientAuth)
	p.other = leaf(t, otherCA, otherKey, pkix.Name{CommonName: "intruder"}, x509.ExtKeyUsageClientAuth)
	return p
}

var serial int64

func selfSigned(t *testing.T, cn string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial++
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c, key
}

func leaf(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey, subj pkix.Name, usage x509.ExtKeyUsage) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial++
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: subj,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: c}
}

// startTLSBroker serves on a TLS listener; mtls requires client certificates from the CA.
func startTLSBroker(t *testing.T, p *testPKI, mtls bool, mod ...func(*Config)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{DataDir: t.TempDir(), AdvertisedAddr: l.Addr().String(), AutoCreateTopics: true}
	for _, m := range mod {
		m(&cfg)
	}
	b, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{p.server}, MinVersion: tls.VersionTLS12}
	if mtls {
		tc.ClientCAs, tc.ClientAuth = p.pool, tls.RequireAndVerifyClientCert
	}
	go b.Serve(tls.NewListener(l, tc))
	t.Cleanup(func() { b.Close() })
	return l.Addr().String()
}

func tlsClient(t *testing.T, addr string, p *testPKI, cert *tls.Certificate, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	tc := &tls.Config{RootCAs: p.pool, MinVersion: tls.VersionTLS12}
	if cert != nil {
		tc.Certificates = []tls.Certificate{*cert}
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.DialTLSConfig(tc), kgo.RetryTimeout(3 * time.Second),
		kgo.AllowAutoTopicCreation()}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func produceOne(t *testing.T, cl *kgo.Client, topic string) error {
	t.Helper()
	return cl.ProduceSync(ctxT(t, 15*time.Second), &kgo.Record{Topic: topic, Value: []byte("v")}).FirstErr()
}

// TestTLSListener: a TLS listener serves TLS clients; with mTLS only clients presenting a
// certificate from the trusted CA get in; TLS plus SASL (SASL_SSL) needs both.
func TestTLSListener(t *testing.T) {
	p := newTestPKI(t)
	t.Run("tls", func(t *testing.T) {
		addr := startTLSBroker(t, p, false)
		if err := produceOne(t, tlsClient(t, addr, p, nil), "tls"); err != nil {
			t.Fatalf("TLS client: %v", err)
		}
		// A plaintext client gets nothing.
		plain, _ := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RetryTimeout(time.Second), kgo.DialTimeout(2*time.Second))
		defer plain.Close()
		if err := plain.Ping(ctxT(t, 10*time.Second)); err == nil {
			t.Fatal("plaintext client talked to a TLS listener")
		}
	})
	t.Run("mtls", func(t *testing.T) {
		addr := startTLSBroker(t, p, true)
		if err := produceOne(t, tlsClient(t, addr, p, &p.client), "mtls"); err != nil {
			t.Fatalf("client with a trusted certificate: %v", err)
		}
		if err := tlsClient(t, addr, p, nil).Ping(ctxT(t, 10*time.Second)); err == nil {
			t.Fatal("client without a certificate got in")
		}
		if err := tlsClient(t, addr, p, &p.other).Ping(ctxT(t, 10*time.Second)); err == nil {
			t.Fatal("client with an untrusted certificate got in")
		}
	})
	t.Run("sasl_ssl", func(t *testing.T) {
		addr := startTLSBroker(t, p, false, saslOn(mechScramSHA256))
		if err := produceOne(t, tlsClient(t, addr, p, nil, kgo.SASL(mechanism(mechScramSHA256, "admin", "admin-secret"))), "sasl-ssl"); err != nil {
			t.Fatalf("SASL_SSL client: %v", err)
		}
		err := tlsClient(t, addr, p, nil, kgo.SASL(mechanism(mechScramSHA256, "admin", "bad"))).Ping(ctxT(t, 10*time.Second))
		if !errors.Is(err, kerr.SaslAuthenticationFailed) {
			t.Fatalf("SASL_SSL wrong password: %v", err)
		}
	})
}

// TestTLSPrincipal: the principal of a client certificate is "User:" and its subject in
// RFC 2253 order, as Kafka's default principal builder (X500Principal.getName()).
func TestTLSPrincipal(t *testing.T) {
	p := newTestPKI(t)
	cs := &tls.ConnectionState{PeerCertificates: []*x509.Certificate{p.client.Leaf}}
	if got := tlsPrincipal(cs); got != "User:CN=client,OU=eng,O=klite" {
		t.Fatalf("principal %q", got)
	}
	if got := tlsPrincipal(&tls.ConnectionState{}); got != "" {
		t.Fatalf("no certificate: principal %q", got)
	}
	if got := tlsPrincipal(nil); got != "" {
		t.Fatalf("plaintext: principal %q", got)
	}
}
