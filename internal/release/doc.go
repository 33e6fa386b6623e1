// Package release holds the tests of the release tooling: the goreleaser
// configuration (.goreleaser.yaml), the runtime image (infra/docker/Dockerfile,
// built by `make image`) and the packages they produce. It has no code of its own.
package release
