# packer — make targets. `make help` lists them.
GO        ?= go
BIN       ?= bin/packer
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT    ?= $(shell git rev-parse HEAD 2>/dev/null)
COMMITDATE ?= $(shell git log -1 --format=%cI 2>/dev/null)
CMDPKG    := github.com/packer-build/packer/cmd/packer/cmd
LDFLAGS   := -X $(CMDPKG).Version=$(VERSION) -X $(CMDPKG).Commit=$(COMMIT) -X $(CMDPKG).CommitDate=$(COMMITDATE)
PKGS      := ./...
ERRCHECK  := github.com/kisielk/errcheck@v1.30.0
ACTIONLINT := github.com/rhysd/actionlint/cmd/actionlint@v1.7.12

.PHONY: help build demo test unit e2e bench fuzz lint fmt deps clean release docs

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-8s %s\n", $$1, $$2}'

build: ## build bin/packer
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/packer

demo: build ## build the bundled Go fixture to an OCI layout (no registry, no network)
	$(BIN) build testdata/fixtures/go-server -t hello:dev -o oci:bin/hello-layout

deps: ## install the end-to-end tools (docker-registry, skopeo, umoci, runc, mmdebstrap, uv, pipenv; cosign via scripts/tools.sh) when missing
	./scripts/test-deps.sh

test: deps lint ## everything CI runs: lint, unit and end-to-end tests (peer tools build meanwhile)
	GO=$(GO) ./scripts/test.sh

unit: ## unit tests only (no external tools)
	$(GO) test -count=1 $$($(GO) list ./... | grep -v /e2e)

e2e: deps ## end-to-end tests against real tools
	PATH="$$(./scripts/tools.sh):$$PATH" $(GO) test -count=1 -v ./e2e/

fuzz: ## every fuzz target for FUZZTIME each (default 30s); crashers land in testdata/fuzz and become regression tests
	./scripts/fuzz.sh

bench: build ## benchmarks with baselines measured in the same run (see BENCHMARKS.md)
	./scripts/bench.sh

lint: ## gofmt, go vet, errcheck (unhandled errors; .errcheck-exclude lists the accepted ones) and actionlint (the workflow and, through it, action.yml)
	@out=$$(gofmt -l $$(git ls-files '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) run $(ERRCHECK) -ignoretests -exclude .errcheck-exclude $(PKGS)
	$(GO) run $(ACTIONLINT) .github/workflows/*.yml

docs: ## regenerate docs/cli (from the commands) and docs/config.md (from the settings table)
	$(GO) run ./internal/gendocs docs

fmt: ## gofmt the tree
	gofmt -w $$(git ls-files '*.go')

RELEASE_PLATFORMS := linux/amd64 linux/arm64 darwin/amd64 darwin/arm64

release: ## cross-build packer for linux and darwin (amd64, arm64) into dist/: one tar.gz each (binary, LICENSE, README), and SHA256SUMS
	rm -rf dist && mkdir -p dist
	set -e; for p in $(RELEASE_PLATFORMS); do \
	  os=$${p%/*}; arch=$${p#*/}; d=dist/packer_$(VERSION)_$${os}_$${arch}; mkdir -p $$d; \
	  CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags '$(LDFLAGS) -s -w' -o $$d/packer ./cmd/packer; \
	  cp LICENSE README.md CHANGELOG.md $$d/; \
	  tar -C dist --owner=0 --group=0 --mtime='$(COMMITDATE)' --sort=name -czf $$d.tar.gz $$(basename $$d); \
	  rm -rf $$d; \
	done
	cd dist && sha256sum *.tar.gz > SHA256SUMS && cat SHA256SUMS

clean: ## remove build outputs
	rm -rf bin dist
