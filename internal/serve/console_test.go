package serve_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mozaiks/mozaiks/internal/serve/console"
	"github.com/mozaiks/mozaiks/internal/store"
)

func get(t *testing.T, url, token string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestConsoleServedWithStrictCSP(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	for _, tc := range []struct {
		path, ctype, contains string
	}{
		{"/", "text/html", `<script type="module" src="/console/app.js"></script>`},
		{"/console/app.js", "javascript", "import"},
		{"/console/console.css", "text/css", ":root"},
	} {
		resp, body := get(t, e.URL+tc.path, "")
		if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Type"), tc.ctype) || !strings.Contains(body, tc.contains) {
			t.Errorf("GET %s: %d %s", tc.path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		if got := resp.Header.Get("Content-Security-Policy"); got != console.CSP {
			t.Errorf("GET %s: CSP %q", tc.path, got)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: no nosniff", tc.path)
		}
	}
	// No inline script or style anywhere in the page: the CSP would block it.
	_, html := get(t, e.URL+"/", "")
	for _, bad := range []string{"<script>", "<style", " style=", "onclick=", "javascript:"} {
		if strings.Contains(html, bad) {
			t.Errorf("index.html has %q", bad)
		}
	}
	// Revalidation is cheap: the files carry content-hash ETags.
	resp, _ := get(t, e.URL+"/console/chat.js", "")
	tag := resp.Header.Get("ETag")
	req, _ := http.NewRequest("GET", e.URL+"/console/chat.js", nil)
	req.Header.Set("If-None-Match", tag)
	resp2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if tag == "" || resp2.StatusCode != http.StatusNotModified {
		t.Errorf("ETag %q, revalidation status %d, want 304", tag, resp2.StatusCode)
	}
	// Other paths keep the JSON 404.
	var ae apiError
	if code := e.do("GET", "/nope", nil, &ae); code != 404 || ae.Error.Code != "NOT_FOUND" {
		t.Errorf("GET /nope: %d %+v", code, ae)
	}
}

func TestConsoleOff(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{env: map[string]string{"MOZAIKS_CONSOLE": "false"}})
	for _, path := range []string{"/", "/console/app.js"} {
		var ae apiError
		if code := e.do("GET", path, nil, &ae); code != 404 || ae.Error.Code != "NOT_FOUND" {
			t.Errorf("GET %s with the console off: %d %+v", path, code, ae)
		}
	}
}

func TestConsoleInfo(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{noLLM: true})
	var info struct {
		AuthEnabled     bool   `json:"auth_enabled"`
		DefaultAppID    string `json:"default_app_id"`
		DefaultWorkflow string `json:"default_workflow"`
		LLM             struct {
			Configured bool `json:"configured"`
		} `json:"llm"`
		Workflows []struct {
			Name    string `json:"name"`
			UITools []struct {
				Name       string         `json:"name"`
				Parameters map[string]any `json:"parameters"`
				Response   map[string]any `json:"response"`
			} `json:"ui_tools"`
		} `json:"workflows"`
	}
	if code := e.do("GET", "/api/console/info", nil, &info); code != 200 {
		t.Fatalf("status %d", code)
	}
	if info.AuthEnabled || info.DefaultAppID != "default" || info.DefaultWorkflow != "assistant" || info.LLM.Configured {
		t.Fatalf("info %+v", info)
	}
	if len(info.Workflows) < 3 || info.Workflows[0].Name != "assistant" {
		t.Fatalf("workflows not default-first: %+v", info.Workflows)
	}
	for _, wf := range info.Workflows {
		if wf.Name != "approval" {
			continue
		}
		if len(wf.UITools) != 1 || wf.UITools[0].Name != "request_approval" {
			t.Fatalf("approval ui tools %+v", wf.UITools)
		}
		tool := wf.UITools[0]
		if _, ok := tool.Parameters["properties"].(map[string]any)["workflow_title"]; !ok {
			t.Errorf("parameters %v", tool.Parameters)
		}
		// The answer fields the workflow's ui_response triggers read, typed by their variables.
		props, _ := tool.Response["properties"].(map[string]any)
		approved, _ := props["approved"].(map[string]any)
		action, _ := props["action"].(map[string]any)
		if approved["type"] != "boolean" || action["type"] != "string" || tool.Response["required"] != nil {
			t.Errorf("response schema %v", tool.Response)
		}
		return
	}
	t.Fatal("no approval workflow")
}

func TestAdminOverviewAndRecentSessions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, envOpts{store: st})
		for _, u := range []string{"u-a", "u-b"} {
			if code := e.do("POST", "/api/sessions", map[string]any{"workflow": "assistant", "user_id": u}, nil); code != 201 {
				t.Fatalf("create for %s: %d", u, code)
			}
			time.Sleep(5 * time.Millisecond) // distinct updated_at, so the order is known
		}
		var ov struct {
			Status    string `json:"status"`
			Ready     bool   `json:"ready"`
			Workflows []struct {
				Name string `json:"name"`
			} `json:"workflows"`
		}
		if code := e.do("GET", "/api/admin/overview", nil, &ov); code != 200 || ov.Status != "ok" || !ov.Ready || len(ov.Workflows) < 3 {
			t.Fatalf("overview %d %+v", code, ov)
		}
		var rs struct {
			Sessions []struct {
				UserID string `json:"user_id"`
			} `json:"sessions"`
		}
		if code := e.do("GET", "/api/admin/sessions?limit=10", nil, &rs); code != 200 || len(rs.Sessions) != 2 ||
			rs.Sessions[0].UserID != "u-b" || rs.Sessions[1].UserID != "u-a" {
			t.Fatalf("recent sessions %d %+v", code, rs)
		}
		if code := e.do("GET", "/api/admin/sessions?app_id=other", nil, &rs); code != 200 || len(rs.Sessions) != 0 {
			t.Fatalf("another app's sessions %d %+v", code, rs)
		}
		var ae apiError
		if code := e.do("GET", "/api/admin/sessions?app_id=bad%20id", nil, &ae); code != 400 || ae.Error.Code != "INVALID_ID" {
			t.Fatalf("bad app id %d %+v", code, ae)
		}
	})
}

func TestAdminNeedsAdminScope(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{env: map[string]string{"AUTH_ENABLED": "true", "AUTH_JWT_SECRET": testSecret}})
	exp := time.Now().Add(time.Hour).Unix()
	user := hsToken(t, jwt.MapClaims{"sub": "u1", "exp": exp})
	admin := hsToken(t, jwt.MapClaims{"sub": "ops", "exp": exp, "scope": "read admin"})
	for _, tc := range []struct {
		name, token string
		want        int
	}{
		{"no token", "", 401},
		{"user token", user, 403},
		{"admin token", admin, 200},
	} {
		for _, path := range []string{"/api/admin/overview", "/api/admin/sessions"} {
			if resp, body := get(t, e.URL+path, tc.token); resp.StatusCode != tc.want {
				t.Errorf("%s: GET %s = %d %s, want %d", tc.name, path, resp.StatusCode, body, tc.want)
			}
		}
	}
	// The console's info stays public (the page needs it to ask for a token).
	if resp, body := get(t, e.URL+"/api/console/info", ""); resp.StatusCode != 200 || !strings.Contains(body, `"auth_enabled":true`) {
		t.Errorf("console info with auth on: %d %s", resp.StatusCode, body)
	}
}

// The console's own origin may open sockets without a CORS entry; other
// origins are still refused.
func TestSameOriginSocketAllowed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	hdr := http.Header{"Origin": []string{e.URL}}
	c, resp, err := e.dial("assistant", "app1", "same-origin-1", "u1", "", hdr)
	if err != nil {
		t.Fatalf("same-origin socket refused: %v (%v)", err, resp)
	}
	c.until("chat.resume_boundary", wait)
	_, resp, err = e.dial("assistant", "app1", "same-origin-2", "u1", "", http.Header{"Origin": []string{"http://evil.example.com"}})
	if err == nil || resp == nil || resp.StatusCode != 403 {
		t.Fatalf("foreign origin: err %v resp %v", err, resp)
	}
	// Behind a proxy that rewrites Host, the public URL's origin is the console's.
	e2 := newEnv(t, envOpts{env: map[string]string{"MOZAIKS_PUBLIC_URL": "https://AI.example.com:443/mozaiks"}})
	c, resp, err = e2.dial("assistant", "app1", "public-1", "u1", "", http.Header{"Origin": []string{"https://ai.example.com"}})
	if err != nil {
		t.Fatalf("public-URL origin refused: %v (%v)", err, resp)
	}
	c.until("chat.resume_boundary", wait)
}
