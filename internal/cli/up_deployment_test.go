//go:build !mozaiks_runtime

package cli

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mozaiks/mozaiks/internal/uerr"
)

// initDir runs the real `mozaiks init` for a deployment kind into a fresh
// directory and returns it.
func initDir(t *testing.T, deployment string, extra ...string) string {
	t.Helper()
	dir := t.TempDir()
	args := append([]string{"init", "--dir", dir, "--non-interactive", "--skip-checks", "--deployment", deployment,
		"--openai-api-key", "sk-test-key-123456", "--public-url", "https://chat.example.com", "--proxy", "none"}, extra...)
	var out, errOut bytes.Buffer
	if code := Main(context.Background(), args, IO{In: strings.NewReader(""), Out: &out, Err: &errOut}); code != 0 {
		t.Fatalf("init: exit %d\n%s", code, errOut.String())
	}
	// init's "Next:" names the directory for the doctor too (issue #15, item 8).
	if all := out.String() + errOut.String(); !strings.Contains(all, "mozaiks doctor --dir "+dir) {
		t.Errorf("init's next steps lack `mozaiks doctor --dir %s`:\n%s", dir, all)
	}
	return dir
}

// TestUpRefusesTheOtherDeploymentsFile: `up` without --prod in a directory
// init set up for prod used to start the dev stack (auth off, ports on
// 0.0.0.0) on the prod data; it must refuse, before dialling Docker, unless
// told explicitly. The engine is a dead socket, so getting past the guard
// shows as exit 4 (no Docker).
func TestUpRefusesTheOtherDeploymentsFile(t *testing.T) {
	prod := initDir(t, "prod")
	dev := initDir(t, "dev")
	t.Setenv("DOCKER_HOST", "unix://"+filepath.Join(t.TempDir(), "dead.sock"))
	cases := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"dev file in a prod dir", []string{"up", "--dir", prod}, uerr.ExitUsage, "MOZAIKS_DEPLOYMENT=prod"},
		{"the hint is the command to run", []string{"up", "--dir", prod}, uerr.ExitUsage, "mozaiks up --dir " + prod + " --prod"},
		{"dev file by name in a prod dir", []string{"up", "--dir", prod, "-f", "docker-compose.yml"}, uerr.ExitUsage, "authentication off"},
		{"prod file in a dev dir", []string{"up", "--dir", dev, "--prod"}, uerr.ExitUsage, "MOZAIKS_DEPLOYMENT=dev"},
		{"prod in a prod dir passes the guard", []string{"up", "--dir", prod, "--prod"}, uerr.ExitPrerequisite, "Docker"},
		{"dev in a dev dir passes the guard", []string{"up", "--dir", dev}, uerr.ExitPrerequisite, "Docker"},
		{"explicit override", []string{"up", "--dir", prod, "--allow-mismatch"}, uerr.ExitPrerequisite, "Docker"},
		{"custom file is not judged", []string{"up", "--dir", prod, "-f", "docker-compose.prod.yml"}, uerr.ExitPrerequisite, "Docker"},
	}
	for _, c := range cases {
		var out, errOut bytes.Buffer
		code := Main(context.Background(), c.args, IO{In: strings.NewReader(""), Out: &out, Err: &errOut})
		if code != c.wantCode || !strings.Contains(errOut.String(), c.wantErr) {
			t.Errorf("%s: exit %d, stderr %q; want exit %d mentioning %q", c.name, code, errOut.String(), c.wantCode, c.wantErr)
		}
		if c.wantCode == uerr.ExitUsage && !strings.Contains(errOut.String(), "Hint: ") {
			t.Errorf("%s: no hint in %q", c.name, errOut.String())
		}
	}
}
