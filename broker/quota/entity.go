// Package quota holds client quotas (KIP-13, KIP-55, KIP-219, KIP-546) as Kafka 4.0 keeps and
// enforces them: the quota entities and their values (Store), validation of alterations and
// the matching of describe filters as Kafka's ClientQuotaControlManager and ClientQuotasImage
// do, and the enforcement side (Manager): a windowed rate per quota group and the throttle
// time that brings a client back under its quota.
//
// The broker (broker/client_quotas.go) persists each accepted change as a metadata log
// record and replays them into a Store on start.
package quota

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
)

// Entity types (Kafka's ClientQuotaEntity constants).
const (
	TypeUser     = "user"
	TypeClientID = "client-id"
	TypeIP       = "ip"
)

// Quota keys (Kafka's QuotaConfig).
const (
	ProducerByteRate       = "producer_byte_rate"
	ConsumerByteRate       = "consumer_byte_rate"
	RequestPercentage      = "request_percentage"
	ControllerMutationRate = "controller_mutation_rate"
	ConnectionCreationRate = "connection_creation_rate"
)

// keyKind is a quota key's config type, which decides the values it takes.
type keyKind int

const (
	kindLong keyKind = iota
	kindDouble
	kindInt
)

// userClientKeys are the keys of user and client-id entities, ipKeys those of ip entities.
var (
	userClientKeys = map[string]keyKind{ProducerByteRate: kindLong, ConsumerByteRate: kindLong,
		RequestPercentage: kindDouble, ControllerMutationRate: kindDouble}
	ipKeys = map[string]keyKind{ConnectionCreationRate: kindInt}
)

// Name is one entity type's part of an entity: absent, the default (Kafka's null name), or a
// name.
type Name struct {
	Set     bool   // the entity has this type
	Default bool   // the null name: the default for this type
	Value   string // the name unless Default
}

// Named returns the Name of a given name, Default the default's.
func Named(s string) Name { return Name{Set: true, Value: s} }

// DefaultName is the default entity of a type (the null name on the wire).
var DefaultName = Name{Set: true, Default: true}

// FromPtr converts a nullable wire name.
func FromPtr(p *string) Name {
	if p == nil {
		return DefaultName
	}
	return Named(*p)
}

// Ptr is the nullable wire name (nil for the default).
func (n Name) Ptr() *string {
	if n.Default {
		return nil
	}
	v := n.Value
	return &v
}

// Entity is a quota entity: a combination of user, client-id and ip parts. Comparable, so it
// keys maps.
type Entity struct {
	User, ClientID, IP Name
}

// Part is one (type, name) pair as the protocol lists them.
type Part struct {
	Type string
	Name *string
}

// Parts lists the entity's parts in a fixed order (user, client-id, ip).
func (e Entity) Parts() []Part {
	var out []Part
	for _, p := range []struct {
		t string
		n Name
	}{{TypeUser, e.User}, {TypeClientID, e.ClientID}, {TypeIP, e.IP}} {
		if p.n.Set {
			out = append(out, Part{p.t, p.n.Ptr()})
		}
	}
	return out
}

func (e Entity) size() int {
	n := 0
	for _, p := range []Name{e.User, e.ClientID, e.IP} {
		if p.Set {
			n++
		}
	}
	return n
}

func (e *Entity) part(typ string) *Name {
	switch typ {
	case TypeUser:
		return &e.User
	case TypeClientID:
		return &e.ClientID
	case TypeIP:
		return &e.IP
	}
	return nil
}

// String is Kafka's ClientQuotaEntity rendering, used in its error messages.
func (e Entity) String() string { return rawString(e.Parts()) }

func rawString(parts []Part) string {
	var b strings.Builder
	for i, p := range parts {
		if i > 0 {
			b.WriteString(", ")
		}
		name := "null"
		if p.Name != nil {
			name = *p.Name
		}
		fmt.Fprintf(&b, "%s=%s", p.Type, name)
	}
	return "ClientQuotaEntity(entries={" + b.String() + "})"
}

// RawEntity is an entity as a request gives it: pairs that may repeat a type or name an
// unknown one. Kafka folds the pairs into a map (a repeated type keeps its last name) before
// validating, and so does Fold.
type RawEntity []Part

// folded returns the pairs with each type once (its last name), in first-seen order, and a
// key naming that map whatever the order.
func (r RawEntity) folded() ([]Part, string) {
	var out []Part
	idx := map[string]int{}
	for _, p := range r {
		if i, ok := idx[p.Type]; ok {
			out[i].Name = p.Name
			continue
		}
		idx[p.Type] = len(out)
		out = append(out, p)
	}
	keys := make([]string, len(out))
	for i, p := range out {
		n := "\x00" // the default
		if p.Name != nil {
			n = "=" + *p.Name
		}
		keys[i] = p.Type + n
	}
	sort.Strings(keys)
	return out, strings.Join(keys, "\x01")
}

// Fold returns the entity, or the problem Kafka reports for it (INVALID_REQUEST).
func (r RawEntity) Fold() (Entity, string) {
	var e Entity
	if len(r) == 0 {
		return e, "Invalid empty client quota entity"
	}
	for _, p := range r {
		n := e.part(p.Type)
		if n == nil {
			return e, "Unhandled client quota entity type: " + p.Type
		}
		*n = FromPtr(p.Name)
	}
	// Kafka checks the names once the map is built.
	for _, p := range e.Parts() {
		if p.Name != nil && *p.Name == "" {
			return e, "Empty " + p.Type + " not supported"
		}
	}
	return e, ""
}

// keys returns the keys valid for the entity's combination of types, or Kafka's complaint.
func (e Entity) keys() (map[string]keyKind, string) {
	switch {
	case e.IP.Set && (e.User.Set || e.ClientID.Set):
		// Kafka's message lacks the space: "shouldnot".
		return nil, "Invalid quota entity combination, IP entity shouldnot be combined with User or ClientId"
	case e.IP.Set:
		if !e.IP.Default {
			if _, err := netip.ParseAddr(e.IP.Value); err != nil {
				// Kafka resolves host names too; klite looks nothing up and takes addresses only.
				return nil, e.IP.Value + " is not a valid IP or resolvable host."
			}
		}
		return ipKeys, ""
	case e.User.Set || e.ClientID.Set:
		return userClientKeys, ""
	}
	return nil, "Invalid empty client quota entity"
}

// validValue is Kafka's validateQuotaKeyValue: "" when value may be set for key.
func validValue(keys map[string]keyKind, key string, value float64) string {
	kind, ok := keys[key]
	if !ok {
		return "Invalid configuration key " + key
	}
	if value <= 0 {
		return "Quota " + key + " must be greater than 0"
	}
	switch kind {
	case kindInt:
		if value > 2147483647 {
			return "Proposed value for " + key + " is too large for an INT."
		}
	case kindLong:
		if value > 9.223372036854775807e18 {
			return "Proposed value for " + key + " is too large for a LONG."
		}
	case kindDouble:
		return ""
	}
	if r := value - float64(int64(value)); r > 1e-6 {
		return key + " cannot be a fractional value."
	}
	return ""
}

// sortedKeys returns m's keys in order (answers and snapshots are deterministic).
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
