package serve_test

import (
	"context"
	"testing"
	"time"

	"github.com/mozaiks/mozaiks/internal/store"
	"github.com/mozaiks/mozaiks/internal/store/mongo"
	"github.com/mozaiks/mozaiks/internal/testutil/ferret"
)

// The runtime tests also run on the Mongo store, against FerretDB through
// the real driver, one database per test.
func init() {
	backends["mongodb"] = func(t *testing.T) store.Store {
		uri := ferret.DB(t)
		s, err := mongo.Open(context.Background(), uri, mongo.Options{ServerSelectionTimeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
}

// Mongo stops after start: health says degraded, ready and the session
// routes answer 503, sockets are told; all recover when it returns.
func TestMongoStopsAndReturns(t *testing.T) {
	t.Parallel()
	srv := ferret.NewServer(t)
	s, err := mongo.Open(context.Background(), srv.DB(t), mongo.Options{ServerSelectionTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	e := newEnv(t, envOpts{store: s})
	var created sessionResp
	if code := e.do("POST", "/api/sessions", map[string]any{"workflow": "assistant", "user_id": "u1"}, &created); code != 201 {
		t.Fatalf("create %d", code)
	}
	srv.Stop()
	var h struct {
		Status  string `json:"status"`
		MongoDB struct {
			Status string `json:"status"`
		} `json:"mongodb"`
	}
	if code := e.do("GET", "/api/health", nil, &h); code != 200 || h.Status != "degraded" || h.MongoDB.Status != "unavailable" {
		t.Fatalf("health while down: %d %+v", code, h)
	}
	if code := e.do("GET", "/api/ready", nil, nil); code != 503 {
		t.Fatalf("ready while down: %d", code)
	}
	var apiErr apiError
	if code := e.do("GET", "/api/sessions/"+created.ChatID, nil, &apiErr); code != 503 || apiErr.Error.Code != "STORE_UNAVAILABLE" {
		t.Fatalf("get while down: %d %+v", code, apiErr)
	}
	if code := e.do("POST", "/api/sessions", map[string]any{"workflow": "assistant", "user_id": "u1"}, &apiErr); code != 503 {
		t.Fatalf("create while down: %d", code)
	}
	c, _, err := e.dial("assistant", "default", "chat-down", "u1", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if f, ok := c.next(wait); !ok || f.str("error_code") != "STORE_UNAVAILABLE" {
		t.Fatalf("socket while down got %s", f.raw)
	}
	srv.Start(t)
	deadline := time.Now().Add(30 * time.Second)
	for e.do("GET", "/api/ready", nil, nil) != 200 {
		if time.Now().After(deadline) {
			t.Fatal("not ready 30s after Mongo returned")
		}
		time.Sleep(100 * time.Millisecond)
	}
	var got sessionResp
	if code := e.do("GET", "/api/sessions/"+created.ChatID, nil, &got); code != 200 || got.ChatID != created.ChatID {
		t.Fatalf("session after recovery: %d %+v", code, got)
	}
}
