package broker

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestWireFuzzFindings: answers the wire fuzz mode (klite-conformance wire --fuzz) found
// differing from Kafka 4.0's, now as Kafka gives them.
func TestWireFuzzFindings(t *testing.T) {
	tb := startBroker(t, t.TempDir())
	cl := tb.client(t)
	ctx := ctxT(t, 10*time.Second)
	createTopic(t, tb.admin(t), "ff", 1, nil)

	// DescribeCluster with an endpoint type neither broker (1) nor controller (2).
	dc := kmsg.NewPtrDescribeClusterRequest()
	dc.Version, dc.EndpointType = 2, 0
	if r, err := dc.RequestWith(ctx, cl); err != nil || r.ErrorCode != kerr.UnsupportedEndpointType.Code {
		t.Fatalf("endpoint type 0: %v %+v", err, r)
	}
	dc.EndpointType = 2
	if r, err := dc.RequestWith(ctx, cl); err != nil || r.ErrorCode != kerr.MismatchedEndpointType.Code {
		t.Fatalf("endpoint type 2: %v %+v", err, r)
	}

	// Heartbeat and OffsetDelete of the empty group ID.
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Group, hb.MemberID, hb.Generation = "", "m", -2
	if r, err := hb.RequestWith(ctx, cl); err != nil || r.ErrorCode != kerr.InvalidGroupID.Code {
		t.Fatalf("heartbeat of group \"\": %v %+v", err, r)
	}
	od := kmsg.NewPtrOffsetDeleteRequest()
	odt := kmsg.NewOffsetDeleteRequestTopic()
	odt.Topic = "ff"
	od.Topics = append(od.Topics, odt)
	if r, err := od.RequestWith(ctx, cl); err != nil || r.ErrorCode != kerr.InvalidGroupID.Code {
		t.Fatalf("offset delete of group \"\": %v %+v", err, r)
	}

	// InitProducerId with a producer ID but no epoch (KIP-360: both or neither).
	ip := kmsg.NewPtrInitProducerIDRequest()
	ip.TransactionalID, ip.TransactionTimeoutMillis, ip.ProducerID, ip.ProducerEpoch = kmsg.StringPtr("ff-txn"), 1000, 1, -1
	if r, err := ip.RequestWith(ctx, cl); err != nil || r.ErrorCode != kerr.InvalidRequest.Code || r.ProducerID != -1 {
		t.Fatalf("init producer id with pid and no epoch: %v %+v", err, r)
	}

	// AddOffsetsToTxn and EndTxn of the empty transactional ID.
	ao := kmsg.NewPtrAddOffsetsToTxnRequest()
	ao.Group, ao.ProducerID, ao.ProducerEpoch = "g", 0, -1
	if r, err := ao.RequestWith(ctx, cl); err != nil || r.ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("add offsets of txn \"\": %v %+v", err, r)
	}
	et := kmsg.NewPtrEndTxnRequest()
	et.ProducerID, et.ProducerEpoch = 0, 0
	if r, err := et.RequestWith(ctx, cl); err != nil || r.ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("end txn of \"\": %v %+v", err, r)
	}

	// ElectLeaders with a time-out already past, and with an unknown election type.
	el := kmsg.NewPtrElectLeadersRequest()
	el.Version, el.ElectionType, el.TimeoutMillis = 2, 0, -1
	elt := kmsg.NewElectLeadersRequestTopic()
	elt.Topic, elt.Partitions = "ff", []int32{0, 9}
	el.Topics = append(el.Topics, elt)
	if r, err := el.RequestWith(ctx, cl); err != nil || r.ErrorCode != kerr.RequestTimedOut.Code || len(r.Topics[0].Partitions) != 2 ||
		r.Topics[0].Partitions[1].ErrorCode != kerr.RequestTimedOut.Code {
		t.Fatalf("elect leaders with time-out -1: %v %+v", err, r)
	}
	el.ElectionType, el.TimeoutMillis = 5, 10000
	if r, err := el.RequestWith(ctx, cl); err != nil || r.ErrorCode != kerr.InvalidRequest.Code || r.Topics[0].Partitions[0].ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("elect leaders of type 5: %v %+v", err, r)
	}
	el.Topics = []kmsg.ElectLeadersRequestTopic{}
	if r, err := el.RequestWith(ctx, cl); err != nil || r.ErrorCode != 0 || len(r.Topics) != 0 {
		t.Fatalf("elect leaders of no topics: %v %+v", err, r)
	}

	// UpdateFeatures with no updates succeeds.
	uf := kmsg.NewPtrUpdateFeaturesRequest()
	uf.Version, uf.TimeoutMillis, uf.FeatureUpdates = 1, 1000, []kmsg.UpdateFeaturesRequestFeatureUpdate{}
	if r, err := uf.RequestWith(ctx, cl); err != nil || r.ErrorCode != 0 {
		t.Fatalf("update no features: %v %+v", err, r)
	}

	// AlterReplicaLogDirs leaves out topics asked with no partitions.
	ar := kmsg.NewPtrAlterReplicaLogDirsRequest()
	ard := kmsg.NewAlterReplicaLogDirsRequestDir()
	ard.Dir = "/nowhere"
	for _, parts := range [][]int32{{}, {0}} {
		art := kmsg.NewAlterReplicaLogDirsRequestDirTopic()
		art.Topic, art.Partitions = "ff", parts
		if len(parts) == 0 {
			art.Topic = "ff-none"
		}
		ard.Topics = append(ard.Topics, art)
	}
	ar.Dirs = append(ar.Dirs, ard)
	if r, err := ar.RequestWith(ctx, cl); err != nil || len(r.Topics) != 1 || r.Topics[0].Topic != "ff" || r.Topics[0].Partitions[0].ErrorCode != kerr.LogDirNotFound.Code {
		t.Fatalf("alter replica log dirs: %v %+v", err, r)
	}

	// DescribeTransactions of the empty ID.
	dt := kmsg.NewPtrDescribeTransactionsRequest()
	dt.TransactionalIDs = []string{""}
	if r, err := dt.RequestWith(ctx, cl); err != nil || r.TransactionStates[0].ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("describe transaction \"\": %v %+v", err, r)
	}

	// DescribeTopicPartitions with a negative cursor partition.
	dtp := kmsg.NewPtrDescribeTopicPartitionsRequest()
	rt := kmsg.NewDescribeTopicPartitionsRequestTopic()
	rt.Topic = "ff"
	dtp.Topics = append(dtp.Topics, rt)
	dtp.ResponsePartitionLimit = 10
	dtp.Cursor = &kmsg.DescribeTopicPartitionsRequestCursor{Topic: "ff", Partition: -2}
	if r, err := dtp.RequestWith(ctx, cl); err != nil || len(r.Topics) != 1 || r.Topics[0].ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("negative cursor partition: %v %+v", err, r)
	}

	// The auto-creating Metadata answer carries the authorized operations asked for.
	md := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr("ff-auto")
	md.Topics = append(md.Topics, mt)
	md.AllowAutoTopicCreation, md.IncludeTopicAuthorizedOperations = true, true
	r, err := md.RequestWith(ctx, cl)
	if err != nil || r.Topics[0].ErrorCode != kerr.UnknownTopicOrPartition.Code || r.Topics[0].AuthorizedOperations <= 0 {
		t.Fatalf("auto-creating metadata: %v %+v", err, r.Topics)
	}
}
