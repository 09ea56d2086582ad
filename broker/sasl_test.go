package broker

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

var allMechs = []string{mechPlain, mechScramSHA256, mechScramSHA512}

func saslOn(mechs ...string) func(*Config) {
	return func(c *Config) {
		c.SASL = SASLConfig{Enabled: true, Mechanisms: mechs, User: "admin", Password: "admin-secret"}
	}
}

func mechanism(name, user, pass string) sasl.Mechanism {
	switch name {
	case mechScramSHA256:
		return scram.Auth{User: user, Pass: pass}.AsSha256Mechanism()
	case mechScramSHA512:
		return scram.Auth{User: user, Pass: pass}.AsSha512Mechanism()
	}
	return plain.Auth{User: user, Pass: pass}.AsMechanism()
}

// rawConn speaks the Kafka protocol by hand, to see exactly what the broker answers.
type rawConn struct {
	t    *testing.T
	nc   net.Conn
	corr int32
}

func dialSASLRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawConn{t: t, nc: nc}
}

// send writes req at its version.
func (c *rawConn) send(req kmsg.Request) {
	c.t.Helper()
	c.corr++
	buf := kmsg.NewRequestFormatter(kmsg.FormatterClientID("raw")).AppendRequest(nil, req, c.corr)
	if _, err := c.nc.Write(buf); err != nil {
		c.t.Fatal(err)
	}
}

// readFrame returns the next frame, or an error (io.EOF when the broker closed).
func (c *rawConn) readFrame() ([]byte, error) {
	c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	var sz [4]byte
	if _, err := io.ReadFull(c.nc, sz[:]); err != nil {
		return nil, err
	}
	b := make([]byte, binary.BigEndian.Uint32(sz[:]))
	_, err := io.ReadFull(c.nc, b)
	return b, err
}

// roundTrip sends req and decodes its response.
func (c *rawConn) roundTrip(req kmsg.Request) kmsg.Response {
	c.t.Helper()
	c.send(req)
	b, err := c.readFrame()
	if err != nil {
		c.t.Fatalf("%s: no response: %v", kmsg.NameForKey(req.Key()), err)
	}
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	body := b[4:] // correlation ID
	if resp.IsFlexible() && req.Key() != 18 {
		body = body[1:] // empty header tags
	}
	if err := resp.ReadFrom(body); err != nil {
		c.t.Fatalf("%s: decoding response: %v", kmsg.NameForKey(req.Key()), err)
	}
	return resp
}

// expectClosed asserts the broker closed the connection without answering.
func (c *rawConn) expectClosed(what string) {
	c.t.Helper()
	b, err := c.readFrame()
	if err == nil {
		c.t.Fatalf("%s: got a %d-byte answer, want the connection closed", what, len(b))
	}
	if !errors.Is(err, io.EOF) && !strings.Contains(err.Error(), "reset") {
		c.t.Fatalf("%s: %v, want the connection closed", what, err)
	}
}

func (c *rawConn) handshake(version int16, mech string) *kmsg.SASLHandshakeResponse {
	c.t.Helper()
	req := kmsg.NewPtrSASLHandshakeRequest()
	req.Version, req.Mechanism = version, mech
	return c.roundTrip(req).(*kmsg.SASLHandshakeResponse)
}

func (c *rawConn) authenticate(version int16, tok []byte) *kmsg.SASLAuthenticateResponse {
	c.t.Helper()
	req := kmsg.NewPtrSASLAuthenticateRequest()
	req.Version, req.SASLAuthBytes = version, tok
	return c.roundTrip(req).(*kmsg.SASLAuthenticateResponse)
}

// plainLogin authenticates with PLAIN over SaslAuthenticate v2.
func (c *rawConn) plainLogin(user, pass string) *kmsg.SASLAuthenticateResponse {
	c.t.Helper()
	if hs := c.handshake(1, mechPlain); hs.ErrorCode != 0 {
		c.t.Fatalf("handshake: %v", kerr.ErrorForCode(hs.ErrorCode))
	}
	return c.authenticate(2, []byte("\x00"+user+"\x00"+pass))
}

func (c *rawConn) metadataOK() {
	c.t.Helper()
	req := kmsg.NewPtrMetadataRequest()
	req.Version = 12
	if resp := c.roundTrip(req).(*kmsg.MetadataResponse); len(resp.Brokers) != 1 {
		c.t.Fatalf("metadata: %d brokers", len(resp.Brokers))
	}
}

// TestSASLClientsAuthenticate runs franz-go with every mechanism: right credentials produce and
// consume, a wrong password and an unknown user fail with SASL_AUTHENTICATION_FAILED and the
// same message.
func TestSASLClientsAuthenticate(t *testing.T) {
	tb := startBroker(t, t.TempDir(), saslOn(allMechs...))
	for _, mech := range allMechs {
		t.Run(mech, func(t *testing.T) {
			topic := "sasl-" + strings.ToLower(mech)
			cl := tb.client(t, kgo.SASL(mechanism(mech, "admin", "admin-secret")), kgo.AllowAutoTopicCreation())
			if err := cl.ProduceSync(ctxT(t, 15*time.Second), &kgo.Record{Topic: topic, Value: []byte("v")}).FirstErr(); err != nil {
				t.Fatalf("produce: %v", err)
			}
			recs := consumeN(t, tb, topic, 1, kgo.SASL(mechanism(mech, "admin", "admin-secret")))
			if string(recs[0].Value) != "v" {
				t.Fatalf("consumed %q", recs[0].Value)
			}
			var msgs []string
			for _, cred := range [][2]string{{"admin", "wrong"}, {"nobody", "admin-secret"}} {
				bad := tb.client(t, kgo.SASL(mechanism(mech, cred[0], cred[1])), kgo.RetryTimeout(time.Second))
				err := bad.Ping(ctxT(t, 15*time.Second))
				if !errors.Is(err, kerr.SaslAuthenticationFailed) {
					t.Fatalf("%s/%s: %v, want SASL_AUTHENTICATION_FAILED", cred[0], cred[1], err)
				}
				msgs = append(msgs, err.Error())
			}
			if msgs[0] != msgs[1] {
				t.Fatalf("wrong password and unknown user answer differently:\n%s\n%s", msgs[0], msgs[1])
			}
		})
	}
}

// TestSASLUnauthenticatedRequestsRefused sends every advertised API, other than the SASL ones
// and ApiVersions, on an unauthenticated connection: each closes the connection unanswered,
// and none changes anything.
func TestSASLUnauthenticatedRequestsRefused(t *testing.T) {
	tb := startBroker(t, t.TempDir(), saslOn(allMechs...))
	authed := tb.client(t, kgo.SASL(mechanism(mechPlain, "admin", "admin-secret")))
	admA := kadm.NewClient(authed)
	createTopic(t, admA, "keep", 1, nil)

	// Requests that would change something if they ran.
	mutating := map[int16]kmsg.Request{}
	{
		r := kmsg.NewPtrCreateTopicsRequest()
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "evil", 1, 1
		r.Topics = append(r.Topics, rt)
		mutating[19] = r
	}
	{
		r := kmsg.NewPtrDeleteTopicsRequest()
		r.TopicNames = []string{"keep"}
		dt := kmsg.NewDeleteTopicsRequestTopic()
		dt.Topic = kmsg.StringPtr("keep")
		r.Topics = append(r.Topics, dt)
		mutating[20] = r
	}
	{
		r := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
		u := kmsg.NewAlterUserSCRAMCredentialsRequestUpsertion()
		u.Name, u.Mechanism, u.Iterations, u.Salt, u.SaltedPassword = "evil", 1, 4096, []byte("salt"), []byte("salted-password-32-bytes-long!!!")
		r.Upsertions = append(r.Upsertions, u)
		mutating[51] = r
	}
	{
		r := kmsg.NewPtrProduceRequest()
		r.Acks, r.TimeoutMillis = -1, 5000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = "keep"
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Records = rawBatch(-1, -1, -1, 1, time.Now().UnixMilli(), 0)
		rt.Partitions = append(rt.Partitions, rp)
		r.Topics = append(r.Topics, rt)
		mutating[0] = r
	}

	n := 0
	for _, h := range supportedAPIs() {
		if h.key == 17 || h.key == 18 || h.key == 36 {
			continue
		}
		req, ok := mutating[h.key]
		if !ok {
			req = kmsg.RequestForKey(h.key)
		}
		req.SetVersion(h.max)
		for _, hs := range []bool{false, true} { // before any handshake, and after one
			c := dialSASLRaw(t, tb.addr)
			if hs {
				if resp := c.handshake(1, mechPlain); resp.ErrorCode != 0 {
					t.Fatalf("handshake: %v", kerr.ErrorForCode(resp.ErrorCode))
				}
			}
			c.send(req)
			c.expectClosed(kmsg.NameForKey(h.key))
			n++
		}
	}
	if n/2 < 30 {
		t.Fatalf("only %d APIs tried", n/2)
	}
	// Nothing changed.
	md, err := admA.Metadata(ctxT(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := md.Topics["evil"]; ok {
		t.Fatal("unauthenticated CreateTopics created a topic")
	}
	if _, ok := md.Topics["keep"]; !ok {
		t.Fatal("unauthenticated DeleteTopics deleted a topic")
	}
	offs, err := admA.ListEndOffsets(ctxT(t, 10*time.Second), "keep")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := offs.Lookup("keep", 0); o.Offset != 0 {
		t.Fatalf("unauthenticated Produce wrote: end offset %d", o.Offset)
	}
	if _, ok := tb.lookupScram("evil", mechScramSHA256); ok {
		t.Fatal("unauthenticated AlterUserScramCredentials created a user")
	}
}

// TestSASLHandshakeStates covers the state machine on raw connections.
func TestSASLHandshakeStates(t *testing.T) {
	tb := startBroker(t, t.TempDir(), saslOn(mechPlain, mechScramSHA256))

	t.Run("api versions before auth lists the SASL and SCRAM keys", func(t *testing.T) {
		c := dialSASLRaw(t, tb.addr)
		req := kmsg.NewPtrApiVersionsRequest()
		req.Version = 3
		req.ClientSoftwareName, req.ClientSoftwareVersion = "raw", "1"
		resp := c.roundTrip(req).(*kmsg.ApiVersionsResponse)
		want := map[int16][2]int16{17: {0, 1}, 36: {0, 2}, 50: {0, 0}, 51: {0, 0}}
		for _, k := range resp.ApiKeys {
			if w, ok := want[k.ApiKey]; ok {
				if k.MinVersion != w[0] || k.MaxVersion != w[1] {
					t.Errorf("key %d: versions %d-%d, want %d-%d", k.ApiKey, k.MinVersion, k.MaxVersion, w[0], w[1])
				}
				delete(want, k.ApiKey)
			}
		}
		if len(want) > 0 {
			t.Fatalf("not advertised: %v", want)
		}
		c.plainLogin("admin", "admin-secret")
		c.metadataOK()
	})
	t.Run("unsupported mechanism is answered then closed", func(t *testing.T) {
		c := dialSASLRaw(t, tb.addr)
		hs := c.handshake(1, "SCRAM-SHA-512")
		if hs.ErrorCode != kerr.UnsupportedSaslMechanism.Code || strings.Join(hs.SupportedMechanisms, ",") != "PLAIN,SCRAM-SHA-256" {
			t.Fatalf("handshake: %v %v", kerr.ErrorForCode(hs.ErrorCode), hs.SupportedMechanisms)
		}
		c.expectClosed("after refused mechanism")
	})
	t.Run("authenticate before handshake closes", func(t *testing.T) {
		c := dialSASLRaw(t, tb.addr)
		req := kmsg.NewPtrSASLAuthenticateRequest()
		req.Version, req.SASLAuthBytes = 2, []byte("\x00admin\x00admin-secret")
		c.send(req)
		c.expectClosed("SaslAuthenticate without handshake")
	})
	t.Run("wrong password is answered generically then closed", func(t *testing.T) {
		c := dialSASLRaw(t, tb.addr)
		resp := c.plainLogin("admin", "nope")
		if resp.ErrorCode != kerr.SaslAuthenticationFailed.Code || resp.ErrorMessage == nil ||
			*resp.ErrorMessage != "Authentication failed during authentication due to invalid credentials with SASL mechanism PLAIN" {
			t.Fatalf("auth: %v %v", kerr.ErrorForCode(resp.ErrorCode), resp.ErrorMessage)
		}
		// The connection stays open briefly (so the client reads the answer) but serves nothing:
		// not even a second attempt with the right password.
		req := kmsg.NewPtrSASLAuthenticateRequest()
		req.Version, req.SASLAuthBytes = 2, []byte("\x00admin\x00admin-secret")
		c.send(req)
		c.expectClosed("after failed authentication")
	})
	t.Run("v0 handshake then bare tokens", func(t *testing.T) {
		c := dialSASLRaw(t, tb.addr)
		if hs := c.handshake(0, mechPlain); hs.ErrorCode != 0 {
			t.Fatalf("handshake v0: %v", kerr.ErrorForCode(hs.ErrorCode))
		}
		tok := []byte("\x00admin\x00admin-secret")
		c.nc.Write(binary.BigEndian.AppendUint32(nil, uint32(len(tok))))
		c.nc.Write(tok)
		b, err := c.readFrame()
		if err != nil || len(b) != 0 {
			t.Fatalf("bare token answer %q %v, want an empty token", b, err)
		}
		c.metadataOK()

		c2 := dialSASLRaw(t, tb.addr)
		c2.handshake(0, mechPlain)
		tok = []byte("\x00admin\x00bad")
		c2.nc.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(tok))), tok...))
		c2.expectClosed("bare token with a wrong password")
	})
	t.Run("second handshake while authenticating closes", func(t *testing.T) {
		c := dialSASLRaw(t, tb.addr)
		c.handshake(1, mechPlain)
		req := kmsg.NewPtrSASLHandshakeRequest()
		req.Version, req.Mechanism = 1, mechPlain
		c.send(req)
		c.expectClosed("second handshake")
	})
}

// TestSASLDisabledAnswersIllegalState: without SASL the SASL APIs answer ILLEGAL_SASL_STATE,
// as Kafka on a PLAINTEXT listener, and everything else works unauthenticated.
func TestSASLDisabledAnswersIllegalState(t *testing.T) {
	tb := startBroker(t, t.TempDir())
	c := dialSASLRaw(t, tb.addr)
	if hs := c.handshake(1, mechPlain); hs.ErrorCode != kerr.IllegalSaslState.Code {
		t.Fatalf("handshake: %v", kerr.ErrorForCode(hs.ErrorCode))
	}
	if a := c.authenticate(2, []byte("\x00a\x00b")); a.ErrorCode != kerr.IllegalSaslState.Code {
		t.Fatalf("authenticate: %v", kerr.ErrorForCode(a.ErrorCode))
	}
	c.metadataOK()
}

func TestSASLEnabledWithoutUserFailsToOpen(t *testing.T) {
	_, err := Open(Config{DataDir: t.TempDir(), SASL: SASLConfig{Enabled: true, Mechanisms: []string{mechPlain}}})
	if err == nil || !strings.Contains(err.Error(), "bootstrap user") {
		t.Fatalf("Open: %v", err)
	}
	_, err = Open(Config{DataDir: t.TempDir(), SASL: SASLConfig{Enabled: true, Mechanisms: []string{"GSSAPI"}, User: "a", Password: "b"}})
	if err == nil || !strings.Contains(err.Error(), "GSSAPI") {
		t.Fatalf("Open with GSSAPI: %v", err)
	}
}

// TestSASLReauthentication: with MaxReauth the session lifetime is announced, an expired
// session is closed at its next request, and re-authenticating (KIP-368) before that renews
// it; the principal may not change.
func TestSASLReauthentication(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	tb := startBroker(t, t.TempDir(), saslOn(mechPlain), func(c *Config) {
		c.SASL.MaxReauth = time.Minute
		c.Now = clock
	})
	tb.mu.Lock()
	c, _ := scramCredFromPassword(mechScramSHA256, "bob-secret", scramMinIters)
	tb.scram[scramKey{"bob", mechScramSHA256}] = c
	tb.mu.Unlock()

	expired := dialSASLRaw(t, tb.addr)
	if a := expired.plainLogin("admin", "admin-secret"); a.ErrorCode != 0 || a.SessionLifetimeMillis != 60000 {
		t.Fatalf("auth: %v lifetime %d", kerr.ErrorForCode(a.ErrorCode), a.SessionLifetimeMillis)
	}
	renewed := dialSASLRaw(t, tb.addr)
	renewed.plainLogin("admin", "admin-secret")
	other := dialSASLRaw(t, tb.addr)
	other.plainLogin("admin", "admin-secret")

	advance(50 * time.Second)
	expired.metadataOK()
	if a := renewed.plainLogin("admin", "admin-secret"); a.ErrorCode != 0 || a.SessionLifetimeMillis != 60000 {
		t.Fatalf("re-auth: %v lifetime %d", kerr.ErrorForCode(a.ErrorCode), a.SessionLifetimeMillis)
	}
	if a := other.plainLogin("bob", "bob-secret"); a.ErrorCode != kerr.SaslAuthenticationFailed.Code {
		t.Fatalf("re-auth as another principal: %v", kerr.ErrorForCode(a.ErrorCode))
	}
	other.expectClosed("after re-authentication as another principal")

	advance(20 * time.Second) // 70s after the first login, 20s after the renewal
	renewed.metadataOK()
	req := kmsg.NewPtrMetadataRequest()
	req.Version = 12
	expired.send(req)
	expired.expectClosed("request on an expired session")
}

// TestSASLClientReauthenticates: franz-go, told a short session lifetime, re-authenticates
// (KIP-368) on its own and keeps producing on the same broker without a failure.
func TestSASLClientReauthenticates(t *testing.T) {
	for _, mech := range []string{mechPlain, mechScramSHA512} {
		t.Run(mech, func(t *testing.T) {
			tb := startBroker(t, t.TempDir(), saslOn(mech), func(c *Config) { c.SASL.MaxReauth = 1200 * time.Millisecond })
			cl := tb.client(t, kgo.SASL(mechanism(mech, "admin", "admin-secret")), kgo.AllowAutoTopicCreation())
			deadline := time.Now().Add(20 * time.Second)
			n := 0
			for tb.saslReauths.Load() < 2 {
				if time.Now().After(deadline) {
					t.Fatalf("%d re-authentications after %d produces in 20s", tb.saslReauths.Load(), n)
				}
				if err := produceOne(t, cl, "reauth"); err != nil {
					t.Fatalf("produce %d: %v", n, err)
				}
				n++
			}
		})
	}
}
