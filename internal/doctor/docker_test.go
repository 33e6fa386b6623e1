package doctor

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mozaiks/mozaiks/internal/testenv"
)

// recordedDocker is the narrow DockerAPI with canned containers, for the
// classification logic; the moby adapter itself is tested against a real
// engine below.
type recordedDocker struct{ containers []ContainerInfo }

func (r recordedDocker) Ping(context.Context) (string, string, error) { return "1.47", "linux", nil }
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
