package quota

import (
	"strings"
	"testing"
)

func sp(s string) *string { return &s }

// TestRateKafkaWindow checks the windowed rate and throttle time against Kafka's formulas
// with a fake clock: the first samples count as 10 s of window, so a fresh client may send
// (samples-1) windows' worth before it is throttled, and the throttle time is the excess over
// the quota divided by the quota.
func TestRateKafkaWindow(t *testing.T) {
	r := Rate{Samples: 11, Window: 1000}
	const q = 1000.0 // bytes/s
	now := int64(1_000_000)
	// 9,000 bytes at once: 9000 / 10 s = 900/s, within the quota.
	r.Record(9000, now)
	if got := r.Measure(now); got != 900 {
		t.Fatalf("rate after 9000 B at t0 = %v, want 900", got)
	}
	if ms := r.Throttle(q, now); ms != 0 {
		t.Fatalf("throttle within quota = %d", ms)
	}
	// 3,000 more 500 ms later: 12000 B over 10.5 s = 1142.86/s; over by 142.86/s, so the
	// throttle is 142.86/1000 * 10500 ms = 1500 ms (the excess 1500 B at 1000 B/s).
	now += 500
	r.Record(3000, now)
	if ms := r.Throttle(q, now); ms != 1500 {
		t.Fatalf("throttle = %d ms, want 1500", ms)
	}
	// 1500 ms later the window is padded to 10 s again (2 full windows + 8 assumed), not
	// 12 s: Kafka's rate is still 1200/s and the client is throttled another 2000 ms.
	now += 1500
	if ms := r.Throttle(q, now); ms != 2000 {
		t.Fatalf("throttle after waiting = %d, rate %v", ms, r.Measure(now))
	}
	// Both records fell in the first sample (one window of 1 s); it expires after
	// samples*window = 11 s, and with it the rate.
	now = 1_000_000 + 10_999
	if got := r.Measure(now); got < 1090.9 || got > 1091.1 { // 12000 B / 10.999 s
		t.Fatalf("rate before expiry = %v", got)
	}
	now++
	if got := r.Measure(now); got != 0 {
		t.Fatalf("rate after expiry = %v, want 0", got)
	}
}

// TestRateSteadyProducer drives a producer that sends a batch, then waits the throttle time
// it is given (as a KIP-219 client does), with a fake clock: past the initial burst its
// long-run rate is the quota.
func TestRateSteadyProducer(t *testing.T) {
	const q, batch = 10_000.0, 1_000.0
	r := Rate{Samples: 11, Window: 1000}
	now := int64(0)
	var sent float64
	var throttled int
	for i := 0; i < 100_000 && now < 60_000; i++ {
		r.Record(batch, now)
		sent += batch
		ms := r.Throttle(q, now)
		if ms > 0 {
			throttled++
		}
		now += max(ms, 10) // 10 ms per request round trip
	}
	rate := sent / (float64(now) / 1000)
	// 60 s at the quota plus the initial burst of 10 windows: (60+10)/60 of the quota.
	if rate < q || rate > q*1.25 || throttled == 0 {
		t.Fatalf("long-run rate %v B/s for quota %v (throttled %d times)", rate, q, throttled)
	}
}

func TestPlanValidation(t *testing.T) {
	s := NewStore()
	cases := []struct {
		name string
		alt  Alteration
		want string // "" accepted, else a substring of Kafka's message
	}{
		{"unknown key", Alteration{RawEntity{{TypeClientID, sp("a")}}, []Op{{Key: "bogus", Value: 1}}}, "Invalid configuration key bogus"},
		{"zero", Alteration{RawEntity{{TypeClientID, sp("a")}}, []Op{{Key: ProducerByteRate, Value: 0}}}, "Quota producer_byte_rate must be greater than 0"},
		{"negative", Alteration{RawEntity{{TypeUser, nil}}, []Op{{Key: ConsumerByteRate, Value: -5}}}, "must be greater than 0"},
		{"fraction of a long", Alteration{RawEntity{{TypeUser, sp("u")}}, []Op{{Key: ProducerByteRate, Value: 1.5}}}, "producer_byte_rate cannot be a fractional value."},
		{"fraction of a double", Alteration{RawEntity{{TypeUser, sp("u")}}, []Op{{Key: RequestPercentage, Value: 12.5}}}, ""},
		{"empty entity", Alteration{nil, []Op{{Key: ProducerByteRate, Value: 1}}}, "Invalid empty client quota entity"},
		{"unknown type", Alteration{RawEntity{{"group", sp("g")}}, []Op{{Key: ProducerByteRate, Value: 1}}}, "Unhandled client quota entity type: group"},
		{"empty name", Alteration{RawEntity{{TypeUser, sp("")}}, []Op{{Key: ProducerByteRate, Value: 1}}}, "Empty user not supported"},
		{"ip with user", Alteration{RawEntity{{TypeIP, sp("1.2.3.4")}, {TypeUser, sp("u")}}, []Op{{Key: ConnectionCreationRate, Value: 1}}}, "IP entity"},
		{"ip key on user", Alteration{RawEntity{{TypeUser, sp("u")}}, []Op{{Key: ConnectionCreationRate, Value: 1}}}, "Invalid configuration key connection_creation_rate"},
		{"ip", Alteration{RawEntity{{TypeIP, sp("10.0.0.1")}}, []Op{{Key: ConnectionCreationRate, Value: 3}}}, ""},
		{"bad ip", Alteration{RawEntity{{TypeIP, sp("not an ip")}}, []Op{{Key: ConnectionCreationRate, Value: 3}}}, "is not a valid IP"},
		{"remove unknown key", Alteration{RawEntity{{TypeClientID, sp("a")}}, []Op{{Key: "bogus", Remove: true}}}, ""},
		{"duplicate key", Alteration{RawEntity{{TypeClientID, sp("d")}}, []Op{{Key: ProducerByteRate, Value: 1}, {Key: ProducerByteRate, Value: 2}}}, "Ignoring duplicate entity"},
		{"user and client", Alteration{RawEntity{{TypeUser, nil}, {TypeClientID, sp("c")}}, []Op{{Key: ProducerByteRate, Value: 100}}}, ""},
	}
	for _, c := range cases {
		res, changes := s.Plan([]Alteration{c.alt})
		if len(res) != 1 {
			t.Fatalf("%s: %d results", c.name, len(res))
		}
		if c.want == "" && res[0].Err != "" || c.want != "" && !strings.Contains(res[0].Err, c.want) {
			t.Errorf("%s: got %q, want %q", c.name, res[0].Err, c.want)
		}
		if c.want != "" && len(changes) != 0 {
			t.Errorf("%s: refused but changes %v", c.name, changes)
		}
	}
	// One bad key refuses the whole entity; another entity of the request still applies.
	res, changes := s.Plan([]Alteration{
		{RawEntity{{TypeClientID, sp("a")}}, []Op{{Key: ProducerByteRate, Value: 10}, {Key: "bogus", Value: 1}}},
		{RawEntity{{TypeClientID, sp("b")}}, []Op{{Key: ProducerByteRate, Value: 10}}},
	})
	if res[0].Err == "" || res[1].Err != "" || len(changes) != 1 || changes[0].Entity.ClientID.Value != "b" || *res[1].Parts[0].Name != "b" {
		t.Fatalf("partial request: %+v %+v", res, changes)
	}
	// Setting the current value again, or removing an absent key, changes nothing.
	s.Apply(changes...)
	if _, again := s.Plan([]Alteration{{RawEntity{{TypeClientID, sp("b")}}, []Op{{Key: ProducerByteRate, Value: 10}, {Key: ConsumerByteRate, Remove: true}}}}); len(again) != 0 {
		t.Fatalf("no-op changes: %+v", again)
	}
}

func TestDescribeFilters(t *testing.T) {
	s := NewStore()
	set := func(e Entity, k string, v float64) { s.Apply(Change{Entity: e, Key: k, Value: v}) }
	set(Entity{ClientID: Named("c1")}, ProducerByteRate, 1)
	set(Entity{ClientID: DefaultName}, ProducerByteRate, 2)
	set(Entity{User: Named("u1")}, ConsumerByteRate, 3)
	set(Entity{User: Named("u1"), ClientID: Named("c1")}, ProducerByteRate, 4)
	set(Entity{User: DefaultName, ClientID: DefaultName}, ProducerByteRate, 5)
	count := func(comps []Component, strict bool) int {
		t.Helper()
		out, err := s.Describe(comps, strict)
		if err != nil {
			t.Fatal(err)
		}
		return len(out)
	}
	for _, c := range []struct {
		name   string
		comps  []Component
		strict bool
		want   int
	}{
		{"all", nil, false, 5},
		{"strict empty", nil, true, 0},
		{"client exact", []Component{{TypeClientID, MatchExact, sp("c1")}}, false, 2},
		{"client exact strict", []Component{{TypeClientID, MatchExact, sp("c1")}}, true, 1},
		{"client default", []Component{{TypeClientID, MatchDefault, nil}}, false, 2},
		{"client any strict", []Component{{TypeClientID, MatchSpecified, nil}}, true, 2},
		{"user any", []Component{{TypeUser, MatchSpecified, nil}}, false, 3},
		{"user and client any", []Component{{TypeUser, MatchSpecified, nil}, {TypeClientID, MatchSpecified, nil}}, true, 2},
	} {
		if got := count(c.comps, c.strict); got != c.want {
			t.Errorf("%s: %d entries, want %d", c.name, got, c.want)
		}
	}
	for _, c := range []struct {
		comps       []Component
		want        string
		unsupported bool
	}{
		{[]Component{{TypeClientID, MatchExact, nil}}, "MATCH_TYPE_EXACT, but set match string to null", false},
		{[]Component{{TypeClientID, MatchDefault, sp("x")}}, "MATCH_TYPE_DEFAULT, but also specified", false},
		{[]Component{{TypeClientID, MatchSpecified, sp("x")}}, "MATCH_TYPE_SPECIFIED, but also specified", false},
		{[]Component{{TypeClientID, 7, nil}}, "Unknown match type 7", false},
		{[]Component{{TypeUser, MatchSpecified, nil}, {TypeUser, MatchDefault, nil}}, "cannot appear more than once", false},
		{[]Component{{"group", MatchSpecified, nil}}, "Unsupported entity type group", true},
		{[]Component{{"", MatchSpecified, nil}}, "Invalid empty entity type.", false},
		{[]Component{{TypeIP, MatchSpecified, nil}, {TypeUser, MatchSpecified, nil}}, "IP filter component should not be used", false},
	} {
		_, err := s.Describe(c.comps, false)
		de, ok := err.(*DescribeError)
		if !ok || !strings.Contains(de.Msg, c.want) || de.UnsupportedType != c.unsupported {
			t.Errorf("%+v: %v, want %q", c.comps, err, c.want)
		}
	}
}

// TestResolvePrecedence checks Kafka's eight levels and which connections share a quota.
func TestResolvePrecedence(t *testing.T) {
	s := NewStore()
	set := func(e Entity, v float64) { s.Apply(Change{Entity: e, Key: ProducerByteRate, Value: v}) }
	if _, _, ok := s.Resolve(ProducerByteRate, "u", "c"); ok {
		t.Fatal("quota without any entity")
	}
	steps := []struct {
		e        Entity
		v        float64
		user, cl string // tags expected for ("u", "c") once e is set
	}{
		{Entity{ClientID: DefaultName}, 8, "", "c"},
		{Entity{ClientID: Named("c")}, 7, "", "c"},
		{Entity{User: DefaultName}, 6, "u", ""},
		{Entity{User: DefaultName, ClientID: DefaultName}, 5, "u", "c"},
		{Entity{User: DefaultName, ClientID: Named("c")}, 4, "u", "c"},
		{Entity{User: Named("u")}, 3, "u", ""},
		{Entity{User: Named("u"), ClientID: DefaultName}, 2, "u", "c"},
		{Entity{User: Named("u"), ClientID: Named("c")}, 1, "u", "c"},
	}
	for _, st := range steps {
		set(st.e, st.v)
		bound, g, ok := s.Resolve(ProducerByteRate, "u", "c")
		if !ok || bound != st.v || g.user != st.user || g.client != st.cl {
			t.Fatalf("after %v: bound %v tags (%q,%q) ok %v; want %v (%q,%q)", st.e, bound, g.user, g.client, ok, st.v, st.user, st.cl)
		}
	}
	// Another user of client "c" falls to the default user + client-id "c" level.
	if bound, _, _ := s.Resolve(ProducerByteRate, "other", "c"); bound != 4 {
		t.Fatalf("other user: %v", bound)
	}
	// The consumer key is separate.
	if _, _, ok := s.Resolve(ConsumerByteRate, "u", "c"); ok {
		t.Fatal("consumer quota from producer entities")
	}
}

// TestManagerSharedGroup: a client-id quota is shared by every connection of that client-id,
// whatever the user; the throttle grows with their combined bytes.
func TestManagerSharedGroup(t *testing.T) {
	s := NewStore()
	s.Apply(Change{Entity: Entity{ClientID: Named("app")}, Key: ProducerByteRate, Value: 100})
	m := NewManager(s, 11, 1000)
	if ms := m.Record(ProducerByteRate, "a", "app", 1000, 0); ms != 0 {
		t.Fatalf("first 1000 B within 10 s of 100 B/s: throttled %d", ms)
	}
	// 500 more bytes from another user of the same client-id: 1500 B / 10 s = 150/s,
	// 50/100 * 10000 ms = 5000 ms.
	if ms := m.Record(ProducerByteRate, "b", "app", 500, 0); ms != 5000 {
		t.Fatalf("shared quota throttle = %d, want 5000", ms)
	}
	if ms := m.Record(ProducerByteRate, "a", "other", 5000, 0); ms != 0 {
		t.Fatalf("unquoted client throttled %d", ms)
	}
}
