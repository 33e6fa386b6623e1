package release

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mozaiks/mozaiks/internal/testenv"
)

const (
	imageMaxBytes = 25 << 20
	runtimeUser   = "65532:65532"
	runtimeUID    = 65532
)

// needDocker requires a reachable Docker engine, not only the client.
func needDocker(t *testing.T) string {
	t.Helper()
	docker := testenv.NeedCommand(t, "docker", "apt-get install docker.io (see .ci/setup.d)")
	_, errOut, err := tryRun(30*time.Second, "", nil, docker, "info", "--format", "{{.ServerVersion}}")
	testenv.Need(t, err == nil, "a running Docker engine", "start dockerd: "+strings.TrimSpace(errOut))
	return docker
}

// buildImage runs `make image` into a fresh context and tag, as a developer would.
func buildImage(t *testing.T, docker string) string {
	t.Helper()
	make := testenv.NeedCommand(t, "make", "apt-get install make")
	tag := fmt.Sprintf("mozaiks/runtime:test-%d", time.Now().UnixNano())
	ctxDir := t.TempDir()
	t.Cleanup(func() { _, _, _ = tryRun(time.Minute, "", nil, docker, "rmi", "-f", tag) })
	run(t, 15*time.Minute, repoRoot(t), nil, make, "image", "IMAGE="+tag, "IMAGE_CTX="+ctxDir)
	return tag
}

type imageInspect struct {
	Size   int64
	Config struct {
		User         string
		Entrypoint   []string
		ExposedPorts map[string]struct{}
		Env          []string
		Healthcheck  struct{ Test []string }
	}
}

func TestImage(t *testing.T) {
	t.Parallel()
	docker := needDocker(t)
	tag := buildImage(t, docker)

	var inspect []imageInspect
	if err := json.Unmarshal([]byte(run(t, time.Minute, "", nil, docker, "image", "inspect", tag)), &inspect); err != nil || len(inspect) != 1 {
		t.Fatalf("docker image inspect: %v (%d results)", err, len(inspect))
	}
	img := inspect[0]

	t.Run("config", func(t *testing.T) {
		// The binary is the image: beyond it only the CA bundle (~0.2 MB).
		bin := binarySize(t, docker, tag)
		if extra := img.Size - bin; extra > 1<<20 {
			t.Errorf("image is %d bytes, %d more than its binary: something besides the binary got in", img.Size, extra)
		}
		// Under 25 MB unpacked: the image's binary is built with -tags
		// mozaiks_runtime, without the operator commands.
		if img.Size >= imageMaxBytes {
			t.Errorf("image is %d bytes unpacked, want under %d", img.Size, imageMaxBytes)
		}
		packed := compressedSize(t, docker, tag)
		t.Logf("image: %.1f MB unpacked (binary %.1f MB), %.1f MB compressed",
			float64(img.Size)/(1<<20), float64(bin)/(1<<20), float64(packed)/(1<<20))
		c := img.Config
		if c.User != runtimeUser {
			t.Errorf("USER = %q, want %q", c.User, runtimeUser)
		}
		if !slices.Equal(c.Entrypoint, []string{"/mozaiks", "serve"}) {
			t.Errorf("ENTRYPOINT = %q", c.Entrypoint)
		}
		if !slices.Equal(c.Healthcheck.Test, []string{"CMD", "/mozaiks", "healthcheck"}) {
			t.Errorf("HEALTHCHECK = %q, want the binary itself (no shell in the image)", c.Healthcheck.Test)
		}
		if _, ok := c.ExposedPorts["8000/tcp"]; !ok {
			t.Errorf("EXPOSE = %v, want 8000/tcp", c.ExposedPorts)
		}
		if !slices.Contains(c.Env, "MOZAIKS_DATA_DIR=/data") {
			t.Errorf("ENV = %v lacks MOZAIKS_DATA_DIR=/data", c.Env)
		}
	})

	t.Run("filesystem", func(t *testing.T) {
		files := exportFS(t, docker, tag)
		checks := []struct {
			path string
			uid  int
			typ  byte
			mode int64
		}{
			{"mozaiks", 0, tar.TypeReg, 0o755},
			{"etc/ssl/certs/ca-certificates.crt", 0, tar.TypeReg, 0o644},
			{"data", runtimeUID, tar.TypeDir, 0o755},
		}
		for _, c := range checks {
			h, ok := files[c.path]
			if !ok {
				t.Errorf("/%s missing from the image", c.path)
				continue
			}
			if h.Typeflag != c.typ || h.Uid != c.uid || h.Mode&0o777 != c.mode {
				t.Errorf("/%s: type %c uid %d mode %o, want type %c uid %d mode %o", c.path, h.Typeflag, h.Uid, h.Mode&0o777, c.typ, c.uid, c.mode)
			}
		}
		if h, ok := files["etc/ssl/certs/ca-certificates.crt"]; ok && h.Size < 1000 {
			t.Errorf("CA bundle is %d bytes: not a real bundle", h.Size)
		}
		for _, sh := range []string{"bin/sh", "bin/busybox", "usr/bin/curl"} {
			if _, ok := files[sh]; ok {
				t.Errorf("/%s is in the image; the image should hold only the binary", sh)
			}
		}
	})

	t.Run("runs the binary as non-root", func(t *testing.T) {
		out := run(t, time.Minute, "", nil, docker, "run", "--rm", "--entrypoint", "/mozaiks", tag, "version", "--json")
		var info struct{ Version, Commit string }
		if err := json.Unmarshal([]byte(out), &info); err != nil {
			t.Fatalf("version --json in the image: %v\n%s", err, out)
		}
		if info.Version == "" || info.Version == "dev" || info.Commit == "unknown" {
			t.Errorf("image binary is not stamped by make image: %+v", info)
		}
	})

	t.Run("serve", func(t *testing.T) {
		// cobra answers an unknown command's --help with the root help, so
		// look for the command's own usage line.
		help, _, _ := tryRun(time.Minute, "", nil, docker, "run", "--rm", "--entrypoint", "/mozaiks", tag, "healthcheck", "--help")
		if !strings.Contains(help, "mozaiks healthcheck") {
			t.Skip("`mozaiks healthcheck` is not registered yet; the serve checks run once it is")
		}
		testServe(t, docker, tag)
	})
}

// testServe runs the image as a user would and checks health, the user the
// process runs as, writes to /data, and a clean stop.
func testServe(t *testing.T, docker, tag string) {
	const port = "8123"
	name := fmt.Sprintf("mozaiks-release-test-%d", time.Now().UnixNano())
	run(t, time.Minute, "", nil, docker, "run", "-d", "--name", name,
		"-e", "PORT="+port, "-e", "LLM_PROVIDER=echo",
		"-p", "127.0.0.1::"+port,
		"--health-interval=1s", "--health-start-period=1s",
		tag)
	t.Cleanup(func() { _, _, _ = tryRun(time.Minute, "", nil, docker, "rm", "-f", name) })
	logs := func() string {
		out, errOut, _ := tryRun(time.Minute, "", nil, docker, "logs", "--tail", "50", name)
		return out + errOut
	}

	// A published port exists only while the container runs.
	var hostPort string
	if err := waitFor(30*time.Second, func() error {
		state := strings.TrimSpace(run(t, time.Minute, "", nil, docker, "inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", name))
		if state == "exited 0" && strings.TrimSpace(logs()) == "" {
			t.Skip("`mozaiks serve` exits at once without a word: not implemented yet; the serve checks run once it is")
		}
		if !strings.HasPrefix(state, "running") {
			return fmt.Errorf("container %s", state)
		}
		out, errOut, err := tryRun(time.Minute, "", nil, docker, "port", name, port+"/tcp")
		if err != nil {
			return fmt.Errorf("docker port: %v: %s", err, errOut)
		}
		hostPort, _, _ = strings.Cut(strings.TrimSpace(out), "\n") // the IPv4 binding comes first
		return nil
	}); err != nil {
		t.Fatalf("runtime container not up: %v\nlogs:\n%s", err, logs())
	}
	url := "http://" + hostPort + "/api/health"
	if err := waitFor(30*time.Second, func() error {
		resp, err := http.Get(url)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}); err != nil {
		t.Fatalf("GET %s on PORT=%s: %v\nlogs:\n%s", url, port, err, logs())
	}

	if err := waitFor(60*time.Second, func() error {
		status := strings.TrimSpace(run(t, time.Minute, "", nil, docker, "inspect", "--format", "{{.State.Health.Status}}", name))
		if status != "healthy" {
			return errors.New(status)
		}
		return nil
	}); err != nil {
		health, _, _ := tryRun(time.Minute, "", nil, docker, "inspect", "--format", "{{json .State.Health}}", name)
		t.Fatalf("HEALTHCHECK never reported healthy: %v\n%s\nlogs:\n%s", err, health, logs())
	}

	// docker top runs ps on the host, so this is the kernel's view of the user.
	top := run(t, time.Minute, "", nil, docker, "top", name, "-o", "pid,uid,args")
	for _, line := range strings.Split(strings.TrimSpace(top), "\n")[1:] {
		if f := strings.Fields(line); len(f) < 2 || f[1] != fmt.Sprint(runtimeUID) {
			t.Errorf("process not running as uid %d: %s", runtimeUID, line)
		}
	}

	// The embedded store lives in /data: the non-root user must have written there.
	diff := run(t, time.Minute, "", nil, docker, "diff", name)
	if !strings.Contains(diff, "A /data/") {
		t.Errorf("nothing written under /data by the embedded store:\n%s\nlogs:\n%s", diff, logs())
	}

	start := time.Now()
	run(t, time.Minute, "", nil, docker, "stop", "--time", "10", name)
	stopped := time.Since(start)
	code := strings.TrimSpace(run(t, time.Minute, "", nil, docker, "inspect", "--format", "{{.State.ExitCode}}", name))
	t.Logf("docker stop took %s, exit code %s", stopped.Round(time.Millisecond), code)
	if code == "137" {
		t.Errorf("the runtime ignored SIGTERM and was killed at the stop timeout (exit 137)\nlogs:\n%s", logs())
	}
}

// binarySize is the size of /mozaiks in the image.
func binarySize(t *testing.T, docker, tag string) int64 {
	t.Helper()
	h, ok := exportFS(t, docker, tag)["mozaiks"]
	if !ok {
		t.Fatal("/mozaiks missing from the image")
	}
	return h.Size
}

// compressedSize is the image saved by docker and gzipped, about what a
// registry stores. The gzip command, not compress/gzip: under -race the
// instrumented compressor takes most of a minute for 30 MB.
func compressedSize(t *testing.T, docker, tag string) int64 {
	t.Helper()
	gzipPath := testenv.NeedCommand(t, "gzip", "apt-get install gzip")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	save := exec.Command(docker, "save", tag)
	save.Stdout = w
	gz := exec.Command(gzipPath, "-c")
	gz.Stdin = r
	var n countWriter
	gz.Stdout = &n
	startErr := errors.Join(save.Start(), gz.Start())
	// The children hold their own ends; gzip sees EOF once docker save exits.
	_, _ = w.Close(), r.Close()
	if startErr != nil {
		t.Fatal(startErr)
	}
	if err := errors.Join(save.Wait(), gz.Wait()); err != nil {
		t.Fatalf("docker save | gzip: %v", err)
	}
	return int64(n)
}

type countWriter int64

func (c *countWriter) Write(p []byte) (int, error) {
	*c += countWriter(len(p))
	return len(p), nil
}

// exportFS lists the files of a container made from the image.
func exportFS(t *testing.T, docker, tag string) map[string]*tar.Header {
	t.Helper()
	id := strings.TrimSpace(run(t, time.Minute, "", nil, docker, "create", tag))
	t.Cleanup(func() { _, _, _ = tryRun(time.Minute, "", nil, docker, "rm", "-f", id) })
	cmd := exec.Command(docker, "export", id)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	files := map[string]*tar.Header{}
	tr := tar.NewReader(out)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("docker export: %v", err)
		}
		files[path.Clean(h.Name)] = h
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("docker export: %v", err)
	}
	return files
}

// waitFor polls check until it succeeds or the timeout passes.
func waitFor(timeout time.Duration, check func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(250 * time.Millisecond)
	}
}
