module github.com/klite/klite/clients/internal/driverproto

go 1.26.8

require github.com/twmb/franz-go v1.22.2
