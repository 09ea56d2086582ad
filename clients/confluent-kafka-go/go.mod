module github.com/klite/klite/clients/confluent-kafka-go

go 1.26.8

require github.com/klite/klite/clients/internal/driverproto v0.0.0

require (
	github.com/confluentinc/confluent-kafka-go/v2 v2.11.1
	github.com/twmb/franz-go v1.22.2 // indirect
)

replace github.com/klite/klite/clients/internal/driverproto => ../internal/driverproto
