package diag_test

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/mozaiks/mozaiks/internal/serve/diag"
)

func newServer(t *testing.T, opts diag.Options) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	diag.Register(mux, opts)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestWhoami(t *testing.T) {
	t.Parallel()
	srv := newServer(t, diag.Options{})
	req, _ := http.NewRequest("GET", srv.URL+diag.PathWhoami, nil)
	req.Header.Set("Origin", "https://app.example.com")
	req.Header.Set("X-Forwarded-Proto", "https")
	req.Header.Set("X-Forwarded-For", "203.0.113.9")
	req.Header.Set("X-Forwarded-Host", "app.example.com")
	req.Header.Set("Forwarded", "for=203.0.113.9;proto=https")
	req.Header.Set("X-Real-IP", "203.0.113.9")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("content type %q", ct)
	}
	var w diag.Whoami
	if err := json.NewDecoder(resp.Body).Decode(&w); err != nil {
		t.Fatal(err)
	}
	want := diag.Whoami{
		Scheme: "http", Host: strings.TrimPrefix(srv.URL, "http://"), Origin: "https://app.example.com",
		XForwardedFor: "203.0.113.9", XForwardedProto: "https", XForwardedHost: "app.example.com",
		Forwarded: "for=203.0.113.9;proto=https", XRealIP: "203.0.113.9", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
	}
	got := w
	got.RemoteAddr, got.ServerTime = "", time.Time{}
	if got != want {
		t.Fatalf("whoami:\n got %+v\nwant %+v", got, want)
	}
	if !strings.HasPrefix(w.RemoteAddr, "127.0.0.1:") || w.ServerTime.IsZero() {
		t.Fatalf("remote %q time %v", w.RemoteAddr, w.ServerTime)
	}

	// Only GET is routed.
	resp2, err := http.Post(srv.URL+diag.PathWhoami, "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if resp2.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST whoami: %d", resp2.StatusCode)
	}
}

func TestWhoamiTLS(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	diag.Register(mux, diag.Options{})
	srv := httptest.NewTLSServer(mux)
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + diag.PathWhoami)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var w diag.Whoami
	if err := json.NewDecoder(resp.Body).Decode(&w); err != nil {
		t.Fatal(err)
	}
	if w.Scheme != "https" || !w.TLS {
		t.Fatalf("scheme %q tls %v", w.Scheme, w.TLS)
	}
}

func TestWSEcho(t *testing.T) {
	t.Parallel()
	allowed := "https://app.example.com"
	srv := newServer(t, diag.Options{
		CheckOrigin: func(r *http.Request) bool { return r.Header.Get("Origin") == allowed },
		ReadLimit:   1024,
	})
	wsURL := "ws" + strings.TrimPrefix(srv.URL, "http") + diag.PathWSEcho

	t.Run("echo in order", func(t *testing.T) {
		t.Parallel()
		c, _, err := websocket.DefaultDialer.Dial(wsURL, http.Header{"Origin": {allowed}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		for _, m := range []string{"one", "two", "three"} {
			if err := c.WriteMessage(websocket.TextMessage, []byte(m)); err != nil {
				t.Fatal(err)
			}
		}
		for _, want := range []string{"one", "two", "three"} {
			typ, got, err := c.ReadMessage()
			if err != nil || typ != websocket.TextMessage || string(got) != want {
				t.Fatalf("read %d %q %v, want %q", typ, got, err, want)
			}
		}
	})
	t.Run("origin refused", func(t *testing.T) {
		t.Parallel()
		_, resp, err := websocket.DefaultDialer.Dial(wsURL, http.Header{"Origin": {"https://evil.example"}})
		if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Fatalf("err %v resp %v", err, resp)
		}
	})
	t.Run("frame over limit closes 1009", func(t *testing.T) {
		t.Parallel()
		c, _, err := websocket.DefaultDialer.Dial(wsURL, http.Header{"Origin": {allowed}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.WriteMessage(websocket.TextMessage, []byte(strings.Repeat("x", 2048)))
		_, _, err = c.ReadMessage()
		if !websocket.IsCloseError(err, websocket.CloseMessageTooBig) {
			t.Fatalf("want close 1009, got %v", err)
		}
	})
	t.Run("binary refused", func(t *testing.T) {
		t.Parallel()
		c, _, err := websocket.DefaultDialer.Dial(wsURL, http.Header{"Origin": {allowed}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.WriteMessage(websocket.BinaryMessage, []byte{1, 2})
		_, _, err = c.ReadMessage()
		if !websocket.IsCloseError(err, websocket.CloseUnsupportedData) {
			t.Fatalf("want close 1003, got %v", err)
		}
	})
}

func TestWSEchoDefaultOriginPolicy(t *testing.T) {
	t.Parallel()
	srv := newServer(t, diag.Options{})
	wsURL := "ws" + strings.TrimPrefix(srv.URL, "http") + diag.PathWSEcho
	c, _, err := websocket.DefaultDialer.Dial(wsURL, http.Header{"Origin": {srv.URL}})
	if err != nil {
		t.Fatalf("same-host origin refused: %v", err)
	}
	c.Close()
	_, resp, err := websocket.DefaultDialer.Dial(wsURL, http.Header{"Origin": {"http://other.example"}})
	if err == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-origin upgrade allowed without CheckOrigin: %v", err)
	}
}

func TestStreamIsFlushedChunkByChunk(t *testing.T) {
	t.Parallel()
	for _, format := range []string{"", "sse"} {
		t.Run("format="+format, func(t *testing.T) {
			t.Parallel()
			srv := newServer(t, diag.Options{ChunkInterval: 50 * time.Millisecond, Chunks: 4})
			resp, err := http.Get(srv.URL + diag.PathStream + "?format=" + format)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.Header.Get("X-Accel-Buffering") != "no" {
				t.Fatal("missing X-Accel-Buffering: no")
			}
			wantCT := "text/plain; charset=utf-8"
			if format == "sse" {
				wantCT = "text/event-stream"
			}
			if ct := resp.Header.Get("Content-Type"); ct != wantCT {
				t.Fatalf("content type %q", ct)
			}
			sc := bufio.NewScanner(resp.Body)
			var chunks []diag.StreamChunk
			for sc.Scan() {
				line := strings.TrimPrefix(sc.Text(), "data: ")
				if !strings.HasPrefix(line, "{") {
					continue
				}
				var c diag.StreamChunk
				if err := json.Unmarshal([]byte(line), &c); err != nil {
					t.Fatal(err)
				}
				chunks = append(chunks, c)
			}
			if len(chunks) != 4 {
				t.Fatalf("got %d chunks", len(chunks))
			}
			for i, c := range chunks {
				if c.Seq != i+1 || c.Of != 4 {
					t.Fatalf("chunk %d: %+v", i, c)
				}
				// Send times are the server's clock: they must spread out, which
				// is what lets the doctor tell buffering from a slow server.
				if i > 0 && !c.SentAt.After(chunks[i-1].SentAt) {
					t.Fatalf("send times not increasing: %v", chunks)
				}
			}
		})
	}
}
