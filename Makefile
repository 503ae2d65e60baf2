# sandmux — see README.md. Every target works on a fresh clone.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
BIN     := bin/sandmux

.PHONY: build test demo bench fuzz vet cross clean

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/sandmux

vet:
	$(GO) vet ./...

# Every release target must at least compile and vet, so none breaks unnoticed.
CROSS := linux/amd64 linux/arm64 darwin/amd64 darwin/arm64
cross:
	@for t in $(CROSS); do \
		echo "vet $$t"; \
		GOOS=$${t%/*} GOARCH=$${t#*/} CGO_ENABLED=0 $(GO) vet ./... || exit 1; \
	done

test: vet cross
	$(GO) test -race -count=1 -timeout 12m ./...

demo: build
	BIN=$(CURDIR)/$(BIN) bash scripts/demo.sh

# Each fuzz target for FUZZTIME; `make test` runs their committed seeds.
FUZZTIME ?= 30s
fuzz:
	$(GO) test -run='^$$' -fuzz='^FuzzReadRequest$$' -fuzztime=$(FUZZTIME) ./mux/
	$(GO) test -run='^$$' -fuzz='^FuzzReadReply$$' -fuzztime=$(FUZZTIME) ./mux/

clean:
	rm -rf bin dist bench/out
