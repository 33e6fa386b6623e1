// Package doctortest starts the real servers the doctor's tests probe: a
// runtime-like HTTP server (the diag endpoints behind rs/cors, with
// /api/health and /api/ready), nginx in front of it with a chosen
// configuration, and FerretDB as a real MongoDB wire-protocol server.
package doctortest

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
	"github.com/rs/cors"

	"github.com/mozaiks/mozaiks/internal/serve/diag"
	"github.com/mozaiks/mozaiks/internal/testenv"
)

// RuntimeOptions shape the runtime-like server.
type RuntimeOptions struct {
	Origins        []string // allowed origins (HTTP CORS and WebSocket)
	AllowAnyOrigin bool     // the misconfiguration CORS01 must catch
	ReadyStatus    int      // /api/ready status (default 200)
	// Bounded: diagnostic sockets are kept short, as the runtime does with
	// auth on (MaxLifetime and IdleTimeout, default a few seconds).
	Bounded     bool
	MaxLifetime time.Duration
}

// StartRuntime serves the diag endpoints the way the runtime mounts them, on
// 127.0.0.1, until the test ends. It returns the server's base URL.
func StartRuntime(t testing.TB, o RuntimeOptions) *httptest.Server {
	t.Helper()
	allowed := func(origin string) bool {
		return o.AllowAnyOrigin || slices.Contains(o.Origins, origin)
	}
	mux := http.NewServeMux()
	diag.Register(mux, diag.Options{CheckOrigin: func(r *http.Request) bool {
		origin := r.Header.Get("Origin")
		return origin == "" || allowed(origin)
	}, Bounded: o.Bounded, MaxLifetime: o.MaxLifetime, IdleTimeout: o.MaxLifetime})
	mux.HandleFunc("GET /api/health", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"status":"ok"}`)
	})
	ready := o.ReadyStatus
	if ready == 0 {
		ready = http.StatusOK
	}
	mux.HandleFunc("GET /api/ready", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(ready)
		if ready == http.StatusOK {
			fmt.Fprint(w, `{"status":"ready"}`)
		} else {
			fmt.Fprint(w, `{"status":"degraded","checks":{"mongo":"unreachable"}}`)
		}
	})
	c := cors.New(cors.Options{
		AllowOriginFunc:  allowed,
		AllowCredentials: true,
		AllowedMethods:   []string{"GET", "POST", "PUT", "DELETE"},
		AllowedHeaders:   []string{"Authorization", "Content-Type"},
	})
	srv := httptest.NewServer(c.Handler(mux))
	t.Cleanup(srv.Close)
	return srv
}

// FreePort returns a loopback port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// NginxGood is the location block a correct deployment uses.
const NginxGood = `
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection "upgrade";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_buffering off;
      proxy_read_timeout 3600s;
`

// StartNginx runs a real nginx (not daemonised, temp prefix) on a free
// loopback port, proxying to upstream (host:port) with the given location
// directives. It returns nginx's base URL; nginx stops when the test ends.
func StartNginx(t testing.TB, upstream, location string) string {
	t.Helper()
	return StartNginxOn(t, FreePort(t), upstream, location)
}

// StartNginxOn is StartNginx on a chosen port, for a runtime that must know
// nginx's origin before nginx starts.
func StartNginxOn(t testing.TB, port int, upstream, location string) string {
	t.Helper()
	return runNginx(t, port, func(string) string {
		return fmt.Sprintf(`  server {
    listen 127.0.0.1:%d;
    location / {
      proxy_pass http://%s;
%s
    }
  }`, port, upstream, location)
	})
}

// runNginx starts a real nginx in a fresh directory whose http block holds
// what body returns (given that directory) and waits for it on
// 127.0.0.1:port. It is stopped when the test ends.
func runNginx(t testing.TB, port int, body func(dir string) string) string {
	t.Helper()
	bin := nginxPath(t)
	dir := t.TempDir()
	conf := fmt.Sprintf(`daemon off;
master_process off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
%[2]s
}
`, dir, body(dir))
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	// The prefix ends in a slash: relative paths in included files (certs/)
	// resolve beside nginx.conf, as under /etc/nginx.
	cmd := exec.Command(bin, "-p", dir+"/", "-c", filepath.Join(dir, "nginx.conf"), "-e", filepath.Join(dir, "error.log"))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start nginx: %v", err)
	}
	stopOnCleanup(t, cmd)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	waitListening(t, addr, func() string {
		log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
		return "nginx: " + string(log)
	})
	return "http://" + addr
}

func nginxPath(t testing.TB) string {
	t.Helper()
	// Debian installs nginx in /usr/sbin, which a non-root PATH may lack.
	if _, err := exec.LookPath("nginx"); err != nil {
		if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
			return "/usr/sbin/nginx"
		}
	}
	return testenv.NeedCommand(t, "nginx", "apt-get install nginx (.ci/setup.d installs it)")
}

// ferretMu serialises ferretdb.New, which writes a package-level version record.
var ferretMu sync.Mutex

// StartMongo runs FerretDB v1 (SQLite files in a temp dir) on a free
// loopback port and returns its mongodb:// URI (no database in the path).
func StartMongo(t testing.TB) string {
	t.Helper()
	ferretMu.Lock()
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: "127.0.0.1:0"},
		Logger:    slog.New(slog.DiscardHandler),
		Handler:   "sqlite",
		SQLiteURL: "file:" + filepath.ToSlash(t.TempDir()) + "/",
	})
	ferretMu.Unlock()
	if err != nil {
		t.Fatalf("start ferretdb: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = f.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return strings.TrimRight(f.MongoDBURI(), "/") + "/"
}

// StartCaddyOn runs a real Caddy (JSON-less Caddyfile, no admin endpoint, no
// automatic HTTPS) on port, reverse-proxying to upstream. It returns Caddy's
// base URL; Caddy stops when the test ends.
func StartCaddyOn(t testing.TB, port int, upstream string) string {
	t.Helper()
	bin := testenv.NeedCommand(t, "caddy", "apt-get install caddy (.ci/setup.d installs it)")
	dir := t.TempDir()
	conf := fmt.Sprintf("{\n\tadmin off\n\tauto_https off\n\tstorage file_system %s\n}\nhttp://127.0.0.1:%d {\n\treverse_proxy %s\n}\n", dir, port, upstream)
	path := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "--config", path, "--adapter", "caddyfile")
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &lockedWriter{w: &logs}, &lockedWriter{w: &logs}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start caddy: %v", err)
	}
	stopOnCleanup(t, cmd)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	waitListening(t, addr, func() string { return "caddy: " + logs.String() })
	return "http://" + addr
}

type lockedWriter struct {
	mu sync.Mutex
	w  *strings.Builder
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func stopOnCleanup(t testing.TB, cmd *exec.Cmd) {
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
}

func waitListening(t testing.TB, addr string, diagnose func() string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on %s: %s", addr, diagnose())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// StartNginxInclude runs a real nginx whose http block includes conf (a
// file of server blocks, as `mozaiks init` writes them for an nginx on the
// host or in the compose network) and waits for it on 127.0.0.1:port, the
// port conf listens on. Certificates are looked up under certs/ beside the
// main configuration, as in /etc/nginx.
func StartNginxInclude(t testing.TB, port int, conf string) string {
	t.Helper()
	return runNginx(t, port, func(string) string { return "  include " + conf + ";" })
}

// StartCaddyFile runs a real Caddy on the Caddyfile at path (with admin,
// automatic HTTPS and storage set for a test) and waits for 127.0.0.1:port.
func StartCaddyFile(t testing.TB, port int, path string) string {
	t.Helper()
	bin := testenv.NeedCommand(t, "caddy", "apt-get install caddy (.ci/setup.d installs it)")
	dir := t.TempDir()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf("{\n\tadmin off\n\tauto_https off\n\tstorage file_system %s\n}\n", dir) + string(b)
	cpath := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(cpath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "--config", cpath, "--adapter", "caddyfile")
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &lockedWriter{w: &logs}, &lockedWriter{w: &logs}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start caddy: %v", err)
	}
	stopOnCleanup(t, cmd)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	waitListening(t, addr, func() string { return "caddy: " + logs.String() })
	return "http://" + addr
}
