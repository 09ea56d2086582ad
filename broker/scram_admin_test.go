package broker

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestScramUserAdmin creates users through the admin API, logs in with them (both mechanisms
// and PLAIN), restarts, and deletes them: each change is effective on the next connection and
// durable; the password is never stored.
func TestScramUserAdmin(t *testing.T) {
	dir := t.TempDir()
	tb := startBroker(t, dir, saslOn(allMechs...))
	admin := kadm.NewClient(tb.client(t, kgo.SASL(mechanism(mechScramSHA512, "admin", "admin-secret"))))
	ctx := ctxT(t, 30*time.Second)

	// The bootstrap user has a credential for each enabled SCRAM mechanism.
	desc, err := admin.DescribeUserSCRAMs(ctx, "admin")
	if err != nil {
		t.Fatal(err)
	}
	if d := desc["admin"]; d.Err != nil || len(d.CredInfos) != 2 {
		t.Fatalf("bootstrap user: %+v", d)
	}

	// Two mechanisms for one user take two requests (Kafka refuses a user twice in one).
	for _, m := range []kadm.ScramMechanism{kadm.ScramSha256, kadm.ScramSha512} {
		res, err := admin.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{User: "carol", Mechanism: m, Iterations: 8192, Password: "carol-pw"}})
		if err != nil || res.AllFailed() || res["carol"].Err != nil {
			t.Fatalf("upsert carol %v: %v %+v", m, err, res)
		}
	}
	loginOK := func(tb *testBroker, mech, user, pass string) error {
		cl := tb.client(t, kgo.SASL(mechanism(mech, user, pass)), kgo.RetryTimeout(time.Second))
		defer cl.Close()
		return cl.Ping(ctxT(t, 15*time.Second))
	}
	for _, mech := range allMechs {
		if err := loginOK(tb, mech, "carol", "carol-pw"); err != nil {
			t.Fatalf("carol via %s: %v", mech, err)
		}
		if err := loginOK(tb, mech, "carol", "wrong"); !errors.Is(err, kerr.SaslAuthenticationFailed) {
			t.Fatalf("carol wrong password via %s: %v", mech, err)
		}
	}
	desc, err = admin.DescribeUserSCRAMs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d := desc["carol"]; d.Err != nil || len(d.CredInfos) != 2 || d.CredInfos[0].Iterations != 8192 {
		t.Fatalf("describe carol: %+v", d)
	}

	// Durable, and never the password itself.
	raw, err := os.ReadFile(filepath.Join(dir, "meta.log"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte("carol-pw")) || bytes.Contains(raw, []byte("admin-secret")) {
		t.Fatal("a password is in the metadata log")
	}
	tb.Close()
	tb = startBroker(t, dir, saslOn(allMechs...))
	if err := loginOK(tb, mechScramSHA256, "carol", "carol-pw"); err != nil {
		t.Fatalf("carol after restart: %v", err)
	}
	admin = kadm.NewClient(tb.client(t, kgo.SASL(mechanism(mechPlain, "admin", "admin-secret"))))

	// Changing the password takes effect on the next connection.
	res, err := admin.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{User: "carol", Mechanism: kadm.ScramSha256, Iterations: 4096, Password: "new-pw"}})
	if err != nil || res["carol"].Err != nil {
		t.Fatalf("change password: %v %+v", err, res)
	}
	if err := loginOK(tb, mechScramSHA256, "carol", "carol-pw"); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Fatalf("old password after change: %v", err)
	}
	if err := loginOK(tb, mechScramSHA256, "carol", "new-pw"); err != nil {
		t.Fatalf("new password: %v", err)
	}

	// Deleting: gone for that mechanism only, and gone after a restart.
	res, err = admin.AlterUserSCRAMs(ctx, []kadm.DeleteSCRAM{{User: "carol", Mechanism: kadm.ScramSha256}}, nil)
	if err != nil || res["carol"].Err != nil {
		t.Fatalf("delete: %v %+v", err, res)
	}
	if err := loginOK(tb, mechScramSHA256, "carol", "new-pw"); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Fatalf("deleted credential still logs in: %v", err)
	}
	if err := loginOK(tb, mechScramSHA512, "carol", "carol-pw"); err != nil {
		t.Fatalf("the other mechanism went too: %v", err)
	}
	tb.Close()
	tb = startBroker(t, dir, saslOn(allMechs...))
	if _, ok := tb.lookupScram("carol", mechScramSHA256); ok {
		t.Fatal("deleted credential back after restart")
	}
	if _, ok := tb.lookupScram("carol", mechScramSHA512); !ok {
		t.Fatal("kept credential lost after restart")
	}
}

// TestScramUserAdminErrors checks each error code against Kafka 4.0's ScramControlManager
// and ScramImage.describe, on a broker without SASL (the APIs work there as in Kafka).
func TestScramUserAdminErrors(t *testing.T) {
	tb := startBroker(t, t.TempDir())
	cl := tb.client(t)
	ctx := ctxT(t, 20*time.Second)
	ups := func(name string, mech int8, iters int32) kmsg.AlterUserSCRAMCredentialsRequestUpsertion {
		u := kmsg.NewAlterUserSCRAMCredentialsRequestUpsertion()
		u.Name, u.Mechanism, u.Iterations, u.Salt, u.SaltedPassword = name, mech, iters, []byte("salt"), bytes.Repeat([]byte{7}, 32)
		return u
	}
	del := func(name string, mech int8) kmsg.AlterUserSCRAMCredentialsRequestDeletion {
		d := kmsg.NewAlterUserSCRAMCredentialsRequestDeletion()
		d.Name, d.Mechanism = name, mech
		return d
	}
	alter := func(dels []kmsg.AlterUserSCRAMCredentialsRequestDeletion, up ...kmsg.AlterUserSCRAMCredentialsRequestUpsertion) map[string]int16 {
		t.Helper()
		req := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
		req.Deletions, req.Upsertions = dels, up
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]int16{}
		for _, r := range resp.Results {
			out[r.User] = r.ErrorCode
		}
		return out
	}
	got := alter([]kmsg.AlterUserSCRAMCredentialsRequestDeletion{del("ghost", 1), del("twice", 1), del("twice", 2)},
		ups("ok", 1, 4096), ups("few", 1, 4095), ups("many", 2, 16385), ups("", 1, 4096), ups("mech", 3, 4096),
		ups("both", 1, 4096), ups("both", 2, 4096))
	want := map[string]int16{
		"ghost": kerr.ResourceNotFound.Code,
		"twice": kerr.ResourceNotFound.Code, // the first error for a user is the one Kafka keeps
		"ok":    0,
		"few":   kerr.UnacceptableCredential.Code,
		"many":  kerr.UnacceptableCredential.Code,
		"":      kerr.UnacceptableCredential.Code,
		"mech":  kerr.UnsupportedSaslMechanism.Code,
		"both":  kerr.DuplicateResource.Code,
	}
	for u, w := range want {
		if g, ok := got[u]; !ok || g != w {
			t.Errorf("user %q: %v, want %v", u, kerr.ErrorForCode(g), kerr.ErrorForCode(w))
		}
	}
	if len(got) != len(want) {
		t.Errorf("results %v", got)
	}
	if _, ok := tb.lookupScram("both", mechScramSHA256); ok {
		t.Error("a refused upsertion was applied")
	}
	// An existing credential deleted twice in one request: DUPLICATE_RESOURCE, nothing deleted.
	if got := alter([]kmsg.AlterUserSCRAMCredentialsRequestDeletion{del("ok", 1), del("ok", 1)}); got["ok"] != kerr.DuplicateResource.Code || len(got) != 1 {
		t.Errorf("double delete: %v", got)
	}
	if _, ok := tb.lookupScram("ok", mechScramSHA256); !ok {
		t.Error("a refused deletion was applied")
	}

	dreq := kmsg.NewPtrDescribeUserSCRAMCredentialsRequest()
	for _, n := range []string{"ok", "ghost", "dup", "dup"} {
		u := kmsg.NewDescribeUserSCRAMCredentialsRequestUser()
		u.Name = n
		dreq.Users = append(dreq.Users, u)
	}
	dresp, err := dreq.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	dgot := map[string]kmsg.DescribeUserSCRAMCredentialsResponseResult{}
	for _, r := range dresp.Results {
		dgot[r.User] = r
	}
	if r := dgot["ok"]; r.ErrorCode != 0 || len(r.CredentialInfos) != 1 || r.CredentialInfos[0].Mechanism != 1 || r.CredentialInfos[0].Iterations != 4096 {
		t.Errorf("describe ok: %+v", r)
	}
	if r := dgot["ghost"]; r.ErrorCode != kerr.ResourceNotFound.Code {
		t.Errorf("describe ghost: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	if r := dgot["dup"]; r.ErrorCode != kerr.DuplicateResource.Code {
		t.Errorf("describe dup: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	if len(dresp.Results) != 3 {
		t.Errorf("describe results %d, want 3", len(dresp.Results))
	}
}

// TestScramSurvivesCompaction: credentials are part of the metadata snapshot written when the
// log is compacted, and a deletion stays deleted.
func TestScramSurvivesCompaction(t *testing.T) {
	dir := t.TempDir()
	tb := startBroker(t, dir)
	tb.mu.Lock()
	for _, u := range []string{"keep", "drop"} {
		c, err := scramCredFromPassword(mechScramSHA512, u+"-pw", scramMinIters)
		if err != nil {
			t.Fatal(err)
		}
		k := scramKey{u, mechScramSHA512}
		tb.scram[k] = c
		if err := tb.appendMetaLocked(k.record(c)); err != nil {
			t.Fatal(err)
		}
	}
	delete(tb.scram, scramKey{"drop", mechScramSHA512})
	if err := tb.appendMetaLocked(metaRecord{Type: "delete_scram", Name: "drop", Mechanism: mechScramSHA512}); err != nil {
		t.Fatal(err)
	}
	if err := tb.meta.Compact(tb.metaSnapshotLocked()); err != nil {
		t.Fatal(err)
	}
	tb.mu.Unlock()
	tb.Close()
	tb = startBroker(t, dir)
	c, ok := tb.lookupScram("keep", mechScramSHA512)
	if !ok || !c.matches(mechScramSHA512, "keep-pw") || c.matches(mechScramSHA512, "other") {
		t.Fatal("credential lost or changed by compaction")
	}
	if _, ok := tb.lookupScram("drop", mechScramSHA512); ok {
		t.Fatal("deleted credential back after compaction")
	}
}
