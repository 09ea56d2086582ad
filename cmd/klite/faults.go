package main

// Test-only fault injection for the real binary (--test-storage-faults): the chaos harness
// (conformance/chaos, the fsync-error and write-error faults) makes every write or fsync
// below the WAL and the metadata logs fail for a while, through storage.Faults, and checks
// that klite refuses rather than acknowledges what it could not make durable, logs it, and
// accepts writes again once the errors stop, without a restart.
//
//	PUT /debug/storage-faults?write=enospc|eio|none&sync=eio|none   set (a missing key: unchanged)
//	GET /debug/storage-faults                                        writes and fsyncs failed so far

import (
	"fmt"
	"log/slog"
	"net/http"
	"syscall"

	"github.com/klite/klite/broker/storage"
)

// faultErrs are the errors a request may name (none: stop injecting).
var faultErrs = map[string]error{"none": nil, "enospc": syscall.ENOSPC, "eio": syscall.EIO}

func storageFaultsHandler(f *storage.Faults, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet:
		case http.MethodPut, http.MethodPost:
			q := r.URL.Query()
			for _, key := range []string{"write", "sync"} {
				if name := q.Get(key); name != "" {
					if _, ok := faultErrs[name]; !ok {
						http.Error(w, fmt.Sprintf("%s=%q: want enospc, eio or none", key, name), http.StatusBadRequest)
						return
					}
				}
			}
			for key, set := range map[string]func(error){"write": f.SetWriteErr, "sync": f.SetSyncErr} {
				if name := q.Get(key); name != "" {
					set(faultErrs[name])
					log.Warn("TEST ONLY: storage fault injection changed", "kind", key, "error", name)
				}
			}
		default:
			w.Header().Set("Allow", "GET, PUT")
			http.Error(w, "GET or PUT", http.StatusMethodNotAllowed)
			return
		}
		writes, syncs := f.Injected()
		fmt.Fprintf(w, "writes_failed %d\nsyncs_failed %d\n", writes, syncs)
	})
}
