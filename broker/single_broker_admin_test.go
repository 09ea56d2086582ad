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

	// Partition 0 to the broker's own directory succeeds, partition 1 to another is
	// LOG_DIR_NOT_FOUND; a partition named in two directories is answered once, for the
	// last (Kafka keeps a map of partition to directory).
	dirReq := func(dirs ...string) *kmsg.AlterReplicaLogDirsResponse {
		t.Helper()
		rd := kmsg.NewPtrAlterReplicaLogDirsRequest()
		for i, dir := range dirs {
			d := kmsg.NewAlterReplicaLogDirsRequestDir()
			d.Dir = dir
			dt := kmsg.NewAlterReplicaLogDirsRequestDirTopic()
			dt.Topic, dt.Partitions = "sba", []int32{int32(i % 2)}
			d.Topics = append(d.Topics, dt)
			rd.Dirs = append(rd.Dirs, d)
		}
		// Straight to the broker: kgo's sharded path regroups the request by directory
		// through a map, which loses the order the broker must see.
		kresp, err := direct(cl).Request(ctx, rd)
		rdr, _ := kresp.(*kmsg.AlterReplicaLogDirsResponse)
		if err != nil || rdr == nil || len(rdr.Topics) != 1 {
			t.Fatalf("alter replica log dirs: %+v %v", rdr, err)
		}
		return rdr
	}
	codes := map[int32]int16{}
	for _, p := range dirReq(absDir(tb.dir), "/nonexistent").Topics[0].Partitions {
		codes[p.Partition] = p.ErrorCode
	}
	if len(codes) != 2 || codes[0] != 0 || codes[1] != kerr.LogDirNotFound.Code {
		t.Fatalf("alter replica log dirs: codes by partition %v", codes)
	}
	// 0 to ours, then 1 elsewhere, then 0 elsewhere: partition 0 answered once, not found.
	ps := dirReq(absDir(tb.dir), "/nonexistent", "/nonexistent").Topics[0].Partitions
	if len(ps) != 2 || ps[0].Partition != 0 || ps[0].ErrorCode != kerr.LogDirNotFound.Code {
		t.Fatalf("a partition in two directories: %+v", ps)
	}
}
