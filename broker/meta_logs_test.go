package broker

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klite/klite/broker/storage"
)

// metaLogRecords returns the records of dir's meta.log.
func metaLogRecords(t *testing.T, dir string) [][]byte {
	t.Helper()
	m, err := storage.OpenMetaLogWith(filepath.Join(dir, "meta.log"), storage.MetaOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	var out [][]byte
	if err := m.Replay(func(rec []byte) error { out = append(out, bytes.Clone(rec)); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestCoordinatorLogsNotedTogether: on a fresh data directory the broker opens groups.log
// and txns.log together and notes them in meta.log in one append once both files exist, so
// a start where one of them cannot be opened notes neither (the build that opened them one
// after the other had noted groups.log already), and the next start notes both.
func TestCoordinatorLogsNotedTogether(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "meta", "txns.log")
	if err := os.MkdirAll(filepath.Join(blocker, "x"), 0o755); err != nil { // a directory where the file goes
		t.Fatal(err)
	}
	err := openErr(t, dir)
	if err == nil || !strings.Contains(err.Error(), "txns.log") {
		t.Fatalf("open with txns.log a directory: %v, want an error naming the txns log", err)
	}
	for _, rec := range metaLogRecords(t, dir) {
		if bytes.Contains(rec, []byte(`"type":"log"`)) {
			t.Fatalf("a start that failed to open txns.log noted a coordinator log: %s", rec)
		}
	}
	if err := os.RemoveAll(blocker); err != nil {
		t.Fatal(err)
	}
	if err := openErr(t, dir); err != nil {
		t.Fatalf("open after removing the blocker: %v", err)
	}
	var notes []string
	for _, rec := range metaLogRecords(t, dir) {
		if bytes.Contains(rec, []byte(`"type":"log"`)) {
			notes = append(notes, string(rec))
		}
	}
	if len(notes) != 2 || !strings.Contains(strings.Join(notes, " "), `"name":"groups"`) || !strings.Contains(strings.Join(notes, " "), `"name":"txns"`) {
		t.Fatalf("coordinator log notes after a fresh start: %q, want groups and txns once each", notes)
	}
}
