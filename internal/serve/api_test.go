package serve_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/mozaiks/mozaiks/internal/store/sqlite"
)

type sessionResp struct {
	ChatID       string `json:"chat_id"`
	AppID        string `json:"app_id"`
	UserID       string `json:"user_id"`
	Workflow     string `json:"workflow"`
	Status       string `json:"status"`
	LastSeq      int64  `json:"last_seq"`
	MessageCount int64  `json:"message_count"`
	WebSocketURL string `json:"websocket_url"`
	Messages     []struct {
		Seq  int64          `json:"seq"`
		Data map[string]any `json:"data"`
	} `json:"messages"`
}

func TestHealthAndReady(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	var h struct {
		Status  string `json:"status"`
		MongoDB struct {
			Status, Backend string
		} `json:"mongodb"`
		LLM struct {
			Provider   string `json:"provider"`
			Configured bool   `json:"configured"`
		} `json:"llm"`
	}
	if code := e.do("GET", "/api/health", nil, &h); code != 200 || h.Status != "ok" || h.MongoDB.Backend != "embedded" || h.MongoDB.Status != "ok" || !h.LLM.Configured {
		t.Fatalf("health = %d %+v", code, h)
	}
	if code := e.do("GET", "/api/ready", nil, nil); code != 200 {
		t.Fatalf("ready = %d", code)
	}
}

func TestSessionLifecycleAndPersistence(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	st, err := sqlite.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, envOpts{store: st})
	var created sessionResp
	if code := e.do("POST", "/api/sessions", map[string]any{"workflow": "assistant", "user_id": "u1"}, &created); code != 201 {
		t.Fatalf("create = %d", code)
	}
	// assistant is UserDriven: its greeting and input request are stored at
	// creation, and the chat waits for the user.
	if created.AppID != "default" || created.UserID != "u1" || created.Status != "awaiting_input" || created.LastSeq != 2 ||
		created.WebSocketURL != "/ws/assistant/default/"+created.ChatID+"/u1" {
		t.Fatalf("created = %+v", created)
	}
	var list struct {
		Sessions   []sessionResp `json:"sessions"`
		NextCursor string        `json:"next_cursor"`
	}
	if code := e.do("GET", "/api/sessions?app_id=default&user_id=u1", nil, &list); code != 200 || len(list.Sessions) != 1 || list.Sessions[0].ChatID != created.ChatID {
		t.Fatalf("list = %d %+v", code, list)
	}
	var got sessionResp
	if code := e.do("GET", "/api/sessions/"+created.ChatID, nil, &got); code != 200 || got.ChatID != created.ChatID {
		t.Fatalf("get = %d %+v", code, got)
	}
	// Stop the server and the store, reopen the same directory: still there.
	e.stop()
	st.Close()
	st2, err := sqlite.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st2.Close() })
	e2 := newEnv(t, envOpts{store: st2})
	if code := e2.do("GET", "/api/sessions/"+created.ChatID+"?user_id=u1", nil, &got); code != 200 || got.Workflow != "assistant" {
		t.Fatalf("after restart get = %d %+v", code, got)
	}
}

func TestIdempotentCreate(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	body := map[string]any{"workflow": "assistant", "user_id": "u1", "client_request_id": "click-1"}
	var a, b sessionResp
	if code := e.do("POST", "/api/sessions", body, &a); code != 201 {
		t.Fatalf("first = %d", code)
	}
	if code := e.do("POST", "/api/sessions", body, &b); code != 200 || b.ChatID != a.ChatID {
		t.Fatalf("second = %d %s (first %s)", code, b.ChatID, a.ChatID)
	}
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	var own sessionResp
	e.do("POST", "/api/sessions", map[string]any{"workflow": "assistant", "user_id": "owner", "app_id": "app1"}, &own)
	big := `{"workflow":"assistant","user_id":"u1","pad":"` + strings.Repeat("x", 2<<20) + `"}`
	tests := []struct {
		name, method, path string
		body               any
		status             int
		code               string
	}{
		{"malformed JSON", "POST", "/api/sessions", `{"workflow":`, 400, "INVALID_JSON"},
		{"not an object", "POST", "/api/sessions", `[1,2]`, 400, "INVALID_REQUEST"},
		{"wrong type", "POST", "/api/sessions", `{"workflow":"assistant","user_id":42}`, 400, "INVALID_REQUEST"},
		{"empty body", "POST", "/api/sessions", "", 400, "INVALID_JSON"},
		{"trailing data", "POST", "/api/sessions", `{"workflow":"assistant","user_id":"u"} {}`, 400, "INVALID_JSON"},
		{"missing user_id", "POST", "/api/sessions", map[string]any{"workflow": "assistant"}, 400, "MISSING_FIELD"},
		{"path-like user id", "POST", "/api/sessions", map[string]any{"workflow": "assistant", "user_id": "../x"}, 400, "INVALID_ID"},
		{"300-char user id", "POST", "/api/sessions", map[string]any{"workflow": "assistant", "user_id": strings.Repeat("a", 300)}, 400, "INVALID_ID"},
		{"empty app id", "POST", "/api/sessions", map[string]any{"workflow": "assistant", "user_id": "u", "app_id": "a b"}, 400, "INVALID_ID"},
		{"unknown workflow", "POST", "/api/sessions", map[string]any{"workflow": "nope", "user_id": "u1"}, 404, "WORKFLOW_NOT_FOUND"},
		{"2 MiB body", "POST", "/api/sessions", big, 413, "PAYLOAD_TOO_LARGE"},
		{"unknown chat", "GET", "/api/sessions/chat_missing", nil, 404, "SESSION_NOT_FOUND"},
		{"invalid chat id", "GET", "/api/sessions/bad$id", nil, 400, "INVALID_ID"},
		{"another user's chat", "GET", "/api/sessions/" + own.ChatID + "?app_id=app1&user_id=intruder", nil, 404, "SESSION_NOT_FOUND"},
		{"another app's chat", "GET", "/api/sessions/" + own.ChatID + "?app_id=app2&user_id=owner", nil, 404, "SESSION_NOT_FOUND"},
		{"list without user", "GET", "/api/sessions?app_id=x", nil, 400, "MISSING_FIELD"},
		{"list bad limit", "GET", "/api/sessions?user_id=u&limit=1000", nil, 400, "INVALID_REQUEST"},
		{"list bad cursor", "GET", "/api/sessions?user_id=u&cursor=zzz", nil, 400, "INVALID_CURSOR"},
		{"list bad status", "GET", "/api/sessions?user_id=u&status=weird", nil, 400, "INVALID_REQUEST"},
		{"unknown route", "GET", "/api/nope", nil, 404, "NOT_FOUND"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var body apiError
			code := e.do(tc.method, tc.path, tc.body, &body)
			if code != tc.status || body.Error.Code != tc.code || body.Detail == "" || body.Detail != body.Error.Message {
				t.Fatalf("%s %s = %d %+v, want %d %s", tc.method, tc.path, code, body, tc.status, tc.code)
			}
		})
	}
	// Nothing was written by the bad requests: only the one good session exists.
	var list struct{ Sessions []sessionResp }
	for _, u := range []string{"u1", "u", "../x"} {
		e.do("GET", "/api/sessions?user_id="+u, nil, &list)
		if len(list.Sessions) != 0 {
			t.Fatalf("bad requests created sessions for %s: %+v", u, list.Sessions)
		}
	}
	if code := e.do("GET", "/api/health", nil, nil); code != 200 {
		t.Fatalf("server unhealthy after bad input: %d", code)
	}
}

func TestListPagingCursor(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	for i := 0; i < 5; i++ {
		e.do("POST", "/api/sessions", map[string]any{"workflow": "assistant", "user_id": "pager"}, nil)
	}
	seen := map[string]bool{}
	cursor := ""
	for page := 0; page < 5; page++ {
		var list struct {
			Sessions   []sessionResp `json:"sessions"`
			NextCursor string        `json:"next_cursor"`
		}
		e.do("GET", "/api/sessions?user_id=pager&limit=2&cursor="+cursor, nil, &list)
		for _, s := range list.Sessions {
			if seen[s.ChatID] {
				t.Fatalf("session %s on two pages", s.ChatID)
			}
			seen[s.ChatID] = true
		}
		if list.NextCursor == "" {
			break
		}
		cursor = list.NextCursor
	}
	if len(seen) != 5 {
		t.Fatalf("paged %d sessions, want 5", len(seen))
	}
}

func TestCORSAndMetrics(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	preflight := func(origin string) *http.Response {
		req, _ := http.NewRequest("OPTIONS", e.URL+"/api/sessions", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "content-type")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if r := preflight("http://app.example.com"); r.Header.Get("Access-Control-Allow-Origin") != "http://app.example.com" ||
		r.Header.Get("Access-Control-Allow-Credentials") != "true" {
		t.Fatalf("allowed origin preflight headers: %v", r.Header)
	}
	if r := preflight("http://evil.example.com"); r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("bogus origin allowed: %v", r.Header)
	}
	e.do("GET", "/api/health", nil, nil)
	resp, err := http.Get(e.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := new(strings.Builder)
	_, _ = io.Copy(buf, resp.Body)
	for _, want := range []string{`mozaiks_http_requests_total{code="200",method="GET",route="GET /api/health"}`, "mozaiks_ws_connections", "go_goroutines"} {
		if !strings.Contains(buf.String(), want) {
			t.Fatalf("metrics lack %q", want)
		}
	}
}
