package logstore

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// TestStoreConformance runs the same checks against every Store implementation: the
// directory store, the in-memory twin and the S3 store against moto's S3 server (skipped
// without moto, except under make test and CI: see internal/motoserver).
func TestStoreConformance(t *testing.T) {
	for name, st := range stores(t) {
		t.Run(name, func(t *testing.T) { testStore(t, st) })
	}
	t.Run("s3", func(t *testing.T) { testStore(t, newMotoStore(t, S3Options{Prefix: "klite/test"})) })
}

func testStore(t *testing.T, st Store) {
	if _, err := st.Get("p/a", 0, -1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get of a missing object: %v, want ErrNotFound", err)
	}
	data := []byte("0123456789")
	for _, n := range []string{"p/a", "p/b", "q/a", "p2/x", "p/sub/c"} {
		if err := st.Put(n, data); err != nil {
			t.Fatalf("Put(%s): %v", n, err)
		}
	}
	for _, c := range []struct {
		off, n int64
		want   string
	}{{0, -1, "0123456789"}, {3, 4, "3456"}, {8, 10, "89"}, {10, 5, ""}, {20, -1, ""}, {0, 0, ""}} {
		got, err := st.Get("p/a", c.off, c.n)
		if err != nil || string(got) != c.want {
			t.Errorf("Get(p/a, %d, %d) = %q, %v; want %q", c.off, c.n, got, err, c.want)
		}
	}
	if _, err := st.Get("p/a", -1, 2); err == nil {
		t.Error("Get at a negative offset succeeded")
	}
	// Replace is whole.
	if err := st.Put("p/a", []byte("xy")); err != nil {
		t.Fatal(err)
	}
	if got, _ := st.Get("p/a", 0, -1); string(got) != "xy" {
		t.Errorf("after replace: %q", got)
	}
	// Empty objects exist.
	if err := st.Put("p/empty", nil); err != nil {
		t.Fatal(err)
	}
	if got, err := st.Get("p/empty", 0, -1); err != nil || len(got) != 0 {
		t.Errorf("empty object: %q, %v", got, err)
	}
	list, err := st.List("p/")
	if err != nil {
		t.Fatal(err)
	}
	want := []Object{{"p/a", 2}, {"p/b", 10}, {"p/empty", 0}, {"p/sub/c", 10}}
	if len(list) != len(want) {
		t.Fatalf("List(p/) = %v, want %v", list, want)
	}
	for i := range want {
		if list[i] != want[i] {
			t.Errorf("List(p/)[%d] = %v, want %v", i, list[i], want[i])
		}
	}
	if l, _ := st.List("p"); len(l) != 5 {
		t.Errorf("List(p) = %v, want the 4 under p/ and p2/x", l)
	}
	if l, err := st.List("nothing/"); err != nil || len(l) != 0 {
		t.Errorf("List(nothing/) = %v, %v", l, err)
	}
	if err := st.Delete("p/b"); err != nil {
		t.Fatal(err)
	}
	if err := st.Delete("p/b"); err != nil {
		t.Errorf("Delete of a missing object: %v", err)
	}
	if _, err := st.Get("p/b", 0, -1); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after Delete: %v", err)
	}
	for _, bad := range []string{"", "/abs", "p/", "p//a", "p/../x", "p/a b", "p/x.tmp"} {
		if err := st.Put(bad, data); err == nil {
			t.Errorf("Put(%q) succeeded", bad)
		}
	}
	// Concurrent replaces and reads: a reader sees one whole version, never a mix.
	old, neu := bytes.Repeat([]byte("a"), 10000), bytes.Repeat([]byte("b"), 20000)
	if err := st.Put("c/x", old); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 25; i++ {
				if g == 0 {
					v := old
					if i%2 == 0 {
						v = neu
					}
					if err := st.Put("c/x", v); err != nil {
						errs <- err
					}
					continue
				}
				got, err := st.Get("c/x", 0, -1)
				if err != nil || !bytes.Equal(got, old) && !bytes.Equal(got, neu) {
					errs <- fmt.Errorf("concurrent Get: %d bytes, %v", len(got), err)
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// Get returns a copy: changing it does not change the object.
	got, _ := st.Get("q/a", 0, -1)
	got[0] = 'Z'
	if again, _ := st.Get("q/a", 0, -1); !bytes.Equal(again, data) {
		t.Errorf("object changed through a returned slice: %q", again)
	}
}

// A crash in the middle of DirStore.Put leaves a temporary file: never listed, removed on open.
func TestDirStoreIgnoresAndRemovesTemporaryFiles(t *testing.T) {
	dir := t.TempDir()
	st, err := OpenDirStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Put("p/a", []byte("old")); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, "p", "a"+tmpSuffix)
	if err := os.WriteFile(tmp, []byte("half-written"), 0o644); err != nil {
		t.Fatal(err)
	}
	if l, _ := st.List("p/"); len(l) != 1 || l[0].Name != "p/a" {
		t.Fatalf("List = %v", l)
	}
	if _, err := OpenDirStore(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Errorf("temporary file survived reopening: %v", err)
	}
	if got, _ := st.Get("p/a", 0, -1); string(got) != "old" {
		t.Errorf("object = %q after the interrupted Put", got)
	}
}
