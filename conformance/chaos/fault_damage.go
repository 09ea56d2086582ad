package chaos

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Damage to files at rest between a SIGKILL and the restart, each cycle one file of the
// broker's data directory (rotating over the kinds, skipping a kind with nothing to damage):
//
//   - TornTail: the end of the WAL's last segment or of meta.log, meta/groups.log or
//     meta/txns.log gets a torn record: a copy of the last record cut in its middle, as a
//     write the crash interrupted (never acknowledged). klite must start, cut it (saying so)
//     and lose nothing acknowledged.
//   - Corrupt: one byte flipped inside data that was durable: an earlier WAL entry, the first
//     record of a metadata log, a partition segment's trailer or index footer, the partition
//     checkpoint, producers.snapshot. klite must either start and lose nothing (the damage
//     was redundant, or rebuilt), or refuse to start naming the damaged file (issue 18: never
//     cut what was acknowledged); then the original bytes are restored and klite must start.
//
// Either way the workload goes on across the restart and the checker holds the broker to
// every acknowledged record: nothing lost, nothing corrupt served (franz-go checks every
// batch's CRC; a corrupt batch would stall the final reads and show as lost).
const (
	TornTail = "torn-tail"
	Corrupt  = "corrupt"
)

// DamageFlags are klite flags the Corrupt fault needs: 64 KiB commit groups make the WAL's
// torn-tail window (what the writer can have in flight: about two groups, see
// broker/storage/recovery.go) small, and 1 MiB segments rotate often, so that damage to
// durable WAL entries can be told from a torn write at all (inside the window it cannot:
// recovery cuts it as torn, as it must after a power loss).
var DamageFlags = []string{"--wal-group-commit-bytes", "65536", "--wal-segment-bytes", "1048576"}

// walTornWindow bounds the torn-tail window with DamageFlags (two 64 KiB groups, a block and
// an entry of up to 64 KiB), with room to spare.
const walTornWindow = 256 << 10

// damage is one change to a file, undoable.
type damage struct {
	kind, path string
	orig       []byte // the whole file before
	what       string
}

func (d *damage) restore() error { return os.WriteFile(d.path, d.orig, 0o644) }

// damageFault is one cycle of TornTail or Corrupt.
func damageFault(c Config, cycle int, rng *rand.Rand) error {
	b := c.Broker
	b.Kill()
	kinds := tornKinds
	if c.Fault == Corrupt {
		kinds = corruptKinds
	}
	var d *damage
	for i := 0; i < len(kinds) && d == nil; i++ {
		k := kinds[(cycle+i)%len(kinds)]
		var err error
		if d, err = k.apply(b.Dir, rng); err != nil {
			return fmt.Errorf("%s: damaging %s: %v", c.Fault, k.name, err)
		}
		if d != nil {
			d.kind = k.name
		}
	}
	if d == nil {
		return b.Start() // nothing to damage yet
	}
	mark := b.Lines()
	err := b.Start()
	if c.Fault == TornTail {
		if err != nil {
			return fmt.Errorf("%s (%s): klite refused a torn tail, which it must cut: %v", d.kind, d.what, err)
		}
		if !b.said(mark, "torn") {
			return fmt.Errorf("%s (%s): klite started without saying it cut a torn tail\n%s", d.kind, d.what, b.Tail(20))
		}
		return nil
	}
	if err == nil {
		b.Damage.note(d.kind, true)
		return nil // the checker decides whether anything was lost
	}
	if !b.said(mark, filepath.Base(d.path)) {
		return fmt.Errorf("%s (%s): klite refused to start without naming %s: %v", d.kind, d.what, filepath.Base(d.path), err)
	}
	b.Damage.note(d.kind, false)
	if err := d.restore(); err != nil {
		return err
	}
	if err := b.Start(); err != nil {
		return fmt.Errorf("%s (%s): restored, but klite still does not start: %v", d.kind, d.what, err)
	}
	return nil
}

// DamageCounts says how often klite served or refused after a Corrupt cycle, in all and per
// kind of damage.
type DamageCounts struct {
	Served, Refused int
	ByKind          map[string][2]int // served, refused
}

func (c *DamageCounts) note(kind string, served bool) {
	if c.ByKind == nil {
		c.ByKind = map[string][2]int{}
	}
	k := c.ByKind[kind]
	if served {
		c.Served++
		k[0]++
	} else {
		c.Refused++
		k[1]++
	}
	c.ByKind[kind] = k
}

// String lists the kinds: "wal-flip 0/3" (served/refused).
func (c DamageCounts) String() string {
	kinds := make([]string, 0, len(c.ByKind))
	for k := range c.ByKind {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	var sb strings.Builder
	for i, k := range kinds {
		if i > 0 {
			sb.WriteString(", ")
		}
		fmt.Fprintf(&sb, "%s %d/%d", k, c.ByKind[k][0], c.ByKind[k][1])
	}
	return sb.String()
}

func saidAny(lines []string, s string) bool {
	for _, l := range lines {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

type damageKind struct {
	name  string
	apply func(dir string, rng *rand.Rand) (*damage, error) // nil, nil: nothing to damage
}

var tornKinds = []damageKind{
	{"wal-torn", func(dir string, _ *rand.Rand) (*damage, error) { return tornWAL(dir) }},
	{"meta-torn", func(dir string, _ *rand.Rand) (*damage, error) { return tornMeta(filepath.Join(dir, "meta.log")) }},
	{"groups-torn", func(dir string, _ *rand.Rand) (*damage, error) {
		return tornMeta(filepath.Join(dir, "meta", "groups.log"))
	}},
	{"txns-torn", func(dir string, _ *rand.Rand) (*damage, error) {
		return tornMeta(filepath.Join(dir, "meta", "txns.log"))
	}},
}

var corruptKinds = []damageKind{
	{"wal-flip", flipWAL},
	{"meta-flip", func(dir string, rng *rand.Rand) (*damage, error) {
		return flipMeta(filepath.Join(dir, "meta.log"), rng)
	}},
	{"segment-trailer-flip", func(dir string, rng *rand.Rand) (*damage, error) { return flipSegment(dir, rng, false) }},
	{"groups-flip", func(dir string, rng *rand.Rand) (*damage, error) {
		return flipMeta(filepath.Join(dir, "meta", "groups.log"), rng)
	}},
	{"segment-index-flip", func(dir string, rng *rand.Rand) (*damage, error) { return flipSegment(dir, rng, true) }},
	{"txns-flip", func(dir string, rng *rand.Rand) (*damage, error) {
		return flipMeta(filepath.Join(dir, "meta", "txns.log"), rng)
	}},
	{"checkpoint-flip", flipCheckpoint},
	{"producers-snapshot-flip", func(dir string, rng *rand.Rand) (*damage, error) {
		return flipAnywhere(filepath.Join(dir, "producers.snapshot"), 0, rng)
	}},
}

// load reads path for damaging; a missing file is nothing to damage.
func load(path string) (*damage, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &damage{path: path, orig: b}, nil
}

// walEntries returns the [start, end) of each whole entry of a WAL segment (56-byte header:
// magic 0x4B57 at 4, batch length at 8; see broker/storage/wal.go), up to the first that is
// not one (the zero padding of direct I/O, or the end).
func walEntries(b []byte) [][2]int {
	var out [][2]int
	for p := 0; p+56 <= len(b); {
		if binary.BigEndian.Uint16(b[p+4:]) != 0x4B57 {
			break
		}
		end := p + 56 + int(binary.BigEndian.Uint32(b[p+8:]))
		if end > len(b) || end <= p+56 {
			break
		}
		out = append(out, [2]int{p, end})
		p = end
	}
	return out
}

// metaRecords does the same for a metadata log (4-byte length, 4-byte CRC, payload).
func metaRecords(b []byte) [][2]int {
	var out [][2]int
	for p := 0; p+8 <= len(b); {
		end := p + 8 + int(binary.BigEndian.Uint32(b[p:]))
		if end > len(b) || end < p+8 {
			break
		}
		out = append(out, [2]int{p, end})
		p = end
	}
	return out
}

func walSegments(dir string) ([]string, error) {
	s, err := filepath.Glob(filepath.Join(dir, "wal", "*.wal"))
	sort.Strings(s)
	return s, err
}

// tornWAL writes, after the last entry of the last WAL segment, the first half of a copy of
// that entry.
func tornWAL(dir string) (*damage, error) {
	segs, err := walSegments(dir)
	if err != nil || len(segs) == 0 {
		return nil, err
	}
	d, err := load(segs[len(segs)-1])
	if d == nil || err != nil {
		return nil, err
	}
	es := walEntries(d.orig)
	if len(es) == 0 {
		return nil, nil
	}
	last := es[len(es)-1]
	torn := d.orig[last[0] : last[0]+56+(last[1]-last[0]-56)/2]
	d.what = fmt.Sprintf("%d of %d bytes of a copy of the last entry written at %d", len(torn), last[1]-last[0], last[1])
	return d, writeAt(d.path, torn, int64(last[1]))
}

// tornMeta appends the first half of a copy of the log's last record.
func tornMeta(path string) (*damage, error) {
	d, err := load(path)
	if d == nil || err != nil {
		return nil, err
	}
	rs := metaRecords(d.orig)
	if len(rs) == 0 {
		return nil, nil
	}
	last := rs[len(rs)-1]
	torn := d.orig[last[0] : last[0]+8+(last[1]-last[0]-8)/2]
	d.what = fmt.Sprintf("%d of %d bytes of a copy of the last record appended at %d", len(torn), last[1]-last[0], last[1])
	return d, writeAt(path, torn, int64(last[1]))
}

// flipWAL flips a byte in the batch of an entry that was durable: in the last WAL segment
// one starting before the torn-tail window, else in the newest earlier segment (rotated
// segments are complete and fsynced).
func flipWAL(dir string, rng *rand.Rand) (*damage, error) {
	segs, err := walSegments(dir)
	if err != nil {
		return nil, err
	}
	for i := len(segs) - 1; i >= 0; i-- {
		d, err := load(segs[i])
		if err != nil {
			return nil, err
		}
		if d == nil {
			continue
		}
		es := walEntries(d.orig)
		if i == len(segs)-1 {
			n := 0
			for n < len(es) && es[n][0] < len(d.orig)-walTornWindow {
				n++
			}
			es = es[:n]
		}
		if len(es) == 0 {
			continue
		}
		e := es[rng.Intn(len(es))]
		return flipAt(d, e[0]+56+rng.Intn(e[1]-e[0]-56))
	}
	return nil, nil
}

// flipMeta flips a byte in the payload of a record that has an intact one after it.
func flipMeta(path string, rng *rand.Rand) (*damage, error) {
	d, err := load(path)
	if d == nil || err != nil {
		return nil, err
	}
	rs := metaRecords(d.orig)
	if len(rs) < 2 {
		return nil, nil
	}
	r := rs[rng.Intn(len(rs)-1)]
	if r[1]-r[0] <= 8 {
		return flipAt(d, r[0]+4) // the CRC of an empty record
	}
	return flipAt(d, r[0]+8+rng.Intn(r[1]-r[0]-8))
}

// flipSegment flips a byte of a partition segment's 92-byte trailer (index: of its index
// footer, between the data and the trailer; see broker/logstore/segment.go).
func flipSegment(dir string, rng *rand.Rand, index bool) (*damage, error) {
	segs, err := filepath.Glob(filepath.Join(dir, "segments", "*", "*", "*.seg"))
	if err != nil || len(segs) == 0 {
		return nil, err
	}
	d, err := load(segs[rng.Intn(len(segs))])
	if d == nil || err != nil || len(d.orig) < 92 {
		return nil, err
	}
	t := len(d.orig) - 92
	if !index {
		return flipAt(d, t+rng.Intn(92))
	}
	dataLen := int(binary.BigEndian.Uint64(d.orig[t+24:]))
	if dataLen >= t {
		return nil, nil
	}
	return flipAt(d, dataLen+rng.Intn(t-dataLen))
}

func flipCheckpoint(dir string, rng *rand.Rand) (*damage, error) {
	cps, err := filepath.Glob(filepath.Join(dir, "segments", "*", "*", "checkpoint"))
	if err != nil || len(cps) == 0 {
		return nil, err
	}
	return flipAnywhere(cps[rng.Intn(len(cps))], 0, rng)
}

// flipAnywhere flips a byte at or after from.
func flipAnywhere(path string, from int, rng *rand.Rand) (*damage, error) {
	d, err := load(path)
	if d == nil || err != nil || len(d.orig) <= from {
		return nil, err
	}
	return flipAt(d, from+rng.Intn(len(d.orig)-from))
}

func flipAt(d *damage, at int) (*damage, error) {
	d.what = fmt.Sprintf("byte %d of %d flipped", at, len(d.orig))
	return d, writeAt(d.path, []byte{^d.orig[at]}, int64(at))
}

func writeAt(path string, p []byte, off int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(p, off); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
