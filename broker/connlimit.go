package broker

// max.connections, the dynamic broker config that bounds the connections served at once
// (server.Config.MaxConnections waits at the limit; README, "Design notes").

import (
	"math"
	"strconv"
)

// effectiveMaxConnections is max.connections as set for this broker (self), else cluster-wide
// (""), else 0 (unset). cfg: the dynamic broker configs by resource name.
func effectiveMaxConnections(cfg map[string]map[string]string, self string) int64 {
	var n int64
	for _, src := range []string{"", self} {
		if v, ok := cfg[src]["max.connections"]; ok {
			if m, err := strconv.ParseInt(v, 10, 32); err == nil && m >= 1 {
				n = m
			}
		}
	}
	return n
}

// maxConnections is the effective max.connections (Kafka's default: 2147483647).
func (b *Broker) maxConnections() int {
	if n := b.admin.maxConns.Load(); n > 0 {
		return int(n)
	}
	return math.MaxInt32
}

// checkMaxConnections validates a max.connections value of the right type. Kafka takes 0
// too, and its controller listener (not counted) can undo it; klite serves one listener
// only, so 0 would lock every client out for good.
func checkMaxConnections(v string) (string, bool) {
	if n, err := strconv.ParseInt(v, 10, 32); err == nil && n < 1 {
		return "Invalid value " + v + " for configuration max.connections: Value must be at least 1 (klite has no controller listener from which 0 could be undone)", false
	}
	return "", true
}
