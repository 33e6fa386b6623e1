package stack

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mozaiks/mozaiks/internal/uerr"
)

func realEnv(t testing.TB, im testImages) map[string]string {
	return map[string]string{"MONGO_IMAGE": im.Mongo, "RUNTIME_IMAGE": im.Runtime, "PORT": freePort(t), "MONGO_PORT": freePort(t)}
}

func ids(r *UpResult) map[string]string {
	m := map[string]string{}
	for _, s := range r.Services {
		m[s.Service] = s.ContainerID
	}
	return m
}

// TestUpDevStack walks the dev stack's life on a real engine: up to
// healthy, no-op re-run, a one-service change, status, logs, down keeping
// the data, and up again finding it.
func TestUpDevStack(t *testing.T) {
	t.Parallel()
	d := needDocker(t)
	im := buildTestImages(t, d)
	name := uniqueProject(t, d)
	env := realEnv(t, im)
	dir := devProject(t, env)
	ctx := t.Context()
	po := ProjectOptions{Dir: dir, Name: name}
	up := func() *UpResult {
		t.Helper()
		var progress bytes.Buffer
		r, err := Up(ctx, d, UpOptions{Project: po, Pull: PullNever, Timeout: 2 * time.Minute, Err: &progress})
		if err != nil {
			t.Fatalf("up: %v\nprogress:\n%s", err, progress.String())
		}
		return r
	}

	first := up()
	health := getJSON(t, "http://127.0.0.1:"+env["PORT"]+"/api/health")
	if health["status"] != "ok" {
		t.Fatalf("runtime /api/health through the published port = %v", health)
	}
	mongoURI := "mongodb://127.0.0.1:" + env["MONGO_PORT"] + "/"
	mongoDo(t, mongoURI, func(c *mongo.Collection) {
		if _, err := c.InsertOne(ctx, bson.D{{Key: "_id", Value: "keep"}, {Key: "v", Value: 42}}); err != nil {
			t.Fatal(err)
		}
	})

	// Another project wanting the same host port is stopped before it
	// creates anything, and told which container holds the port.
	other := uniqueProject(t, d)
	_, err := Up(ctx, d, UpOptions{Project: ProjectOptions{Dir: devProject(t, env), Name: other}, Pull: PullNever})
	if e, ok := uerr.As(err); !ok || !strings.Contains(e.Msg, "container "+name+"-") || !strings.Contains(e.Msg, "compose project "+name) {
		t.Errorf("second project on the same ports: %v, want the holding container named", err)
	}
	assertNothingCreated(t, d, other)

	second := up()
	for svc, id := range ids(first) {
		if ids(second)[svc] != id {
			t.Errorf("no-op up replaced %s: %s -> %s", svc, id, ids(second)[svc])
		}
	}

	env["LOG_LEVEL"] = "debug"
	writeEnv(t, dir, env)
	third := up()
	if ids(third)["mongo"] != ids(first)["mongo"] {
		t.Error("changing the runtime's environment recreated mongo")
	}
	if ids(third)["runtime"] == ids(first)["runtime"] {
		t.Error("changing the runtime's environment did not recreate it")
	}
	if _, err := d.ContainerInspect(ctx, ids(first)["runtime"]); err == nil {
		t.Error("the replaced runtime container still exists")
	}

	rows, err := Status(ctx, d, StatusOptions{Project: po}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 {
		t.Fatalf("status rows = %+v", rows)
	}
	for _, r := range rows {
		if r.State != "running" || r.Health != "healthy" || r.Restarts != 0 || r.StartedAt == nil || len(r.Ports) == 0 {
			t.Errorf("status %+v, want running, healthy, started, published, no restarts", r)
		}
	}
	// The filter `docker compose ps` lists a project with (docker/compose
	// pkg/compose/containers.go: project, has config-hash, not one-off).
	composePS, err := d.Client().ContainerList(ctx, client.ContainerListOptions{All: true,
		Filters: make(client.Filters).Add("label", LabelProject+"="+name, LabelConfigHash, LabelOneoff+"=False")})
	if err != nil || len(composePS.Items) != 2 {
		t.Errorf("docker compose ps's filter finds %d containers (%v), want 2", len(composePS.Items), err)
	}

	var js bytes.Buffer
	if err := WriteStatusJSON(&js, rows); err != nil {
		t.Fatal(err)
	}
	var decoded []map[string]any
	if err := json.Unmarshal(js.Bytes(), &decoded); err != nil || decoded[1]["service"] != "runtime" || decoded[1]["health"] != "healthy" {
		t.Errorf("status JSON = %s (%v)", js.String(), err)
	}

	var logs bytes.Buffer
	if err := Logs(ctx, d, LogsOptions{Project: po, Service: "runtime", Tail: "50", Out: &logs}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "runtime | ") || !strings.Contains(logs.String(), "listening") {
		t.Errorf("runtime logs lack its start-up banner:\n%s", logs.String())
	}

	fctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	var followed bytes.Buffer
	err = Logs(fctx, d, LogsOptions{Project: po, Follow: true, Tail: "5", Timestamps: true, Out: &followed})
	cancel()
	if err != nil {
		t.Fatalf("logs --follow ended with %v, want nil when its context ends", err)
	}
	for _, svc := range []string{"mongo   | 20", "runtime | 20"} { // aligned prefix, then a timestamp
		if !strings.Contains(followed.String(), svc) {
			t.Errorf("followed logs lack %q:\n%s", svc, followed.String())
		}
	}

	if err := Down(ctx, d, DownOptions{Project: po}); err != nil {
		t.Fatal(err)
	}
	cs, _ := d.ContainerList(ctx, projectFilter(name))
	ns, _ := d.NetworkList(ctx, projectFilter(name))
	vs, _ := d.VolumeList(ctx, projectFilter(name))
	if len(cs) != 0 || len(ns) != 0 || len(vs) != 2 {
		t.Fatalf("after down: %d containers, %d networks, %d volumes; want 0, 0, 2", len(cs), len(ns), len(vs))
	}

	up()
	mongoDo(t, mongoURI, func(c *mongo.Collection) {
		var doc struct {
			V int `bson:"v"`
		}
		if err := c.FindOne(ctx, bson.D{{Key: "_id", Value: "keep"}}).Decode(&doc); err != nil || doc.V != 42 {
			t.Errorf("data written before down: %+v, %v", doc, err)
		}
	})
}

func getJSON(t *testing.T, url string) map[string]any {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s, %v", url, resp.Status, err)
	}
	return m
}

func mongoDo(t *testing.T, uri string, f func(*mongo.Collection)) {
	t.Helper()
	c, err := mongo.Connect(options.Client().ApplyURI(uri).SetServerSelectionTimeout(10 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Disconnect(context.Background()) }()
	f(c.Database("stacktest").Collection("docs"))
}

// assertNothingCreated checks that a failed pre-flight left no trace.
func assertNothingCreated(t *testing.T, d *Docker, project string) {
	t.Helper()
	ctx := context.Background()
	cs, _ := d.ContainerList(ctx, projectFilter(project))
	ns, _ := d.NetworkList(ctx, projectFilter(project))
	vs, _ := d.VolumeList(ctx, projectFilter(project))
	if len(cs)+len(ns)+len(vs) != 0 {
		t.Errorf("failed up created %d containers, %d networks, %d volumes", len(cs), len(ns), len(vs))
	}
}

func TestUpFailuresRealEngine(t *testing.T) {
	t.Parallel()
	d := needDocker(t)
	im := buildTestImages(t, d)

	t.Run("busy port", func(t *testing.T) {
		t.Parallel()
		l, err := net.Listen("tcp", ":0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		env := realEnv(t, im)
		env["MONGO_PORT"] = fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
		name := uniqueProject(t, d)
		_, err = Up(t.Context(), d, UpOptions{Project: ProjectOptions{Dir: devProject(t, env), Name: name}, Pull: PullNever})
		e, ok := uerr.As(err)
		if !ok || !strings.Contains(e.Msg, "port "+env["MONGO_PORT"]+" (service mongo)") ||
			!strings.Contains(e.Msg, fmt.Sprintf("(pid %d)", os.Getpid())) || !strings.Contains(e.Hint, "MONGO_PORT") {
			t.Fatalf("err = %v (hint %q), want the port, this process and MONGO_PORT named", err, hint(e))
		}
		assertNothingCreated(t, d, name)
	})

	t.Run("missing image with --pull never", func(t *testing.T) {
		t.Parallel()
		env := realEnv(t, im)
		env["RUNTIME_IMAGE"] = "mozaiks-test/absent:never-built"
		name := uniqueProject(t, d)
		_, err := Up(t.Context(), d, UpOptions{Project: ProjectOptions{Dir: devProject(t, env), Name: name}, Pull: PullNever})
		if e, ok := uerr.As(err); !ok || !strings.Contains(e.Msg, "mozaiks-test/absent:never-built") || !strings.Contains(e.Msg, "service runtime") {
			t.Fatalf("err = %v, want the missing image and its service named", err)
		}
		assertNothingCreated(t, d, name)
	})

	// Offline (or a tag no registry has): the runtime image is named with
	// how to build it here, instead of a raw registry error.
	t.Run("missing runtime image, pull fails", func(t *testing.T) {
		t.Parallel()
		env := realEnv(t, im)
		env["RUNTIME_IMAGE"] = "mozaiks/runtime:0.0.0-never-released"
		name := uniqueProject(t, d)
		_, err := Up(t.Context(), d, UpOptions{Project: ProjectOptions{Dir: devProject(t, env), Name: name}, Pull: PullMissing})
		e, ok := uerr.As(err)
		if !ok || !strings.Contains(e.Msg, "mozaiks/runtime:0.0.0-never-released (service runtime) is not on this machine and pulling it failed") ||
			!strings.Contains(e.Hint, "make image") {
			t.Fatalf("err = %v (hint %q), want the missing image named and `make image` as the way out", err, hint(e))
		}
		assertNothingCreated(t, d, name)
	})

	t.Run("one-shot dependency", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, DevFile), fmt.Sprintf(`services:
  migrate:
    image: %[1]s
    entrypoint: ["/mozaiks", "version"]
  app:
    image: %[1]s
    command: ["--port", "8000"]
    environment: {LLM_PROVIDER: echo, MOZAIKS_DATA_DIR: /tmp}
    depends_on:
      migrate:
        condition: service_completed_successfully
`, im.Runtime))
		name := uniqueProject(t, d)
		r, err := Up(t.Context(), d, UpOptions{Project: ProjectOptions{Dir: dir, Name: name}, Pull: PullNever, Timeout: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		if r.Services[0].Service != "migrate" {
			t.Fatalf("order = %+v", r.Services)
		}
		job, err := d.ContainerInspect(t.Context(), ids(r)["migrate"])
		if err != nil || job.State != "exited" || job.ExitCode != 0 {
			t.Errorf("migrate = %+v, %v; want exited 0", job, err)
		}
		app, err := d.ContainerInspect(t.Context(), ids(r)["app"])
		if err != nil || app.State != "running" || !app.StartedAt.After(job.StartedAt) {
			t.Errorf("app = %+v, %v; want running, started after migrate", app, err)
		}
	})

	t.Run("health never passes", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, DevFile), fmt.Sprintf(`services:
  runtime:
    image: %s
    environment: {LLM_PROVIDER: echo, MOZAIKS_DATA_DIR: /tmp}
    healthcheck:
      test: ["CMD", "/mozaiks", "healthcheck", "--url", "http://127.0.0.1:9/never"]
      interval: 1s
      retries: 1000
`, im.Runtime))
		name := uniqueProject(t, d)
		var progress bytes.Buffer
		_, err := Up(t.Context(), d, UpOptions{Project: ProjectOptions{Dir: dir, Name: name}, Pull: PullNever, Timeout: 4 * time.Second, Err: &progress})
		e, ok := uerr.As(err)
		if !ok || !strings.Contains(e.Msg, "service runtime did not become healthy in time") || !strings.Contains(e.Hint, "mozaiks logs runtime") {
			t.Fatalf("err = %v, want a readiness timeout for runtime", err)
		}
		if !strings.Contains(err.Error(), "listening") {
			t.Errorf("error lacks the container's last log lines: %v", err)
		}
		if !strings.Contains(progress.String(), "runtime | ") {
			t.Errorf("last log lines not printed on stderr:\n%s", progress.String())
		}
	})
}

func hint(e *uerr.Error) string {
	if e == nil {
		return ""
	}
	return e.Hint
}

// TestUpEngineDown points DOCKER_HOST at a socket nobody serves.
func TestUpEngineDown(t *testing.T) {
	t.Setenv("DOCKER_HOST", "unix://"+filepath.Join(t.TempDir(), "dead.sock"))
	d, err := NewDocker()
	if err != nil {
		t.Fatal(err)
	}
	_, err = Up(t.Context(), d, UpOptions{Project: ProjectOptions{Dir: devProject(t, fakeEnv(t)), Name: "dead"}})
	e, ok := uerr.As(err)
	if !ok || e.ExitCode() != uerr.ExitPrerequisite || !strings.Contains(e.Hint, "start Docker") || !strings.Contains(e.Msg, "dead.sock") {
		t.Fatalf("err = %v, want exit 4 naming the socket with a start-Docker hint", err)
	}
}
