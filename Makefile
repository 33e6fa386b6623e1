# Developer and release entry points. Tools run from the Go module proxy at a
# pinned version, so nothing needs installing beyond Go (and Docker for `image`).

GO          ?= go
GORELEASER  ?= $(GO) run github.com/goreleaser/goreleaser/v2@v2.15.1
STATICCHECK ?= $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2

BUILDINFO := github.com/mozaiks/mozaiks/internal/buildinfo
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT    ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
DATE      ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS   := -s -w -X $(BUILDINFO).Version=$(VERSION) -X $(BUILDINFO).Commit=$(COMMIT) -X $(BUILDINFO).Date=$(DATE)

# `make image` builds the binary here and wraps it (infra/docker/Dockerfile.prebuilt),
# so it works on a machine that cannot pull images, with or without BuildKit.
# One image name and tag everywhere: a release version (vX.Y.Z) tags X.Y.Z,
# anything else "dev"; `mozaiks init` pins the same tag (cli.ImageTag) in what it writes.
IMAGE_TAG ?= $(if $(shell echo '$(patsubst v%,%,$(VERSION))' | grep -Ex '[0-9]+[.][0-9]+[.][0-9]+'),$(patsubst v%,%,$(VERSION)),dev)
IMAGE     ?= mozaiks/runtime:$(IMAGE_TAG)
IMAGE_CTX ?= dist/image
ARCH      ?= $(shell $(GO) env GOARCH)
CA_CERTS  ?= /etc/ssl/certs/ca-certificates.crt

.PHONY: build test lint image print-image snapshot release-check clean

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o mozaiks ./cmd/mozaiks

# Same command as .ci/run.
test:
	$(GO) test -race -count=1 -timeout 25m ./...

# gofmt, vet and staticcheck; .ci/run runs this target.
lint:
	@out="$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || echo cmd internal templates workflows))"; \
		if [ -n "$$out" ]; then echo "gofmt -l:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

image:
	rm -rf $(IMAGE_CTX)
	mkdir -p $(IMAGE_CTX)/linux/$(ARCH) $(IMAGE_CTX)/etc/ssl/certs
	CGO_ENABLED=0 GOOS=linux GOARCH=$(ARCH) $(GO) build -tags mozaiks_runtime -trimpath -ldflags '$(LDFLAGS)' -o $(IMAGE_CTX)/linux/$(ARCH)/mozaiks ./cmd/mozaiks
	cp $(CA_CERTS) $(IMAGE_CTX)/etc/ssl/certs/ca-certificates.crt
	docker build --build-arg TARGETPLATFORM=linux/$(ARCH) \
		--label org.opencontainers.image.version=$(VERSION) \
		--label org.opencontainers.image.revision=$(COMMIT) \
		-t $(IMAGE) -f infra/docker/Dockerfile.prebuilt $(IMAGE_CTX)

# The image reference `make image` builds (and `mozaiks init` of the same version writes).
print-image:
	@echo $(IMAGE)

# Archives, deb/rpm and checksums for every platform into dist/ (no image, nothing published).
snapshot:
	$(GORELEASER) release --snapshot --clean --skip=publish,sign,docker

# The release checks that CI runs (goreleaser check + snapshot, the image against Docker).
release-check:
	$(GO) test -count=1 -v ./internal/release/...

clean:
	rm -rf dist completions mozaiks
