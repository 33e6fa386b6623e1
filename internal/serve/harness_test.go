package serve_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/mozaiks/mozaiks/internal/auth"
	"github.com/mozaiks/mozaiks/internal/chat"
	"github.com/mozaiks/mozaiks/internal/config"
	"github.com/mozaiks/mozaiks/internal/engine"
	"github.com/mozaiks/mozaiks/internal/llm"
	"github.com/mozaiks/mozaiks/internal/llm/llmtest"
	"github.com/mozaiks/mozaiks/internal/serve"
	"github.com/mozaiks/mozaiks/internal/serve/ws"
	"github.com/mozaiks/mozaiks/internal/store"
	"github.com/mozaiks/mozaiks/internal/store/sqlite"
	"github.com/mozaiks/mozaiks/internal/workflow"
	"github.com/mozaiks/mozaiks/workflows"
)

// backends lists the stores the runtime tests run on; mongo_test.go adds
// MongoDB (FerretDB).
var backends = map[string]func(t *testing.T) store.Store{
	"embedded": func(t *testing.T) store.Store {
		s, err := sqlite.Open(context.Background(), t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	},
}

// env is a real server on loopback with a real store and the fake LLM.
type env struct {
	t     *testing.T
	URL   string // http://127.0.0.1:port
	Store store.Store
	LLM   *llmtest.Server
	Cfg   *config.Config
	stop  func()
}

type envOpts struct {
	store      store.Store
	noLLM      bool // no key, no base URL: LLM_NOT_CONFIGURED
	maxRetries int
	ws         ws.Options
	env        map[string]string
	// authHTTP reaches the test IdP (its TLS root); jwksRefresh bounds JWKS refetches on an unknown kid.
	authHTTP    *http.Client
	jwksRefresh time.Duration
	logw        io.Writer // server log (JSON, debug level); nil discards it
}

func newEnv(t *testing.T, o envOpts) *env {
	t.Helper()
	if o.store == nil {
		o.store = backends["embedded"](t)
	}
	environ := []string{"CORS_ORIGINS=http://app.example.com,http://localhost:3000"}
	for k, v := range o.env {
		environ = append(environ, k+"="+v)
	}
	cfg, err := config.Load(config.LoadOptions{Environ: environ, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	cfg.ShutdownTimeout = 5 * time.Second
	e := &env{t: t, Store: o.store, Cfg: cfg, LLM: llmtest.New(t)}
	lopts := llm.Options{APIKey: "sk-test", BaseURL: e.LLM.URL(), MaxRetries: o.maxRetries, BaseBackoff: 20 * time.Millisecond, MaxBackoff: 3 * time.Second}
	if o.noLLM {
		lopts = llm.Options{}
	}
	model := llm.NewOpenAI(lopts)
	set, diags := workflow.LoadSet("", workflows.FS)
	for _, d := range diags {
		if d.Severity == workflow.SevError {
			t.Fatalf("built-in workflow broken: %s", d)
		}
	}
	eng := engine.New(engine.Options{Workflows: set, LLM: model, DefaultModel: "gpt-4o-mini"})
	// As in production: the embedded store's runs take no lease (its
	// directory lock makes the process the only runner); Mongo's do.
	chats := chat.NewManager(chat.Options{Store: o.store, Runner: eng, Workflows: set, Owner: "test", LeaseTTL: 3 * time.Second,
		SingleProcess: o.store.Backend() == "embedded", MaxQueued: cfg.Limits.MaxQueuedPerChat})
	var verifier *auth.Verifier
	if cfg.AuthEnabled {
		if verifier, err = auth.New(auth.Options{Secret: cfg.AuthJWTSecret, Issuer: cfg.AuthIssuer, Audience: cfg.AuthAudience,
			Leeway: cfg.AuthClockSkew, HTTPClient: o.authHTTP, JWKSRefreshEvery: o.jwksRefresh}); err != nil {
			t.Fatal(err)
		}
	}
	var logger *slog.Logger
	if o.logw != nil {
		logger = slog.New(slog.NewJSONHandler(o.logw, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	srv := serve.New(serve.Options{Config: cfg, Store: o.store, Workflows: set, LLM: model, Chats: chats, WS: o.ws, Auth: verifier,
		Logger: logger})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	e.URL = "http://" + ln.Addr().String()
	var once sync.Once
	e.stop = func() { once.Do(func() { stopServer(t, cancel, done) }) }
	t.Cleanup(e.stop)
	return e
}

func stopServer(t *testing.T, cancel func(), done chan error) {
	{
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("server did not stop within 10s")
		}
	}
}

// do sends a request and decodes the JSON answer.
func (e *env) do(method, path string, body any, out any) int {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, _ := json.Marshal(b)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, e.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			e.t.Fatalf("%s %s: answer is not JSON (%d): %s", method, path, resp.StatusCode, raw)
		}
	}
	return resp.StatusCode
}

type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	Detail string `json:"detail"`
}

// frame is a decoded server frame.
type frame struct {
	Type      string         `json:"type"`
	Seq       int64          `json:"seq"`
	Timestamp string         `json:"timestamp"`
	Agent     string         `json:"agent"`
	Replay    bool           `json:"replay"`
	Data      map[string]any `json:"data"`
	raw       []byte
}

func (f frame) str(k string) string { s, _ := f.Data[k].(string); return s }

// client is a real WebSocket client.
type client struct {
	t  *testing.T
	c  *websocket.Conn
	ch chan frame
	// closeErr is the error that ended the read loop (a *websocket.CloseError on a close frame).
	closeErr chan error
}

func (e *env) wsURL(wf, app, chatID, user, query string) string {
	u := "ws" + strings.TrimPrefix(e.URL, "http") + "/ws/" + wf + "/" + app + "/" + chatID + "/" + user
	if query != "" {
		u += "?" + query
	}
	return u
}

func (e *env) dial(wf, app, chatID, user, query string, hdr http.Header) (*client, *http.Response, error) {
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	c, resp, err := d.Dial(e.wsURL(wf, app, chatID, user, query), hdr)
	if err != nil {
		return nil, resp, err
	}
	cl := &client{t: e.t, c: c, ch: make(chan frame, 4096), closeErr: make(chan error, 1)}
	go func() {
		for {
			_, msg, err := c.ReadMessage()
			if err != nil {
				cl.closeErr <- err
				close(cl.ch)
				return
			}
			var f frame
			if json.Unmarshal(msg, &f) != nil {
				f = frame{Type: "<invalid json>"}
			}
			f.raw = msg
			cl.ch <- f
		}
	}()
	e.t.Cleanup(func() { c.Close() })
	return cl, resp, nil
}

func (e *env) mustDial(wf, app, chatID, user, query string) *client {
	e.t.Helper()
	c, resp, err := e.dial(wf, app, chatID, user, query, nil)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		e.t.Fatalf("dial: %v (status %d)", err, status)
	}
	return c
}

func (c *client) send(v any) {
	c.t.Helper()
	var err error
	if s, ok := v.(string); ok {
		err = c.c.WriteMessage(websocket.TextMessage, []byte(s))
	} else {
		err = c.c.WriteJSON(v)
	}
	if err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

// next returns the next frame other than pings.
func (c *client) next(timeout time.Duration) (frame, bool) {
	deadline := time.After(timeout)
	for {
		select {
		case f, ok := <-c.ch:
			if !ok {
				return frame{}, false
			}
			if f.Type == "ping" {
				continue
			}
			return f, true
		case <-deadline:
			return frame{}, false
		}
	}
}

// until collects frames up to and including the first of type typ.
func (c *client) until(typ string, timeout time.Duration) []frame {
	c.t.Helper()
	var got []frame
	deadline := time.Now().Add(timeout)
	for {
		f, ok := c.next(time.Until(deadline))
		if !ok {
			c.t.Fatalf("no %s frame within %s; got %s", typ, timeout, types(got))
		}
		got = append(got, f)
		if f.Type == typ {
			return got
		}
	}
}

// closed waits for the server to close the socket and returns the close code.
func (c *client) closed(timeout time.Duration) int {
	c.t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case _, ok := <-c.ch:
			if ok {
				continue
			}
			err := <-c.closeErr
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				return ce.Code
			}
			return -1
		case <-deadline:
			c.t.Fatalf("socket not closed within %s", timeout)
		}
	}
}

func types(fs []frame) string {
	var b strings.Builder
	for i, f := range fs {
		if i > 0 {
			b.WriteString(" ")
		}
		b.WriteString(f.Type)
	}
	return "[" + b.String() + "]"
}

func ofType(fs []frame, typ string) []frame {
	var out []frame
	for _, f := range fs {
		if f.Type == typ {
			out = append(out, f)
		}
	}
	return out
}

func lastText(fs []frame) frame {
	t := ofType(fs, "chat.text")
	if len(t) == 0 {
		return frame{}
	}
	return t[len(t)-1]
}

func waitStatus(t *testing.T, e *env, app, chatID, want string) {
	t.Helper()
	var s sessionResp
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		e.do("GET", "/api/sessions/"+chatID+"?app_id="+app, nil, &s)
		if s.Status == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("chat %s status %q, want %q", chatID, s.Status, want)
		}
	}
}
