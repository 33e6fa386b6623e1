package stack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mozaiks/mozaiks/internal/uerr"
)

func fakeEnv(t testing.TB) map[string]string {
	return map[string]string{"MONGO_IMAGE": "mongo:7.0", "RUNTIME_IMAGE": "mozaiks/runtime:test", "PORT": freePort(t), "MONGO_PORT": freePort(t)}
}

func upFake(t *testing.T, eng Engine, dir string, mod func(*UpOptions)) (*UpResult, error) {
	t.Helper()
	o := UpOptions{Project: ProjectOptions{Dir: dir, Name: "fake"}, Timeout: 5 * time.Second}
	if mod != nil {
		mod(&o)
	}
	return Up(context.Background(), eng, o)
}

func byService(r *UpResult) map[string]ServiceResult {
	m := map[string]ServiceResult{}
	for _, s := range r.Services {
		m[s.Service] = s
	}
	return m
}

func TestUpIdempotentAndRecreatesOnlyChanged(t *testing.T) {
	t.Parallel()
	eng := newFakeEngine("mongo:7.0", "mozaiks/runtime:test")
	env := fakeEnv(t)
	dir := devProject(t, env)

	first, err := upFake(t, eng, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := []string{first.Services[0].Service, first.Services[1].Service}; got[0] != "mongo" || got[1] != "runtime" {
		t.Fatalf("start order = %v", got)
	}
	for _, s := range first.Services {
		if s.Action != ActionCreated {
			t.Errorf("first up: %s %s", s.Service, s.Action)
		}
	}
	wantCreates := []string{"network create fake_default", "volume create fake_mongo-data", "volume create fake_runtime-data", "container create fake-mongo-1", "container create fake-runtime-1"}
	if got := eng.creates(); strings.Join(got, ";") != strings.Join(wantCreates, ";") {
		t.Fatalf("creates = %v, want %v", got, wantCreates)
	}

	second, err := upFake(t, eng, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range second.Services {
		if s.Action != ActionUnchanged || s.ContainerID != byService(first)[s.Service].ContainerID {
			t.Errorf("second up changed %s: %+v", s.Service, s)
		}
	}
	if n := len(eng.creates()); n != len(wantCreates) {
		t.Errorf("second up created things: %v", eng.creates())
	}

	env["LOG_LEVEL"] = "debug"
	writeEnv(t, dir, env)
	third, err := upFake(t, eng, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := byService(third)
	if got["mongo"].Action != ActionUnchanged || got["mongo"].ContainerID != byService(first)["mongo"].ContainerID {
		t.Errorf("mongo touched by a runtime env change: %+v", got["mongo"])
	}
	if got["runtime"].Action != ActionRecreated || got["runtime"].ContainerID == byService(first)["runtime"].ContainerID {
		t.Errorf("runtime not recreated: %+v", got["runtime"])
	}
	cs, _ := eng.ContainerList(context.Background(), projectFilter("fake"))
	if len(cs) != 2 {
		t.Errorf("containers after recreate = %d, want 2", len(cs))
	}
}

func TestUpPreflightCreatesNothing(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { busy.Close() })
	busyPort := strings.TrimPrefix(busy.Addr().String()[strings.LastIndex(busy.Addr().String(), ":"):], ":")

	tests := []struct {
		name     string
		images   []string
		ping     error
		env      func(map[string]string)
		pull     string
		seed     func(*fakeEngine)
		wantCode int
		wantMsg  []string
	}{
		{
			name: "busy port", images: []string{"mongo:7.0", "mozaiks/runtime:test"},
			env:      func(e map[string]string) { e["PORT"] = busyPort },
			wantCode: uerr.ExitFailed, wantMsg: []string{"port " + busyPort + " (service runtime)", fmt.Sprintf("(pid %d)", os.Getpid()), "set PORT in .env"},
		},
		{
			name: "missing image with --pull never", images: []string{"mongo:7.0"}, pull: PullNever,
			wantCode: uerr.ExitFailed, wantMsg: []string{"mozaiks/runtime:test", "service runtime", "--pull never"},
		},
		{
			name: "engine down", images: []string{"mongo:7.0", "mozaiks/runtime:test"}, ping: errors.New("dial unix: connection refused"),
			wantCode: uerr.ExitPrerequisite, wantMsg: []string{"cannot reach the Docker engine", "start Docker"},
		},
		{
			name: "container name taken by another project", images: []string{"mongo:7.0", "mozaiks/runtime:test"},
			seed: func(f *fakeEngine) {
				f.containers["x"] = &Container{ID: "x", Name: "fake-mongo-1", State: "running", Labels: map[string]string{LabelProject: "other", LabelService: "db"}}
			},
			wantCode: uerr.ExitFailed, wantMsg: []string{"container name fake-mongo-1 (service mongo) is taken by service db of compose project other", "--project-name", "mozaiks down -p other"},
		},
		{
			name: "bad pull policy", wantCode: uerr.ExitUsage, pull: "sometimes", wantMsg: []string{"--pull"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			eng := newFakeEngine(tt.images...)
			eng.pingErr = tt.ping
			if tt.seed != nil {
				tt.seed(eng)
			}
			env := fakeEnv(t)
			if tt.env != nil {
				tt.env(env)
			}
			_, err := upFake(t, eng, devProject(t, env), func(o *UpOptions) { o.Pull = tt.pull })
			e, ok := uerr.As(err)
			if !ok {
				t.Fatalf("err = %v, want a user error", err)
			}
			if e.ExitCode() != tt.wantCode {
				t.Errorf("exit code = %d, want %d (%v)", e.ExitCode(), tt.wantCode, err)
			}
			full := e.Msg + " | " + e.Hint
			if strings.Contains(full, "compose project other") && strings.Contains(full, "docker rm") {
				t.Errorf("the hint advises removing another stack's container: %q", full)
			}
			for _, w := range tt.wantMsg {
				if !strings.Contains(full, w) {
					t.Errorf("error %q does not mention %q", full, w)
				}
			}
			if c := eng.creates(); len(c) != 0 {
				t.Errorf("created before failing: %v", c)
			}
		})
	}
}

func TestUpPullsMissing(t *testing.T) {
	t.Parallel()
	eng := newFakeEngine("mongo:7.0")
	var progress strings.Builder
	_, err := upFake(t, eng, devProject(t, fakeEnv(t)), func(o *UpOptions) { o.Err = &progress })
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(eng.calls, ";"), "pull mozaiks/runtime:test") || strings.Contains(strings.Join(eng.calls, ";"), "pull mongo") {
		t.Errorf("pulls = %v, want only the missing runtime image", eng.calls)
	}
	if !strings.Contains(progress.String(), "pulled mozaiks/runtime:test") {
		t.Errorf("no pull progress on stderr: %q", progress.String())
	}
}

func TestDownKeepsVolumesUnlessAsked(t *testing.T) {
	t.Parallel()
	eng := newFakeEngine("mongo:7.0", "mozaiks/runtime:test")
	dir := devProject(t, fakeEnv(t))
	if _, err := upFake(t, eng, dir, nil); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := Down(ctx, eng, DownOptions{Project: ProjectOptions{Dir: dir, Name: "fake"}}); err != nil {
		t.Fatal(err)
	}
	cs, _ := eng.ContainerList(ctx, nil)
	ns, _ := eng.NetworkList(ctx, nil)
	vs, _ := eng.VolumeList(ctx, nil)
	if len(cs) != 0 || len(ns) != 0 || len(vs) != 2 {
		t.Fatalf("after down: %d containers, %d networks, %d volumes; want 0, 0, 2", len(cs), len(ns), len(vs))
	}
	// runtime depends on mongo, so it stops first.
	var stops []string
	for _, c := range eng.calls {
		if strings.HasPrefix(c, "container stop") {
			stops = append(stops, c)
		}
	}
	if len(stops) != 2 || !strings.Contains(stops[0], "runtime") {
		t.Errorf("stop order = %v, want runtime first", stops)
	}
	if err := Down(ctx, eng, DownOptions{Project: ProjectOptions{Dir: dir, Name: "fake"}, Volumes: true}); err != nil {
		t.Fatal(err)
	}
	if vs, _ := eng.VolumeList(ctx, nil); len(vs) != 0 {
		t.Errorf("down --volumes left %d volumes", len(vs))
	}

	// With the compose file gone, the project name alone is enough.
	if _, err := upFake(t, eng, dir, nil); err != nil {
		t.Fatal(err)
	}
	if err := Down(ctx, eng, DownOptions{Project: ProjectOptions{Dir: t.TempDir(), Name: "fake"}}); err != nil {
		t.Fatal(err)
	}
	if cs, _ := eng.ContainerList(ctx, nil); len(cs) != 0 {
		t.Errorf("down -p without a compose file left %d containers", len(cs))
	}
	if err := Down(ctx, eng, DownOptions{Project: ProjectOptions{Dir: t.TempDir()}}); err == nil {
		t.Error("down without a compose file or a project name succeeded")
	}
}

func TestReady(t *testing.T) {
	t.Parallel()
	tests := []struct {
		c         Container
		cond      string
		done      bool
		reasonHas string
	}{
		{Container{State: "running", Health: "healthy"}, "service_healthy", true, ""},
		{Container{State: "running", Health: "starting"}, "service_healthy", false, ""},
		{Container{State: "running", Health: "unhealthy"}, "service_healthy", false, "unhealthy"},
		{Container{State: "running"}, "service_healthy", false, "no healthcheck"},
		{Container{State: "exited", ExitCode: 2}, "service_healthy", false, "code 2"},
		{Container{State: "running"}, "service_started", true, ""},
		{Container{State: "created"}, "service_started", false, ""},
		{Container{State: "exited", ExitCode: 0}, "service_completed_successfully", true, ""},
		{Container{State: "exited", ExitCode: 1}, "service_completed_successfully", false, "code 1"},
		{Container{State: "running"}, "service_completed_successfully", false, ""},
	}
	for _, tt := range tests {
		done, reason := ready(tt.c, tt.cond)
		if done != tt.done || (tt.reasonHas == "") != (reason == "") || !strings.Contains(reason, tt.reasonHas) {
			t.Errorf("ready(%+v, %s) = %v, %q; want %v, ~%q", tt.c, tt.cond, done, reason, tt.done, tt.reasonHas)
		}
	}
}

func TestUpCancelStopsWaiting(t *testing.T) {
	t.Parallel()
	eng := newFakeEngine("mongo:7.0", "mozaiks/runtime:test")
	eng.stuck = true
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	start := time.Now()
	_, err := Up(ctx, eng, UpOptions{Project: ProjectOptions{Dir: devProject(t, fakeEnv(t)), Name: "fake"}, Timeout: time.Minute})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled (exit 130 in cli.Main)", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Errorf("cancel took %v to stop the wait", time.Since(start))
	}
	// runtime waits for mongo, so it was never created.
	if c := eng.creates(); strings.Contains(strings.Join(c, ";"), "runtime-1") {
		t.Errorf("runtime created although mongo never became healthy: %v", c)
	}
}

func TestStatusRows(t *testing.T) {
	t.Parallel()
	eng := newFakeEngine("mongo:7.0", "mozaiks/runtime:test")
	dir := devProject(t, fakeEnv(t))
	po := ProjectOptions{Dir: dir, Name: "fake"}
	rows, err := Status(context.Background(), eng, StatusOptions{Project: po}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].State != StateNotCreated || rows[1].State != StateNotCreated {
		t.Fatalf("before up: %+v", rows)
	}
	if _, err := upFake(t, eng, dir, nil); err != nil {
		t.Fatal(err)
	}
	rows, err = Status(context.Background(), eng, StatusOptions{Project: po}, time.Now().Add(90*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var table strings.Builder
	if err := WriteStatusTable(&table, rows); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(table.String()), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "SERVICE") {
		t.Fatalf("table:\n%s", table.String())
	}
	for i, svc := range []string{"mongo", "runtime"} {
		f := strings.Fields(lines[i+1])
		if f[0] != svc || f[1] != "running" || f[2] != "healthy" || !strings.Contains(f[3], "->") || f[5] != "1m" || f[6] != "0" {
			t.Errorf("row %q", lines[i+1])
		}
	}
}

func TestUpWarnsAboutOrphans(t *testing.T) {
	t.Parallel()
	eng := newFakeEngine("mongo:7.0", "mozaiks/runtime:test")
	dir := devProject(t, fakeEnv(t))
	if _, err := upFake(t, eng, dir, nil); err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir+"/"+DevFile, "services:\n  mongo:\n    image: mongo:7.0\n")
	var progress strings.Builder
	if _, err := upFake(t, eng, dir, func(o *UpOptions) { o.Err = &progress }); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(progress.String(), "container fake-runtime-1 belongs to service runtime, which the compose file no longer has") {
		t.Errorf("no orphan warning:\n%s", progress.String())
	}
}
