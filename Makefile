# hush: `make demo` shows the main job, `make test` runs every test.

GO      ?= go
BIN     := bin/hush
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)

PREFIX  ?= /usr/local
DESTDIR ?=

.PHONY: all build plugins install uninstall image containerd containerd-down test vet demo bench clean proto

all: build

## build: build the hush binary into bin/
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) .

## install: build hush and install it as $(PREFIX)/bin/hush (PREFIX
## defaults to /usr/local; DESTDIR is prepended, for packagers)
install: build
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/hush

## uninstall: remove what `make install` installed
uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/hush

## image: build bin/busybox.tar, an OCI image archive of Debian's static
## busybox named docker.io/library/busybox:latest (busybox-static is
## installed with apt when missing), for `hush image import` on machines
## with no registry to pull from
image:
	.ci/busybox-image bin/busybox.tar

CONTAINERD_DIR ?= /tmp/hush-containerd

## containerd: start a private containerd in $(CONTAINERD_DIR), for
## machines where the system one cannot run (no systemd, as in a
## container), and write $(CONTAINERD_DIR)/agent.hcl, which points an agent
## at it (`hush agent -dev -config $(CONTAINERD_DIR)/agent.hcl`);
## `make containerd-down` stops it and removes the dir
containerd:
	@sock=$$(.ci/containerd-up $(CONTAINERD_DIR)) && \
	printf 'runtime "containerd" {\n  address = "%s"\n}\n' "$$sock" >$(CONTAINERD_DIR)/agent.hcl && \
	echo "containerd runs on $$sock; start an agent on it with: hush agent -dev -config $(CONTAINERD_DIR)/agent.hcl"

## containerd-down: stop the containerd of `make containerd`, with its
## containers, and remove $(CONTAINERD_DIR)
containerd-down:
	.ci/containerd-down $(CONTAINERD_DIR)

PLUGINS := file exec vault

## plugins: build the first-party provider plugins into bin/
plugins:
	for p in $(PLUGINS); do CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/hush-provider-$$p ./plugins/$$p || exit 1; done

STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

## vet: static checks: go vet, and staticcheck (installed into bin/ from
## the Go module proxy), on the root module and the SDK's (sdk/)
vet:
	$(GO) vet ./...
	cd sdk && $(GO) vet ./...
	GOBIN=$(CURDIR)/bin $(GO) install $(STATICCHECK)
	bin/staticcheck ./...
	cd sdk && ../bin/staticcheck ./...

## test: every test, with the race detector, against a private containerd
## (installed with apt when missing, started and stopped by .ci/with-containerd;
## the packages that drive it run one at a time, see .ci/test); about 15
## minutes on 2 cores with a cold Go build cache
test: vet
	GO=$(GO) .ci/with-containerd .ci/test

## demo: a dev agent, a secret, and a run that prints it; on containerd when
## it can be installed and started here, else on the exec runtime
demo: build
	@if .ci/install-deps; then .ci/with-containerd .ci/demo $(BIN); else .ci/demo $(BIN); fi

## bench: `hush run` against `ctr run` on the same containerd, `create
## secret` fanned out to 1, 4 and 16 clusters (medians and ratios),
## `logs --tail 1` of a 300 MB log against the hush of commit a88fea9, and
## the agent's RSS while it lists 20,000 secrets 8 at a time, secret
## creates per second with 1 and 32 clients, and `GET /v1/runs/{name}` p50
## among 10 and 10,000 stored runs
bench: build
	.ci/with-containerd .ci/bench-runs $(BIN) 10
	.ci/bench-clusters $(BIN) 10
	.ci/bench-logs $(BIN)
	.ci/bench-list $(BIN)
	.ci/bench-creates $(BIN)
	.ci/bench-getrun $(BIN)

## proto: regenerate sdk/internal/proto's Go code with the local protoc
## (3.21+) and pinned code generators installed into bin/
proto:
	GOBIN=$(CURDIR)/bin $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
	GOBIN=$(CURDIR)/bin $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
	protoc -I sdk/internal/proto \
		--plugin=protoc-gen-go=bin/protoc-gen-go --go_out=sdk/internal/proto --go_opt=paths=source_relative \
		--plugin=protoc-gen-go-grpc=bin/protoc-gen-go-grpc --go-grpc_out=sdk/internal/proto --go-grpc_opt=paths=source_relative \
		sdk/internal/proto/provider/v1/provider.proto

clean:
	rm -rf bin
