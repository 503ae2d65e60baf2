# sandmux — see README.md. Every target works on a fresh clone.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
# urfave_cli_no_docs leaves out urfave/cli's man page and markdown
# generators (unused), whose package initialisation (a markdown parser's
# tables) every run paid, `sandmux proxy` under each ssh included. The
# bench builds with the same tags (bench/harness.go).
TAGS    := urfave_cli_no_docs
BIN     := bin/sandmux

.PHONY: build test demo demo-sshd bench fuzz soak chaos vet cross cross-all dist clean

build:
	CGO_ENABLED=0 $(GO) build -trimpath -tags '$(TAGS)' -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/sandmux

# Vet with make build's settings (CGO off, TAGS, -trimpath; no file of
# sandmux's own depends on cgo or TAGS, so the same files are vetted): the
# packages vet compiles are then the ones make build links, and `vet` is
# the same command as cross's linux/amd64, which finds it all cached.
VETENV := CGO_ENABLED=0
VETFLAGS := -trimpath -tags '$(TAGS)'
vet:
	$(VETENV) $(GO) vet $(VETFLAGS) ./...

# Every system sandmux is released or `go install`ed for must at least
# compile and vet, so none breaks unnoticed, though nothing here can run
# them (each has its own peer-credential check in agent/peercred_*.go).
# Each target costs about 45 s on a cold build cache (a fresh CI machine:
# it compiles the standard library for that system), several seconds on a
# warm one, and CI must finish in 15 minutes: a clean clone's
# `CI=true .ci/run` on a cold cache took 13 to 15 minutes here with
# seven or eight targets (917 s when last measured with seven).
# So `make test` vets one architecture per system: no file of sandmux's
# own depends on the architecture (no _amd64/_arm64 files or build tags),
# so linux/arm64 and darwin/amd64 compile the same files as linux/amd64
# and darwin/arm64. FreeBSD and OpenBSD stand for the other BSDs (OpenBSD
# for the systems whose peer check reads the kernel's struct by hand,
# agent/peercred_raw.go, shared with NetBSD and DragonFly), and
# `make cross-all` adds the second architectures, NetBSD, DragonFly,
# Solaris and illumos.
CROSS := linux/amd64 darwin/arm64 windows/amd64 freebsd/amd64 openbsd/amd64
CROSS_ALL := $(CROSS) linux/arm64 darwin/amd64 netbsd/amd64 dragonfly/amd64 solaris/amd64 \
	illumos/amd64
cross:
	@for t in $(CROSS); do \
		echo "vet $$t"; \
		GOOS=$${t%/*} GOARCH=$${t#*/} $(VETENV) $(GO) vet $(VETFLAGS) ./... || exit 1; \
	done

cross-all:
	@$(MAKE) --no-print-directory cross CROSS='$(CROSS_ALL)'

# The e2e and bench tests run the binary make build made (through
# SANDMUX_TEST_BIN) rather than each building one of its own.
test: vet cross build
	SANDMUX_TEST_BIN='$(CURDIR)/$(BIN)' $(GO) test -race -count=1 -timeout 12m ./...
	# third_party/yamux is its own module: sandmux's patch with race, then
	# upstream's suite (without race and with -short, as upstream runs it:
	# its timing tests flake under the race detector, patched or not), with
	# one retry of a failed test, since its wall-clock guesses fail under
	# CPU load (see the script).
	cd third_party/yamux && $(VETENV) $(GO) vet -trimpath . && $(GO) test -race -count=1 -run 'RecvQueue|ReadChunk|WindowTune|Urgent|LaneFor|Abort|BodyFromSender|BodyStuck|ResetReads|PingFlood|SessionReceiveWindow|SpareStart|LockOrder|SlowClose|WriteProgress|WindowBudget|PingRTT|FinishedStream|SentBeforeShutdown|Linger|SendOutcome|WriteCloseRace' . && GO='$(GO)' $(VETENV) bash ../../scripts/yamux-upstream-test.sh -trimpath

# The sandbox side is the embedded SSH server: needs only the OpenSSH client.
demo: build
	BIN=$(CURDIR)/$(BIN) bash scripts/demo.sh

# The same against a throwaway OpenSSH sshd.
demo-sshd: build
	BIN=$(CURDIR)/$(BIN) bash scripts/demo-sshd.sh

# Benchmarks: sandmux beside raw TCP, direct ssh and one WebSocket per
# connection, in one run, as a markdown table and bench/out/latest.json.
# BENCH_QUICK=1 for about a minute; the full run takes under 10 minutes.
bench:
	$(GO) run ./bench

# Each fuzz target for FUZZTIME; `make test` runs their committed seeds.
FUZZTIME ?= 30s
fuzz:
	$(GO) test -run='^$$' -fuzz='^FuzzReadRequest$$' -fuzztime=$(FUZZTIME) ./mux/
	$(GO) test -run='^$$' -fuzz='^FuzzReadReply$$' -fuzztime=$(FUZZTIME) ./mux/
	$(GO) test -run='^$$' -fuzz='^FuzzHello$$' -fuzztime=$(FUZZTIME) ./mux/
	$(GO) test -run='^$$' -fuzz='^FuzzWelcome$$' -fuzztime=$(FUZZTIME) ./mux/
	$(GO) test -run='^$$' -fuzz='^FuzzExpandURL$$' -fuzztime=$(FUZZTIME) ./client/
	$(GO) test -run='^$$' -fuzz='^FuzzClientSession$$' -fuzztime=$(FUZZTIME) ./client/
	$(GO) test -run='^$$' -fuzz='^FuzzServerSession$$' -fuzztime=$(FUZZTIME) ./server/
	$(GO) test -run='^$$' -fuzz='^FuzzServerSessionV2$$' -fuzztime=$(FUZZTIME) ./server/
	$(GO) test -run='^$$' -fuzz='^FuzzCanonicalTarget$$' -fuzztime=$(FUZZTIME) ./server/

# Opt-in load test: 200 streams x 16 MiB over 1 and 20 sessions, 3 rounds
# each, server RSS sampled. A short version runs in `make test`.
soak:
	SANDMUX_SOAK=1 $(GO) test -run='^TestSoak$$' -count=1 -timeout 30m -v ./e2e/

# Opt-in fault run: real scp, sftp, rsync and ssh streams through the agent
# and --no-agent while the path is cut, black-holed, stranded and slowed,
# and the server and agent are killed, stopped and restarted, and the
# agent, a --no-agent proxy, the server and ssh jobs (Ctrl-Z) are frozen;
# every byte checked, descriptors and goroutines back at their baseline
# after each round. CHAOS_ROUNDS rounds (10-50 s each; every other one
# faults a process, so 16 run each such kind once); CHAOS_SEED replays a
# run; CHAOS_ONLY=path or a special round's name makes every round that kind.
CHAOS_ROUNDS ?= 16
chaos:
	SANDMUX_CHAOS=1 SANDMUX_CHAOS_ROUNDS=$(CHAOS_ROUNDS) SANDMUX_CHAOS_SEED=$(CHAOS_SEED) SANDMUX_CHAOS_ONLY=$(CHAOS_ONLY) $(GO) test -run='^TestChaos$$' -count=1 -timeout 60m -v ./e2e/

# Release binaries: static (CGO off), stamped with VERSION and COMMIT, one
# per platform in dist/, and dist/SHA256SUMS. Windows gets --no-agent only.
DIST      := linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64
SHA256SUM ?= $(shell command -v sha256sum >/dev/null 2>&1 && echo sha256sum || echo 'shasum -a 256')
dist:
	rm -rf dist && mkdir -p dist
	@for t in $(DIST); do \
		os=$${t%/*}; arch=$${t#*/}; ext=; [ "$$os" = windows ] && ext=.exe; \
		echo "build dist/sandmux-$$os-$$arch$$ext"; \
		GOOS=$$os GOARCH=$$arch CGO_ENABLED=0 $(GO) build -trimpath -tags '$(TAGS)' -ldflags '$(LDFLAGS)' \
			-o dist/sandmux-$$os-$$arch$$ext ./cmd/sandmux || exit 1; \
	done
	cd dist && $(SHA256SUM) sandmux-* > SHA256SUMS
	@cat dist/SHA256SUMS

clean:
	rm -rf bin dist bench/out
