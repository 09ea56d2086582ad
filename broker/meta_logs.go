package broker

// The coordinator logs (DataDir/meta/groups.log and txns.log) are separate files, so losing
// one outright (deleted, or a data directory restored without it) would otherwise start an
// empty coordinator: committed offsets gone, consumers rewinding, with nothing in the log.
// When the broker creates such a log it records that in meta.log ({"type":"log","name":
// "groups"}, kept in snapshots); at start, a log meta.log says was created and that is not
// there is corruption: the broker refuses to start, naming the file, unless RecoverDamaged
// (then it starts with an empty log and says so loudly). Data directories from before the
// record existed get it on their first start.

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/klite/klite/broker/storage"
)

// coordinatorLog is one coordinator log openCoordinatorLogs opens.
type coordinatorLog struct {
	name, path string
	l          storage.MetaLog // set once opened
	note       bool
	err        error
}

// openCoordinatorLogs opens the coordinator logs together: the files concurrently (on a
// fresh data directory each creation fsyncs the directory, and concurrent fsyncs share a
// journal commit), then the notes of the new ones in meta.log in one append (one fsync, not
// one per log), only after their files are durable. On an error every log opened is closed.
func (b *Broker) openCoordinatorLogs(logs []*coordinatorLog) error {
	var wg sync.WaitGroup
	for _, c := range logs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if c.err = os.MkdirAll(filepath.Dir(c.path), 0o755); c.err != nil {
				return
			}
			if c.note, c.err = b.checkCoordinatorLog(c.name, c.path); c.err == nil {
				c.l, c.err = storage.OpenMetaLogWith(c.path, b.metaOptions(c.name))
			}
		}()
	}
	wg.Wait()
	var errs []error
	var notes []string
	for _, c := range logs {
		if c.err != nil {
			errs = append(errs, fmt.Errorf("opening %s log: %w", c.name, c.err))
		} else if c.note {
			notes = append(notes, c.name)
		}
	}
	if len(errs) == 0 && len(notes) > 0 {
		if err := b.noteCoordinatorLogs(notes...); err != nil {
			errs = append(errs, fmt.Errorf("opening %v logs: %w", notes, err))
		}
	}
	if len(errs) == 0 {
		return nil
	}
	for _, c := range logs {
		if c.l != nil {
			c.l.Close()
		}
	}
	return errors.Join(errs...)
}

// checkCoordinatorLog is called before opening the coordinator log name at path. It
// returns whether the log must be noted as created once opened (noteCoordinatorLogs).
func (b *Broker) checkCoordinatorLog(name, path string) (note bool, err error) {
	if b.cfg.Meta != nil {
		return false, nil // metadata not in the data directory (tests): nothing to tie to
	}
	_, statErr := os.Stat(path)
	missing := errors.Is(statErr, fs.ErrNotExist)
	if !missing && statErr != nil {
		return false, statErr
	}
	if !b.createdLogs[name] {
		return true, nil
	}
	if !missing {
		return false, nil
	}
	cerr := &storage.CorruptError{Path: path, Offset: 0, Size: -1,
		Reason: "the metadata log records that this log was created, but the file is missing (its committed state would be lost)"}
	if !b.cfg.RecoverDamaged {
		return false, cerr
	}
	b.log.Error("RECOVERY: a coordinator log is missing; starting with it empty", "file", path, "err", cerr)
	return false, nil
}

// noteCoordinatorLogs records in meta.log, in one append, that the coordinator logs names
// exist.
func (b *Broker) noteCoordinatorLogs(names ...string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	recs := make([]metaRecord, len(names))
	for i, name := range names {
		recs[i] = metaRecord{Type: "log", Name: name}
	}
	if err := b.appendMetaLocked(recs...); err != nil {
		return err
	}
	if b.createdLogs == nil {
		b.createdLogs = map[string]bool{}
	}
	for _, name := range names {
		b.createdLogs[name] = true
	}
	return nil
}
