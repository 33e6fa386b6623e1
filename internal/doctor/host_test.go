package doctor

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/mozaiks/mozaiks/internal/doctor/doctortest"
)

func TestPortsBusyNamesHolderAndFlag(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	env := testEnv(t, map[string]string{"MOZAIKS_ADDR": l.Addr().String()}, "")
	r := runCheck(t, env, checkPorts())
	comm, _ := os.ReadFile("/proc/self/comm")
	holder := fmt.Sprintf("%s (pid %d)", strings.TrimSpace(string(comm)), os.Getpid())
	wantResult(t, r, Fail, fmt.Sprintf("port %d (needed by mozaiks serve) is held by %s", port, holder), fmt.Sprintf("PORT=%d", port+1))

	free := doctortest.FreePort(t)
	env = testEnv(t, map[string]string{"PORT": strconv.Itoa(free)}, "")
	wantResult(t, runCheck(t, env, checkPorts()), OK, "free: "+strconv.Itoa(free), "")

	// The running runtime holding its own port is the healthy case.
	rt := doctortest.StartRuntime(t, doctortest.RuntimeOptions{})
	env = testEnv(t, map[string]string{"MOZAIKS_ADDR": strings.TrimPrefix(rt.URL, "http://")}, "")
	wantResult(t, runCheck(t, env, checkPorts()), OK, "in use by this deployment", "")
}

func TestPortsFromComposeFile(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	busy := l.Addr().(*net.TCPAddr).Port
	free := doctortest.FreePort(t)
	env := testEnv(t, map[string]string{"RUNTIME_PORT": strconv.Itoa(busy)}, "")
	compose := fmt.Sprintf(`name: mozaiksai
services:
  runtime:
    image: mozaiks/runtime
    ports:
      - "127.0.0.1:${RUNTIME_PORT:-8000}:8000"
  mongo:
    image: mongo:7.0
    ports:
      - target: 27017
        published: "%d"
      - "27018"
`, free)
	if err := os.WriteFile(filepath.Join(env.Dir, "docker-compose.yml"), []byte(compose), 0o644); err != nil {
		t.Fatal(err)
	}
	r := runCheck(t, env, checkPorts())
	wantResult(t, r, Fail, fmt.Sprintf("port %d (needed by service runtime (127.0.0.1:${RUNTIME_PORT:-8000}:8000, docker-compose.yml)) is held by", busy), "set RUNTIME_PORT in .env")
	if !strings.HasPrefix(fmt.Sprint(r.Details[strconv.Itoa(free)]), "free") {
		t.Fatalf("long-syntax port %d not checked: %v", free, r.Details)
	}
}

func TestDockerAbsent(t *testing.T) {
	t.Parallel()
	env := testEnv(t, map[string]string{"DOCKER_HOST": "unix:///nonexistent/docker.sock"}, "")
	rep := runChecks(t, env, checkDocker(), checkContainers())
	wantResult(t, rep[0], Fail, "Docker engine not reachable: no Docker socket", "start Docker")
	wantResult(t, rep[1], Skipped, "needs DKR01, which failed", "")

	env = testEnv(t, nil, "")
	wantResult(t, runCheck(t, env, checkDocker()), Skipped, "not a Docker deployment", "")
}

func TestHostThresholds(t *testing.T) {
	t.Parallel()
	env := testEnv(t, nil, "")
	wantResult(t, runCheck(t, env, checkHost()), OK, "free at", "")
	env.MinDisk, env.WarnDisk = 1<<62, 1<<62
	wantResult(t, runCheck(t, env, checkHost()), Fail, "free at", "free at least")
	env.MinDisk, env.MinMem, env.WarnMem = 1, 1<<62, 1<<62
	wantResult(t, runCheck(t, env, checkHost()), Fail, "of memory available", "at least")
}

// TestPortsOfTheProdFile (issue #15, item 2): where .env says prod, NET01
// checks the ports of docker-compose.prod.yml (it used to read only the dev
// file and miss a busy 80/443).
func TestPortsOfTheProdFile(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	busy := l.Addr().(*net.TCPAddr).Port
	free := doctortest.FreePort(t)
	env := testEnv(t, nil, "MOZAIKS_DEPLOYMENT=prod\n")
	dev := fmt.Sprintf("name: mz\nservices:\n  runtime:\n    image: mozaiks/runtime\n    ports:\n      - \"127.0.0.1:%d:8000\"\n", free)
	prod := fmt.Sprintf("name: mz\nservices:\n  proxy:\n    image: nginx\n    ports:\n      - \"%d:%d\"\n", busy, busy)
	for name, body := range map[string]string{"docker-compose.yml": dev, "docker-compose.prod.yml": prod} {
		if err := os.WriteFile(filepath.Join(env.Dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r := runCheck(t, env, checkPorts())
	wantResult(t, r, Fail, fmt.Sprintf("port %d (needed by service proxy", busy), "")
	if !strings.Contains(r.Message, "docker-compose.prod.yml") {
		t.Errorf("NET01 does not name the prod file: %q", r.Message)
	}
	if _, checked := r.Details[strconv.Itoa(free)]; checked {
		t.Errorf("NET01 checked the dev file's port %d in a prod deployment", free)
	}
}

// TestMissingComposeSecretFailsOnce: a ${VAR:?} secret missing from .env is
// SEC01's failure (which --fix mends); the checks that need the compose file
// skip and name it instead of failing on the same cause.
func TestMissingComposeSecretFailsOnce(t *testing.T) {
	t.Parallel()
	env := testEnv(t, nil, "MOZAIKS_DEPLOYMENT=prod\n")
	prod := "name: mz\nservices:\n  mongo:\n    image: mongo:7.0\n    environment:\n" +
		"      MONGO_INITDB_ROOT_PASSWORD: ${MONGO_ROOT_PASSWORD:?set MONGO_ROOT_PASSWORD in .env}\n    ports:\n      - \"127.0.0.1:27017:27017\"\n"
	if err := os.WriteFile(filepath.Join(env.Dir, "docker-compose.prod.yml"), []byte(prod), 0o644); err != nil {
		t.Fatal(err)
	}
	env.Docker = func() (DockerAPI, error) { return recordedDocker{}, nil }
	rep := runChecks(t, env, checkSecrets(), checkDocker(), checkContainers(), checkPorts())
	wantResult(t, rep[0], Fail, "MONGO_ROOT_PASSWORD", "--fix")
	for _, r := range rep[2:] {
		wantResult(t, r, Skipped, "needs MONGO_ROOT_PASSWORD in .env (see SEC01)", "")
	}
}

// TestFixTakesTheRootPasswordFromMongoURI: --fix restores a missing
// MONGO_ROOT_PASSWORD from MONGO_URI (a generated one would lock the
// runtime out of the bundled Mongo).
func TestFixTakesTheRootPasswordFromMongoURI(t *testing.T) {
	t.Parallel()
	env := testEnv(t, nil, "MOZAIKS_DEPLOYMENT=prod\nMONGO_ROOT_USERNAME=mozaiks\nMONGO_URI=mongodb://mozaiks:0ld5ecretpw@mongo:27017/MozaiksAI?authSource=admin\n")
	prod := "name: mz\nservices:\n  mongo:\n    image: mongo:7.0\n    environment:\n" +
		"      MONGO_INITDB_ROOT_PASSWORD: ${MONGO_ROOT_PASSWORD:?set MONGO_ROOT_PASSWORD in .env}\n"
	if err := os.WriteFile(filepath.Join(env.Dir, "docker-compose.prod.yml"), []byte(prod), 0o644); err != nil {
		t.Fatal(err)
	}
	rep := Run(context.Background(), env, []Check{checkSecrets()}, RunOptions{Fix: true})
	if rep.Checks[0].Severity != OK {
		t.Fatalf("SEC01 after --fix: %+v", rep.Checks[0])
	}
	b, err := os.ReadFile(filepath.Join(env.Dir, ".env"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "MONGO_ROOT_PASSWORD=0ld5ecretpw\n") {
		t.Errorf(".env after --fix:\n%s", b)
	}
}
