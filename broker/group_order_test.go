package broker

import (
	"bufio"
	"encoding/binary"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// pipeConn is one raw client connection that can pipeline requests: send writes a request
// without waiting, recv reads the next response in order.
type pipeConn struct {
	t    *testing.T
	c    net.Conn
	r    *bufio.Reader
	f    *kmsg.RequestFormatter
	corr int32
	sent []kmsg.Request // requests whose responses are not read yet, in order
	ids  []int32        // their correlation IDs
}

func dialPipe(t *testing.T, addr string) *pipeConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &pipeConn{t: t, c: c, r: bufio.NewReader(c), f: kmsg.NewRequestFormatter(kmsg.FormatterClientID("pipe"))}
}

func (p *pipeConn) send(req kmsg.Request) {
	p.t.Helper()
	p.corr++
	if _, err := p.c.Write(p.f.AppendRequest(nil, req, p.corr)); err != nil {
		p.t.Fatal(err)
	}
	p.sent = append(p.sent, req)
	p.ids = append(p.ids, p.corr)
}

// recv returns the response to the oldest unanswered request, failing after d.
func (p *pipeConn) recv(d time.Duration) kmsg.Response {
	p.t.Helper()
	resp, err := p.tryRecv(d)
	if err != nil {
		p.t.Fatal(err)
	}
	return resp
}

func (p *pipeConn) tryRecv(d time.Duration) (kmsg.Response, error) {
	p.c.SetReadDeadline(time.Now().Add(d))
	var size [4]byte
	if _, err := io.ReadFull(p.r, size[:]); err != nil {
		return nil, err
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(p.r, body); err != nil {
		p.t.Fatal(err)
	}
	req, want := p.sent[0], p.ids[0]
	p.sent, p.ids = p.sent[1:], p.ids[1:]
	rd := kbin.Reader{Src: body}
	if corr := rd.Int32(); corr != want {
		p.t.Fatalf("response correlation ID %d, want %d (%s)", corr, want, kmsg.NameForKey(req.Key()))
	}
	if req.IsFlexible() && req.Key() != 18 {
		for n := rd.Uvarint(); n > 0; n-- { // response header tags
			rd.Uvarint()
			rd.Span(int(rd.Uvarint()))
		}
	}
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	if err := resp.ReadFrom(rd.Src); err != nil {
		p.t.Fatalf("decoding %s response: %v", kmsg.NameForKey(req.Key()), err)
	}
	return resp, nil
}

// silent asserts that no response arrives on p within d.
func (p *pipeConn) silent(d time.Duration) {
	p.t.Helper()
	p.c.SetReadDeadline(time.Now().Add(d))
	if _, err := p.r.Peek(1); err == nil {
		p.t.Fatalf("unexpected response while %s is outstanding", kmsg.NameForKey(p.sent[0].Key()))
	}
}

func pipeJoin(group, member string) *kmsg.JoinGroupRequest {
	r := kmsg.NewPtrJoinGroupRequest()
	r.Version = 9
	r.Group, r.MemberID, r.ProtocolType = group, member, "consumer"
	r.SessionTimeoutMillis, r.RebalanceTimeoutMillis = 30000, 30000
	p := kmsg.NewJoinGroupRequestProtocol()
	p.Name = "range"
	md := kmsg.NewConsumerMemberMetadata()
	md.Topics = []string{"t"}
	p.Metadata = md.AppendTo(nil)
	r.Protocols = []kmsg.JoinGroupRequestProtocol{p}
	return r
}

func pipeSync(group, member string, gen int32, assign ...string) *kmsg.SyncGroupRequest {
	r := kmsg.NewPtrSyncGroupRequest()
	r.Version = 5
	r.Group, r.MemberID, r.Generation = group, member, gen
	pt, pn := "consumer", "range"
	r.ProtocolType, r.Protocol = &pt, &pn
	for _, m := range assign {
		a := kmsg.NewSyncGroupRequestGroupAssignment()
		a.MemberID, a.MemberAssignment = m, []byte{}
		r.GroupAssignment = append(r.GroupAssignment, a)
	}
	return r
}

func pipeHeartbeat(group, member string, gen int32) *kmsg.HeartbeatRequest {
	r := kmsg.NewPtrHeartbeatRequest()
	r.Version = 4
	r.Group, r.MemberID, r.Generation = group, member, gen
	return r
}

// newPipeMember does the KIP-394 round trip and sends the real JoinGroup (not awaited).
func newPipeMember(t *testing.T, p *pipeConn, group string) string {
	t.Helper()
	p.send(pipeJoin(group, ""))
	r := p.recv(10 * time.Second).(*kmsg.JoinGroupResponse)
	if r.ErrorCode != kerr.MemberIDRequired.Code {
		t.Fatalf("first join: error %d", r.ErrorCode)
	}
	p.send(pipeJoin(group, r.MemberID))
	return r.MemberID
}

func joined(t *testing.T, p *pipeConn, who string) *kmsg.JoinGroupResponse {
	t.Helper()
	r := p.recv(15 * time.Second).(*kmsg.JoinGroupResponse)
	if r.ErrorCode != 0 {
		t.Fatalf("%s join: %s", who, kerr.ErrorForCode(r.ErrorCode))
	}
	return r
}

func synced(t *testing.T, p *pipeConn, who string) {
	t.Helper()
	if r := p.recv(15 * time.Second).(*kmsg.SyncGroupResponse); r.ErrorCode != 0 {
		t.Fatalf("%s sync: %s", who, kerr.ErrorForCode(r.ErrorCode))
	}
}

// TestGroupRequestsPipelinedOnOneConnection: Kafka handles one request per connection at a
// time, so a Heartbeat or LeaveGroup pipelined behind a JoinGroup that waits for the
// rebalance is handled after the join completes. Set KLITE_TEST_KAFKA_ADDR to run the same
// steps against a real Kafka as well (the reference the expectations come from).
func TestGroupRequestsPipelinedOnOneConnection(t *testing.T) {
	targets := map[string]string{"klite": startBroker(t, t.TempDir()).addr}
	if a := os.Getenv("KLITE_TEST_KAFKA_ADDR"); a != "" {
		targets["kafka"] = a
	}
	for name, addr := range targets {
		t.Run(name, func(t *testing.T) {
			group := "pipelined-" + name + "-" + time.Now().Format("150405.000000")
			ca, cb, cc := dialPipe(t, addr), dialPipe(t, addr), dialPipe(t, addr)

			a := newPipeMember(t, ca, group)
			gen := joined(t, ca, "a").Generation
			ca.send(pipeSync(group, a, gen, a))
			synced(t, ca, "a")

			b := newPipeMember(t, cb, group) // a must rejoin for b to get in
			ca.send(pipeJoin(group, a))
			gen = joined(t, ca, "a").Generation
			joined(t, cb, "b")
			ca.send(pipeSync(group, a, gen, a, b))
			cb.send(pipeSync(group, b, gen))
			synced(t, ca, "a")
			synced(t, cb, "b")

			// c joins: a rejoins and, on the same connection, heartbeats at the old
			// generation while its JoinGroup waits for b.
			c := newPipeMember(t, cc, group)
			ca.send(pipeJoin(group, a))
			ca.send(pipeHeartbeat(group, a, gen))
			ca.silent(300 * time.Millisecond)
			cb.send(pipeJoin(group, b))
			ra := joined(t, ca, "a")
			if ra.Generation != gen+1 {
				t.Fatalf("a joined generation %d, want %d", ra.Generation, gen+1)
			}
			// Handled after the join: the generation has moved on.
			hb := ca.recv(10 * time.Second).(*kmsg.HeartbeatResponse)
			if hb.ErrorCode != kerr.IllegalGeneration.Code {
				t.Fatalf("pipelined heartbeat: %v, want ILLEGAL_GENERATION", kerr.ErrorForCode(hb.ErrorCode))
			}
			gen = ra.Generation
			joined(t, cb, "b")
			joined(t, cc, "c")
			ca.send(pipeSync(group, a, gen, a, b, c))
			cb.send(pipeSync(group, b, gen))
			cc.send(pipeSync(group, c, gen))
			synced(t, ca, "a")
			synced(t, cb, "b")
			synced(t, cc, "c")

			// The leader rejoins (a rebalance) and, on the same connection, leaves: the
			// leave waits for the join, which completes with a still a member.
			ca.send(pipeJoin(group, a))
			leave := kmsg.NewPtrLeaveGroupRequest()
			leave.Version = 5
			leave.Group = group
			leave.Members = []kmsg.LeaveGroupRequestMember{{MemberID: a}}
			ca.send(leave)
			ca.silent(300 * time.Millisecond)
			cb.send(pipeJoin(group, b))
			cc.send(pipeJoin(group, c))
			ra = joined(t, ca, "a")
			if ra.Generation != gen+1 || ra.LeaderID != a || len(ra.Members) != 3 {
				t.Fatalf("a's join before its pipelined leave: generation %d (want %d), leader %s, %d members",
					ra.Generation, gen+1, ra.LeaderID, len(ra.Members))
			}
			lr := ca.recv(10 * time.Second).(*kmsg.LeaveGroupResponse)
			if lr.ErrorCode != 0 || len(lr.Members) != 1 || lr.Members[0].ErrorCode != 0 {
				t.Fatalf("pipelined leave: %+v", lr)
			}
			joined(t, cb, "b")
			joined(t, cc, "c")
		})
	}
}
