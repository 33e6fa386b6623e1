package serve

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// HTML (and untyped) responses get the CSP unless they chose their own;
// JSON does not need one; every response gets nosniff and the referrer policy.
func TestContentSecurityPolicy(t *testing.T) {
	t.Parallel()
	s := &Server{log: slog.New(slog.DiscardHandler), metrics: newMetrics()}
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
		wantCSP string
	}{
		{"html", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = w.Write([]byte("<!doctype html><p>hi"))
		}, contentSecurityPolicy},
		{"untyped, sniffed", func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte("<!doctype html><p>hi"))
		}, contentSecurityPolicy},
		{"own policy kept", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.Header().Set("Content-Security-Policy", "default-src 'none'")
			w.WriteHeader(200)
		}, "default-src 'none'"},
		{"json", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, map[string]int{"a": 1}) }, ""},
	} {
		rec := httptest.NewRecorder()
		s.observe(tc.handler).ServeHTTP(rec, httptest.NewRequest("GET", "/x", nil))
		h := rec.Result().Header
		if got := h.Get("Content-Security-Policy"); got != tc.wantCSP {
			t.Errorf("%s: CSP %q, want %q", tc.name, got, tc.wantCSP)
		}
		if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("%s: headers %v", tc.name, h)
		}
	}
	if !strings.Contains(contentSecurityPolicy, "frame-ancestors 'none'") || strings.Contains(contentSecurityPolicy, "unsafe-eval") {
		t.Fatal("policy lost its framing ban or allows eval")
	}
}
