package doctortest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/mozaiks/mozaiks/internal/testenv"
)

// NeedDocker returns the docker CLI's path when a Docker engine answers;
// otherwise the test is skipped locally and fails under CI=true.
func NeedDocker(t testing.TB) string {
	t.Helper()
	docker := testenv.NeedCommand(t, "docker", "install the Docker CLI and engine (.ci/setup.d/10-docker.sh)")
	if err := exec.Command(docker, "version").Run(); err != nil {
		testenv.Need(t, false, "a running Docker engine", "start dockerd (.ci/setup.d/10-docker.sh)")
	}
	return docker
}

var (
	imagesMu sync.Mutex
	images   = map[string]string{}
)

// BuildImage builds Go package pkg statically for Linux and wraps it as
// /bin in a FROM scratch image (with a /tmp) whose entrypoint is entrypoint
// (default /bin), tagged repo:<binary hash> so
// an unchanged binary reuses the image across tests and packages. Nothing
// can be pulled on the test machines: this is how the runtime and a Mongo
// stand-in (internal/testutil/fakemongo) get into containers.
func BuildImage(t testing.TB, pkg, bin, repo string, entrypoint ...string) string {
	t.Helper()
	docker := NeedDocker(t)
	imagesMu.Lock()
	defer imagesMu.Unlock()
	if ref, ok := images[repo+" "+pkg]; ok {
		return ref
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "tmp"), 0o1777); err != nil {
		t.Fatal(err)
	}
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", filepath.Join(dir, bin), pkg)
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	data, err := os.ReadFile(filepath.Join(dir, bin))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	ref := repo + ":" + hex.EncodeToString(sum[:6])
	if exec.CommandContext(ctx, docker, "image", "inspect", ref).Run() != nil {
		if len(entrypoint) == 0 {
			entrypoint = []string{"/" + bin}
		}
		ep, _ := json.Marshal(entrypoint)
		df := fmt.Sprintf("FROM scratch\nCOPY tmp /tmp\nCOPY %[1]s /%[1]s\nENTRYPOINT %[2]s\n", bin, ep)
		if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.CommandContext(ctx, docker, "build", "-q", "-t", ref, dir).CombinedOutput(); err != nil {
			t.Fatalf("docker build %s: %v\n%s", ref, err, out)
		}
	}
	images[repo+" "+pkg] = ref
	return ref
}
