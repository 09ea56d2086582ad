package broker

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/klite/klite/broker/storage"
)

// TestMetaUnknownRecordTypeRefused: a metadata log record type this build does not know (a
// newer klite wrote it) stops the start with a clear error instead of being skipped and,
// at the next compaction, lost.
func TestMetaUnknownRecordTypeRefused(t *testing.T) {
	dir := t.TempDir()
	tb := startBroker(t, dir)
	createTopic(t, tb.admin(t), "kept", 1, nil)
	if err := tb.Close(); err != nil {
		t.Fatal(err)
	}
	ml, err := storage.OpenMetaLogWith(filepath.Join(dir, "meta.log"), storage.MetaOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := ml.Append([]byte(`{"type":"from_the_future","name":"x"}`)); err != nil {
		t.Fatal(err)
	}
	if err := ml.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = Open(Config{DataDir: dir})
	if err == nil || !strings.Contains(err.Error(), `unknown type "from_the_future"`) || !strings.Contains(err.Error(), "newer klite") {
		t.Fatalf("Open with an unknown metadata record: %v", err)
	}
}
