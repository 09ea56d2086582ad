package broker

// SASL authentication: SaslHandshake (17) v0-1 and SaslAuthenticate (36) v0-2 with PLAIN,
// SCRAM-SHA-256 and SCRAM-SHA-512, as Kafka's SaslServerAuthenticator runs them.
//
// Per connection (server.Conn.Auth holds a *saslConn):
//
//	new ──ApiVersions──▶ new
//	new ──SaslHandshake v1 (enabled mechanism)──▶ authenticating ──SaslAuthenticate…──▶ authenticated
//	new ──SaslHandshake v0──▶ bare size-prefixed tokens (no Kafka headers) ──▶ authenticated
//	authenticated ──SaslHandshake (same mechanism, client sent SaslAuthenticate v1+)──▶ re-authenticating (KIP-368)
//
// Before authentication only ApiVersions, SaslHandshake and SaslAuthenticate pass the gate
// (saslAdmits, called by Dispatch); anything else closes the connection unanswered, as Kafka
// does. A refused mechanism or a failed authentication is answered (UNSUPPORTED_SASL_MECHANISM,
// SASL_AUTHENTICATION_FAILED with a message that does not say whether the user exists) and
// the connection is closed. With MaxReauth set, a session expires that long after it was
// authenticated (session_lifetime_ms tells the client); then only a re-authentication may
// follow, anything else closes, as Kafka's connections.max.reauth.ms.
//
// PLAIN checks the bootstrap user's configured password, or any user's stored SCRAM
// credential (so users created with AlterUserScramCredentials can use either mechanism).
// SCRAM runs github.com/xdg-go/scram against the stored credentials; an unknown user gets a
// decoy credential so the exchange fails only at the proof, like a wrong password.

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/klite/klite/broker/server"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/xdg-go/scram"
)

// SASLConfig configures authentication.
type SASLConfig struct {
	// Enabled requires every connection to authenticate.
	Enabled bool
	// Mechanisms enabled, in the order the handshake lists them (default PLAIN).
	Mechanisms []string
	// User and Password are the bootstrap user: it may log in with PLAIN and gets SCRAM
	// credentials for every enabled SCRAM mechanism. Required when Enabled.
	User, Password string
	// MaxReauth is Kafka's connections.max.reauth.ms: sessions expire this long after
	// authentication unless the client re-authenticates. Zero: sessions never expire.
	MaxReauth time.Duration
}

func init() {
	register(17, 0, 1, handleSaslHandshake)
	register(36, 0, 2, handleSaslAuthenticate)
}

// saslConn is one connection's authentication state. It is only touched on the connection's
// reading goroutine (Dispatch and raw tokens run there), so it needs no lock.
type saslConn struct {
	mech          string // mechanism of the handshake in progress or of the session
	authenticated bool
	reauth        bool // a handshake on an authenticated connection started re-authentication
	v1            bool // client sent SaslAuthenticate v1+: it can re-authenticate
	principal     string
	expiry        time.Time // zero: the session never expires
	conv          *scram.ServerConversation
	inProgress    bool // handshake answered, authentication not finished
	failed        bool // refused: the connection closes shortly, nothing more is served
	countedAuth   bool // counted in the authenticated connections gauge (metrics_glue.go)
}

// saslFailDelay is how long a refused connection stays open after its answer (Kafka's
// connection.failed.authentication.delay.ms default), so clients read the error before the
// close.
const saslFailDelay = 100 * time.Millisecond

// refuse answers resp and closes the connection saslFailDelay later; nothing is served meanwhile.
func refuse(st *saslConn, resp kmsg.Response, respond func(kmsg.Response)) {
	st.failed = true
	respond(server.CloseAfter(resp, saslFailDelay))
}

// errSASLFailed is any credential failure; its text is never sent.
var errSASLFailed = errors.New("sasl: authentication failed")

func (b *Broker) initSASL() error {
	cfg := &b.cfg.SASL
	if len(cfg.Mechanisms) == 0 {
		cfg.Mechanisms = []string{mechPlain}
	}
	for _, m := range cfg.Mechanisms {
		if m != mechPlain && scramMechType(m) == scramTypeUnknown {
			return fmt.Errorf("unsupported SASL mechanism %q (want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)", m)
		}
	}
	if cfg.Enabled && (cfg.User == "" || cfg.Password == "") {
		return errors.New("SASL enabled without a bootstrap user and password")
	}
	rand.Read(b.saslSecret[:])
	return nil
}

// saslState returns c's authentication state, created at its first request. A TLS client
// certificate sets the principal then (Kafka's default principal builder: "User:" and the
// subject's distinguished name); SASL, when on, replaces it with the SASL user.
func saslState(c *server.Conn) *saslConn {
	st, _ := c.Auth.(*saslConn)
	if st == nil {
		st = &saslConn{}
		c.Auth = st
		if p := tlsPrincipal(c.TLS()); p != "" {
			c.Principal = p
		}
	}
	return st
}

// tlsPrincipal is the principal of a verified client certificate, or "" without one.
func tlsPrincipal(cs *tls.ConnectionState) string {
	if cs == nil || len(cs.PeerCertificates) == 0 {
		return ""
	}
	return "User:" + cs.PeerCertificates[0].Subject.String()
}

// saslAdmits is the gate in front of every handler: with SASL on, only an authenticated,
// unexpired connection reaches anything but the SASL and ApiVersions handlers.
func (b *Broker) saslAdmits(c *server.Conn, key int16) bool {
	st := saslState(c)
	if !b.cfg.SASL.Enabled {
		return true
	}
	if st.failed {
		return false
	}
	switch key {
	case 17, 36:
		return true // the handlers check the state
	case 18:
		return !st.inProgress || st.reauth
	}
	if !st.authenticated {
		return false
	}
	return st.expiry.IsZero() || !b.now().After(st.expiry)
}

func handleSaslHandshake(b *Broker, rc *ReqCtx, req kmsg.Request, respond func(kmsg.Response)) {
	r := req.(*kmsg.SASLHandshakeRequest)
	resp := r.ResponseKind().(*kmsg.SASLHandshakeResponse)
	if !b.cfg.SASL.Enabled || rc.conn == nil {
		// Kafka on a listener without SASL answers from KafkaApis.
		resp.ErrorCode = kerr.IllegalSaslState.Code
		respond(resp)
		return
	}
	c := rc.conn
	st := saslState(c)
	resp.SupportedMechanisms = b.cfg.SASL.Mechanisms
	switch {
	case st.inProgress:
		respond(server.CloseConnection) // a second handshake before finishing the first
		return
	case st.authenticated:
		if !st.v1 || r.Version < 1 {
			// Not a client that can re-authenticate: KafkaApis answers it.
			resp.ErrorCode = kerr.IllegalSaslState.Code
			respond(resp)
			return
		}
		if r.Mechanism != st.mech {
			resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
			refuse(st, resp, respond)
			return
		}
		st.reauth = true
	}
	if !slices.Contains(b.cfg.SASL.Mechanisms, r.Mechanism) {
		resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
		refuse(st, resp, respond)
		return
	}
	st.mech = r.Mechanism
	st.inProgress = true
	st.conv = nil
	if mt := scramMechType(r.Mechanism); mt != scramTypeUnknown {
		srv, err := scramLib(r.Mechanism).NewServer(func(user string) (scram.StoredCredentials, error) {
			return b.scramLookup(user, r.Mechanism), nil
		})
		if err != nil {
			respond(server.CloseConnection)
			return
		}
		st.conv = srv.NewConversation()
	}
	if r.Version == 0 {
		// Bare tokens follow, without SaslAuthenticate framing.
		c.ExpectRawToken(func(tok []byte) ([]byte, bool) { return b.rawSASLStep(c, st, tok) })
	}
	respond(resp)
}

// rawSASLStep handles one bare token after SaslHandshake v0; a failure closes the connection
// without an answer, as Kafka does for this framing.
func (b *Broker) rawSASLStep(c *server.Conn, st *saslConn, tok []byte) ([]byte, bool) {
	out, done, err := b.saslStep(st, tok)
	if err != nil {
		b.log.Info("SASL authentication failed", "conn", c.ID, "remote", c.RemoteHost(), "mechanism", st.mech)
		return nil, false
	}
	if !done {
		c.ExpectRawToken(func(tok []byte) ([]byte, bool) { return b.rawSASLStep(c, st, tok) })
		return out, true
	}
	b.saslComplete(c, st)
	return out, true
}

func handleSaslAuthenticate(b *Broker, rc *ReqCtx, req kmsg.Request, respond func(kmsg.Response)) {
	r := req.(*kmsg.SASLAuthenticateRequest)
	resp := r.ResponseKind().(*kmsg.SASLAuthenticateResponse)
	if !b.cfg.SASL.Enabled || rc.conn == nil {
		resp.ErrorCode = kerr.IllegalSaslState.Code
		respond(resp)
		return
	}
	c := rc.conn
	st := saslState(c)
	if !st.inProgress {
		if st.authenticated {
			resp.ErrorCode = kerr.IllegalSaslState.Code // KafkaApis answers it outside authentication
			respond(resp)
			return
		}
		respond(server.CloseConnection) // no handshake yet
		return
	}
	if r.Version > 0 {
		st.v1 = true
	}
	out, done, err := b.saslStep(st, r.SASLAuthBytes)
	if err != nil {
		b.log.Info("SASL authentication failed", "conn", c.ID, "remote", c.RemoteHost(), "mechanism", st.mech, "reauthentication", st.reauth)
		resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
		msg := saslFailureMessage(st)
		resp.ErrorMessage = &msg
		refuse(st, resp, respond)
		return
	}
	resp.SASLAuthBytes = out
	if resp.SASLAuthBytes == nil {
		resp.SASLAuthBytes = []byte{}
	}
	if done {
		resp.SessionLifetimeMillis = b.saslComplete(c, st)
	}
	respond(resp)
}

// saslFailureMessage is the only text a failed client sees (Kafka's wording for a SaslException).
func saslFailureMessage(st *saslConn) string {
	what := "authentication"
	if st.reauth {
		what = "re-authentication"
	}
	return "Authentication failed during " + what + " due to invalid credentials with SASL mechanism " + st.mech
}

// saslStep feeds one client token to the mechanism. done means authenticated; the principal
// is then in st.principal (kept unchanged by a re-authentication, or it fails).
func (b *Broker) saslStep(st *saslConn, tok []byte) (out []byte, done bool, err error) {
	var principal string
	if st.conv == nil { // PLAIN
		user, ok := b.checkPlain(tok)
		if !ok {
			return nil, false, errSASLFailed
		}
		principal = "User:" + user
		out = []byte{}
	} else {
		s, err := st.conv.Step(string(tok))
		if err != nil {
			return nil, false, errSASLFailed
		}
		out = []byte(s)
		if !st.conv.Done() {
			return out, false, nil
		}
		if !st.conv.Valid() {
			return nil, false, errSASLFailed
		}
		principal = "User:" + st.conv.Username()
	}
	if st.reauth && principal != st.principal {
		return nil, false, errSASLFailed // Kafka: principals cannot change on re-authentication
	}
	st.principal = principal
	return out, true, nil
}

// saslComplete marks st authenticated and returns the session lifetime in milliseconds
// (0 when sessions do not expire).
func (b *Broker) saslComplete(c *server.Conn, st *saslConn) int64 {
	if st.reauth {
		b.saslReauths.Add(1)
	}
	st.authenticated, st.inProgress, st.reauth, st.conv = true, false, false, nil
	c.Principal = st.principal
	st.expiry = time.Time{}
	if d := b.cfg.SASL.MaxReauth; d > 0 {
		st.expiry = b.now().Add(d)
		return d.Milliseconds()
	}
	return 0
}

// checkPlain verifies a PLAIN token: authzid NUL authcid NUL password (RFC 4616).
func (b *Broker) checkPlain(tok []byte) (string, bool) {
	parts := bytes.Split(tok, []byte{0})
	if len(parts) != 3 {
		return "", false
	}
	authz, user, pass := string(parts[0]), string(parts[1]), string(parts[2])
	if user == "" || pass == "" || (authz != "" && authz != user) {
		return "", false
	}
	cfg := b.cfg.SASL
	if user == cfg.User && subtle.ConstantTimeCompare([]byte(pass), []byte(cfg.Password)) == 1 {
		return user, true
	}
	for _, mech := range []string{mechScramSHA512, mechScramSHA256} {
		if c, ok := b.lookupScram(user, mech); ok {
			return user, c.matches(mech, pass)
		}
	}
	// An unknown user costs the same key derivation as a known one, so timing does not tell
	// them apart.
	d := b.scramLookup(user, mechScramSHA256)
	scramCred{Salt: []byte(d.Salt), Iters: d.Iters, StoredKey: d.StoredKey}.matches(mechScramSHA256, pass)
	return "", false
}

// scramLookup returns user's credential, or a decoy that no proof matches (derived from a
// per-process secret, so repeated attempts for one name look alike).
func (b *Broker) scramLookup(user, mech string) scram.StoredCredentials {
	if c, ok := b.lookupScram(user, mech); ok {
		return scram.StoredCredentials{KeyFactors: scram.KeyFactors{Salt: string(c.Salt), Iters: c.Iters}, StoredKey: c.StoredKey, ServerKey: c.ServerKey}
	}
	m := hmac.New(sha256.New, b.saslSecret[:])
	m.Write([]byte(mech + "\x00" + strings.ToValidUTF8(user, "")))
	salt := m.Sum(nil)
	m.Write([]byte("key"))
	key := m.Sum(nil)
	return scram.StoredCredentials{KeyFactors: scram.KeyFactors{Salt: string(salt), Iters: scramMinIters}, StoredKey: key, ServerKey: key}
}
