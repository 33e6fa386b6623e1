package doctor

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/mozaiks/mozaiks/internal/doctor/doctortest"
	"github.com/mozaiks/mozaiks/internal/llm/llmtest"
)

func TestConfigInvalidNamesSettingAndSource(t *testing.T) {
	t.Parallel()
	env := testEnv(t, map[string]string{"MONGO_URI": "mysql://root:topsecretpw@db"}, "PORT=80x\n")
	r := runCheck(t, env, checkConfig())
	// PORT from .env is checked first.
	wantResult(t, r, Fail, "PORT", "(.env)")
	env = testEnv(t, map[string]string{"MONGO_URI": "mysql://root:topsecretpw@db"}, "")
	r = runCheck(t, env, checkConfig())
	wantResult(t, r, Fail, "MONGO_URI", "(environment)")
	if strings.Contains(fmt.Sprint(r), "topsecretpw") {
		t.Fatal("secret in CFG01 output")
	}
	env = testEnv(t, map[string]string{"OPENAI_API_KEY": "sk-abcdefgh12345"}, "")
	r = runCheck(t, env, checkConfig())
	wantResult(t, r, OK, "valid", "")
	if got := r.Details["OPENAI_API_KEY"]; got != "(set) [environment]" {
		t.Fatalf("secret setting described as %q", got)
	}
}

func TestSecretsPermissionsPlaceholdersAndFix(t *testing.T) {
	t.Parallel()
	env := testEnv(t, nil, "OPENAI_API_KEY=sk-real-key-0123456789\nAUTH_JWT_SECRET=short\n")
	path := filepath.Join(env.Dir, ".env")
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	compose := "services:\n  mongo:\n    image: mongo:7.0\n    environment:\n      MONGO_INITDB_ROOT_PASSWORD: ${MONGO_ROOT_PASSWORD}\n"
	if err := os.WriteFile(filepath.Join(env.Dir, "docker-compose.yml"), []byte(compose), 0o644); err != nil {
		t.Fatal(err)
	}
	r := runCheck(t, env, checkSecrets())
	wantResult(t, r, Fail, "world-readable", "chmod 600")
	if !strings.Contains(r.Message, "missing MONGO_ROOT_PASSWORD") {
		t.Fatalf("missing compose secret not reported: %q", r.Message)
	}

	rep := Run(context.Background(), env, []Check{checkSecrets()}, RunOptions{Fix: true})
	r = rep.Checks[0]
	// The short JWT secret is a warning --fix cannot mend (it never replaces a value).
	wantResult(t, r, Warn, "AUTH_JWT_SECRET shorter than 32", "")
	if fixed := fmt.Sprint(r.Details["fixed"]); !strings.Contains(fixed, "chmod 0644 -> 0600") || !strings.Contains(fixed, "MONGO_ROOT_PASSWORD") {
		t.Fatalf("fix not reported: %q", fixed)
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o600 {
		t.Fatalf(".env mode %o after --fix", st.Mode().Perm())
	}
	b, _ := os.ReadFile(path)
	if !strings.Contains(string(b), "OPENAI_API_KEY=sk-real-key-0123456789\n") || !strings.Contains(string(b), "\nMONGO_ROOT_PASSWORD=") {
		t.Fatalf(".env after --fix:\n%s", b)
	}

	env = testEnv(t, nil, "OPENAI_API_KEY=changeme\n")
	wantResult(t, runCheck(t, env, checkSecrets()), Fail, "OPENAI_API_KEY is empty or a placeholder", "")
	env = testEnv(t, nil, "MONGO_URI=\nOPENAI_API_KEY=\nAUTH_JWT_SECRET=\n")
	r = runCheck(t, env, checkSecrets())
	wantResult(t, r, Fail, "AUTH_JWT_SECRET is empty or a placeholder", "")
	if strings.Contains(r.Message, "MONGO_URI") || strings.Contains(r.Message, "OPENAI_API_KEY") {
		t.Fatalf("empty MONGO_URI (embedded store) or OPENAI_API_KEY flagged: %q", r.Message)
	}
	env = testEnv(t, nil, "")
	wantResult(t, runCheck(t, env, checkSecrets()), Skipped, "no .env", "")
}

func TestMongo(t *testing.T) {
	t.Parallel()
	closed := doctortest.FreePort(t)
	uri := doctortest.StartMongo(t)
	tests := []struct {
		name, uri string
		sev       Severity
		msg, hint string
	}{
		{"ferretdb answers", uri + "MozaiksAI", OK, "median ping", ""},
		// FerretDB v1's embedded package cannot be told to require auth (its
		// new-auth switch is internal); it refuses SCRAM, the driver's
		// default, with an authentication error whatever the password, which
		// is what a wrong password looks like to the driver.
		{"wrong credentials", strings.Replace(uri, "mongodb://", "mongodb://app:s3cretpassword@", 1) + "MozaiksAI", Fail, "authentication failed", "authSource=admin"},
		{"unreachable", fmt.Sprintf("mongodb://app:s3cretpassword@127.0.0.1:%d/MozaiksAI?serverSelectionTimeoutMS=1000", closed), Fail, "connection refused", "start MongoDB"},
		{"TLS to a plain server", uri + "MozaiksAI?tls=true&serverSelectionTimeoutMS=1500", Fail, "TLS handshake failed", "tls=true/false"},
		{"no such host", "mongodb://app:s3cretpassword@mongo.invalid:27017/?serverSelectionTimeoutMS=1000", Fail, "does not resolve", "service name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := testEnv(t, map[string]string{"MONGO_URI": tc.uri}, "")
			r := runCheck(t, env, checkMongo())
			wantResult(t, r, tc.sev, tc.msg, tc.hint)
			if strings.Contains(fmt.Sprint(r), "s3cretpassword") {
				t.Fatal("password in MDB01 output")
			}
			if u := fmt.Sprint(r.Details["uri"]); !strings.HasPrefix(u, "mongodb://") {
				t.Fatalf("redacted URI not shown: %q", u)
			}
		})
	}
	env := testEnv(t, nil, "")
	wantResult(t, runCheck(t, env, checkMongo()), Skipped, "embedded store", "")
}

func TestLLM(t *testing.T) {
	t.Parallel()
	const key = "sk-test-9f8e7d6c5b4a"
	fake := llmtest.New(t, llmtest.WithAPIKey(key), llmtest.WithModels("gpt-4o-mini", "gpt-4o"))
	noV1 := strings.TrimSuffix(fake.URL(), "/v1")
	tests := []struct {
		name            string
		base, key, mdl  string
		kind            string
		sev             Severity
		msgHas, hintHas string
	}{
		// fake.URL() is on 127.0.0.1: fine for a bare serve on this host.
		{"ok", fake.URL(), key, "gpt-4o-mini", KindBare, OK, "model gpt-4o-mini listed", ""},
		{"wrong key", fake.URL(), "sk-wrong-000000000", "gpt-4o-mini", KindBare, Fail, "rejected the API key (401)", "OPENAI_API_KEY"},
		// A bare serve with a base URL lacking /v1: the real hint, not a
		// false "inside a container" failure hiding it.
		{"missing /v1", noV1, key, "gpt-4o-mini", KindBare, Fail, "lacks /v1", "OPENAI_BASE_URL=" + noV1 + "/v1"},
		{"doubled /v1", fake.URL() + "/v1", key, "gpt-4o-mini", KindBare, Fail, "/v1 appears twice", "OPENAI_BASE_URL=" + fake.URL()},
		{"model absent", fake.URL(), key, "llama-3-70b", KindBare, Fail, `model "llama-3-70b" is not served`, "DEFAULT_LLM_MODEL=gpt-4o-mini"},
		{"localhost in compose", fake.URL(), key, "gpt-4o-mini", KindComposeProd, Fail, "inside a container is the container itself", "host.docker.internal"},
		{"localhost in kubernetes", fake.URL(), key, "gpt-4o-mini", KindK8s, Fail, "inside a container is the container itself", "host.docker.internal"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := testEnv(t, map[string]string{"OPENAI_BASE_URL": tc.base, "OPENAI_API_KEY": tc.key, "DEFAULT_LLM_MODEL": tc.mdl}, "")
			env.Kind = tc.kind
			// Where the doctor itself runs does not matter (the CI runs in a container).
			env.InContainer = true
			r := runCheck(t, env, checkLLM())
			wantResult(t, r, tc.sev, tc.msgHas, tc.hintHas)
			if strings.Contains(fmt.Sprint(r), tc.key) {
				t.Fatal("API key in LLM01 output")
			}
		})
	}
	env := testEnv(t, map[string]string{"LLM_PROVIDER": "echo"}, "")
	wantResult(t, runCheck(t, env, checkLLM()), Skipped, "echo", "")
}

func TestRuntimeDownAndDegraded(t *testing.T) {
	t.Parallel()
	down := fmt.Sprintf("http://127.0.0.1:%d", doctortest.FreePort(t))
	env := testEnv(t, map[string]string{"_URL": down}, "")
	rep := Run(context.Background(), env, []Check{checkConfig(), checkRuntime(), checkCORS(), checkWSUpgrade(), checkStream()}, RunOptions{})
	wantResult(t, rep.Checks[1], Fail, "not reachable", "mozaiks serve") // a bare deployment: no compose, no "mozaiks up"
	for _, c := range rep.Checks[2:] {
		wantResult(t, c, Skipped, "needs RT01, which failed", "")
	}

	rt := doctortest.StartRuntime(t, doctortest.RuntimeOptions{ReadyStatus: http.StatusServiceUnavailable})
	env = testEnv(t, map[string]string{"_URL": rt.URL}, "")
	r := runCheck(t, env, checkRuntime())
	wantResult(t, r, Fail, "not ready (/api/ready answered 503): degraded", "")
	if fmt.Sprint(r.Details["ready"]) != "map[checks:map[mongo:unreachable] status:degraded]" {
		t.Fatalf("ready body not in details: %v", r.Details["ready"])
	}
}

func TestCORS(t *testing.T) {
	t.Parallel()
	const app = "https://app.example.com"
	const admin = "https://admin.example.com"
	tests := []struct {
		name    string
		rt      doctortest.RuntimeOptions
		sev     Severity
		msgHas  string
		hintHas string
	}{
		{"all allowed, bogus refused", doctortest.RuntimeOptions{Origins: []string{app, admin}}, OK, "2 origin(s) allowed", ""},
		// .env lists admin but the runtime refuses it: it runs with other
		// settings; the hint must not repeat the value that is already set.
		{"an allowed origin refused", doctortest.RuntimeOptions{Origins: []string{app}}, Fail, "allowed origin refused: " + admin, "already lists " + admin},
		{"bogus origin accepted", doctortest.RuntimeOptions{Origins: []string{app, admin}, AllowAnyOrigin: true}, Fail, "an unknown origin is allowed", "CORS_ORIGINS="},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rt := doctortest.StartRuntime(t, tc.rt)
			env := testEnv(t, map[string]string{"_URL": rt.URL, "CORS_ORIGINS": app + "," + admin}, "")
			r := runCheck(t, env, checkCORS())
			wantResult(t, r, tc.sev, tc.msgHas, tc.hintHas)
			if tc.rt.AllowAnyOrigin && !strings.Contains(r.Message, "may open WebSockets") {
				t.Fatalf("bogus WebSocket origin not reported: %q", r.Message)
			}
		})
	}
}

const nginxBuffering = "proxy_buffering on;\nproxy_buffers 8 64k;\nproxy_busy_buffers_size 128k;\n"

func TestNginx(t *testing.T) {
	t.Parallel()
	rt := doctortest.StartRuntime(t, doctortest.RuntimeOptions{Origins: []string{"http://app.example.com"}})
	upstream := strings.TrimPrefix(rt.URL, "http://")
	vars := func(url string) map[string]string {
		return map[string]string{"_URL": url, "CORS_ORIGINS": "http://app.example.com"}
	}
	t.Run("good config", func(t *testing.T) {
		t.Parallel()
		env := testEnv(t, vars(doctortest.StartNginx(t, upstream, doctortest.NginxGood)), "")
		rep := Run(context.Background(), env, []Check{checkWSUpgrade(), checkWSEcho(), checkStream(), checkCORS()}, RunOptions{})
		for _, r := range rep.Checks {
			wantResult(t, r, OK, "", "")
		}
	})
	t.Run("no upgrade headers", func(t *testing.T) {
		t.Parallel()
		env := testEnv(t, vars(doctortest.StartNginx(t, upstream, "proxy_http_version 1.1;")), "")
		rep := Run(context.Background(), env, []Check{checkWSUpgrade(), checkCORS(), checkStream()}, RunOptions{})
		wantResult(t, rep.Checks[0], Fail, "400: the Upgrade/Connection headers do not reach the runtime", "proxy_set_header Upgrade $http_upgrade")
		// One fault, one failing check: CORS01 used to fail too, advising
		// the CORS_ORIGINS value that was already set.
		wantResult(t, rep.Checks[1], OK, "did not upgrade", "")
		wantResult(t, rep.Checks[2], OK, "streamed as sent", "")
	})
	t.Run("nginx defaults: HTTP/1.0 upstream", func(t *testing.T) {
		t.Parallel()
		env := testEnv(t, vars(doctortest.StartNginx(t, upstream, "")), "")
		r := runCheck(t, env, checkWSUpgrade())
		wantResult(t, r, Fail, "400: the proxy talks HTTP/1.0 to the runtime", "proxy_http_version 1.1")
		wantResult(t, runCheck(t, env, checkWSScheme()), Warn, "HTTP/1.0", "proxy_http_version 1.1")
	})
	t.Run("buffering", func(t *testing.T) {
		t.Parallel()
		// nginx honours the runtime's X-Accel-Buffering: no (next subtest),
		// so the buffering proxy here also ignores that header, as many CDNs
		// and other proxies do. nginx passes chunks of an HTTP/1.1 upstream
		// on as they come even when buffering, so this is the common
		// config without proxy_http_version, with buffers larger than the
		// stream.
		conf := nginxBuffering + "proxy_ignore_headers X-Accel-Buffering;\n"
		env := testEnv(t, vars(doctortest.StartNginx(t, upstream, conf)), "")
		r := runCheck(t, env, checkStream())
		wantResult(t, r, Fail, "first byte arrived with the last", "proxy_buffering off")
	})
	t.Run("buffering on, X-Accel-Buffering honoured", func(t *testing.T) {
		t.Parallel()
		conf := nginxBuffering
		env := testEnv(t, vars(doctortest.StartNginx(t, upstream, conf)), "")
		wantResult(t, runCheck(t, env, checkStream()), OK, "streamed as sent", "")
	})
	t.Run("idle timeout", func(t *testing.T) {
		t.Parallel()
		env := testEnv(t, vars(doctortest.StartNginx(t, upstream, strings.Replace(doctortest.NginxGood, "3600s", "1s", 1))), "")
		env.IdleProbe = 2500 * time.Millisecond
		r := runCheck(t, env, checkWSIdle())
		wantResult(t, r, Fail, "idle socket was closed after", "proxy_read_timeout")
	})
}

// With auth on the runtime keeps diagnostic sockets short: WS04 says it
// cannot measure the proxy's idle timeout instead of blaming the proxy.
func TestWSIdleAgainstBoundedDiagnostics(t *testing.T) {
	t.Parallel()
	rt := doctortest.StartRuntime(t, doctortest.RuntimeOptions{AllowAnyOrigin: true, Bounded: true, MaxLifetime: 500 * time.Millisecond})
	env := testEnv(t, map[string]string{"_URL": rt.URL}, "")
	env.IdleProbe = 2 * time.Second
	wantResult(t, runCheck(t, env, checkWSIdle()), Skipped, "closes diagnostic sockets after a few seconds", "")
}

func TestInvalidConfigSkipsDependents(t *testing.T) {
	t.Parallel()
	env := testEnv(t, map[string]string{"LLM_PROVIDER": "bogus"}, "")
	for _, c := range []Check{checkMongo(), checkLLM(), checkRuntime(), checkTLS()} {
		wantResult(t, runCheck(t, env, c), Skipped, "needs a valid configuration", "")
	}
}

func TestCORSWildcard(t *testing.T) {
	t.Parallel()
	rt := doctortest.StartRuntime(t, doctortest.RuntimeOptions{AllowAnyOrigin: true})
	env := testEnv(t, map[string]string{"_URL": rt.URL, "CORS_ORIGINS": "*"}, "")
	// The runtime-like server reflects any origin with credentials: the
	// dangerous form of *.
	wantResult(t, runCheck(t, env, checkCORS()), Fail, "any origin is allowed together with credentials", "CORS_ORIGINS=")
}

// TestCaddy: Caddy's reverse_proxy upgrades sockets, forwards the scheme and
// streams without configuration; the doctor must agree.
func TestCaddy(t *testing.T) {
	t.Parallel()
	port := doctortest.FreePort(t)
	public := fmt.Sprintf("http://127.0.0.1:%d", port)
	rt := doctortest.StartRuntime(t, doctortest.RuntimeOptions{Origins: []string{public}})
	doctortest.StartCaddyOn(t, port, strings.TrimPrefix(rt.URL, "http://"))
	env := testEnv(t, map[string]string{"_URL": public, "CORS_ORIGINS": public}, "")
	for _, r := range runChecks(t, env, checkRuntime(), checkCORS(), checkWSUpgrade(), checkWSEcho(), checkWSScheme(), checkStream()) {
		wantResult(t, r, OK, "", "")
	}
}

// TestWSEchoCloseCodes: sockets that break after the upgrade are reported by
// close code.
func TestWSEchoCloseCodes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		serve func(c *websocket.Conn)
		msg   string
	}{
		{"dropped (1006)", func(c *websocket.Conn) { c.UnderlyingConn().Close() }, "without a close frame (1006)"},
		{"policy (1008)", func(c *websocket.Conn) {
			_ = c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.ClosePolicyViolation, "nope"), time.Now().Add(time.Second))
		}, "closed with 1008"},
		{"reordered", func(c *websocket.Conn) {
			_, _, _ = c.ReadMessage()
			_ = c.WriteMessage(websocket.TextMessage, []byte("something else"))
		}, "echo mismatch at message 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			mux := http.NewServeMux()
			mux.HandleFunc("GET /api/diag/ws-echo", func(w http.ResponseWriter, r *http.Request) {
				c, err := (&websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}).Upgrade(w, r, nil)
				if err != nil {
					return
				}
				defer c.Close()
				tc.serve(c)
				time.Sleep(100 * time.Millisecond)
			})
			srv := httptest.NewServer(mux)
			defer srv.Close()
			env := testEnv(t, map[string]string{"_URL": srv.URL}, "")
			wantResult(t, runCheck(t, env, checkWSEcho()), Fail, tc.msg, "")
		})
	}
}

// TestMongoSlow puts a TCP relay that delays every answer by 120 ms in front
// of FerretDB: the median ping crosses the slow threshold.
func TestMongoSlow(t *testing.T) {
	t.Parallel()
	uri := doctortest.StartMongo(t)
	upstream := strings.TrimSuffix(strings.TrimPrefix(uri, "mongodb://"), "/")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				u, err := net.Dial("tcp", upstream)
				if err != nil {
					return
				}
				defer u.Close()
				go func() { _, _ = io.Copy(u, c) }()
				buf := make([]byte, 64<<10)
				for {
					n, err := u.Read(buf)
					if err != nil {
						return
					}
					time.Sleep(120 * time.Millisecond)
					if _, err := c.Write(buf[:n]); err != nil {
						return
					}
				}
			}()
		}
	}()
	env := testEnv(t, map[string]string{"MONGO_URI": "mongodb://" + l.Addr().String() + "/MozaiksAI"}, "")
	wantResult(t, runCheck(t, env, checkMongo()), Warn, "answers slowly", "close to the runtime")
}
