# klite: two commands matter on a fresh machine: `make run` and `make test`.
# Everything they need is installed here, idempotently, into git-ignored folders (.cache/, bin/,
# per-driver venv/node_modules/target) from the tools' standard per-user caches.

GO        ?= go
CACHE     := $(CURDIR)/.cache
BIN       := $(CURDIR)/bin
KAFKA_LIBS:= $(CACHE)/kafka/libs
KAFKA_JAR := $(KAFKA_LIBS)/kafka_2.13-4.0.2.jar
MVN       ?= mvn -q -B
export PATH := $(BIN):$(PATH)

# moto's S3 server for the S3 tier's tests, in a git-ignored virtualenv (pip's downloads land
# in its standard per-user cache). Tests run by make find it here and fail, not skip, without it.
MOTO_VENV := $(CACHE)/moto
MOTO_STAMP:= $(MOTO_VENV)/.installed
PYTHON    ?= python3
export KLITE_MOTO_SERVER  := $(MOTO_VENV)/bin/moto_server
export KLITE_REQUIRE_MOTO := 1

# Every driver with a Makefile of its own is built by `make drivers`.
DRIVERS   := $(patsubst clients/%/Makefile,%,$(wildcard clients/*/Makefile))

# One conformance cell: make conformance SCENARIO=produce-acks CLIENT=franz-go TARGET=klite
# (targets: klite, klite-s3 (klite on a moto S3, which `make moto` installs), kafka; a comma list)
SCENARIO ?=
CLIENT   ?=
TARGET   ?=

.PHONY: all build run test unit integration conformance wire tools conformance-docker compat-doc bench chaos kafka-jars drivers \
        fuzz fuzz-short vet clean moto

all: build

# klite --version: the git description, linked in (falls back to Go's build info without it).
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)

build:
# klite is static, as the Docker image: no libc mapped (1.5-2 MB less RSS), pure-Go resolver.
	CGO_ENABLED=0 $(GO) build -ldflags "-X main.buildVersion=$(VERSION)" -o $(BIN)/klite ./cmd/klite
	$(GO) build -o $(BIN)/klite-conformance ./cmd/klite-conformance
	$(GO) build -o $(BIN)/klite-bench ./cmd/klite-bench
	$(GO) build -o $(BIN)/klite-chaos ./cmd/klite-chaos

run: build
	$(BIN)/klite $(ARGS)

vet:
	$(GO) vet ./...

unit: moto
	$(GO) test -race -count=1 ./broker/... ./conformance/... ./internal/...

integration: build moto
	$(GO) test -count=1 -tags integration ./cmd/...

$(KAFKA_JAR): conformance/kafka/pom.xml
	cd conformance/kafka && $(MVN) dependency:copy-dependencies -DincludeScope=runtime \
		-DoutputDirectory=$(KAFKA_LIBS)
	@touch $@

kafka-jars: $(KAFKA_JAR)

$(MOTO_STAMP): internal/motoserver/requirements.txt
	test -x $(MOTO_VENV)/bin/python || $(PYTHON) -m venv $(MOTO_VENV)
	$(MOTO_VENV)/bin/pip install --disable-pip-version-check -q -r internal/motoserver/requirements.txt
	@touch $@

moto: $(MOTO_STAMP)

drivers:
	@for d in $(DRIVERS); do echo "== driver $$d"; $(MAKE) --no-print-directory -C clients/$$d || exit 1; done

conformance: build kafka-jars moto
	# The harness builds the selected clients' drivers itself (driver.json "build").
	$(BIN)/klite-conformance run $(if $(SCENARIO),--scenario $(SCENARIO)) \
		$(if $(CLIENT),--client $(CLIENT)) $(if $(TARGET),--target $(TARGET))

# The wire-level differential: scenarios/wire/*.yaml sent over raw connections to klite (this
# tree) and Kafka, answers compared field by field (conformance/wire); differences not declared
# in conformance/wire-known-diffs.yaml fail. One case: make wire CASE=fetch (globs allowed).
# Fuzz mode (on demand, not in make test): bin/klite-conformance wire --fuzz 500 --seed 1
CASE ?=
wire: build kafka-jars
	$(BIN)/klite-conformance wire $(if $(CASE),--case '$(CASE)')
	$(BIN)/klite-conformance doc

# Kafka's own command-line tools (scenarios/tools/) against klite and Kafka, output compared.
tools: build kafka-jars
	$(BIN)/klite-conformance tools $(if $(CASE),--case '$(CASE)')
	$(BIN)/klite-conformance doc

# The same matrix against klite in a container (docker/klite.Dockerfile, via ory/dockertest);
# skips with a clear message where no Docker engine answers.
conformance-docker: build
	cd conformance/docker && $(GO) run . $(if $(SCENARIO),--scenario $(SCENARIO)) $(if $(CLIENT),--client $(CLIENT))

compat-doc: build
	$(BIN)/klite-conformance doc

bench: build kafka-jars moto
	$(BIN)/klite-bench $(ARGS)

# Jepsen-style workloads against bin/klite under SIGKILL and SIGSTOP, then the same workloads
# against Apache Kafka 4.0 without faults (the checker's baseline); a summary table each.
# Bounded by default (about 20 minutes on a shared 2-core machine): every workload under the
# process faults, storage errors and damaged files, then 100 SIGKILL cycles in each storage
# mode (local; retention and compaction acting every second; the S3 tier against moto, and
# the S3 faults), then the Kafka baseline. Longer: make chaos CHAOS_ARGS='--cycles 20'.
# CHAOS_RACE=1 runs every klite of it built with -race (a reported data race fails the run).
CHAOS_ARGS ?= --cycles 3 --duration 3m
CHAOS_SOAK ?= --cycles 100 --min-gap 100ms --max-gap 700ms --duration 10m
CHAOS_KLITE = $(BIN)/klite
ifeq ($(CHAOS_RACE),1)
CHAOS_KLITE = $(BIN)/klite-race
endif
CHAOS = $(BIN)/klite-chaos --target klite --bin $(CHAOS_KLITE)
chaos: build kafka-jars moto
ifeq ($(CHAOS_RACE),1)
	$(GO) build -race -o $(BIN)/klite-race ./cmd/klite
endif
	$(CHAOS) --storage retention-compaction --faults sigkill,sigstop,recovery-kill,disk-full $(CHAOS_ARGS) $(ARGS)
	$(CHAOS) --storage retention-compaction --faults fsync-error,write-error,torn-tail --workloads idempotent,transactional,group-members $(CHAOS_ARGS) $(ARGS)
	$(CHAOS) --storage retention-compaction --faults corrupt --workloads group,transactional,retention --cycles 16 $(ARGS)
	$(CHAOS) --storage local --faults sigkill --workloads idempotent $(CHAOS_SOAK) $(ARGS)
	$(CHAOS) --storage retention-compaction --faults sigkill --workloads retention,compacted $(CHAOS_SOAK) \
		--klite-args "--retention-check-interval 250ms --compaction-backoff 250ms" $(ARGS)
	$(CHAOS) --storage s3 --faults sigkill --workloads idempotent --value-bytes 1000 $(CHAOS_SOAK) $(ARGS)
	$(CHAOS) --storage s3 --faults s3-down,s3-slow,s3-errors --workloads idempotent,transactional --value-bytes 1000 $(CHAOS_ARGS) $(ARGS)
	$(BIN)/klite-chaos --target kafka $(CHAOS_ARGS) $(ARGS)

# Every fuzz target for a decoder of bytes from the network or the disk: name@package@count,
# the count being the executions `make fuzz-short` runs (about 2.5 s of each target on this
# 2-core machine in a clean-clone run). `make fuzz` runs each for FUZZTIME instead.
FUZZ_TARGETS = \
	FuzzReadRequest@./broker/server/@16000 \
	FuzzWALReplay@./broker/storage/@1000 \
	FuzzMetaReplay@./broker/storage/@20000 \
	FuzzCleanMarker@./broker/storage/@140000 \
	FuzzApplyRecord@./broker/group/@57000 \
	FuzzApplyRecord@./broker/txn/@100000 \
	FuzzBatch@./broker/@3000 \
	FuzzProducerSnapshot@./broker/@2800 \
	FuzzS3MetaSnapshot@./broker/@8500 \
	FuzzSegment@./broker/logstore/@1500 \
	FuzzSegmentIndex@./broker/logstore/@4000 \
	FuzzCheckpoint@./broker/logstore/@24000 \
	FuzzRecords@./broker/logstore/@14000 \
	FuzzLeaseRecord@./broker/logstore/@8700 \
	FuzzReadSpan@./broker/logstore/@500 \
	FuzzReplayLeftover@./broker/logstore/@20000 \
	FuzzRecordPayload@./broker/@1500 \
	FuzzWalkSlice@./broker/@3000 \
	FuzzSASLTokens@./broker/@5300 \
	FuzzACLMetaRecord@./broker/@15000 \
	FuzzQuotaMetaRecord@./broker/@5800 \
	FuzzAuthorize@./broker/acl/@160000 \
	FuzzDecodeResponse@./conformance/wire/@600 \
	FuzzDecodeBatches@./conformance/wire/@6400 \
	FuzzFetchBatchStats@./broker/@15000 \
	FuzzConfigFile@./cmd/klite/@1700 \
	FuzzDamageParsers@./conformance/chaos/@80000

# FUZZ_ONE runs every target with the budget $(1) (in it, $${count} is the target's count), each
# name anchored (FuzzSegment is not FuzzSegmentIndex).
FUZZ_ONE = set -e; for t in $(FUZZ_TARGETS); do \
	name=$${t%%@*}; rest=$${t\#*@}; pkg=$${rest%%@*}; count=$${rest\#*@}; \
	budget=$(1); \
	echo "$(GO) test -run=NONE -fuzz=^$$name\$$ -fuzztime=$$budget $$pkg"; \
	$(GO) test -run=NONE -fuzz="^$$name\$$" -fuzztime=$$budget $$pkg; \
	done

FUZZTIME ?= 30s
fuzz:
	@$(call FUZZ_ONE,$(FUZZTIME))

# The bounded run of every fuzz target that `make test` does: a count of executions each, not a
# duration. A duration's deadline races the fuzzing workers in Go's fuzz coordinator
# (go.dev/issue/75804, fixed in Go 1.27): now and then a target failed with a bare "context
# deadline exceeded" and no failing input. A count has no deadline. About 2 minutes with the
# instrumented builds on 2 cores.
fuzz-short:
	@$(call FUZZ_ONE,$${count}x)

test: fuzz-short vet unit integration wire tools conformance

clean:
	rm -rf $(BIN)
