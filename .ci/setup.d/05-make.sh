# make runs the lint target (gofmt, vet, staticcheck) from .ci/run.
apt_install make
