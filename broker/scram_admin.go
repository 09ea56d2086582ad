package broker

// DescribeUserScramCredentials (50) v0 and AlterUserScramCredentials (51) v0, with Kafka 4.0's
// validation and error codes (ScramControlManager, ScramImage.describe): a user named twice
// in one request is DUPLICATE_RESOURCE (so a user's two mechanisms take two requests, as in
// Kafka), iterations outside 4096..16384 are UNACCEPTABLE_CREDENTIAL, an unknown mechanism is
// UNSUPPORTED_SASL_MECHANISM, deleting or describing a missing credential RESOURCE_NOT_FOUND.
// Accepted changes are appended to the metadata log in one batch before the answer, so they
// survive a restart and the next authentication sees them.

import (
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() {
	register(50, 0, 0, handleDescribeUserScramCredentials)
	register(51, 0, 0, handleAlterUserScramCredentials)
}

func handleDescribeUserScramCredentials(b *Broker, rc *ReqCtx, req kmsg.Request, respond func(kmsg.Response)) {
	r := req.(*kmsg.DescribeUserSCRAMCredentialsRequest)
	resp := r.ResponseKind().(*kmsg.DescribeUserSCRAMCredentialsResponse)
	if !b.allowedCluster(rc, kmsg.ACLOperationDescribe) { // ACLs, as Kafka
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		respond(resp)
		return
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	dup := map[string]bool{} // user -> named more than once
	if len(r.Users) == 0 {
		for k := range b.scram {
			dup[k.user] = false
		}
	} else {
		for _, u := range r.Users {
			_, seen := dup[u.Name]
			dup[u.Name] = seen
		}
	}
	users := make([]string, 0, len(dup))
	for u := range dup {
		users = append(users, u)
	}
	sort.Strings(users)
	for _, u := range users {
		res := kmsg.NewDescribeUserSCRAMCredentialsResponseResult()
		res.User = u
		switch {
		case dup[u]:
			res.ErrorCode = kerr.DuplicateResource.Code
			res.ErrorMessage = kmsg.StringPtr("Cannot describe SCRAM credentials for the same user twice in a single request: " + u)
		default:
			for _, mech := range []string{mechScramSHA256, mechScramSHA512} {
				if c, ok := b.scram[scramKey{u, mech}]; ok {
					ci := kmsg.NewDescribeUserSCRAMCredentialsResponseResultCredentialInfo()
					ci.Mechanism, ci.Iterations = scramMechType(mech), int32(c.Iters)
					res.CredentialInfos = append(res.CredentialInfos, ci)
				}
			}
			if len(res.CredentialInfos) == 0 {
				res.ErrorCode = kerr.ResourceNotFound.Code
				res.ErrorMessage = kmsg.StringPtr("attemptToDescribeUserThatDoesNotExist: " + u)
			}
		}
		resp.Results = append(resp.Results, res)
	}
	respond(resp)
}

type scramAltError struct {
	code int16
	msg  string
}

func handleAlterUserScramCredentials(b *Broker, rc *ReqCtx, req kmsg.Request, respond func(kmsg.Response)) {
	r := req.(*kmsg.AlterUserSCRAMCredentialsRequest)
	resp := r.ResponseKind().(*kmsg.AlterUserSCRAMCredentialsResponse)
	if !b.allowedCluster(rc, kmsg.ACLOperationAlter) { // ACLs, as Kafka: every user named fails
		seen := map[string]bool{}
		add := func(u string) {
			if !seen[u] {
				seen[u] = true
				res := kmsg.NewAlterUserSCRAMCredentialsResponseResult()
				res.User, res.ErrorCode = u, kerr.ClusterAuthorizationFailed.Code
				resp.Results = append(resp.Results, res)
			}
		}
		for _, d := range r.Deletions {
			add(d.Name)
		}
		for _, u := range r.Upsertions {
			add(u.Name)
		}
		respond(resp)
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()

	errs := map[string]scramAltError{}
	var errOrder []string
	fail := func(user string, code int16, msg string) {
		if _, ok := errs[user]; !ok {
			errOrder = append(errOrder, user)
		}
		errs[user] = scramAltError{code, msg}
	}
	const dupMsg = "A user credential cannot be altered twice in the same request"
	dels := map[string]kmsg.AlterUserSCRAMCredentialsRequestDeletion{}
	var delOrder []string
	for _, d := range r.Deletions {
		if _, bad := errs[d.Name]; bad {
			continue
		}
		if _, ok := dels[d.Name]; ok {
			delete(dels, d.Name)
			fail(d.Name, kerr.DuplicateResource.Code, dupMsg)
			continue
		}
		if e := validateScramName(d.Name, d.Mechanism); e != nil {
			fail(d.Name, e.code, e.msg)
			continue
		}
		if _, ok := b.scram[scramKey{d.Name, scramMechName(d.Mechanism)}]; !ok {
			fail(d.Name, kerr.ResourceNotFound.Code, "Attempt to delete a user credential that does not exist")
			continue
		}
		dels[d.Name] = d
		delOrder = append(delOrder, d.Name)
	}
	ups := map[string]kmsg.AlterUserSCRAMCredentialsRequestUpsertion{}
	var upOrder []string
	for _, u := range r.Upsertions {
		if _, bad := errs[u.Name]; bad {
			continue
		}
		_, inDel := dels[u.Name]
		_, inUp := ups[u.Name]
		if inDel || inUp {
			delete(dels, u.Name)
			delete(ups, u.Name)
			fail(u.Name, kerr.DuplicateResource.Code, dupMsg)
			continue
		}
		if e := validateScramName(u.Name, u.Mechanism); e != nil {
			fail(u.Name, e.code, e.msg)
			continue
		}
		switch {
		case u.Iterations < scramMinIters:
			fail(u.Name, kerr.UnacceptableCredential.Code, "Too few iterations")
			continue
		case u.Iterations > scramMaxIters:
			fail(u.Name, kerr.UnacceptableCredential.Code, "Too many iterations")
			continue
		case len(u.SaltedPassword) == 0 || len(u.Salt) == 0:
			fail(u.Name, kerr.UnacceptableCredential.Code, "Salt and salted password must not be empty")
			continue
		}
		ups[u.Name] = u
		upOrder = append(upOrder, u.Name)
	}

	var recs []metaRecord
	type change struct {
		k   scramKey
		c   scramCred
		del bool
	}
	var changes []change
	for _, name := range delOrder {
		d, ok := dels[name]
		if !ok {
			continue
		}
		k := scramKey{name, scramMechName(d.Mechanism)}
		recs = append(recs, metaRecord{Type: "delete_scram", Name: name, Mechanism: k.mech})
		changes = append(changes, change{k: k, del: true})
	}
	for _, name := range upOrder {
		u, ok := ups[name]
		if !ok {
			continue
		}
		mech := scramMechName(u.Mechanism)
		k := scramKey{name, mech}
		c := scramCredFromSalted(mech, append([]byte(nil), u.Salt...), u.SaltedPassword, int(u.Iterations))
		recs = append(recs, k.record(c))
		changes = append(changes, change{k: k, c: c})
	}
	var storeErr error
	if len(recs) > 0 {
		storeErr = b.appendMetaLocked(recs...)
	}
	if storeErr == nil {
		for _, ch := range changes {
			if ch.del {
				delete(b.scram, ch.k)
			} else {
				b.scram[ch.k] = ch.c
			}
		}
	} else {
		b.log.Error("persisting SCRAM credentials", "err", storeErr)
	}
	add := func(user string, code int16, msg *string) {
		res := kmsg.NewAlterUserSCRAMCredentialsResponseResult()
		res.User, res.ErrorCode, res.ErrorMessage = user, code, msg
		resp.Results = append(resp.Results, res)
	}
	for _, ch := range changes {
		if storeErr != nil {
			add(ch.k.user, kerr.UnknownServerError.Code, kmsg.StringPtr("could not persist the credential"))
		} else {
			add(ch.k.user, 0, nil)
		}
	}
	for _, name := range errOrder {
		e := errs[name]
		add(name, e.code, kmsg.StringPtr(e.msg))
	}
	respond(resp)
}

func validateScramName(name string, mech int8) *scramAltError {
	if name == "" {
		return &scramAltError{kerr.UnacceptableCredential.Code, "Username must not be empty"}
	}
	if scramMechName(mech) == "" {
		return &scramAltError{kerr.UnsupportedSaslMechanism.Code, "Unknown SCRAM mechanism"}
	}
	return nil
}
