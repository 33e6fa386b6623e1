//go:build !mozaiks_runtime

package cli

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mozaiks/mozaiks/internal/doctor"
	"github.com/mozaiks/mozaiks/internal/doctor/doctortest"
	"github.com/mozaiks/mozaiks/internal/install/stack"
)

// TestDoctorComposeProdRealEngine (issue #15, item 2): a bundled-Mongo prod
// deployment as init writes it, started by `up --prod` on a real engine.
// The doctor checks Mongo from inside the runtime container (from the host
// the compose name "mongo" never resolves, which made MDB01 fail whether
// Mongo ran or not): healthy, every check passes; with the mongo container
// stopped, MDB01 alone fails and names the stopped container.
//
// Nothing can be pulled here, so the images are stand-ins built from this
// tree: the runtime (the real binary) and FerretDB for mongo:7.0.
// composeStack is `mozaiks init --deployment D --database bundled --proxy
// none` for project on port, with the stand-in images swapped in (FerretDB
// takes the root user over PLAIN; the model is the offline echo provider),
// started with `up` on the real engine and taken down (volumes too) when
// the test ends. extraEnv lines are appended to .env.
func composeStack(t testing.TB, deployment, project string, port int, extraEnv string) string {
	t.Helper()
	return composeStackProxy(t, deployment, "none", project, port, port, extraEnv)
}

// composeStackProxy is composeStack with a proxy service (nginx: the
// stand-in built from this host's nginx) listening on publicPort, the
// runtime on 127.0.0.1:port.
func composeStackProxy(t testing.TB, deployment, proxy, project string, port, publicPort int, extraEnv string) string {
	t.Helper()
	return composeStackWith(t, deployment, proxy, project, port, publicPort, extraEnv, "")
}

// composeStackWith also adds extraServices (YAML, indented as services) to
// the compose file.
func composeStackWith(t testing.TB, deployment, proxy, project string, port, publicPort int, extraEnv, extraServices string) string {
	t.Helper()
	runtimeImage := doctortest.BuildImage(t, "github.com/mozaiks/mozaiks/cmd/mozaiks", "mozaiks", "mozaiks-test/runtime", "/mozaiks", "serve")
	mongoImage := doctortest.BuildImage(t, "github.com/mozaiks/mozaiks/internal/testutil/fakemongo", "fakemongo", "mozaiks-test/fakemongo")
	public := fmt.Sprintf("http://localhost:%d", publicPort)
	nginxImage := "nginx:1.27"
	if proxy == "nginx" {
		nginxImage = doctortest.BuildNginxImage(t)
	}
	dir := t.TempDir()
	var out, errOut bytes.Buffer
	args := []string{"init", "--dir", dir, "--non-interactive", "--skip-checks", "--deployment", deployment, "--database", "bundled",
		"--proxy", proxy, "--public-url", public, "--cors-origins", public, "--http-port", fmt.Sprint(port), "--project-name", project,
		"--openai-api-key", "sk-proj-a8c1e0f2b7d94e6a"}
	if code := Main(context.Background(), args, IO{In: strings.NewReader(""), Out: &out, Err: &errOut}); code != 0 {
		t.Fatalf("init: exit %d\n%s", code, errOut.String())
	}
	prod := deployment == "prod"
	file := stack.DevFile
	if prod {
		file = stack.ProdFile
	}
	composePath := filepath.Join(dir, file)
	b, err := os.ReadFile(composePath)
	if err != nil {
		t.Fatal(err)
	}
	compose := strings.NewReplacer(
		"services:\n", "services:\n"+extraServices,
		"image: mongo:7.0", "image: "+mongoImage,
		`["CMD", "mongosh", "--quiet", "--eval", "db.adminCommand('ping').ok"]`, `["CMD", "/fakemongo", "ping"]`,
		"image: mozaiks/runtime:dev", "image: "+runtimeImage,
		"image: nginx:1.27", "image: "+nginxImage,
		"interval: 10s", "interval: 1s",
	).Replace(string(b))
	if err := os.WriteFile(composePath, []byte(compose), 0o644); err != nil {
		t.Fatal(err)
	}
	envPath := filepath.Join(dir, ".env")
	envb, err := os.ReadFile(envPath)
	if err != nil {
		t.Fatal(err)
	}
	env := strings.Replace(string(envb), "authSource=admin", "authSource=admin&authMechanism=PLAIN", 1) + "LLM_PROVIDER=echo\n" + extraEnv
	if err := os.WriteFile(envPath, []byte(env), 0o600); err != nil {
		t.Fatal(err)
	}
	eng, err := stack.NewDocker()
	if err != nil {
		t.Fatal(err)
	}
	po := stack.ProjectOptions{Dir: dir, Prod: prod}
	t.Cleanup(func() {
		_ = stack.Down(context.Background(), eng, stack.DownOptions{Project: po, Volumes: true})
		eng.Close()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := stack.Up(ctx, eng, stack.UpOptions{Project: po, Pull: stack.PullNever, Timeout: 3 * time.Minute}); err != nil {
		t.Fatalf("up (%s): %v", deployment, err)
	}
	return dir
}

func uniqueProject(prefix string) string {
	return fmt.Sprintf("%s%d", prefix, time.Now().UnixNano()%1_000_000)
}

func TestDoctorComposeProdRealEngine(t *testing.T) {
	t.Parallel()
	docker := doctortest.NeedDocker(t)
	port := doctortest.FreePort(t)
	project := uniqueProject("mzdoc")
	dir := composeStack(t, "prod", project, port, "")

	// Healthy: exit 0, nothing fails or warns. (.env says prod: no --prod needed.)
	stdout, stderr, err := doctorRun(t, &DoctorOptions{Dir: dir, JSON: true})
	rep := doctorReport(t, stdout)
	if err != nil {
		t.Fatalf("doctor on a healthy deployment: exit %d: %v\n%s", exitCode(err), err, stderr)
	}
	for _, c := range rep.Checks {
		if c.Severity != doctor.OK && c.Severity != doctor.Skipped {
			t.Errorf("healthy: %s %s %q", c.Code, c.Severity, c.Message)
		}
		if c.Code == "MDB01" && (c.Severity != doctor.OK || !strings.Contains(fmt.Sprint(c.Details["probed_from"]), project+"-runtime")) {
			t.Errorf("MDB01 = %s %q from %v, want ok from inside %s-runtime", c.Severity, c.Message, c.Details["probed_from"], project)
		}
	}

	// The fault: Mongo stopped.
	if out, err := exec.Command(docker, "stop", project+"-mongo").CombinedOutput(); err != nil {
		t.Fatalf("docker stop: %v\n%s", err, out)
	}
	stdout, stderr, err = doctorRun(t, &DoctorOptions{Dir: dir, JSON: true})
	rep = doctorReport(t, stdout)
	if exitCode(err) != 3 {
		t.Fatalf("doctor with Mongo stopped: exit %d, want 3\n%s", exitCode(err), stderr)
	}
	for _, c := range rep.Checks {
		switch c.Code {
		case "MDB01":
			if c.Severity != doctor.Fail || !strings.Contains(c.Message, "container "+project+"-mongo of service mongo is exited") ||
				!strings.Contains(c.Hint, "mozaiks up --prod") {
				t.Errorf("MDB01 = %s %q (hint %q), want the stopped container named and up --prod as the fix", c.Severity, c.Message, c.Hint)
			}
		case "RT01":
			if c.Severity == doctor.Fail {
				t.Errorf("RT01 failed too: %q; MDB01 carries this fault", c.Message)
			}
		default:
			if c.Severity == doctor.Fail {
				t.Errorf("%s failed too: %q; one fault must fail one check", c.Code, c.Message)
			}
		}
	}
}

// TestTwoStacksOnOneHostRealEngine (issue #15, item 7): container names and
// volumes derive from the project name and the port from MOZAIKS_HTTP_PORT,
// so two production stacks run side by side on one engine.
func TestTwoStacksOnOneHostRealEngine(t *testing.T) {
	t.Parallel()
	doctortest.NeedDocker(t)
	type st struct {
		project string
		port    int
	}
	stacks := []st{{uniqueProject("mza"), doctortest.FreePort(t)}, {uniqueProject("mzb"), doctortest.FreePort(t)}}
	for _, s := range stacks {
		composeStack(t, "prod", s.project, s.port, "")
	}
	eng, err := stack.NewDocker()
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	for _, s := range stacks {
		waitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/api/ready", s.port))
		list, err := eng.ContainerList(context.Background(), stack.ProjectFilter(s.project))
		if err != nil {
			t.Fatal(err)
		}
		names := map[string]string{}
		for _, c := range list {
			names[c.Name] = c.State
		}
		for _, want := range []string{s.project + "-runtime", s.project + "-mongo"} {
			if names[want] != "running" {
				t.Errorf("project %s: container %s is %q, want running (have %v)", s.project, want, names[want], names)
			}
		}
	}
}

// TestDoctorComposeDevRealEngine: the dev stack (auth off, runtime and Mongo
// on 127.0.0.1), healthy: the doctor judges it as compose-dev and exits 0.
func TestDoctorComposeDevRealEngine(t *testing.T) {
	t.Parallel()
	doctortest.NeedDocker(t)
	port, mongoPort := doctortest.FreePort(t), doctortest.FreePort(t)
	dir := composeStack(t, "dev", uniqueProject("mzdev"), port, fmt.Sprintf("MOZAIKS_MONGO_PORT=%d\n", mongoPort))
	stdout, stderr, err := doctorRun(t, &DoctorOptions{Dir: dir, JSON: true})
	rep := doctorReport(t, stdout)
	if err != nil {
		t.Fatalf("doctor on a healthy dev stack: exit %d: %v\n%s", exitCode(err), err, stderr)
	}
	for _, c := range rep.Checks {
		if c.Severity != doctor.OK && c.Severity != doctor.Skipped {
			t.Errorf("%s %s %q", c.Code, c.Severity, c.Message)
		}
		if c.Code == "CFG01" && !strings.Contains(c.Message, doctor.KindComposeDev) {
			t.Errorf("CFG01 does not say compose-dev: %q", c.Message)
		}
		if c.Code == "MDB01" && c.Severity != doctor.OK {
			t.Errorf("MDB01 = %s %q", c.Severity, c.Message)
		}
	}
}

// TestComposeNginxProxyRealEngine (issue #15, items 5 and 6): the nginx
// config init writes for the compose proxy service, in an nginx container
// (built here from the host's nginx) on the stack's network: the doctor,
// through it, passes everything (WebSockets, streaming, the diag endpoints
// with the token), while the public gets 404 for /metrics and /api/diag/*.
func TestComposeNginxProxyRealEngine(t *testing.T) {
	t.Parallel()
	doctortest.NeedDocker(t)
	port, publicPort := doctortest.FreePort(t), doctortest.FreePort(t)
	dir := composeStackProxy(t, "prod", "nginx", uniqueProject("mzngx"), port, publicPort, "")
	public := fmt.Sprintf("http://localhost:%d", publicPort)
	waitHTTP(t, public+"/api/ready")
	for _, c := range []struct {
		url  string
		want int
	}{
		{public + "/metrics", http.StatusNotFound},
		{public + "/api/diag/whoami", http.StatusNotFound},
		{fmt.Sprintf("http://127.0.0.1:%d/metrics", port), http.StatusOK},
	} {
		if got := get(t, c.url, nil); got != c.want {
			t.Errorf("GET %s = %d, want %d", c.url, got, c.want)
		}
	}
	stdout, stderr, err := doctorRun(t, &DoctorOptions{Dir: dir, JSON: true})
	rep := doctorReport(t, stdout)
	if err != nil {
		t.Fatalf("doctor through the nginx container: exit %d: %v\n%s", exitCode(err), err, stderr)
	}
	for _, c := range rep.Checks {
		if c.Severity != doctor.OK && c.Severity != doctor.Skipped {
			t.Errorf("%s %s %q", c.Code, c.Severity, c.Message)
		}
	}
}

// TestDoctorLLMComposeServiceRealEngine (issue #15, item 2): an LLM endpoint
// that is itself a compose service (http://llm:8000/v1) resolves only in
// the compose network, like Mongo. LLM01 asks from inside the runtime
// container: ok when it runs; with the llm container stopped, LLM01 alone
// fails, with the cause.
func TestDoctorLLMComposeServiceRealEngine(t *testing.T) {
	t.Parallel()
	docker := doctortest.NeedDocker(t)
	const key = "sk-proj-llm-in-compose-4d2e"
	llmImage := doctortest.BuildImage(t, "github.com/mozaiks/mozaiks/internal/doctor/testdata/fakellm", "fakellm", "mozaiks-test/fakellm")
	project := uniqueProject("mzllm")
	port := doctortest.FreePort(t)
	services := "  llm:\n    image: " + llmImage + "\n    container_name: " + project + "-llm\n    environment:\n      FAKE_KEY: " + key + "\n"
	env := "LLM_PROVIDER=openai\nOPENAI_BASE_URL=http://llm:8000/v1\nOPENAI_API_KEY=" + key + "\n"
	dir := composeStackWith(t, "prod", "none", project, port, port, env, services)

	stdout, stderr, err := doctorRun(t, &DoctorOptions{Dir: dir, JSON: true})
	rep := doctorReport(t, stdout)
	if err != nil {
		t.Fatalf("doctor: exit %d: %v\n%s", exitCode(err), err, stderr)
	}
	for _, c := range rep.Checks {
		if c.Code == "LLM01" && (c.Severity != doctor.OK || !strings.Contains(c.Message, "model gpt-4o-mini listed")) {
			t.Errorf("LLM01 = %s %q, want ok from inside the runtime container", c.Severity, c.Message)
		}
	}

	if out, err := exec.Command(docker, "stop", project+"-llm").CombinedOutput(); err != nil {
		t.Fatalf("docker stop: %v\n%s", err, out)
	}
	stdout, stderr, err = doctorRun(t, &DoctorOptions{Dir: dir, JSON: true})
	rep = doctorReport(t, stdout)
	if exitCode(err) != 3 {
		t.Fatalf("doctor with the llm service stopped: exit %d, want 3\n%s", exitCode(err), stderr)
	}
	for _, c := range rep.Checks {
		switch {
		case c.Code == "LLM01":
			if c.Severity != doctor.Fail || !strings.Contains(c.Message, "cannot reach http://llm:8000/v1") ||
				!strings.Contains(c.Message, "container "+project+"-llm of service llm is exited") || !strings.Contains(c.Hint, "mozaiks up --prod") {
				t.Errorf("LLM01 = %s %q, want the unreachable endpoint named", c.Severity, c.Message)
			}
		case c.Severity == doctor.Fail:
			t.Errorf("%s failed too: %q", c.Code, c.Message)
		}
	}
}
