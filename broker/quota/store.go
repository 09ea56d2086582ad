package quota

import (
	"fmt"
	"sync"
	"sync/atomic"
)

// Op is one alteration of a key: set Value, or remove the key.
type Op struct {
	Key    string
	Value  float64
	Remove bool
}

// Alteration is one request entry: an entity as given and its ops.
type Alteration struct {
	Entity RawEntity
	Ops    []Op
}

// Change is one accepted key change (what a metadata log record holds).
type Change struct {
	Entity Entity
	Key    string
	Value  float64
	Remove bool
}

// Result is the answer for one distinct entity of an alteration request: Err is "" on
// success, else Kafka's INVALID_REQUEST message. Parts is the entity as the request gave it
// (a repeated type keeping its last name), which is what Kafka echoes, even for an entity it
// refuses.
type Result struct {
	Parts []Part
	Err   string
	key   string
}

// Store holds the quota values of every entity. Safe for concurrent use.
type Store struct {
	mu     sync.RWMutex
	values map[Entity]map[string]float64
	// any is whether some entity has a value: without, enforcement costs one atomic load.
	any atomic.Bool
}

// NewStore returns an empty store.
func NewStore() *Store { return &Store{values: map[Entity]map[string]float64{}} }

// Plan validates an AlterClientQuotas request as Kafka's ClientQuotaControlManager does and
// returns the per-entity results (one per distinct entity, in first-seen order) and the
// changes to apply. Nothing changes until Apply. As in Kafka, an entity's changes are all or
// nothing; removing a key that is not set is no change; setting a key to its current value
// is none either.
func (s *Store) Plan(alts []Alteration) ([]Result, []Change) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var results []Result
	at := map[string]int{} // folded entity -> index in results
	perEntity := map[string][]Change{}
	put := func(key string, parts []Part, msg string) {
		if i, ok := at[key]; ok {
			results[i].Err = msg
			return
		}
		at[key] = len(results)
		results = append(results, Result{Parts: parts, Err: msg, key: key})
	}
	for _, a := range alts {
		parts, key := a.Entity.folded()
		e, problem := a.Entity.Fold()
		ops := map[string]*Op{}
		var order []string
		dup := false
		for i := range a.Ops {
			op := &a.Ops[i]
			if _, ok := ops[op.Key]; ok {
				dup = true
				continue
			}
			ops[op.Key] = op
			order = append(order, op.Key)
		}
		if _, seen := at[key]; seen || dup {
			// Kafka records "Duplicate quota key ..." and then, finding the entity already
			// answered, replaces it with this message.
			put(key, parts, "Ignoring duplicate entity "+rawString(parts))
			delete(perEntity, key)
			continue
		}
		if problem == "" {
			var keys map[string]keyKind
			if keys, problem = e.keys(); problem == "" {
				var changes []Change
				cur := s.values[e]
				for _, k := range order {
					op := ops[k]
					if op.Remove {
						if _, ok := cur[k]; ok {
							changes = append(changes, Change{Entity: e, Key: k, Remove: true})
						}
						continue
					}
					if problem = validValue(keys, k, op.Value); problem != "" {
						changes = nil
						break
					}
					if v, ok := cur[k]; !ok || v != op.Value {
						changes = append(changes, Change{Entity: e, Key: k, Value: op.Value})
					}
				}
				if problem == "" {
					perEntity[key] = changes
				}
			}
		}
		put(key, parts, problem)
	}
	var changes []Change
	for _, r := range results {
		if r.Err == "" {
			changes = append(changes, perEntity[r.key]...)
		}
	}
	return results, changes
}

// Apply makes changes (accepted by Plan, or replayed from the metadata log).
func (s *Store) Apply(changes ...Change) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range changes {
		m := s.values[c.Entity]
		if c.Remove {
			delete(m, c.Key)
			if len(m) == 0 {
				delete(s.values, c.Entity)
			}
			continue
		}
		if m == nil {
			m = map[string]float64{}
			s.values[c.Entity] = m
		}
		m[c.Key] = c.Value
	}
	s.any.Store(len(s.values) > 0)
}

// Snapshot returns one set change per stored value (the metadata log's compacted form).
func (s *Store) Snapshot() []Change {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []Change
	for e, m := range s.values {
		for _, k := range sortedKeys(m) {
			out = append(out, Change{Entity: e, Key: k, Value: m[k]})
		}
	}
	return out
}

// Match types of a describe filter component.
const (
	MatchExact     = 0
	MatchDefault   = 1
	MatchSpecified = 2 // any specified name ("ANY" in the admin clients)
)

// Component is one describe filter component.
type Component struct {
	Type      string
	MatchType int8
	Match     *string
}

// DescribeError is a describe filter Kafka refuses: UnsupportedType marks an unknown entity
// type (UNSUPPORTED_VERSION in Kafka), otherwise INVALID_REQUEST.
type DescribeError struct {
	Msg             string
	UnsupportedType bool
}

func (e *DescribeError) Error() string { return e.Msg }

// Entry is one entity and its values, as DescribeClientQuotas answers.
type Entry struct {
	Entity Entity
	Values map[string]float64
}

// Describe returns the entities matching the filter, as Kafka's ClientQuotasImage.describe:
// every exact/default component must be present with that name, every specified component
// present with some name, and with strict the entity has no other types.
func (s *Store) Describe(components []Component, strict bool) ([]Entry, error) {
	exact := map[string]Name{}
	typed := map[string]bool{}
	for _, c := range components {
		if c.Type == "" {
			return nil, &DescribeError{Msg: "Invalid empty entity type."}
		}
		if _, ok := exact[c.Type]; ok || typed[c.Type] {
			return nil, &DescribeError{Msg: "Entity type " + c.Type + " cannot appear more than once in the filter."}
		}
		if c.Type != TypeUser && c.Type != TypeClientID && c.Type != TypeIP {
			return nil, &DescribeError{Msg: "Unsupported entity type " + c.Type, UnsupportedType: true}
		}
		switch c.MatchType {
		case MatchExact:
			if c.Match == nil {
				return nil, &DescribeError{Msg: "Request specified MATCH_TYPE_EXACT, but set match string to null."}
			}
			exact[c.Type] = Named(*c.Match)
		case MatchDefault:
			if c.Match != nil {
				return nil, &DescribeError{Msg: "Request specified MATCH_TYPE_DEFAULT, but also specified a match string."}
			}
			exact[c.Type] = DefaultName
		case MatchSpecified:
			if c.Match != nil {
				return nil, &DescribeError{Msg: "Request specified MATCH_TYPE_SPECIFIED, but also specified a match string."}
			}
			typed[c.Type] = true
		default:
			return nil, &DescribeError{Msg: fmt.Sprintf("Unknown match type %d", c.MatchType)}
		}
	}
	_, ipExact := exact[TypeIP]
	_, userExact := exact[TypeUser]
	_, clientExact := exact[TypeClientID]
	if (ipExact || typed[TypeIP]) && (userExact || typed[TypeUser] || clientExact || typed[TypeClientID]) {
		return nil, &DescribeError{Msg: "Invalid entity filter component combination. IP filter component should not be used with user or clientId filter component."}
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []Entry
	for e, vals := range s.values {
		if strict && e.size() != len(exact)+len(typed) {
			continue
		}
		ok := true
		for t, want := range exact {
			if *e.part(t) != want {
				ok = false
				break
			}
		}
		for t := range typed {
			if !e.part(t).Set {
				ok = false
			}
		}
		if !ok {
			continue
		}
		cp := make(map[string]float64, len(vals))
		for k, v := range vals {
			cp[k] = v
		}
		out = append(out, Entry{Entity: e, Values: cp})
	}
	return out, nil
}

// lookup returns the value of key for the entity and whether it is set. Store lock held.
func (s *Store) lookupLocked(e Entity, key string) (float64, bool) {
	v, ok := s.values[e][key]
	return v, ok
}

// Keys returns the entry's keys in order.
func (e Entry) Keys() []string { return sortedKeys(e.Values) }
