# redis-guardian. `make demo` shows it at work; `make test` runs the tests.
GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X github.com/redis-guardian/redis-guardian/internal/cli.Version=$(VERSION)
STATICCHECK_VERSION := v0.8.2
BENCHSTAT := golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da
BIN       := bin/redis-guardian

.PHONY: all build test lint vet staticcheck tidy-check demo deps clean bench bench-smoke

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

tidy-check:
	$(GO) mod tidy -diff

demo: build deps
	@scripts/demo.sh $(BIN)

# bench measures the guardian's cost and its time to a writable Redis against real
# redis-servers and real faults (root, like the tests) and rewrites docs/benchmarks.md
# and its plot (about 15 minutes). Figures are medians over repeats, comparisons are
# measured side by side. The Go benchmarks run alternately against BEFORE_REV, the
# code before the performance fixes of issue 6, for the before/after table.
BEFORE_REV := 1e10873
bench: build deps
	@mkdir -p dist/bench
	scripts/bench-ab.sh $(BEFORE_REV) dist/bench/ab 6
	$(GO) run $(BENCHSTAT) before=dist/bench/ab/before.txt after=dist/bench/ab/after.txt > dist/bench/benchstat.txt
	$(GO) run ./tools/bench -guardian $(BIN) -guardian-before dist/bench/ab/redis-guardian-before \
		-gobench dist/bench/ab/after.txt -benchstat dist/bench/benchstat.txt \
		-out docs/benchmarks.md -plot docs/benchmarks-rejected-writes.png

# bench-smoke is what CI runs: every measurement once and short, no timed assertions;
# it proves the bench machinery works end to end and writes to dist/bench, not docs/.
bench-smoke: build deps
	@mkdir -p dist/bench
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 100x ./pkg/... > dist/bench/go-smoke.txt
	$(GO) run ./tools/bench -quick -guardian $(BIN) -gobench dist/bench/go-smoke.txt \
		-out dist/bench/benchmarks.md -plot dist/bench/benchmarks-rejected-writes.png

clean:
	rm -rf bin dist
