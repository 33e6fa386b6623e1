package doctor

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mozaiks/mozaiks/internal/config"
)

// testEnv builds an Env the way the CLI does, from an explicit environment
// (never the test process's) and a temp deployment directory.
func testEnv(t *testing.T, vars map[string]string, dotenv string) *Env {
	t.Helper()
	dir := t.TempDir()
	if dotenv != "" {
		if err := os.WriteFile(filepath.Join(dir, ".env"), []byte(dotenv), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var environ []string
	for k, v := range vars {
		environ = append(environ, k+"="+v)
	}
	if environ == nil {
		environ = []string{}
	}
	env, err := NewEnv(EnvOptions{Load: config.LoadOptions{Dir: dir, Environ: environ}, URL: vars["_URL"], Origin: vars["_ORIGIN"]})
	if err != nil {
		t.Fatal(err)
	}
	env.InContainer = false // the CI runs in a container; tests choose
	env.MinDisk, env.WarnDisk, env.MinMem, env.WarnMem = 1, 2, 1, 2
	t.Cleanup(env.Close)
	return env
}

// runCheck runs one check as the runner would (timeout, panic guard, scrub).
func runCheck(t *testing.T, env *Env, c Check) CheckResult {
	t.Helper()
	rep := Run(context.Background(), env, []Check{c}, RunOptions{})
	r := rep.Checks[0]
	t.Logf("%s %s: %s | hint: %s | %v", r.Code, r.Severity, r.Message, r.Hint, r.Details)
	return r
}

func wantResult(t *testing.T, r CheckResult, sev Severity, msgHas, hintHas string) {
	t.Helper()
	if r.Severity != sev {
		t.Fatalf("%s: severity %s, want %s (message %q)", r.Code, r.Severity, sev, r.Message)
	}
	if !strings.Contains(r.Message, msgHas) {
		t.Fatalf("%s: message %q lacks %q", r.Code, r.Message, msgHas)
	}
	if !strings.Contains(r.Hint, hintHas) {
		t.Fatalf("%s: hint %q lacks %q", r.Code, r.Hint, hintHas)
	}
}

// runChecks runs several checks together, prerequisites honoured.
func runChecks(t *testing.T, env *Env, checks ...Check) []CheckResult {
	t.Helper()
	rep := Run(context.Background(), env, checks, RunOptions{})
	for _, r := range rep.Checks {
		t.Logf("%s %s: %s | hint: %s | %v", r.Code, r.Severity, r.Message, r.Hint, r.Details)
	}
	return rep.Checks
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func loadOpts(dir string, environ []string) config.LoadOptions {
	return config.LoadOptions{Dir: dir, Environ: environ}
}
