package broker

// Fetch sessions (KIP-227), as Kafka's FetchSessionCache keeps them.
//
// A fetch with SessionID 0 and SessionEpoch 0 is a full fetch that also asks for a session:
// the answer carries a new SessionID, and the broker remembers the request's partitions
// (fetch offset, partition max bytes) and what it last told the client about each (high
// watermark, log start offset). Later fetches of that session (epoch 1, 2, ...) are
// incremental: they list only the partitions that changed (new ones, new fetch offsets) and
// the ones to forget; the broker fetches every partition of the session and answers only
// those with records, an error, or a high watermark or log start offset the client has not
// seen yet. SessionEpoch -1 ends a session (the fetch is then sessionless); epoch 0 with a
// SessionID ends that session and starts a new one. An unknown SessionID gets
// FETCH_SESSION_ID_NOT_FOUND, a wrong epoch INVALID_FETCH_SESSION_EPOCH; a client then starts
// over with a full fetch.
//
// Sessions are not tied to a connection. At most maxFetchSessions are kept; when full, a new
// session takes the slot of the least recently used one if that has been unused for
// fetchSessionEvictAfter (Kafka's max.incremental.fetch.session.cache.slots and
// min.incremental.fetch.session.eviction.ms defaults), and otherwise the client stays
// sessionless (SessionID 0 in the answer), which every client handles.

import (
	"math/rand/v2"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	maxFetchSessions       = 1000
	fetchSessionEvictAfter = 2 * time.Minute
)

// sessionPartKey names a partition in a session: by topic ID from Fetch v13 on, by name
// before (the other field is zero).
type sessionPartKey struct {
	topic string
	id    [16]byte
	part  int32
}

type sessionPart struct {
	topic       string
	topicID     [16]byte
	part        int32
	fetchOffset int64
	maxBytes    int32
	// What the client was last told; -1 until the first answer, and the high watermark
	// again after an error, so the partition is sent once the error is gone.
	hwm, logStart int64
}

type fetchSession struct {
	id int32

	mu       sync.Mutex
	epoch    int32 // the epoch the next incremental fetch must carry
	parts    []*sessionPart
	byKey    map[sessionPartKey]*sessionPart
	lastUsed time.Time
	byID     bool // keyed by topic ID (created by a v13+ fetch)
}

type fetchSessions struct {
	mu   sync.Mutex
	byID map[int32]*fetchSession
}

func partKey(byID bool, topic string, id [16]byte, part int32) sessionPartKey {
	if byID {
		return sessionPartKey{id: id, part: part}
	}
	return sessionPartKey{topic: topic, part: part}
}

func (s *fetchSessions) get(id int32) *fetchSession {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byID[id]
}

func (s *fetchSessions) remove(id int32) {
	s.mu.Lock()
	delete(s.byID, id)
	s.mu.Unlock()
}

// add registers sess under a new ID, evicting the least recently used session if the cache
// is full and that one is stale. It returns false (sess not kept) if there is no room.
func (s *fetchSessions) add(sess *fetchSession, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byID == nil {
		s.byID = map[int32]*fetchSession{}
	}
	if len(s.byID) >= maxFetchSessions {
		var lru *fetchSession
		var lruAt time.Time
		for _, o := range s.byID {
			o.mu.Lock()
			at := o.lastUsed
			o.mu.Unlock()
			if lru == nil || at.Before(lruAt) {
				lru, lruAt = o, at
			}
		}
		if now.Sub(lruAt) < fetchSessionEvictAfter {
			return false
		}
		delete(s.byID, lru.id)
	}
	for {
		id := rand.Int32()
		if _, taken := s.byID[id]; id != 0 && !taken {
			sess.id = id
			s.byID[id] = sess
			return true
		}
	}
}

// sessionFetch is a fetch resolved against its session: req is what to fetch (every
// partition of the session for an incremental fetch), finish turns the fetched response into
// the answer.
type sessionFetch struct {
	req    *kmsg.FetchRequest
	finish func(*kmsg.FetchResponse) *kmsg.FetchResponse
	// sessionID is the incremental fetch's session (0 otherwise): a throttled answer names it.
	sessionID int32
}

// throttled is the answer to a fetch over its client quota, as Kafka's
// FetchContext.getThrottledResponse: no error, the throttle time, no partitions, and the
// session untouched (an incremental fetch keeps its session ID; a full fetch creates none).
func (sf sessionFetch) throttled(req *kmsg.FetchRequest, ms int64) *kmsg.FetchResponse {
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	resp.ThrottleMillis = int32(min(ms, 1<<31-1))
	resp.SessionID = sf.sessionID
	resp.Topics = []kmsg.FetchResponseTopic{}
	return resp
}

// resolveFetchSession applies KIP-227 to req. errCode is non-zero when the session part of
// the request is wrong; the answer is then that error alone.
func (b *Broker) resolveFetchSession(req *kmsg.FetchRequest) (sf sessionFetch, errCode int16) {
	sessionless := sessionFetch{req: req, finish: func(r *kmsg.FetchResponse) *kmsg.FetchResponse { return r }}
	if req.Version < 7 {
		return sessionless, 0
	}
	switch {
	case req.SessionEpoch == -1: // sessionless; a SessionID given is closed
		if req.SessionID != 0 {
			b.fetchSessions.remove(req.SessionID)
		}
		return sessionless, 0
	case req.SessionEpoch == 0: // full fetch that starts a session (closing the one named)
		if req.SessionID != 0 {
			b.fetchSessions.remove(req.SessionID)
		}
		return sessionFetch{req: req, finish: func(r *kmsg.FetchResponse) *kmsg.FetchResponse {
			b.startFetchSession(req, r)
			return r
		}}, 0
	}
	sess := b.fetchSessions.get(req.SessionID)
	if sess == nil {
		return sf, kerr.FetchSessionIDNotFound.Code
	}
	sess.mu.Lock()
	defer sess.mu.Unlock()
	if req.SessionEpoch != sess.epoch {
		return sf, kerr.InvalidFetchSessionEpoch.Code
	}
	sess.epoch = nextSessionEpoch(sess.epoch)
	sess.lastUsed = time.Now()
	sess.apply(req)
	forget := map[*sessionPart]bool{}
	for _, ft := range req.ForgottenTopics {
		for _, p := range ft.Partitions {
			k := partKey(sess.byID, ft.Topic, ft.TopicID, p)
			if sp := sess.byKey[k]; sp != nil {
				delete(sess.byKey, k)
				forget[sp] = true
			}
		}
	}
	if len(forget) > 0 {
		kept := sess.parts[:0]
		for _, sp := range sess.parts {
			if !forget[sp] {
				kept = append(kept, sp)
			}
		}
		clear(sess.parts[len(kept):])
		sess.parts = kept
	}

	// Fetch every partition of the session, grouped by topic in session order.
	full := *req
	full.Topics = nil
	full.ForgottenTopics = nil
	at := map[sessionPartKey]int{} // topic (part 0) -> index in full.Topics
	for _, sp := range sess.parts {
		tk := partKey(sess.byID, sp.topic, sp.topicID, 0)
		i, ok := at[tk]
		if !ok {
			rt := kmsg.NewFetchRequestTopic()
			rt.Topic, rt.TopicID = sp.topic, sp.topicID
			full.Topics = append(full.Topics, rt)
			i = len(full.Topics) - 1
			at[tk] = i
		}
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = sp.part, sp.fetchOffset, sp.maxBytes
		rp.CurrentLeaderEpoch, rp.LastFetchedEpoch, rp.LogStartOffset = -1, -1, -1
		full.Topics[i].Partitions = append(full.Topics[i].Partitions, rp)
	}
	return sessionFetch{req: &full, sessionID: sess.id, finish: func(r *kmsg.FetchResponse) *kmsg.FetchResponse {
		return sess.incremental(r)
	}}, 0
}

// apply adds the request's partitions to the session (new ones have not been told anything
// yet) and takes their fetch offsets and partition max bytes. sess.mu held (or sess new).
func (sess *fetchSession) apply(req *kmsg.FetchRequest) {
	for i := range req.Topics {
		rt := &req.Topics[i]
		for _, rp := range rt.Partitions {
			k := partKey(sess.byID, rt.Topic, rt.TopicID, rp.Partition)
			sp := sess.byKey[k]
			if sp == nil {
				sp = &sessionPart{topic: rt.Topic, topicID: rt.TopicID, part: rp.Partition, hwm: -1, logStart: -1}
				sess.byKey[k] = sp
				sess.parts = append(sess.parts, sp)
			}
			sp.fetchOffset, sp.maxBytes = rp.FetchOffset, rp.PartitionMaxBytes
		}
	}
}

// nextSessionEpoch follows Kafka's FetchMetadata.nextEpoch: after MaxInt32 comes 1.
func nextSessionEpoch(e int32) int32 {
	if e == 1<<31-1 {
		return 1
	}
	return e + 1
}

// startFetchSession creates a session for the full fetch req answered by resp and sets
// resp.SessionID (left 0 when the cache has no room).
func (b *Broker) startFetchSession(req *kmsg.FetchRequest, resp *kmsg.FetchResponse) {
	sess := &fetchSession{epoch: 1, byKey: map[sessionPartKey]*sessionPart{}, byID: req.Version >= 13, lastUsed: time.Now()}
	sess.apply(req)
	for i := range resp.Topics {
		st := &resp.Topics[i]
		for j := range st.Partitions {
			rp := &st.Partitions[j]
			if sp := sess.byKey[partKey(sess.byID, st.Topic, st.TopicID, rp.Partition)]; sp != nil {
				sp.noteSent(rp)
			}
		}
	}
	if b.fetchSessions.add(sess, time.Now()) {
		resp.SessionID = sess.id
	}
}

// noteSent records what an answer told the client about the partition.
func (sp *sessionPart) noteSent(rp *kmsg.FetchResponseTopicPartition) {
	sp.hwm, sp.logStart = rp.HighWatermark, rp.LogStartOffset
	if rp.ErrorCode != 0 {
		sp.hwm = -1
	}
}

// incremental keeps in resp only the partitions the client must hear about (records, an
// error, a new high watermark or log start offset) and records what it is told.
func (sess *fetchSession) incremental(resp *kmsg.FetchResponse) *kmsg.FetchResponse {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	resp.SessionID = sess.id
	topics := resp.Topics[:0]
	for _, st := range resp.Topics {
		parts := st.Partitions[:0]
		for j := range st.Partitions {
			rp := &st.Partitions[j]
			sp := sess.byKey[partKey(sess.byID, st.Topic, st.TopicID, rp.Partition)]
			must := sp == nil || len(rp.RecordBatches) > 0 || rp.ErrorCode != 0 ||
				rp.HighWatermark != sp.hwm || rp.LogStartOffset != sp.logStart
			if sp != nil {
				sp.noteSent(rp)
			}
			if must {
				parts = append(parts, *rp)
			}
		}
		if len(parts) > 0 {
			st.Partitions = parts
			topics = append(topics, st)
		}
	}
	resp.Topics = topics
	return resp
}
