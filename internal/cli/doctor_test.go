//go:build !mozaiks_runtime

package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mozaiks/mozaiks/internal/doctor"
	"github.com/mozaiks/mozaiks/internal/doctor/doctortest"
	"github.com/mozaiks/mozaiks/internal/llm/llmtest"
	"github.com/mozaiks/mozaiks/internal/uerr"
)

// doctorRun runs runDoctor with test defaults and returns stdout, stderr, err.
func doctorRun(t *testing.T, opts *DoctorOptions) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	opts.IO = IO{In: strings.NewReader(""), Out: &out, Err: &errb}
	if opts.Environ == nil {
		opts.Environ = []string{}
	}
	prev := opts.Prepare
	opts.Prepare = func(e *doctor.Env) {
		e.InContainer = false
		e.MinDisk, e.WarnDisk, e.MinMem, e.WarnMem = 1, 2, 1, 2
		if prev != nil {
			prev(e)
		}
	}
	err := runDoctor(context.Background(), opts)
	return out.String(), errb.String(), err
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if e, ok := uerr.As(err); ok {
		return e.ExitCode()
	}
	return 1
}

// TestDoctorHealthy: runtime-like server behind a real nginx, FerretDB, the
// OpenAI fake: every applicable check passes, the rest say why they skipped.
func TestDoctorHealthy(t *testing.T) {
	t.Parallel()
	const key = "sk-proj-healthy-7b1d0c9e5f"
	const mongoPass = "mongo-pw-4b8c1e77"
	fake := llmtest.New(t, llmtest.WithAPIKey(key), llmtest.WithModels("gpt-4o-mini"))
	mongo := doctortest.StartMongo(t)
	nginxPort := doctortest.FreePort(t)
	public := fmt.Sprintf("http://127.0.0.1:%d", nginxPort)
	rt := doctortest.StartRuntime(t, doctortest.RuntimeOptions{Origins: []string{public, "http://app.example.com"}})
	doctortest.StartNginxOn(t, nginxPort, strings.TrimPrefix(rt.URL, "http://"), doctortest.NginxGood)
	rtPort := rt.Listener.Addr().(*net.TCPAddr).Port

	dir := t.TempDir()
	dotenv := fmt.Sprintf("OPENAI_API_KEY=%s\nMONGO_URI=%s\nDEFAULT_LLM_MODEL=gpt-4o-mini\n",
		key, strings.Replace(mongo, "mongodb://", "mongodb://app:"+mongoPass+"@", 1)+"MozaiksAI?authMechanism=PLAIN")
	if err := os.WriteFile(filepath.Join(dir, ".env"), []byte(dotenv), 0o600); err != nil {
		t.Fatal(err)
	}
	environ := []string{
		fmt.Sprintf("PORT=%d", rtPort),
		"MOZAIKS_PUBLIC_URL=" + public,
		"CORS_ORIGINS=" + public + ",http://app.example.com",
		"OPENAI_BASE_URL=" + fake.URL(),
	}
	out, stderr, err := doctorRun(t, &DoctorOptions{Dir: dir, Environ: environ, JSON: true})
	if err != nil {
		t.Fatalf("exit %d: %v\n%s\n%s", exitCode(err), err, out, stderr)
	}
	if err := doctortest.ValidateReport(t, doctor.Schema, []byte(out)); err != nil {
		t.Fatalf("--json output does not match the schema: %v\n%s", err, out)
	}
	var rep doctor.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	skipped := map[string]bool{"TLS01": true, "DKR01": true, "DKR02": true, "KV01": true}
	for _, c := range rep.Checks {
		want := doctor.OK
		if skipped[c.Code] {
			want = doctor.Skipped
		}
		if c.Severity != want || (want == doctor.Skipped && c.Message == "") {
			t.Errorf("%s: %s %q, want %s", c.Code, c.Severity, c.Message, want)
		}
	}
	if len(rep.Checks) != 16 {
		t.Errorf("%d checks ran, want 16 (all but the slow WS04)", len(rep.Checks))
	}

	table, stderr2, err := doctorRun(t, &DoctorOptions{Dir: dir, Environ: environ, Verbose: true})
	if err != nil || !strings.Contains(table, "all checks passed: 12 ok, 0 warn, 0 fail, 4 skipped") {
		t.Fatalf("table run: %v\n%s", err, table)
	}
	for _, s := range []string{key, mongoPass} {
		for _, o := range []string{out, stderr, table, stderr2} {
			if strings.Contains(o, s) {
				t.Fatalf("secret %q in output:\n%s", s, o)
			}
		}
	}
}

func TestDoctorExitCodes(t *testing.T) {
	t.Parallel()
	down := fmt.Sprintf("http://127.0.0.1:%d", doctortest.FreePort(t))
	_, _, err := doctorRun(t, &DoctorOptions{Dir: t.TempDir(), URL: down, Only: []string{"RT01", "WS01"}})
	if exitCode(err) != uerr.ExitCheckFailed || !strings.Contains(err.Error(), "RT01") {
		t.Fatalf("runtime down: exit %d (%v), want 3", exitCode(err), err)
	}
	// A warning passes, unless --strict.
	warnEnv := []string{"CORS_ORIGINS=*"}
	if _, _, err := doctorRun(t, &DoctorOptions{Dir: t.TempDir(), Environ: warnEnv, Only: []string{"CFG01"}}); err != nil {
		t.Fatalf("warning without --strict: %v", err)
	}
	_, _, err = doctorRun(t, &DoctorOptions{Dir: t.TempDir(), Environ: warnEnv, Only: []string{"CFG01"}, Strict: true})
	if exitCode(err) != uerr.ExitCheckFailed {
		t.Fatalf("warning with --strict: exit %d, want 3", exitCode(err))
	}
	_, _, err = doctorRun(t, &DoctorOptions{Only: []string{"NOPE99"}})
	if exitCode(err) != uerr.ExitUsage {
		t.Fatalf("unknown code: exit %d, want 2", exitCode(err))
	}
	_, _, err = doctorRun(t, &DoctorOptions{Origin: "app.example.com"})
	if exitCode(err) != uerr.ExitUsage {
		t.Fatalf("bad --origin: exit %d, want 2", exitCode(err))
	}
	out, _, err := doctorRun(t, &DoctorOptions{List: true})
	if err != nil || !strings.Contains(out, "WS04") || !strings.Contains(out, "slow, opt-in with --slow") {
		t.Fatalf("--list: %v\n%s", err, out)
	}
}

func TestDoctorFixMendsDotEnv(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, ".env")
	if err := os.WriteFile(path, []byte("OPENAI_API_KEY=sk-fix-test-0011223344\nAUTH_ENABLED=true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	out, _, err := doctorRun(t, &DoctorOptions{Dir: dir, Only: []string{"SEC01"}})
	if exitCode(err) != uerr.ExitCheckFailed || !strings.Contains(out, "world-readable") || !strings.Contains(out, "missing AUTH_JWT_SECRET") {
		t.Fatalf("before --fix: exit %d\n%s", exitCode(err), out)
	}
	// CFG01 would still fail in this run: the configuration was loaded
	// before the fix; the next run sees the generated secret.
	out, stderr, err := doctorRun(t, &DoctorOptions{Dir: dir, Only: []string{"SEC01"}, Fix: true})
	if err != nil {
		t.Fatalf("after --fix: %v\n%s\n%s", err, out, stderr)
	}
	if !strings.Contains(stderr, "fixed SEC01: chmod 0644 -> 0600 .env; added generated AUTH_JWT_SECRET to .env") {
		t.Fatalf("--fix did not say what it did: %q", stderr)
	}
	st, _ := os.Stat(path)
	b, _ := os.ReadFile(path)
	if st.Mode().Perm() != 0o600 || !strings.Contains(string(b), "\nAUTH_JWT_SECRET=") {
		t.Fatalf("mode %o, .env:\n%s", st.Mode().Perm(), b)
	}
	if _, _, err := doctorRun(t, &DoctorOptions{Dir: dir, Only: []string{"CFG01", "SEC01"}}); err != nil {
		t.Fatalf("re-run after --fix: %v", err)
	}
	secret := strings.TrimSpace(strings.SplitN(strings.Split(string(b), "AUTH_JWT_SECRET=")[1], "\n", 2)[0])
	if len(secret) < 32 || strings.Contains(out+stderr, secret) || strings.Contains(out+stderr, "sk-fix-test-0011223344") {
		t.Fatalf("generated secret too short or printed: %q", out+stderr)
	}
}

func TestNewCmdDoctorFlags(t *testing.T) {
	t.Parallel()
	var got *DoctorOptions
	cmd := NewCmdDoctor(IO{Out: &bytes.Buffer{}, Err: &bytes.Buffer{}}, func(_ context.Context, o *DoctorOptions) error { got = o; return nil })
	cmd.Flags().String("config", "", "")
	cmd.SetArgs([]string{"--url", "https://ai.example.com", "--origin", "https://app.example.com", "--json", "--only", "WS01,WS02", "--skip", "HST01", "--strict", "--fix", "--slow", "--dir", "/srv/mozaiks",
		"--prod", "--ca-file", "/etc/ssl/acme-ca.pem", "--kind", "k8s"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if got.URL != "https://ai.example.com" || got.Origin != "https://app.example.com" || !got.JSON || !got.Strict || !got.Fix || !got.Slow ||
		got.Dir != "/srv/mozaiks" || strings.Join(got.Only, ",") != "WS01,WS02" || strings.Join(got.Skip, ",") != "HST01" || got.Color ||
		!got.Prod || got.CAFile != "/etc/ssl/acme-ca.pem" || got.Kind != "k8s" {
		t.Fatalf("options %+v", got)
	}
}

func TestDoctorUnreadableConfigNeverQuotesDotEnv(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, ".env"), []byte("OPENAI_API_KEY sk-leaky-line-123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, stderr, err := doctorRun(t, &DoctorOptions{Dir: dir})
	e, ok := uerr.As(err)
	if !ok || !strings.Contains(e.Msg, "cannot parse") || strings.Contains(e.Msg+out+stderr, "sk-leaky-line") {
		t.Fatalf("err %v", err)
	}
	_, _, err = doctorRun(t, &DoctorOptions{Dir: t.TempDir(), ConfigFile: filepath.Join(dir, "missing.yaml")})
	if e, ok := uerr.As(err); !ok || !strings.Contains(e.Msg, "missing.yaml") {
		t.Fatalf("missing --config file: %v", err)
	}
}

// TestDoctorKindOverride: --kind settles a directory that holds both the
// compose files and k8s/ (init --k8s writes both), and a bad kind is a usage error.
func TestDoctorKindOverride(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, f := range []string{"docker-compose.yml", "k8s/deployment.yaml"} {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(f)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, f), []byte("services:\n  runtime:\n    image: mozaiks/runtime\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, _, _ := doctorRun(t, &DoctorOptions{Dir: dir, Kind: doctor.KindK8s, Only: []string{"DKR01"}, JSON: true})
	var rep doctor.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Checks) != 1 || rep.Checks[0].Severity != doctor.Skipped || !strings.Contains(rep.Checks[0].Message, "Kubernetes") {
		t.Errorf("DKR01 with --kind k8s: %+v", rep.Checks)
	}
	if _, _, err := doctorRun(t, &DoctorOptions{Dir: dir, Kind: "swarm"}); exitCode(err) != uerr.ExitUsage {
		t.Errorf("--kind swarm: exit %d, want 2", exitCode(err))
	}
}
