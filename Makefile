# hush: `make demo` shows the main job, `make test` runs every test.

GO      ?= go
BIN     := bin/hush
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)

.PHONY: all build test vet demo bench clean

all: build

## build: build the hush binary into bin/
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) .

## vet: static checks
vet:
	$(GO) vet ./...

## test: every test, with the race detector, against a private containerd
## (installed with apt when missing, started and stopped by .ci/with-containerd)
test: vet
	.ci/with-containerd $(GO) test -race -count=1 -timeout 20m ./...

## demo: a dev agent, a secret, and a run that prints it; on containerd when
## it can be installed and started here, else on the exec runtime
demo: build
	@if .ci/install-deps; then .ci/with-containerd .ci/demo $(BIN); else .ci/demo $(BIN); fi

## bench: `hush run` against `ctr run` on the same containerd (medians and ratio)
bench: build
	.ci/with-containerd .ci/bench-runs $(BIN) 10

clean:
	rm -rf bin
