package main_test

import (
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// BenchmarkStartupReady is the time from exec of `mozaiks serve` (fresh data
// directory, embedded store) to the first 200 from /api/ready, next to two
// baselines taken in the same rounds: `mozaiks version` from exec to exit,
// and a minimal Go net/http server binary from exec to its first 200. It
// also times the runtime image's binary (-tags mozaiks_runtime: no operator
// commands). Every server is polled the same way, every millisecond.
//
//	go test -run '^$' -bench StartupReady -benchtime 10x ./cmd/mozaiks/
func BenchmarkStartupReady(b *testing.B) {
	minimal := buildMinimalServer(b)
	runtimeBin := filepath.Join(b.TempDir(), "mozaiks-runtime")
	if out, err := exec.Command("go", "build", "-tags", "mozaiks_runtime", "-o", runtimeBin, ".").CombinedOutput(); err != nil {
		b.Fatalf("build runtime binary: %v\n%s", err, out)
	}
	var serveT, runtimeT, versionT, minimalT []time.Duration
	for b.Loop() {
		port := freePortB(b)
		serveT = append(serveT, timeToReady(b, exec.Command(bin, "serve"), port, "/api/ready",
			"PORT="+port, "MOZAIKS_DATA_DIR="+filepath.Join(b.TempDir(), "data"), "LOG_LEVEL=error"))

		port = freePortB(b)
		runtimeT = append(runtimeT, timeToReady(b, exec.Command(runtimeBin, "serve"), port, "/api/ready",
			"PORT="+port, "MOZAIKS_DATA_DIR="+filepath.Join(b.TempDir(), "data"), "LOG_LEVEL=error"))

		start := time.Now()
		if out, err := exec.Command(bin, "version").CombinedOutput(); err != nil {
			b.Fatalf("version: %v\n%s", err, out)
		}
		versionT = append(versionT, time.Since(start))

		port = freePortB(b)
		minimalT = append(minimalT, timeToReady(b, exec.Command(minimal), port, "/", "PORT="+port))
	}
	s, v, m := p50(serveT), p50(versionT), p50(minimalT)
	b.ReportMetric(s, "serve-ready-p50-ms")
	b.ReportMetric(p50(runtimeT), "runtime-build-serve-ready-p50-ms")
	b.ReportMetric(v, "version-exit-p50-ms")
	b.ReportMetric(m, "minimal-http-ready-p50-ms")
	b.ReportMetric(s/m, "ratio-vs-minimal-http")
	b.ReportMetric(s/v, "ratio-vs-version")
}

// timeToReady starts cmd with env and polls path on port until it answers
// 200, then kills the process.
func timeToReady(b *testing.B, cmd *exec.Cmd, port, path string, env ...string) time.Duration {
	b.Helper()
	cmd.Dir = b.TempDir()
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, env...)
	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	url := "http://127.0.0.1:" + port + path
	start := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	for deadline := start.Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		resp, err := hc.Get(url)
		if err != nil {
			continue
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return time.Since(start)
		}
	}
	b.Fatalf("%s did not answer 200 on %s within 30s", cmd.Path, path)
	return 0
}

const minimalServer = `package main

import (
	"net/http"
	"os"
)

func main() {
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
	http.ListenAndServe("127.0.0.1:"+os.Getenv("PORT"), nil)
}
`

func buildMinimalServer(b *testing.B) string {
	b.Helper()
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(minimalServer), 0o644); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module minimal\n\ngo 1.22\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	out := filepath.Join(dir, "minimal")
	cmd := exec.Command("go", "build", "-o", out, ".")
	cmd.Dir = dir
	if msg, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("build minimal server: %v\n%s", err, msg)
	}
	return out
}

func freePortB(b *testing.B) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

func p50(d []time.Duration) float64 {
	s := slices.Clone(d)
	slices.Sort(s)
	return float64(s[(len(s)-1)/2]) / float64(time.Millisecond)
}
