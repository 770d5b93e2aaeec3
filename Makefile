# redis-guardian. `make demo` shows it at work; `make test` runs the tests.
GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X github.com/redis-guardian/redis-guardian/internal/cli.Version=$(VERSION)
STATICCHECK_VERSION := v0.8.2
BENCHSTAT := golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da
BIN       := bin/redis-guardian

.PHONY: all build test lint vet staticcheck rules-check tidy-check demo deps clean bench bench-smoke soak package package-check install-test fuzz

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/redis-guardian

# deps installs what the tests and the demo need on Debian (as root): a real
# redis-server to test against, the tools the fault injection uses, and the server
# matrix (valkey 8.0, and redis 8.0 and valkey 8.1 in a Debian 13 root).
deps:
	@scripts/install-deps.sh
	@scripts/servers.sh

# The integration tests start their own redis-server as the `redis` user and inject
# real faults (process limits, a full tmpfs, chown): they need root.
test: deps
	$(GO) test -race -count=1 -timeout 15m ./...

vet:
	$(GO) vet ./...

staticcheck:
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

lint: vet staticcheck

# The shipped Prometheus alerting rules: syntax, and unit tests that they fire; the
# Grafana dashboard's JSON and PromQL.
rules-check: deps
	cd packaging/prometheus && promtool check rules redis-guardian.rules.yml && promtool test rules redis-guardian.rules.test.yml
	scripts/dashboard-check.sh

tidy-check:
	$(GO) mod tidy -diff

demo: build deps
	@scripts/demo.sh $(BIN)

# package builds dist/redis-guardian_<version>_<arch>.deb and .rpm with nfpm, run as a
# Go tool at a pinned version (not a requirement of this module). v2.46 and later
# need go.digitalxero.dev modules that the Go module proxy does not serve here.
NFPM_VERSION := v2.45.2
NFPM        := $(GO) run github.com/goreleaser/nfpm/v2/cmd/nfpm@$(NFPM_VERSION)
PKG_VERSION ?= $(shell scripts/pkg-version.sh)
PKG_ARCH    ?= $(shell $(GO) env GOARCH)
# PIE: address space randomisation; with CGO off it still needs no shared library,
# so one binary (it needs only the dynamic loader) serves the deb and the rpm.
PKG_BUILDMODE ?= pie
DEB_ARCH    := $(or $(if $(filter 386,$(PKG_ARCH)),i386),$(if $(filter arm,$(PKG_ARCH)),armhf),$(PKG_ARCH))
RPM_ARCH    := $(or $(if $(filter amd64,$(PKG_ARCH)),x86_64),$(if $(filter arm64,$(PKG_ARCH)),aarch64),$(if $(filter 386,$(PKG_ARCH)),i386),$(PKG_ARCH))
DIST        ?= dist
PKG_BUILD   := dist/build
MAINTAINER  := $(shell sed -n 's/^maintainer: //p' packaging/nfpm.yaml)

package:
	rm -rf $(PKG_BUILD) $(DIST)/redis-guardian_*.deb $(DIST)/redis-guardian_*.rpm
	mkdir -p $(PKG_BUILD) $(DIST)
	CGO_ENABLED=0 GOARCH=$(PKG_ARCH) $(GO) build -trimpath -buildmode=$(PKG_BUILDMODE) \
	  -ldflags '-s -w -X github.com/redis-guardian/redis-guardian/internal/cli.Version=$(PKG_VERSION)' \
	  -o $(PKG_BUILD)/redis-guardian ./cmd/redis-guardian
	gzip -9n <packaging/redis-guardian.1 >$(PKG_BUILD)/redis-guardian.1.gz
	$(GO) run ./cmd/redis-guardian completion bash >$(PKG_BUILD)/redis-guardian.bash
	$(GO) run ./cmd/redis-guardian completion zsh >$(PKG_BUILD)/_redis-guardian
	packaging/deb/gen-copyright.sh $(PKG_BUILD)/redis-guardian >$(PKG_BUILD)/copyright
	printf 'redis-guardian (%s) unstable; urgency=medium\n\n  * Built from git commit %s.\n\n -- %s  %s\n' \
	  '$(PKG_VERSION)' "$$(git rev-parse --short=12 HEAD)" '$(MAINTAINER)' "$$(git log -1 --format=%cD)" \
	  | gzip -9n >$(PKG_BUILD)/changelog.gz
	PKG_VERSION='$(PKG_VERSION)' PKG_ARCH='$(PKG_ARCH)' $(NFPM) package -f packaging/nfpm.yaml -p deb \
	  -t '$(DIST)/redis-guardian_$(PKG_VERSION)_$(DEB_ARCH).deb'
	PKG_VERSION='$(PKG_VERSION)' PKG_ARCH='$(PKG_ARCH)' $(NFPM) package -f packaging/nfpm.yaml -p rpm \
	  -t '$(DIST)/redis-guardian_$(PKG_VERSION)_$(RPM_ARCH).rpm'

# package-check inspects the packages and units: dpkg-deb, lintian, rpm, shellcheck,
# systemd-analyze verify and security (as root on Debian: installs the tools).
package-check: package
	scripts/package-check.sh $(DIST)/redis-guardian_$(PKG_VERSION)_$(DEB_ARCH).deb $(DIST)/redis-guardian_$(PKG_VERSION)_$(RPM_ARCH).rpm

# install-test installs the deb into booted Debian containers (systemd-nspawn): Debian
# 12 and 13 with a real redis-server (fault, reload, upgrade, removal, purge, and the
# rpm), and Debian 13 with valkey-server (redis-guardian-valkey.service).
install-test: package
	scripts/install-test.sh $(DIST)/redis-guardian_$(PKG_VERSION)_$(DEB_ARCH).deb
	SUITE=trixie scripts/install-test.sh $(DIST)/redis-guardian_$(PKG_VERSION)_$(DEB_ARCH).deb
	SUITE=trixie FLAVOR=valkey scripts/install-test.sh $(DIST)/redis-guardian_$(PKG_VERSION)_$(DEB_ARCH).deb

# bench measures the guardian's cost and its time to a writable Redis against real
# redis-servers and real faults (root, like the tests) and rewrites docs/benchmarks.md
# and its plot (about 45 minutes). Figures are medians over repeats, comparisons are
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

# soak runs the real guardian against a server of each build under write load and
# injects a random schedule of real faults, drawn from SOAK_SEED (empty: a random
# seed, printed; the same seed gives the same schedule), for SOAK_DURATION; an
# independent observer checks the guardian's promises and the run fails on any
# violation (root, like the tests; see docs/soak.md). The report and the
# guardian's log are kept in dist/soak/.
SOAK_SEED     ?=
SOAK_DURATION ?= 10m
soak: build deps
	$(GO) run ./tools/soak -guardian $(BIN) -duration $(SOAK_DURATION) $(if $(SOAK_SEED),-seed $(SOAK_SEED)) -out dist/soak

# fuzz runs every fuzz target (found by grep: scripts/fuzz.sh) one at a time for
# FUZZTIME each, one worker at nice 19, and prints execs, execs/s and corpus per
# target; FUZZ=regexp picks targets. The figures go in docs/bench/fuzzing.md by hand.
FUZZTIME ?= 10m
FUZZ     ?= .
fuzz:
	GO='$(GO)' FUZZTIME='$(FUZZTIME)' FUZZ='$(FUZZ)' scripts/fuzz.sh

clean:
	rm -rf bin dist
