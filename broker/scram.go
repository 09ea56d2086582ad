package broker

// SCRAM credentials (RFC 5802 / RFC 7677) as Kafka keeps them: per user and mechanism, the
// salt, the iteration count, StoredKey = H(HMAC(SaltedPassword, "Client Key")) and
// ServerKey = HMAC(SaltedPassword, "Server Key"). Neither the password nor the salted
// password is ever stored: StoredKey only verifies a client proof, ServerKey only signs the
// server's final message. They live in the metadata log as
//
//	{"type":"scram","name":"alice","mechanism":"SCRAM-SHA-256","salt":"<b64>","iterations":4096,
//	 "stored_key":"<b64>","server_key":"<b64>"}         create or replace
//	{"type":"delete_scram","name":"alice","mechanism":"SCRAM-SHA-256"}
//
// and are guarded by b.mu with the rest of the metadata, so a change is effective for the
// next authentication.

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"fmt"
	"hash"
	"sort"

	"github.com/xdg-go/scram"
)

// SCRAM mechanism names and Kafka's ScramMechanism type codes (AlterUserScramCredentials).
const (
	mechPlain        = "PLAIN"
	mechScramSHA256  = "SCRAM-SHA-256"
	mechScramSHA512  = "SCRAM-SHA-512"
	scramMinIters    = 4096  // Kafka's ScramMechanism.minIterations for both hashes
	scramMaxIters    = 16384 // Kafka's ScramControlManager.MAX_ITERATIONS
	scramBootIters   = 4096  // iterations of the bootstrap user's credentials (kafka-storage's default)
	scramSaltBytes   = 32
	scramTypeSHA256  = int8(1)
	scramTypeSHA512  = int8(2)
	scramTypeUnknown = int8(0)
)

func scramMechName(t int8) string {
	switch t {
	case scramTypeSHA256:
		return mechScramSHA256
	case scramTypeSHA512:
		return mechScramSHA512
	}
	return ""
}

func scramMechType(name string) int8 {
	switch name {
	case mechScramSHA256:
		return scramTypeSHA256
	case mechScramSHA512:
		return scramTypeSHA512
	}
	return scramTypeUnknown
}

func scramHash(mech string) func() hash.Hash {
	if mech == mechScramSHA512 {
		return sha512.New
	}
	return sha256.New
}

func scramLib(mech string) scram.HashGeneratorFcn {
	if mech == mechScramSHA512 {
		return scram.SHA512
	}
	return scram.SHA256
}

// scramCred is one user's credential for one mechanism.
type scramCred struct {
	Salt      []byte
	Iters     int
	StoredKey []byte
	ServerKey []byte
}

type scramKey struct{ user, mech string }

// scramCredFromSalted derives the stored form from a salted password (what
// AlterUserScramCredentials carries).
func scramCredFromSalted(mech string, salt, salted []byte, iters int) scramCred {
	h := scramHash(mech)
	ck := hmac.New(h, salted)
	ck.Write([]byte("Client Key"))
	stored := h()
	stored.Write(ck.Sum(nil))
	sk := hmac.New(h, salted)
	sk.Write([]byte("Server Key"))
	return scramCred{Salt: salt, Iters: iters, StoredKey: stored.Sum(nil), ServerKey: sk.Sum(nil)}
}

// saltPassword is SCRAM's Hi(): PBKDF2 with the mechanism's hash.
func saltPassword(mech, password string, salt []byte, iters int) ([]byte, error) {
	h := scramHash(mech)
	return pbkdf2.Key(h, password, salt, iters, h().Size())
}

// scramCredFromPassword salts password with a fresh random salt.
func scramCredFromPassword(mech, password string, iters int) (scramCred, error) {
	salt := make([]byte, scramSaltBytes)
	rand.Read(salt)
	salted, err := saltPassword(mech, password, salt, iters)
	if err != nil {
		return scramCred{}, err
	}
	return scramCredFromSalted(mech, salt, salted, iters), nil
}

// matches reports whether password is the one c was made from (PLAIN against SCRAM storage).
func (c scramCred) matches(mech, password string) bool {
	salted, err := saltPassword(mech, password, c.Salt, c.Iters)
	if err != nil {
		return false
	}
	d := scramCredFromSalted(mech, c.Salt, salted, c.Iters)
	return subtle.ConstantTimeCompare(d.StoredKey, c.StoredKey) == 1
}

func (r scramKey) record(c scramCred) metaRecord {
	return metaRecord{Type: "scram", Name: r.user, Mechanism: r.mech, Salt: c.Salt, Iterations: c.Iters, StoredKey: c.StoredKey, ServerKey: c.ServerKey}
}

// replayScramMeta applies the SCRAM record types during metadata replay. b.mu held.
func (b *Broker) replayScramMeta(r metaRecord) error {
	if scramMechType(r.Mechanism) == scramTypeUnknown {
		return fmt.Errorf("metadata log: scram record with mechanism %q", r.Mechanism)
	}
	k := scramKey{r.Name, r.Mechanism}
	if r.Type == "delete_scram" {
		delete(b.scram, k)
		return nil
	}
	if r.Iterations <= 0 || len(r.StoredKey) == 0 || len(r.ServerKey) == 0 {
		return fmt.Errorf("metadata log: incomplete scram record for %q", r.Name)
	}
	b.scram[k] = scramCred{Salt: r.Salt, Iters: r.Iterations, StoredKey: r.StoredKey, ServerKey: r.ServerKey}
	return nil
}

// scramSnapshotLocked returns the records that rebuild the credentials. b.mu held.
func (b *Broker) scramSnapshotLocked() []metaRecord {
	keys := make([]scramKey, 0, len(b.scram))
	for k := range b.scram {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].user != keys[j].user {
			return keys[i].user < keys[j].user
		}
		return keys[i].mech < keys[j].mech
	})
	out := make([]metaRecord, 0, len(keys))
	for _, k := range keys {
		out = append(out, k.record(b.scram[k]))
	}
	return out
}

// lookupScram returns a user's credential for mech.
func (b *Broker) lookupScram(user, mech string) (scramCred, bool) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	c, ok := b.scram[scramKey{user, mech}]
	return c, ok
}

// bootstrapScram gives the --sasl-user credentials for every enabled SCRAM mechanism,
// written when missing or when they no longer match the configured password (the flag is
// the source of truth for that one user).
func (b *Broker) bootstrapScram() error {
	cfg := b.cfg.SASL
	if !cfg.Enabled || cfg.User == "" {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	var recs []metaRecord
	for _, mech := range cfg.Mechanisms {
		if scramMechType(mech) == scramTypeUnknown {
			continue
		}
		k := scramKey{cfg.User, mech}
		if c, ok := b.scram[k]; ok && c.matches(mech, cfg.Password) {
			continue
		}
		c, err := scramCredFromPassword(mech, cfg.Password, scramBootIters)
		if err != nil {
			return err
		}
		b.scram[k] = c
		recs = append(recs, k.record(c))
	}
	if len(recs) == 0 {
		return nil
	}
	return b.appendMetaLocked(recs...)
}
