# redis-guardian. `make demo` shows it at work; `make test` runs the tests.
GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X github.com/redis-guardian/redis-guardian/internal/cli.Version=$(VERSION)
STATICCHECK_VERSION := v0.8.2
BIN       := bin/redis-guardian

.PHONY: all build test lint vet staticcheck rules-check tidy-check demo deps clean bench

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/redis-guardian

# deps installs what the tests and the demo need on Debian (as root): a real
# redis-server to test against, and the tools the fault injection uses.
deps:
	@scripts/install-deps.sh

# The integration tests start their own redis-server as the `redis` user and inject
# real faults (process limits, a full tmpfs, chown): they need root.
test: deps
	$(GO) test -race -count=1 -timeout 15m ./...

vet:
	$(GO) vet ./...

staticcheck:
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

lint: vet staticcheck

# The shipped Prometheus alerting rules: syntax, and unit tests that they fire.
rules-check: deps
	cd packaging/prometheus && promtool check rules redis-guardian.rules.yml && promtool test rules redis-guardian.rules.test.yml

tidy-check:
	$(GO) mod tidy -diff

demo: build deps
	@scripts/demo.sh $(BIN)

clean:
	rm -rf bin dist
