package main

import (
	"context"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ---- consumer groups ----

type subscribeArgs struct {
	Group               string   `json:"group"`
	Topics              []string `json:"topics"`
	Assignor            string   `json:"assignor"`
	InstanceID          string   `json:"instance_id"`
	SessionTimeoutMs    int      `json:"session_timeout_ms"`
	RebalanceTimeoutMs  int      `json:"rebalance_timeout_ms"`
	HeartbeatIntervalMs int      `json:"heartbeat_interval_ms"`
	AutoCommit          bool     `json:"auto_commit"`
	From                string   `json:"from"`
	Isolation           string   `json:"isolation"`
	GroupProtocol       string   `json:"group_protocol"`
	TopicRegex          string   `json:"topic_regex"`
}

func balancer(name string) (kgo.GroupBalancer, error) {
	switch name {
	case "", "range":
		return kgo.RangeBalancer(), nil
	case "roundrobin":
		return kgo.RoundRobinBalancer(), nil
	case "sticky":
		return kgo.StickyBalancer(), nil
	case "cooperative-sticky":
		return kgo.CooperativeStickyBalancer(), nil
	}
	return nil, &unsupported{"assignor " + name}
}

// serverAssignor picks the balancer whose KIP-848 server-side assignor kgo asks for:
// kgo.ServerSideBalancer sends "uniform" for the sticky balancer and "range" for range.
func serverAssignor(name string) (kgo.GroupBalancer, error) {
	switch name {
	case "", "uniform":
		return kgo.StickyBalancer(), nil
	case "range":
		return kgo.RangeBalancer(), nil
	}
	return nil, &unsupported{"server assignor " + name}
}

func (d *driver) groupSubscribe(a subscribeArgs) (map[string]any, error) {
	if d.group != nil {
		d.group.Close()
		d.group = nil
	}
	var bal kgo.GroupBalancer
	var err error
	switch a.GroupProtocol {
	case "", "classic":
		bal, err = balancer(a.Assignor)
	case "consumer":
		bal, err = serverAssignor(a.Assignor)
	default:
		err = &unsupported{"group protocol " + a.GroupProtocol}
	}
	if err != nil {
		return nil, err
	}
	iso, err := isolation(a.Isolation)
	if err != nil {
		return nil, err
	}
	reset := kgo.NewOffset().AtStart()
	if a.From == "latest" {
		reset = kgo.NewOffset().AtEnd()
	}
	d.amu.Lock()
	d.assign = map[string]map[int32]bool{}
	d.amu.Unlock()
	opts := d.opts(kgo.ConsumerGroup(a.Group), kgo.ConsumeTopics(a.Topics...), kgo.Balancers(bal),
		kgo.ConsumeResetOffset(reset), iso,
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { d.track(m, true) }),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { d.track(m, false) }),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { d.track(m, false) }))
	if a.GroupProtocol == "consumer" {
		opts = append(opts, kgo.ServerSideBalancer())
	}
	if a.TopicRegex != "" {
		// With the consumer protocol kgo hands the regex to the broker to resolve.
		opts = append(opts, kgo.ConsumeRegex(), kgo.ConsumeTopics(a.TopicRegex))
	}
	if a.InstanceID != "" {
		opts = append(opts, kgo.InstanceID(a.InstanceID))
	}
	if a.SessionTimeoutMs > 0 {
		opts = append(opts, kgo.SessionTimeout(time.Duration(a.SessionTimeoutMs)*time.Millisecond))
	}
	if a.RebalanceTimeoutMs > 0 {
		opts = append(opts, kgo.RebalanceTimeout(time.Duration(a.RebalanceTimeoutMs)*time.Millisecond))
	}
	if a.HeartbeatIntervalMs > 0 {
		opts = append(opts, kgo.HeartbeatInterval(time.Duration(a.HeartbeatIntervalMs)*time.Millisecond))
	}
	if !a.AutoCommit {
		opts = append(opts, kgo.DisableAutoCommit())
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmtErr("%v", err)
	}
	d.group, d.gname = cl, a.Group
	return map[string]any{}, nil
}

func (d *driver) track(m map[string][]int32, add bool) {
	d.amu.Lock()
	defer d.amu.Unlock()
	for t, ps := range m {
		if d.assign[t] == nil {
			d.assign[t] = map[int32]bool{}
		}
		for _, p := range ps {
			if add {
				d.assign[t][p] = true
			} else {
				delete(d.assign[t], p)
			}
		}
	}
}

func (d *driver) assignment() []any {
	d.amu.Lock()
	defer d.amu.Unlock()
	type tp struct {
		t string
		p int32
	}
	var l []tp
	for t, ps := range d.assign {
		for p := range ps {
			l = append(l, tp{t, p})
		}
	}
	sort.Slice(l, func(i, j int) bool { return l[i].t < l[j].t || l[i].t == l[j].t && l[i].p < l[j].p })
	out := []any{}
	for _, x := range l {
		out = append(out, map[string]any{"topic": x.t, "partition": x.p})
	}
	return out
}

type pollArgs struct {
	MaxRecords int `json:"max_records"`
	TimeoutMs  int `json:"timeout_ms"`
}

func (d *driver) groupPoll(a pollArgs) (map[string]any, error) {
	if d.group == nil {
		return nil, fmtErr("group_poll before group_subscribe")
	}
	timeout := time.Duration(a.TimeoutMs) * time.Millisecond
	if timeout <= 0 {
		timeout = time.Second
	}
	recs, err := poll(d.group, a.MaxRecords, timeout)
	if err != nil && len(recs) == 0 {
		return nil, err
	}
	return map[string]any{"records": recs, "assignment": d.assignment()}, nil
}

type offsetArg struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	Metadata  string `json:"metadata"`
}

type commitArgs struct {
	Group   string      `json:"group"`
	Offsets []offsetArg `json:"offsets"`
}

func (d *driver) groupCommit(a commitArgs) (map[string]any, error) {
	c, cancel := ctx()
	defer cancel()
	if d.group != nil && (a.Group == "" || a.Group == d.gname) {
		if len(a.Offsets) == 0 {
			return map[string]any{}, d.group.CommitUncommittedOffsets(c)
		}
		m := map[string]map[int32]kgo.EpochOffset{}
		for _, o := range a.Offsets {
			if m[o.Topic] == nil {
				m[o.Topic] = map[int32]kgo.EpochOffset{}
			}
			m[o.Topic][o.Partition] = kgo.EpochOffset{Epoch: -1, Offset: o.Offset}
		}
		var cerr error
		d.group.CommitOffsetsSync(c, m, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
			if err != nil {
				cerr = err
				return
			}
			for _, t := range resp.Topics {
				for _, p := range t.Partitions {
					if e := kerr.ErrorForCode(p.ErrorCode); e != nil && cerr == nil {
						cerr = e
					}
				}
			}
		})
		return map[string]any{}, cerr
	}
	// No group member here: a standalone (generation -1) commit, which keeps metadata.
	if a.Group == "" {
		return nil, fmtErr("group_commit without group_subscribe needs group")
	}
	adm, err := d.admin0()
	if err != nil {
		return nil, err
	}
	os := kadm.Offsets{}
	for _, o := range a.Offsets {
		os.Add(kadm.Offset{Topic: o.Topic, Partition: o.Partition, At: o.Offset, LeaderEpoch: -1, Metadata: o.Metadata})
	}
	resp, err := adm.CommitOffsets(c, a.Group, os)
	if err != nil {
		return nil, err
	}
	if err := resp.Error(); err != nil {
		return nil, err
	}
	return map[string]any{}, nil
}

type committedArgs struct {
	Group      string  `json:"group"`
	Topic      string  `json:"topic"`
	Partitions []int32 `json:"partitions"`
}

func (d *driver) groupCommitted(a committedArgs) (map[string]any, error) {
	adm, err := d.admin0()
	if err != nil {
		return nil, err
	}
	c, cancel := ctx()
	defer cancel()
	resp, err := adm.FetchOffsets(c, a.Group)
	if err != nil {
		return nil, err
	}
	parts := a.Partitions
	if len(parts) == 0 {
		for p := range resp[a.Topic] {
			parts = append(parts, p)
		}
		sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
	}
	out := []any{}
	for _, p := range parts {
		o := map[string]any{"partition": p, "offset": int64(-1), "metadata": "", "error": nil}
		if r, ok := resp.Lookup(a.Topic, p); ok {
			o["offset"], o["metadata"], o["error"] = r.At, r.Metadata, nameOf(r.Err)
		}
		out = append(out, o)
	}
	return map[string]any{"offsets": out}, nil
}

func (d *driver) groupLeave() (map[string]any, error) {
	if d.group != nil {
		c, cancel := ctx()
		defer cancel()
		err := d.group.LeaveGroupContext(c)
		d.group.Close()
		d.group = nil
		if err != nil {
			return nil, err
		}
	}
	return map[string]any{}, nil
}

// ---- transactions ----

type txnInitArgs struct {
	TransactionalID      string `json:"transactional_id"`
	TransactionTimeoutMs int    `json:"transaction_timeout_ms"`
}

func (d *driver) txnInit(a txnInitArgs) (map[string]any, error) {
	if d.txn != nil {
		d.txn.Close()
		d.txn = nil
	}
	opts := d.opts(kgo.TransactionalID(a.TransactionalID), kgo.RecordRetries(20), partitioner(),
		kgo.ProducerLinger(0))
	if a.TransactionTimeoutMs > 0 {
		opts = append(opts, kgo.TransactionTimeout(time.Duration(a.TransactionTimeoutMs)*time.Millisecond))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmtErr("%v", err)
	}
	c, cancel := ctx()
	defer cancel()
	if _, _, err := cl.ProducerID(c); err != nil {
		cl.Close()
		return nil, err
	}
	d.txn, d.txnIDs = cl, a.TransactionalID
	return map[string]any{}, nil
}

func (d *driver) txnBegin() (map[string]any, error) {
	if d.txn == nil {
		return nil, fmtErr("txn_begin before txn_init")
	}
	if err := d.txn.BeginTransaction(); err != nil {
		return nil, err
	}
	return map[string]any{}, nil
}

func (d *driver) txnEnd(commit bool) (map[string]any, error) {
	if d.txn == nil {
		return nil, fmtErr("transaction end before txn_init")
	}
	c, cancel := ctx()
	defer cancel()
	try := kgo.TryCommit
	if commit {
		if err := d.txn.Flush(c); err != nil {
			return nil, err
		}
	} else {
		try = kgo.TryAbort
		if err := d.txn.AbortBufferedRecords(c); err != nil {
			return nil, err
		}
	}
	if err := d.txn.EndTransaction(c, try); err != nil {
		return nil, err
	}
	return map[string]any{}, nil
}

type sendOffsetsArgs struct {
	Group   string      `json:"group"`
	Offsets []offsetArg `json:"offsets"`
}

// txnSendOffsets adds consumer offsets to the open transaction (AddOffsetsToTxn, then
// TxnOffsetCommit to the group coordinator), as Java's sendOffsetsToTransaction does.
func (d *driver) txnSendOffsets(a sendOffsetsArgs) (map[string]any, error) {
	if d.txn == nil {
		return nil, fmtErr("txn_send_offsets before txn_init")
	}
	c, cancel := ctx()
	defer cancel()
	pid, epoch, err := d.txn.ProducerID(c)
	if err != nil {
		return nil, err
	}
	txnID := d.txnIDs
	add := kmsg.NewPtrAddOffsetsToTxnRequest()
	add.TransactionalID, add.ProducerID, add.ProducerEpoch, add.Group = txnID, pid, epoch, a.Group
	ar, err := add.RequestWith(c, d.txn)
	if err != nil {
		return nil, err
	}
	if err := kerr.ErrorForCode(ar.ErrorCode); err != nil {
		return nil, err
	}
	commit := kmsg.NewPtrTxnOffsetCommitRequest()
	commit.TransactionalID, commit.Group, commit.ProducerID, commit.ProducerEpoch = txnID, a.Group, pid, epoch
	commit.Generation, commit.MemberID = -1, ""
	byTopic := map[string]int{}
	for _, o := range a.Offsets {
		i, ok := byTopic[o.Topic]
		if !ok {
			t := kmsg.NewTxnOffsetCommitRequestTopic()
			t.Topic = o.Topic
			commit.Topics = append(commit.Topics, t)
			i = len(commit.Topics) - 1
			byTopic[o.Topic] = i
		}
		p := kmsg.NewTxnOffsetCommitRequestTopicPartition()
		p.Partition, p.Offset, p.LeaderEpoch = o.Partition, o.Offset, -1
		if o.Metadata != "" {
			p.Metadata = kmsg.StringPtr(o.Metadata)
		}
		commit.Topics[i].Partitions = append(commit.Topics[i].Partitions, p)
	}
	cr, err := commit.RequestWith(c, d.txn)
	if err != nil {
		return nil, err
	}
	for _, t := range cr.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return nil, err
			}
		}
	}
	return map[string]any{}, nil
}
