package cli

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mozaiks/mozaiks/internal/uerr"
)

func TestHealthcheck(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/ready":
			w.Write([]byte(`{"status":"ready"}`))
		case "/draining":
			http.Error(w, `{"status":"draining"}`, http.StatusServiceUnavailable)
		case "/slow":
			select {
			case <-release:
			case <-r.Context().Done():
			}
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := l.Addr().String()
	l.Close()

	cases := []struct {
		name string
		args []string
		port string
		code int
		want string
	}{
		{"ready", []string{"--url", srv.URL + "/api/ready"}, "", 0, ""},
		{"default URL from PORT", nil, u.Port(), 0, ""},
		{"not ready", []string{"--url", srv.URL + "/draining"}, "", uerr.ExitFailed, "answered 503"},
		{"nothing listening", []string{"--url", "http://" + closed + "/api/ready"}, "", uerr.ExitFailed, "cannot reach"},
		{"timeout", []string{"--url", srv.URL + "/slow", "--timeout", "200ms"}, "", uerr.ExitFailed, "did not answer within 200ms"},
		{"bad timeout", []string{"--timeout", "0s"}, "", uerr.ExitUsage, "--timeout"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			// Flags parsed by the real command; PORT as the container would set it.
			var opts *HealthcheckOptions
			inner := NewCmdHealthcheck(IO{In: strings.NewReader(""), Out: &bytes.Buffer{}, Err: &bytes.Buffer{}}, func(_ context.Context, o *HealthcheckOptions) error { opts = o; return nil })
			inner.SetArgs(c.args)
			if err := inner.Execute(); err != nil {
				t.Fatal(err)
			}
			opts.Getenv = func(k string) string {
				if k == "PORT" {
					return c.port
				}
				return ""
			}
			start := time.Now()
			err := runHealthcheck(context.Background(), opts)
			code := 0
			if err != nil {
				e, ok := uerr.As(err)
				if !ok {
					t.Fatalf("not a user error: %v", err)
				}
				code = e.ExitCode()
				if !strings.Contains(e.Msg, c.want) {
					t.Errorf("message %q does not say %q", e.Msg, c.want)
				}
			}
			if code != c.code {
				t.Errorf("exit %d, want %d (%v)", code, c.code, err)
			}
			if time.Since(start) > 10*time.Second {
				t.Errorf("the probe ignored its timeout")
			}
		})
	}
}

func TestHealthcheckLocalAddr(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ port, addr, want string }{
		{"", "", "127.0.0.1:8000"},
		{"9000", "", "127.0.0.1:9000"},
		{"9000", ":7000", "127.0.0.1:7000"},
		{"", "0.0.0.0:7001", "127.0.0.1:7001"},
		{"", "10.1.2.3:7002", "10.1.2.3:7002"},
		{"", "[::]:7003", "127.0.0.1:7003"},
		{"9000", "garbage", "127.0.0.1:9000"},
	} {
		env := map[string]string{"PORT": c.port, "MOZAIKS_ADDR": c.addr}
		if got := localAddr(func(k string) string { return env[k] }); got != c.want {
			t.Errorf("PORT=%q MOZAIKS_ADDR=%q: %s, want %s", c.port, c.addr, got, c.want)
		}
	}
}
