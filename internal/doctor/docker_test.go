package doctor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mozaiks/mozaiks/internal/install/stack"
	"github.com/mozaiks/mozaiks/internal/testenv"
)

// recordedDocker is the narrow DockerAPI with canned containers, for the
// classification logic; the moby adapter itself is tested against a real
// engine below.
type recordedDocker struct{ containers []ContainerInfo }

func (r recordedDocker) Ping(context.Context) (string, string, error)  { return "1.47", "linux", nil }
func (r recordedDocker) ServerVersion(context.Context) (string, error) { return "27.3.1", nil }
func (r recordedDocker) ProjectContainers(_ context.Context, project string) ([]ContainerInfo, error) {
	if project != "mozaiksai" {
		return nil, nil
	}
	return r.containers, nil
}
func (r recordedDocker) Logs(_ context.Context, id string, _ int) (string, error) {
	return "panic: cannot connect to mongo\nexit status 2\n", nil
}
func (r recordedDocker) Exec(context.Context, string, []string) (stack.ExecResult, error) {
	return stack.ExecResult{}, errors.New("no exec in the recorded engine")
}
func (r recordedDocker) Close() error { return nil }

func writeCompose(t *testing.T, dir, body string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "docker-compose.yml"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestContainersClassification(t *testing.T) {
	t.Parallel()
	runtime := ContainerInfo{ID: "a1", Name: "mozaiksai-runtime", Service: "runtime", State: "running", Health: "healthy"}
	mongo := ContainerInfo{ID: "b2", Name: "mozaiksai-mongo", Service: "mongo", State: "running", Health: "healthy"}
	crashing := runtime
	crashing.State, crashing.Health, crashing.RestartCount = "restarting", "", 7
	unhealthy := mongo
	unhealthy.Health = "unhealthy"
	stoppedMongo := mongo
	stoppedMongo.State, stoppedMongo.Health, stoppedMongo.ExitCode = "exited", "unhealthy", 137
	tests := []struct {
		name       string
		containers []ContainerInfo
		sev        Severity
		msg, hint  string
	}{
		{"all healthy", []ContainerInfo{runtime, mongo}, OK, "2 container(s) of mozaiksai running", ""},
		{"crash loop", []ContainerInfo{crashing, mongo}, Fail, "mozaiksai-runtime", "mozaiks logs runtime"},
		{"unhealthy", []ContainerInfo{runtime, unhealthy}, Fail, "unhealthy or crash-looping: mozaiksai-mongo", "mozaiks logs mongo"},
		{"none", nil, Warn, "no containers of project mozaiksai", "mozaiks up"},
		// Stopped by hand (docker stop: exit 137/143, no restarts) is not a
		// crash loop: a warning, and MDB01/RT01 say what it breaks.
		{"stopped", []ContainerInfo{runtime, stoppedMongo}, Warn, "stopped: mozaiksai-mongo (exited, exit code 137)", "mozaiks up"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := testEnv(t, nil, "")
			writeCompose(t, env.Dir, "name: mozaiksai\nservices:\n  runtime:\n    image: mozaiks/runtime\n")
			env.Docker = func() (DockerAPI, error) { return recordedDocker{containers: tc.containers}, nil }
			rep := runChecks(t, env, checkDocker(), checkContainers())
			wantResult(t, rep[0], OK, "Docker 27.3.1 reachable (API 1.47)", "")
			wantResult(t, rep[1], tc.sev, tc.msg, tc.hint)
			if tc.sev == Fail && !strings.Contains(strings.Join(anyStrings(rep[1].Details["last_logs"]), "|"), "cannot connect to mongo") {
				t.Fatalf("last log lines missing: %v", rep[1].Details)
			}
		})
	}
}

func anyStrings(v any) []string {
	var out []string
	if m, ok := v.(map[string]any); ok {
		for _, l := range m {
			if ls, ok := l.([]string); ok {
				out = append(out, ls...)
			}
		}
	}
	return out
}

// TestDockerRealEngine runs DKR01/DKR02 through the moby client against the
// machine's engine: reachable, and a project with no containers.
func TestDockerRealEngine(t *testing.T) {
	t.Parallel()
	_, err := os.Stat("/var/run/docker.sock")
	testenv.Need(t, err == nil || os.Getenv("DOCKER_HOST") != "", "a Docker engine", "start dockerd (.ci/setup.d/10-docker.sh)")
	env := testEnv(t, map[string]string{"DOCKER_HOST": os.Getenv("DOCKER_HOST")}, "")
	writeCompose(t, env.Dir, "name: mozaiks-doctor-test-empty\nservices:\n  runtime:\n    image: mozaiks/runtime\n")
	rep := runChecks(t, env, checkDocker(), checkContainers())
	wantResult(t, rep[0], OK, "reachable", "")
	wantResult(t, rep[1], Warn, "no containers of project mozaiks-doctor-test-empty", "mozaiks up")
}

// TestDockerCrashLoopRealEngine: a container of the project that keeps
// exiting is reported with its last log lines, through the moby client.
func TestDockerCrashLoopRealEngine(t *testing.T) {
	t.Parallel()
	docker := testenv.NeedCommand(t, "docker", "install the Docker CLI and engine (.ci/setup.d/10-docker.sh)")
	ctx := context.Background()
	if err := exec.CommandContext(ctx, docker, "version").Run(); err != nil {
		testenv.Need(t, false, "a running Docker engine", "start dockerd (.ci/setup.d/10-docker.sh)")
	}
	build := t.TempDir()
	gobuild := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(build, "crasher"), "./testdata/crasher")
	gobuild.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := gobuild.CombinedOutput(); err != nil {
		t.Fatalf("build crasher: %v\n%s", err, out)
	}
	if err := os.WriteFile(filepath.Join(build, "Dockerfile"), []byte("FROM scratch\nCOPY crasher /crasher\nENTRYPOINT [\"/crasher\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	const image = "mozaiks-doctor-crasher:test"
	if out, err := exec.CommandContext(ctx, docker, "build", "-q", "-t", image, build).CombinedOutput(); err != nil {
		t.Fatalf("docker build: %v\n%s", err, out)
	}
	project := fmt.Sprintf("mozaiks-doctor-crash-%d", time.Now().UnixNano()%1_000_000)
	name := project + "-runtime"
	run := exec.CommandContext(ctx, docker, "run", "-d", "--name", name, "--restart", "always",
		"--label", "com.docker.compose.project="+project, "--label", "com.docker.compose.service=runtime", image)
	if out, err := run.CombinedOutput(); err != nil {
		t.Fatalf("docker run: %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command(docker, "rm", "-f", name).Run() })

	// Docker's restart back-off doubles from 100 ms: a few restarts take a few seconds.
	var last CheckResult
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		env := testEnv(t, map[string]string{"DOCKER_HOST": os.Getenv("DOCKER_HOST")}, "")
		writeCompose(t, env.Dir, "name: "+project+"\nservices:\n  runtime:\n    image: "+image+"\n")
		last = Run(ctx, env, []Check{checkDocker(), checkContainers()}, RunOptions{}).Checks[1]
		if last.Severity == Fail {
			break
		}
	}
	wantResult(t, last, Fail, "unhealthy or crash-looping: "+name, "mozaiks logs runtime")
	if !strings.Contains(strings.Join(anyStrings(last.Details["last_logs"]), "|"), "crasher: cannot connect to mongo") {
		t.Fatalf("last log lines missing: %v", last.Details)
	}
}

func TestRuntimeDownShowsContainerLogs(t *testing.T) {
	t.Parallel()
	env := testEnv(t, map[string]string{"_URL": fmt.Sprintf("http://127.0.0.1:%d", freePort(t))}, "")
	writeCompose(t, env.Dir, "name: mozaiksai\nservices:\n  runtime:\n    image: mozaiks/runtime\n")
	env.Docker = func() (DockerAPI, error) {
		return recordedDocker{containers: []ContainerInfo{{ID: "a1", Name: "mozaiksai-runtime", Service: "runtime", State: "restarting"}}}, nil
	}
	r := runCheck(t, env, checkRuntime())
	wantResult(t, r, Fail, "not reachable", "logs")
	if logs, _ := r.Details["last_logs"].([]string); len(logs) != 2 || logs[0] != "panic: cannot connect to mongo" {
		t.Fatalf("last_logs = %#v", r.Details["last_logs"])
	}
}
