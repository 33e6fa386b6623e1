package doctortest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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

// BuildNginxImage wraps this host's nginx (Debian's /usr/sbin/nginx and the
// shared libraries it links) into a FROM scratch image that reads
// /etc/nginx/conf.d/*.conf, as the official nginx image does: the stand-in
// for nginx:1.27 where nothing can be pulled.
func BuildNginxImage(t testing.TB) string {
	t.Helper()
	docker := NeedDocker(t)
	bin := nginxPath(t)
	imagesMu.Lock()
	defer imagesMu.Unlock()
	if ref, ok := images["nginx"]; ok {
		return ref
	}
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	copyFile := func(src string) {
		t.Helper()
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatalf("nginx image: %v", err)
		}
		dst := filepath.Join(root, src)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	copyFile(bin)
	out, err := exec.Command("ldd", bin).Output()
	if err != nil {
		t.Fatalf("ldd %s: %v", bin, err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		for _, f := range strings.Fields(line) {
			if strings.HasPrefix(f, "/") {
				copyFile(f)
			}
		}
	}
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/false\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
		"etc/group":  "root:x:0:\nnogroup:x:65534:\n",
		"etc/nginx/nginx.conf": "user nobody nogroup;\nworker_processes 1;\npid /run/nginx.pid;\nerror_log stderr warn;\n" +
			"events { worker_connections 256; }\nhttp {\n  access_log off;\n  include /etc/nginx/conf.d/*.conf;\n}\n",
	}
	for name, body := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"etc/nginx/conf.d", "var/lib/nginx", "var/log/nginx", "run", "tmp"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o777); err != nil {
			t.Fatal(err)
		}
	}
	df := "FROM scratch\nCOPY root/ /\nSTOPSIGNAL SIGQUIT\nCMD [\"" + bin + "\", \"-g\", \"daemon off;\"]\n"
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.New()
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := os.ReadFile(p)
			sum.Write([]byte(p[len(root):]))
			sum.Write(b)
		}
		return nil
	})
	ref := "mozaiks-test/nginx:" + hex.EncodeToString(sum.Sum(nil)[:6])
	if exec.Command(docker, "image", "inspect", ref).Run() != nil {
		if out, err := exec.Command(docker, "build", "-q", "-t", ref, dir).CombinedOutput(); err != nil {
			t.Fatalf("docker build %s: %v\n%s", ref, err, out)
		}
	}
	images["nginx"] = ref
	return ref
}
