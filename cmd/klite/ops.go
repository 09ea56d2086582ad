package main

// Run-time operations: the log level is changed with PUT /log-level on the health address
// (GET reads it), or by editing log-level in the --config file and sending SIGHUP, which
// parses the configuration again (flags and environment are those the process started
// with). SIGHUP also reloads the TLS certificate (tls.go). Other settings need a restart;
// a SIGHUP that finds them changed says so in the log.

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strings"
)

// logLevelHandler serves GET (the level) and PUT (a new level: debug, info, warn or error,
// as the body or ?level=) on /log-level.
func logLevelHandler(level *slog.LevelVar, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet:
			io.WriteString(w, strings.ToLower(level.Level().String())+"\n")
		case http.MethodPut, http.MethodPost:
			v := r.URL.Query().Get("level")
			if v == "" {
				b, _ := io.ReadAll(io.LimitReader(r.Body, 64))
				v = strings.TrimSpace(string(b))
			}
			l, err := parseLevel(v)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			old := level.Level()
			level.Set(l)
			log.Log(r.Context(), max(l, slog.LevelInfo), "log level changed", "from", old.String(), "to", l.String(), "by", "PUT /log-level")
			io.WriteString(w, strings.ToLower(l.String())+"\n")
		default:
			w.Header().Set("Allow", "GET, PUT")
			http.Error(w, "GET or PUT", http.StatusMethodNotAllowed)
		}
	})
}

// reloadConfig parses the configuration again on SIGHUP and applies what can change at run
// time (the log level). A configuration that no longer parses is logged and ignored.
// cur is the configuration running (changes other than the log level wait for a restart,
// and each SIGHUP names those still waiting).
func reloadConfig(cur *options, reload func() (*options, error), level *slog.LevelVar, log *slog.Logger) {
	if reload == nil {
		return
	}
	next, err := reload()
	if err != nil {
		log.Error("SIGHUP: configuration not reloaded; keeping the running one", "err", err)
		return
	}
	l, _ := parseLevel(next.logLevel)
	if old := level.Level(); old != l {
		level.Set(l)
		log.Log(context.Background(), max(l, slog.LevelInfo), "log level changed", "from", old.String(), "to", l.String(), "by", "SIGHUP")
	}
	var restart []string
	for k, v := range next.values {
		if k != "log-level" && cur.values[k] != v {
			restart = append(restart, k)
		}
	}
	if len(restart) > 0 {
		sort.Strings(restart)
		log.Warn("SIGHUP: changed settings take effect at the next restart", "settings", strings.Join(restart, ","))
	}
}
