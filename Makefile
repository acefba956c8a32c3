# Vitals — every build, test and run entry point. `make help` lists them.
SHELL := /bin/bash
GO    ?= go
BIN   ?= bin
# Static, reproducible binaries: no cgo, no local paths, stripped.
GOFLAGS_REL := -trimpath -ldflags "-s -w"
# go.mod's toolchain line names the Go release every target builds and tests
# with: the oldest without a standard-library vulnerability govulncheck knows
# (make vulncheck). The go command fetches it through the module proxy when the
# installed Go is older. Some images set GOTOOLCHAIN=local in GOROOT/go.env,
# which would ignore that line, so make asks for auto unless you set it.
GOTOOLCHAIN ?= auto
export GOTOOLCHAIN

.DEFAULT_GOAL := help

.PHONY: help
help: ## list targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-22s %s\n", $$1, $$2}'

.PHONY: deps
deps: ## download Go modules
	@$(GO) mod download

.PHONY: dev
dev: deps ## run the whole stack locally (Redis, functions, streamer, reporter) on one port
	@infra/dev/ensure-tools.sh redis || echo "make dev: no redis-server; localdev falls back to an in-memory Redis" >&2
	$(GO) run ./localdev

.PHONY: test
test: deps lint ## lint gate, vet, gofmt check and every test (real redis-server, headless Chromium) with -race
	@infra/dev/ensure-tools.sh redis chromium
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 20m ./...

# ---- lint gate: golangci-lint (.golangci.yml) + govulncheck, versions pinned ----
# The tools are built from source once (golangci-lint takes about 4 CPU-minutes)
# into .tools/<tool>-<version>/, which is gitignored and kept between runs; a
# version bump here builds the new one beside the old.
TOOLS                 ?= $(CURDIR)/.tools
GOLANGCI_LINT_VERSION := v2.15.0
GOVULNCHECK_VERSION   := v1.9.0
# The Go vulnerability database as published in golang.org/x/vulndb's data/osv,
# fetched through the Go module proxy (vuln.go.dev itself may be unreachable) and
# turned into govulncheck's file layout by infra/dev/vulndb. Bump it to pick up
# new advisories: `go list -m golang.org/x/vulndb@latest`.
VULNDB_VERSION        := v0.0.0-20261105234957-e22db6528018
GOLANGCI_LINT := $(TOOLS)/golangci-lint-$(GOLANGCI_LINT_VERSION)/golangci-lint
GOVULNCHECK   := $(TOOLS)/govulncheck-$(GOVULNCHECK_VERSION)/govulncheck
VULNDB        := $(TOOLS)/vulndb-$(VULNDB_VERSION)

$(GOLANGCI_LINT):
	@echo "building golangci-lint $(GOLANGCI_LINT_VERSION) into $(@D) (once; a few minutes)"
	GOBIN=$(@D) $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)

$(GOVULNCHECK):
	GOBIN=$(@D) $(GO) install golang.org/x/vuln/cmd/govulncheck@$(GOVULNCHECK_VERSION)

$(VULNDB)/index/db.json:
	@set -euo pipefail; \
	  src=$$($(GO) mod download -json golang.org/x/vulndb@$(VULNDB_VERSION) | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$$/\1/p'); \
	  test -d "$$src/data/osv" || { echo "vulndb: no data/osv in golang.org/x/vulndb@$(VULNDB_VERSION)" >&2; exit 1; }; \
	  $(GO) run ./infra/dev/vulndb -src "$$src/data/osv" -out $(VULNDB)

.PHONY: lint golangci-lint vulncheck lint-tools
lint: golangci-lint vulncheck ## lint gate: golangci-lint (.golangci.yml) and govulncheck; make test runs it

lint-tools: $(GOLANGCI_LINT) $(GOVULNCHECK) $(VULNDB)/index/db.json ## build the pinned lint tools and vulnerability DB into .tools/

golangci-lint: $(GOLANGCI_LINT) ## golangci-lint run ./... with the checked-in .golangci.yml
	$(GOLANGCI_LINT) run ./...

vulncheck: $(GOVULNCHECK) $(VULNDB)/index/db.json ## govulncheck ./... against the pinned vulnerability DB (VULNDB_VERSION)
	$(GOVULNCHECK) -db file://$(VULNDB) ./...

.PHONY: build
build: ## static binaries for this OS/arch in ./bin, named as the systemd units expect
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build $(GOFLAGS_REL) -o $(BIN)/vitals-ingest ./functions/ingest
	CGO_ENABLED=0 $(GO) build $(GOFLAGS_REL) -o $(BIN)/vitals-query ./functions/query
	CGO_ENABLED=0 $(GO) build $(GOFLAGS_REL) -o $(BIN)/vitals-evaluator ./functions/evaluator
	CGO_ENABLED=0 $(GO) build $(GOFLAGS_REL) -o $(BIN)/vitals-streamer ./streamer/cmd/vitals-streamer
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w -X main.version=$(REPORTER_VERSION)" -o $(BIN)/vitals-reporter ./reporter/cmd/vitals-reporter
	CGO_ENABLED=0 $(GO) build $(GOFLAGS_REL) -o $(BIN)/vitalsctl ./infra/vitalsctl
	CGO_ENABLED=0 $(GO) build $(GOFLAGS_REL) -o $(BIN)/localdev ./localdev

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

.PHONY: bench bench-go bench-streamer
bench: bench-go bench-coldstart bench-streamer ## every benchmark recorded in docs/PERFORMANCE.md (about 6 minutes)

bench-go: ## go test -bench: ingest (HTTP vs store ceiling), 7d query, Redis memory, reporter collection
	@infra/dev/ensure-tools.sh redis
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 3s ./shared/... ./reporter/...

bench-streamer: ## streamer fan-out: 10,000 WebSocket + 100 SSE clients (localdev load), then the live burst
	@infra/dev/ensure-tools.sh redis
	$(GO) run ./localdev load -ws 10000 -sse 100
	$(GO) test -run '^$$' -bench BenchmarkLiveBurst -benchtime=1x -count=5 ./streamer/

# go test -fuzz takes one target at a time. Found crashers land in the
# package's testdata/fuzz/ and then run as ordinary regression tests.
FUZZTIME ?= 30s
FUZZ_TARGETS := FuzzDecodeBatch:./shared/metric FuzzVerifyRequest:./shared/auth \
	FuzzIngestHandler:./shared/httpapi FuzzOpenDamagedSegment:./reporter/spool \
	FuzzWebSocketCommand:./streamer FuzzDecodeAlertBodies:./shared/alert

.PHONY: fuzz
fuzz: ## fuzz every network- or disk-facing parser for FUZZTIME (30s) each
	@infra/dev/ensure-tools.sh redis
	@set -e; for t in $(FUZZ_TARGETS); do \
	  echo "== $${t%%:*} ($${t#*:})"; \
	  $(GO) test -run '^$$' -fuzz "^$${t%%:*}$$" -fuzztime $(FUZZTIME) "$${t#*:}"; \
	done

# ---- AWS Lambda / SAM (template.yaml; tests and tools in infra/sam) ----
# `sam build` (BuildMethod: makefile) runs build-<LogicalId> with ARTIFACTS_DIR
# set; the provided.al2023 runtime executes the file named bootstrap. arm64
# (Graviton) because the template says so; lambda.norpc drops the unused
# net/rpc entry point of aws-lambda-go.
LAMBDA_BUILD = @test -n "$(ARTIFACTS_DIR)" || { echo "$@: ARTIFACTS_DIR is not set (sam build sets it; or run make lambda)" >&2; exit 2; }; \
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -tags lambda.norpc -trimpath -ldflags "-s -w" -o $(ARTIFACTS_DIR)/bootstrap ./functions/$(1)

.PHONY: build-IngestFunction build-QueryFunction build-EvaluatorFunction lambda sam-build sam-local deploy bench-coldstart
build-IngestFunction: ## SAM build hook: functions/ingest → $(ARTIFACTS_DIR)/bootstrap (linux/arm64)
	$(call LAMBDA_BUILD,ingest)

build-QueryFunction: ## SAM build hook: functions/query → $(ARTIFACTS_DIR)/bootstrap (linux/arm64)
	$(call LAMBDA_BUILD,query)

build-EvaluatorFunction: ## SAM build hook: functions/evaluator → $(ARTIFACTS_DIR)/bootstrap (linux/arm64)
	$(call LAMBDA_BUILD,evaluator)

lambda: ## zip every function of template.yaml → dist/<name>.zip (arm64 bootstrap; Go only, no SAM CLI)
	$(GO) run ./infra/sam/lambdazip -template template.yaml -out dist -make "$(MAKE)"

SAM ?= sam
SAM_LOCAL_FLAGS ?= --add-host host.docker.internal:host-gateway
SAM_CHECK = @command -v $(SAM) >/dev/null 2>&1 || { echo "$@: the AWS SAM CLI is not installed. Install it: https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/install-sam-cli.html (or: pip install aws-sam-cli / brew install aws-sam-cli)" >&2; exit 1; }
DOCKER_CHECK = @command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1 || { echo "$@: sam local runs each function in Docker; install Docker and start it: https://docs.docker.com/engine/install/" >&2; exit 1; }

sam-build: ## sam build: runs build-IngestFunction/build-QueryFunction into .aws-sam (needs the SAM CLI)
	$(SAM_CHECK)
	$(SAM) build --build-in-source

sam-local: ## API on http://127.0.0.1:3000 with sam local start-api, env from infra/sam/env.local.json (SAM CLI + Docker, Redis reachable from Docker)
	$(SAM_CHECK)
	$(DOCKER_CHECK)
	$(SAM) build --build-in-source
	@secret="$${VITALS_JWT_SECRET:-$$(cat .localdev/jwt-secret 2>/dev/null)}"; \
	  test -n "$$secret" || { echo "$@: set VITALS_JWT_SECRET, or run make dev once (it keeps its secret in .localdev/jwt-secret)" >&2; exit 1; }; \
	  echo "$(SAM) local start-api --env-vars infra/sam/env.local.json --parameter-overrides JwtSecret=… $(SAM_LOCAL_FLAGS)"; \
	  $(SAM) local start-api --env-vars infra/sam/env.local.json --parameter-overrides "JwtSecret=$$secret" $(SAM_LOCAL_FLAGS)

deploy: ## sam build + sam deploy --guided to your AWS account (SAM CLI + AWS credentials)
	$(SAM_CHECK)
	$(SAM) build --build-in-source
	$(SAM) deploy --guided

bench-coldstart: ## Lambda cold start: each bootstrap (host arch) against a fake Runtime API, p50/p95, binary sizes
	@infra/dev/ensure-tools.sh redis
	$(GO) run ./infra/sam/coldstart -n 30

.PHONY: clean
clean: ## remove build output (not the lint tools in .tools/; rm -rf .tools for that)
	rm -rf $(BIN) .aws-sam dist
