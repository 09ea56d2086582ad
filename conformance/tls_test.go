package conformance

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"testing"
)

// TestWriteTLSFiles: the server certificate verifies for 127.0.0.1 against the CA, the client
// certificate for client auth, and the combined PEM holds key and chain.
func TestWriteTLSFiles(t *testing.T) {
	f, err := writeTLSFiles(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	caPEM, _ := os.ReadFile(f.CA)
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("no CA certificate")
	}
	for _, c := range []struct {
		cert, key string
		opts      x509.VerifyOptions
	}{
		{f.ServerCert, f.ServerKey, x509.VerifyOptions{Roots: pool, DNSName: "127.0.0.1"}},
		{f.ClientCert, f.ClientKey, x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}},
	} {
		pair, err := tls.LoadX509KeyPair(c.cert, c.key)
		if err != nil {
			t.Fatal(err)
		}
		leaf, err := x509.ParseCertificate(pair.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		if _, err := leaf.Verify(c.opts); err != nil {
			t.Fatalf("%s: %v", c.cert, err)
		}
	}
	if _, err := tls.LoadX509KeyPair(f.ServerPEM, f.ServerPEM); err != nil {
		t.Fatalf("combined PEM: %v", err)
	}
}
