package main

import "runtime/debug"

// goModVersion is the confluent-kafka-go module version this binary was built with.
func goModVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, m := range bi.Deps {
			if m.Path == "github.com/confluentinc/confluent-kafka-go/v2" {
				return m.Version
			}
		}
	}
	return "unknown"
}
