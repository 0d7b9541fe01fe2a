# hush: `make demo` shows the main job, `make test` runs every test.

GO      ?= go
BIN     := bin/hush
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)

.PHONY: all build test vet demo clean

all: build

## build: build the hush binary into bin/
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) .

## vet: static checks
vet:
	$(GO) vet ./...

## test: every test, with the race detector
test: vet
	$(GO) test -race -count=1 -timeout 20m ./...

## demo: start a dev agent, create, list and delete a secret, stop the agent
demo: build
	.ci/demo $(BIN)

clean:
	rm -rf bin
