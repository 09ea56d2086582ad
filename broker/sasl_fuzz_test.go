package broker

import (
	"testing"

	"github.com/klite/klite/broker/storage"
	"github.com/xdg-go/scram"
)

// FuzzSASLTokens feeds arbitrary client tokens to every mechanism, one or two steps deep: no
// token may crash the broker or authenticate without the password.
func FuzzSASLTokens(f *testing.F) {
	f.Add(uint8(0), []byte("\x00admin\x00admin-secret"), []byte(nil))
	f.Add(uint8(0), []byte("admin\x00admin\x00x"), []byte(nil))
	f.Add(uint8(1), []byte("n,,n=admin,r=abc"), []byte("c=biws,r=abc,p=AAAA"))
	f.Add(uint8(2), []byte("n,a=admin,n=admin,r=abc"), []byte("c=biws,r=abcdef,p="))
	f.Add(uint8(1), []byte("p=tls-unique,,n=a=3D,r=x"), []byte("garbage"))
	b, err := Open(Config{DataDir: f.TempDir(), WAL: storage.NewMemWAL(), Meta: storage.NewMemMetaLog(),
		SASL: SASLConfig{Enabled: true, Mechanisms: allMechs, User: "admin", Password: "admin-secret"}})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { b.Close() })
	f.Fuzz(func(t *testing.T, m uint8, first, second []byte) {
		mech := allMechs[int(m)%len(allMechs)]
		st := &saslConn{mech: mech, inProgress: true}
		if mech != mechPlain {
			srv, _ := scramLib(mech).NewServer(func(u string) (scram.StoredCredentials, error) { return b.scramLookup(u, mech), nil })
			st.conv = srv.NewConversation()
		}
		_, done, err := b.saslStep(st, first)
		if err != nil || done {
			if done && string(first) != "\x00admin\x00admin-secret" && string(first) != "admin\x00admin\x00admin-secret" {
				t.Fatalf("PLAIN token %q authenticated", first)
			}
			return
		}
		if _, done, err := b.saslStep(st, second); err == nil && done {
			t.Fatalf("%s authenticated from forged messages %q %q", mech, first, second)
		}
	})
}
