//go:build !mozaiks_runtime

package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mozaiks/mozaiks/internal/app"
	"github.com/mozaiks/mozaiks/internal/config"
	"github.com/mozaiks/mozaiks/internal/doctor"
	"github.com/mozaiks/mozaiks/internal/doctor/doctortest"
	"github.com/mozaiks/mozaiks/internal/install/initwiz"
)

// servedDeployment is `mozaiks init --deployment prod --proxy PROXY`
// into a fresh directory, and the real runtime started from that
// directory's .env the way the compose service runs it, published on
// 127.0.0.1:MOZAIKS_HTTP_PORT. It returns the directory, the public URL and
// the runtime's direct URL.
func servedDeployment(t *testing.T, proxy string) (dir, public, direct string) {
	t.Helper()
	rtPort, nginxPort := doctortest.FreePort(t), doctortest.FreePort(t)
	public = fmt.Sprintf("http://localhost:%d", nginxPort)
	dir = t.TempDir()
	var out, errOut bytes.Buffer
	args := []string{"init", "--dir", dir, "--non-interactive", "--skip-checks", "--deployment", "prod", "--database", "embedded",
		"--proxy", proxy, "--public-url", public, "--cors-origins", public, "--http-port", fmt.Sprint(rtPort),
		"--openai-api-key", "sk-proj-a8c1e0f2b7d94e6a"}
	if code := Main(context.Background(), args, IO{In: strings.NewReader(""), Out: &out, Err: &errOut}); code != 0 {
		t.Fatalf("init: exit %d\n%s", code, errOut.String())
	}
	// The compose service's environment: on top of .env, auth on; the
	// model is the offline echo provider (the doctor is told the same).
	cfg, err := config.Load(config.LoadOptions{Dir: dir, Environ: []string{
		"AUTH_ENABLED=true", "LLM_PROVIDER=echo", "MOZAIKS_DATA_DIR=" + t.TempDir(), "LOG_FORMAT=json"}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", rtPort))
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
	direct = fmt.Sprintf("http://127.0.0.1:%d", rtPort)
	waitHTTP(t, direct+"/api/health")
	return dir, public, direct
}

func waitHTTP(t *testing.T, url string) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not answer 200: %v", url, err)
		}
	}
}

func get(t *testing.T, url string, hdr map[string]string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func post(t *testing.T, url, body, token string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func doctorReport(t *testing.T, out string) doctor.Report {
	t.Helper()
	var rep doctor.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("doctor --json: %v\n%s", err, out)
	}
	for _, c := range rep.Checks {
		t.Logf("%s %s: %s | %s", c.Code, c.Severity, c.Message, c.Hint)
	}
	return rep
}

// TestHostNginxDeployment (issue #15, items 5 and 6): the config init writes
// for an nginx on the host proxies to the runtime (it used to be a 502
// after 30 s), keeps /metrics and /api/diag/* from the public while the
// doctor still gets through with the token, and a doctor run on this
// healthy compose-prod deployment fails nothing.
func TestHostNginxDeployment(t *testing.T) {
	t.Parallel()
	dir, public, direct := servedDeployment(t, "nginx-host")
	port := strings.TrimPrefix(public, "http://localhost:")
	var nginxPort int
	fmt.Sscan(port, &nginxPort)
	doctortest.StartNginxInclude(t, nginxPort, filepath.Join(dir, initwiz.NginxHostConf))
	dotenv, err := config.ReadDotEnv(filepath.Join(dir, ".env"))
	if err != nil {
		t.Fatal(err)
	}
	token := dotenv["MOZAIKS_DIAG_TOKEN"]
	if len(token) < 32 {
		t.Fatalf("MOZAIKS_DIAG_TOKEN = %q, want a generated token", token)
	}

	for _, c := range []struct {
		url  string
		hdr  map[string]string
		want int
	}{
		{public + "/api/health", nil, http.StatusOK},
		{public + "/metrics", nil, http.StatusNotFound},
		{direct + "/metrics", nil, http.StatusOK},
		{public + "/api/diag/whoami", nil, http.StatusNotFound},
		{public + "/api/diag/whoami", map[string]string{doctor.DiagHeader: "wrong"}, http.StatusNotFound},
		{public + "/api/diag/whoami", map[string]string{doctor.DiagHeader: token}, http.StatusOK},
		{direct + "/api/diag/whoami", nil, http.StatusOK},
	} {
		if got := get(t, c.url, c.hdr); got != c.want {
			t.Errorf("GET %s (headers %v) = %d, want %d", c.url, c.hdr != nil, got, c.want)
		}
	}

	// Auth is on (item 1's unauthenticated 201 must not happen), and a
	// token made as docs/operating.md shows (HS256 with AUTH_JWT_SECRET,
	// sub = user_id) gets through the proxy.
	body := `{"workflow":"assistant","user_id":"alice"}`
	if got := post(t, public+"/api/sessions", body, ""); got != http.StatusUnauthorized {
		t.Errorf("POST /api/sessions without a token = %d, want 401", got)
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": "alice", "app_id": "default", "exp": time.Now().Add(time.Hour).Unix(),
	}).SignedString([]byte(dotenv["AUTH_JWT_SECRET"]))
	if err != nil {
		t.Fatal(err)
	}
	if got := post(t, public+"/api/sessions", body, tok); got != http.StatusCreated {
		t.Errorf("POST /api/sessions with the documented token = %d, want 201", got)
	}

	out, stderr, err := doctorRun(t, &DoctorOptions{Dir: dir, Environ: []string{"LLM_PROVIDER=echo"}, JSON: true})
	rep := doctorReport(t, out)
	if err != nil {
		t.Fatalf("doctor: exit %d: %v\n%s", exitCode(err), err, stderr)
	}
	for _, c := range rep.Checks {
		switch {
		case c.Code == "DKR02" && c.Severity == doctor.Warn:
			// The runtime runs in this test process, not in a container of
			// the project: "no containers" is the truth.
		case c.Code == "CFG01" && !strings.Contains(c.Message, doctor.KindComposeProd):
			t.Errorf("CFG01 does not name the deployment kind: %q", c.Message)
		case c.Severity != doctor.OK && c.Severity != doctor.Skipped:
			t.Errorf("%s: %s %q", c.Code, c.Severity, c.Message)
		}
	}
	for _, must := range []string{"RT01", "CORS01", "WS01", "WS02", "STR01", "NET01"} {
		for _, c := range rep.Checks {
			if c.Code == must && c.Severity != doctor.OK {
				t.Errorf("%s: %s, want ok through the host nginx", must, c.Severity)
			}
		}
	}
	if strings.Contains(out+stderr, token) {
		t.Error("the diag token appears in the doctor's output")
	}
}

// TestComposeNginxConfigOnHostNginx (issue #15, items 2 and 5): the config
// for the compose proxy service on a host nginx cannot reach the runtime.
// The doctor says exactly that (RT01, naming the runtime healthy behind
// it), instead of "start it (mozaiks up)", and nothing else fails.
func TestComposeNginxConfigOnHostNginx(t *testing.T) {
	t.Parallel()
	dir, public, direct := servedDeployment(t, "nginx-host")
	other := t.TempDir()
	var out, errOut bytes.Buffer
	args := []string{"init", "--dir", other, "--non-interactive", "--skip-checks", "--deployment", "prod", "--database", "embedded",
		"--proxy", "nginx", "--public-url", public, "--openai-api-key", "sk-proj-a8c1e0f2b7d94e6a"}
	if code := Main(context.Background(), args, IO{In: strings.NewReader(""), Out: &out, Err: &errOut}); code != 0 {
		t.Fatalf("init: exit %d\n%s", code, errOut.String())
	}
	b, err := os.ReadFile(filepath.Join(other, "nginx", "mozaiks.conf"))
	if err != nil {
		t.Fatal(err)
	}
	// The fault: the compose-network config (upstream runtime:8000 through
	// Docker's DNS at 127.0.0.11) on the host's nginx. A short resolver
	// timeout keeps the test quick; the failure is the same.
	conf := strings.Replace(string(b), "resolver 127.0.0.11 valid=10s ipv6=off;", "resolver 127.0.0.11 valid=10s ipv6=off;\n    resolver_timeout 2s;", 1)
	confPath := filepath.Join(t.TempDir(), "mozaiks.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	var nginxPort int
	fmt.Sscan(strings.TrimPrefix(public, "http://localhost:"), &nginxPort)
	doctortest.StartNginxInclude(t, nginxPort, confPath)

	stdout, stderr, err := doctorRun(t, &DoctorOptions{Dir: dir, Environ: []string{"LLM_PROVIDER=echo"}, JSON: true})
	rep := doctorReport(t, stdout)
	if exitCode(err) != 3 {
		t.Fatalf("doctor: exit %d, want 3\n%s", exitCode(err), stderr)
	}
	for _, c := range rep.Checks {
		switch c.Code {
		case "RT01":
			if c.Severity != doctor.Fail || !strings.Contains(c.Message, "healthy at "+direct) || !strings.Contains(c.Hint, "mozaiks-host.conf") ||
				strings.Contains(c.Hint, "mozaiks up") {
				t.Errorf("RT01 = %s %q (hint %q), want the runtime named healthy at %s and the host config as the fix", c.Severity, c.Message, c.Hint, direct)
			}
		default:
			if c.Severity == doctor.Fail {
				t.Errorf("%s failed too: %q; one fault must fail one check", c.Code, c.Message)
			}
		}
	}
}

// TestCaddyfileHidesMetricsAndDiag (issue #15, item 6): the Caddyfile init
// writes answers 404 for /metrics and for /api/diag/* without the token,
// and proxies the rest; the doctor gets through with the token. (Caddy runs
// on the host here, its upstream pointed at the runtime's published port,
// standing in for the compose service.)
func TestCaddyfileHidesMetricsAndDiag(t *testing.T) {
	t.Parallel()
	dir, public, direct := servedDeployment(t, "caddy")
	b, err := os.ReadFile(filepath.Join(dir, "Caddyfile"))
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(t.TempDir(), "Caddyfile")
	if err := os.WriteFile(conf, []byte(strings.Replace(string(b), "reverse_proxy runtime:8000", "reverse_proxy "+strings.TrimPrefix(direct, "http://"), 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	var port int
	fmt.Sscan(strings.TrimPrefix(public, "http://localhost:"), &port)
	doctortest.StartCaddyFile(t, port, conf)
	dotenv, err := config.ReadDotEnv(filepath.Join(dir, ".env"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		url  string
		hdr  map[string]string
		want int
	}{
		{public + "/api/health", nil, http.StatusOK},
		{public + "/metrics", nil, http.StatusNotFound},
		{public + "/api/diag/whoami", nil, http.StatusNotFound},
		{public + "/api/diag/whoami", map[string]string{doctor.DiagHeader: dotenv["MOZAIKS_DIAG_TOKEN"]}, http.StatusOK},
	} {
		if got := get(t, c.url, c.hdr); got != c.want {
			t.Errorf("GET %s (headers %v) = %d, want %d", c.url, c.hdr != nil, got, c.want)
		}
	}
	// NET01 is skipped: the proxy port is held by this host's Caddy, not by
	// the compose service the file describes.
	out, stderr, err := doctorRun(t, &DoctorOptions{Dir: dir, Environ: []string{"LLM_PROVIDER=echo"}, JSON: true, Skip: []string{"NET01"}})
	rep := doctorReport(t, out)
	if err != nil {
		t.Fatalf("doctor through Caddy: exit %d: %v\n%s", exitCode(err), err, stderr)
	}
	for _, c := range rep.Checks {
		if c.Severity == doctor.Fail {
			t.Errorf("%s failed: %q", c.Code, c.Message)
		}
	}
}
