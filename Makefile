# sandmux — see README.md. Every target works on a fresh clone.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
BIN     := bin/sandmux

.PHONY: build test demo bench fuzz vet clean

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/sandmux

vet:
	$(GO) vet ./...

test: vet
	$(GO) test -race -count=1 -timeout 12m ./...

clean:
	rm -rf bin dist bench/out
