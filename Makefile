# Vitals — every build, test and run entry point. `make help` lists them.
SHELL := /bin/bash
GO    ?= go
BIN   ?= bin
# Static, reproducible binaries: no cgo, no local paths, stripped.
GOFLAGS_REL := -trimpath -ldflags "-s -w"

.DEFAULT_GOAL := help

.PHONY: help
help: ## list targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

.PHONY: deps
deps: ## download Go modules
	@$(GO) mod download

.PHONY: dev
dev: deps ## run the whole stack locally (Redis, functions, streamer, reporter) on one port
	@infra/dev/ensure-tools.sh redis || echo "make dev: no redis-server; localdev falls back to an in-memory Redis" >&2
	$(GO) run ./localdev

.PHONY: test
test: deps ## vet, gofmt check and every test (real redis-server, headless Chromium) with -race
	@infra/dev/ensure-tools.sh redis chromium
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 20m ./...

.PHONY: build
build: ## build every binary into ./bin (static, for this OS/arch)
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build $(GOFLAGS_REL) -o $(BIN)/ ./functions/... ./reporter/... ./streamer/... ./infra/vitalsctl ./localdev

# The host agent for the machines people actually run: static, stripped, with
# its version stamped in (`vitals-reporter version`).
REPORTER_VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
REPORTER_BUILD = CGO_ENABLED=0 GOOS=linux GOARCH=$(1) $(GO) build -trimpath \
	-ldflags "-s -w -X main.version=$(REPORTER_VERSION)" \
	-o $(BIN)/vitals-reporter-linux-$(1) ./reporter/cmd/vitals-reporter

.PHONY: reporter reporter-linux-amd64 reporter-linux-arm64
reporter: reporter-linux-amd64 reporter-linux-arm64 ## static reporter binaries for linux amd64 + arm64 into ./bin

reporter-linux-amd64: ## static reporter binary → bin/vitals-reporter-linux-amd64
	@mkdir -p $(BIN)
	$(call REPORTER_BUILD,amd64)

reporter-linux-arm64: ## static reporter binary → bin/vitals-reporter-linux-arm64
	@mkdir -p $(BIN)
	$(call REPORTER_BUILD,arm64)

.PHONY: bench
bench: ## run the benchmarks recorded in docs/PERFORMANCE.md
	@infra/dev/ensure-tools.sh redis
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 2s ./shared/...

.PHONY: fuzz
fuzz: ## fuzz the network-facing parsers for 30s each
	$(GO) test -run '^$$' -fuzz FuzzDecodeBatch -fuzztime 30s ./shared/metric

.PHONY: clean
clean: ## remove build output
	rm -rf $(BIN) .aws-sam dist
