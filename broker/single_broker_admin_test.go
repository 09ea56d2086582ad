package broker

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ElectLeaders, AlterPartitionAssignments, ListPartitionReassignments and ListConfigResources
// on one broker (the same answers as Kafka's in scenarios/wire/single-broker-admin.yaml).
func TestSingleBrokerAdminAPIs(t *testing.T) {
	tb := startBroker(t, t.TempDir())
	createTopic(t, tb.admin(t), "sba", 2, nil)
	cl := tb.client(t)
	ctx := ctxT(t, 10*time.Second)

	el := kmsg.NewPtrElectLeadersRequest()
	el.TimeoutMillis = 5000
	rt := kmsg.NewElectLeadersRequestTopic()
	rt.Topic, rt.Partitions = "sba", []int32{0, 5}
	el.Topics = append(el.Topics, rt)
	er, err := el.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if len(er.Topics) != 1 || len(er.Topics[0].Partitions) != 2 ||
		er.Topics[0].Partitions[0].ErrorCode != kerr.ElectionNotNeeded.Code ||
		er.Topics[0].Partitions[1].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("elect: %+v", er.Topics)
	}
	el.Topics = nil // every partition: each topic, no partition elected
	if er, err = el.RequestWith(ctx, cl); err != nil || len(er.Topics) != 1 || er.Topics[0].Topic != "sba" || len(er.Topics[0].Partitions) != 0 {
		t.Fatalf("elect all: %+v %v", er, err)
	}

	ap := kmsg.NewPtrAlterPartitionAssignmentsRequest()
	at := kmsg.NewAlterPartitionAssignmentsRequestTopic()
	at.Topic = "sba"
	for _, r := range []struct {
		p        int32
		replicas []int32
	}{{0, []int32{tb.nodeID}}, {1, []int32{tb.nodeID + 1}}, {1, nil}, {1, []int32{}}} {
		p := kmsg.NewAlterPartitionAssignmentsRequestTopicPartition()
		p.Partition, p.Replicas = r.p, r.replicas
		at.Partitions = append(at.Partitions, p)
	}
	ap.Topics = append(ap.Topics, at)
	ar, err := ap.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	want := []int16{0, kerr.InvalidReplicaAssignment.Code, kerr.NoReassignmentInProgress.Code, kerr.InvalidReplicaAssignment.Code}
	if len(ar.Topics) != 1 || len(ar.Topics[0].Partitions) != len(want) {
		t.Fatalf("alter assignments: %+v", ar.Topics)
	}
	for i, p := range ar.Topics[0].Partitions {
		if p.ErrorCode != want[i] {
			t.Fatalf("alter assignments #%d: code %d, want %d", i, p.ErrorCode, want[i])
		}
	}

	lr, err := kmsg.NewPtrListPartitionReassignmentsRequest().RequestWith(ctx, cl)
	if err != nil || lr.ErrorCode != 0 || len(lr.Topics) != 0 {
		t.Fatalf("list reassignments: %+v %v", lr, err)
	}
	cr, err := kmsg.NewPtrListConfigResourcesRequest().RequestWith(ctx, cl)
	if err != nil || cr.ErrorCode != 0 || len(cr.ConfigResources) != 0 {
		t.Fatalf("list config resources: %+v %v", cr, err)
	}

	rd := kmsg.NewPtrAlterReplicaLogDirsRequest()
	for _, dir := range []string{absDir(tb.dir), "/nonexistent"} {
		d := kmsg.NewAlterReplicaLogDirsRequestDir()
		d.Dir = dir
		dt := kmsg.NewAlterReplicaLogDirsRequestDirTopic()
		dt.Topic, dt.Partitions = "sba", []int32{0}
		d.Topics = append(d.Topics, dt)
		rd.Dirs = append(rd.Dirs, d)
	}
	rdr, err := rd.RequestWith(ctx, cl)
	if err != nil || len(rdr.Topics) != 1 || len(rdr.Topics[0].Partitions) != 2 {
		t.Fatalf("alter replica log dirs: %+v %v", rdr, err)
	}
	// One answer per directory asked (the client may reorder them): the broker's own
	// directory succeeds, the other is LOG_DIR_NOT_FOUND.
	codes := map[int16]int{}
	for _, p := range rdr.Topics[0].Partitions {
		codes[p.ErrorCode]++
	}
	if codes[0] != 1 || codes[kerr.LogDirNotFound.Code] != 1 {
		t.Fatalf("alter replica log dirs: codes %v", codes)
	}
}
