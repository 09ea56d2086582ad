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
	"io/fs"
	"os"

	"github.com/klite/klite/broker/storage"
)

// checkCoordinatorLog is called before opening the coordinator log name at path. It
// returns whether the log must be noted as created once opened (noteCoordinatorLog).
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

// noteCoordinatorLog records in meta.log that the coordinator log name exists.
func (b *Broker) noteCoordinatorLog(name string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.appendMetaLocked(metaRecord{Type: "log", Name: name}); err != nil {
		return err
	}
	if b.createdLogs == nil {
		b.createdLogs = map[string]bool{}
	}
	b.createdLogs[name] = true
	return nil
}
