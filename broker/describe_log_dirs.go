// DescribeLogDirs (key 35), versions 1-4.
//
// klite has one log directory, the data directory (reported as an absolute path). Each
// partition's size is the bytes of its stored batches at or after the log start offset (from
// the in-memory index); OffsetLag is 0 and IsFuture false (no replicas, no moves). v4's
// TotalBytes and UsableBytes come from the file system holding the data directory.
// Topics that do not exist are left out, as Kafka does.
// Differences from Kafka: sizes count batch bytes, not segment files (the WAL holds every
// partition in shared segments).
package broker

import (
	"path/filepath"
	"sort"
	"syscall"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(35, 1, 4, handleDescribeLogDirs) }

func handleDescribeLogDirs(b *Broker, rc *ReqCtx, kreq kmsg.Request, respond func(kmsg.Response)) {
	req := kreq.(*kmsg.DescribeLogDirsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeLogDirsResponse)
	if !b.allowedCluster(rc, kmsg.ACLOperationDescribe) { // ACLs, as Kafka
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		respond(resp)
		return
	}
	dir := kmsg.NewDescribeLogDirsResponseDir()
	dir.Dir = absDir(b.dataDir)
	dir.TotalBytes, dir.UsableBytes = -1, -1
	var st syscall.Statfs_t
	if err := syscall.Statfs(b.dataDir, &st); err == nil {
		dir.TotalBytes = int64(st.Blocks) * int64(st.Bsize)
		dir.UsableBytes = int64(st.Bavail) * int64(st.Bsize)
	}

	type want struct {
		t     *topic
		parts []int32 // nil: all
	}
	var wants []want
	b.mu.RLock()
	if req.Topics == nil {
		for _, t := range b.topics {
			wants = append(wants, want{t: t})
		}
	} else {
		for _, rt := range req.Topics {
			if t := b.topics[rt.Topic]; t != nil {
				wants = append(wants, want{t: t, parts: rt.Partitions})
			}
		}
	}
	b.mu.RUnlock()
	sort.SliceStable(wants, func(i, j int) bool { return wants[i].t.name < wants[j].t.name })

	for _, w := range wants {
		dt := kmsg.NewDescribeLogDirsResponseDirTopic()
		dt.Topic = w.t.name
		add := func(p *partition) {
			dp := kmsg.NewDescribeLogDirsResponseDirTopicPartition()
			dp.Partition = p.idx
			dp.Size = p.size()
			dt.Partitions = append(dt.Partitions, dp)
		}
		if w.parts == nil {
			for _, p := range w.t.partitions() {
				add(p)
			}
		} else {
			for _, idx := range w.parts {
				if p := w.t.partition(idx); p != nil {
					add(p)
				}
			}
		}
		if len(dt.Partitions) > 0 {
			dir.Topics = append(dir.Topics, dt)
		}
	}
	resp.Dirs = append(resp.Dirs, dir)
	respond(resp)
}

// absDir returns dir as an absolute path (dir itself if that fails).
func absDir(dir string) string {
	if a, err := filepath.Abs(dir); err == nil {
		return a
	}
	return dir
}
