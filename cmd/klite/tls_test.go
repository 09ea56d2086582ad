package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeSelfSigned writes a self-signed certificate with serial n and its key as PEM files.
func writeSelfSigned(t *testing.T, certFile, keyFile string, n int64) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(n), Subject: pkix.Name{CommonName: "klite"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
}

func servedSerial(t *testing.T, cfg *tls.Config) int64 {
	t.Helper()
	c, err := cfg.GetCertificate(&tls.ClientHelloInfo{})
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return leaf.SerialNumber.Int64()
}

// TestTLSConfigReload: the listener's certificate is read at start and again on reload
// (SIGHUP); a reload of broken files keeps serving the previous certificate.
func TestTLSConfigReload(t *testing.T) {
	dir := t.TempDir()
	cert, key, ca := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem"), filepath.Join(dir, "ca.pem")
	writeSelfSigned(t, cert, key, 1)
	writeSelfSigned(t, ca, filepath.Join(dir, "cakey.pem"), 9)
	o := &options{tlsCert: cert, tlsKey: key, tlsClientCA: ca}
	cfg, store, err := tlsConfig(o)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ClientAuth != tls.RequireAndVerifyClientCert || cfg.ClientCAs == nil {
		t.Fatal("--tls-client-ca does not require client certificates")
	}
	if s := servedSerial(t, cfg); s != 1 {
		t.Fatalf("serving serial %d", s)
	}
	log := slog.New(slog.DiscardHandler)
	writeSelfSigned(t, cert, key, 2)
	store.reload(log)
	if s := servedSerial(t, cfg); s != 2 {
		t.Fatalf("after reload serving serial %d, want 2", s)
	}
	os.WriteFile(key, []byte("garbage"), 0o600)
	store.reload(log)
	if s := servedSerial(t, cfg); s != 2 {
		t.Fatalf("after a failed reload serving serial %d, want the previous 2", s)
	}

	for _, bad := range []*options{{tlsCert: cert}, {tlsClientCA: ca}, {tlsCert: cert, tlsKey: filepath.Join(dir, "missing")},
		{tlsCert: filepath.Join(dir, "c.pem"), tlsKey: filepath.Join(dir, "cakey.pem"), tlsClientCA: key}} {
		if _, _, err := tlsConfig(bad); err == nil || strings.Contains(err.Error(), "\n") {
			t.Errorf("%+v: err %v, want a one-line error", bad, err)
		}
	}
	for _, args := range [][]string{{"--tls-cert", cert}, {"--tls-client-ca", ca}} {
		if _, err := parse(args, env(nil)); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}
