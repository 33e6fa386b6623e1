//go:build !mozaiks_runtime

package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mozaiks/mozaiks/internal/app"
	"github.com/mozaiks/mozaiks/internal/config"
	"github.com/mozaiks/mozaiks/internal/doctor"
	"github.com/mozaiks/mozaiks/internal/doctor/doctortest"
	"github.com/mozaiks/mozaiks/internal/install/stack"
)

// TestDoctorK8sHealthy: a directory holding the Kubernetes manifests init
// writes (and no compose file) is judged as a Kubernetes deployment: Docker
// and host ports are not this host's business (skipped, saying why), Mongo
// (external) and the runtime behind its public URL are checked, exit 0.
func TestDoctorK8sHealthy(t *testing.T) {
	t.Parallel()
	mongo := doctortest.StartMongo(t) + "MozaiksAI"
	port := doctortest.FreePort(t)
	public := fmt.Sprintf("http://localhost:%d", port)
	dir := t.TempDir()
	var out, errOut bytes.Buffer
	args := []string{"init", "--dir", dir, "--non-interactive", "--skip-checks", "--deployment", "prod", "--database", "external",
		"--mongo-uri", mongo, "--k8s", "--proxy", "none", "--public-url", public, "--cors-origins", public,
		"--openai-api-key", "sk-proj-a8c1e0f2b7d94e6a"}
	if code := Main(context.Background(), args, IO{In: strings.NewReader(""), Out: &out, Err: &errOut}); code != 0 {
		t.Fatalf("init: exit %d\n%s", code, errOut.String())
	}
	for _, f := range []string{stack.DevFile, stack.ProdFile} {
		if err := os.Remove(filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	// The runtime as the Deployment runs it (here in-process), behind the public URL.
	cfg, err := config.Load(config.LoadOptions{Dir: dir, Environ: []string{"AUTH_ENABLED=true", "LLM_PROVIDER=echo", "LOG_FORMAT=json"}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx, cfg, app.Options{Listener: ln, Stderr: io.Discard}) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("runtime did not stop")
		}
	})
	waitHTTP(t, public+"/api/ready")

	stdout, stderr, err := doctorRun(t, &DoctorOptions{Dir: dir, Environ: []string{"LLM_PROVIDER=echo"}, JSON: true})
	rep := doctorReport(t, stdout)
	if err != nil {
		t.Fatalf("doctor: exit %d: %v\n%s", exitCode(err), err, stderr)
	}
	want := map[string]doctor.Severity{"MDB01": doctor.OK, "RT01": doctor.OK, "CORS01": doctor.OK, "WS01": doctor.OK,
		"DKR01": doctor.Skipped, "DKR02": doctor.Skipped, "NET01": doctor.Skipped}
	for _, c := range rep.Checks {
		if c.Severity != doctor.OK && c.Severity != doctor.Skipped {
			t.Errorf("%s %s %q", c.Code, c.Severity, c.Message)
		}
		if w, ok := want[c.Code]; ok && c.Severity != w {
			t.Errorf("%s = %s %q, want %s", c.Code, c.Severity, c.Message, w)
		}
		if c.Code == "CFG01" && !strings.Contains(c.Message, doctor.KindK8s) {
			t.Errorf("CFG01 does not say k8s: %q", c.Message)
		}
	}
}
