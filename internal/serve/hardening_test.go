package serve_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"
)

// syncBuffer is a log sink the server writes from many goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// cutWithin reports whether the server closes c within d (after answering
// or not): a read returns EOF or a reset rather than our own timeout.
func cutWithin(c net.Conn, d time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout())
}

// A client that sends its headers and then stalls the body, or stalls the
// headers themselves, is cut at the body timeout instead of being held.
func TestStalledRequestsCut(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{env: map[string]string{"MOZAIKS_BODY_TIMEOUT": "1s"}})
	addr := strings.TrimPrefix(e.URL, "http://")
	for name, prefix := range map[string]string{
		"stalled body":    "POST /api/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"wor",
		"stalled headers": "GET /api/health HTTP/1.1\r\nHost: x\r\nX-Slow: ",
	} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write([]byte(prefix)); err != nil {
			t.Fatal(err)
		}
		// Generous bound: the finding was connections held for ever.
		if !cutWithin(c, 20*time.Second) {
			t.Errorf("%s: connection still open 20 s after a 1 s body timeout", name)
		}
	}
}

// The diagnostic echo socket needs no token, so with auth on an idle one is
// closed within seconds, a busy one after a few messages, and a client
// hammering /api/diag/* is rate-limited; the doctor's five echoes still pass.
func TestDiagBoundedWithAuthOn(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{env: map[string]string{"AUTH_ENABLED": "true", "AUTH_JWT_SECRET": testSecret}})
	echoURL := "ws" + strings.TrimPrefix(e.URL, "http") + "/api/diag/ws-echo"
	idle, _, err := websocket.DefaultDialer.Dial(echoURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	_ = idle.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, _, err = idle.ReadMessage()
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("idle diag socket still open after 20 s")
	}

	busy, _, err := websocket.DefaultDialer.Dial(echoURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	echoed := 0
	for i := range 100 {
		_ = busy.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if busy.WriteMessage(websocket.TextMessage, []byte("m")) != nil {
			break
		}
		_ = busy.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, _, err := busy.ReadMessage(); err != nil {
			var ce *websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != websocket.ClosePolicyViolation {
				t.Fatalf("message %d: %v, want a 1008 close", i, err)
			}
			break
		}
		echoed++
	}
	if echoed < 5 || echoed >= 100 {
		t.Fatalf("echoed %d messages: want the doctor's 5 to pass and a bound well below 100", echoed)
	}

	limited := 0
	var retry string
	for range 60 {
		resp, err := http.Get(e.URL + "/api/diag/whoami")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusTooManyRequests {
			limited++
			retry = resp.Header.Get("Retry-After")
		}
	}
	if limited == 0 || retry == "" {
		t.Fatalf("60 diag requests from one IP: %d limited, Retry-After %q", limited, retry)
	}
}

// A burst of messages on one chat is cut at the per-user burst: the rest get
// chat.error RATE_LIMITED and nothing of them is stored; REST shares the
// bucket (429 + Retry-After); session creation has its own rate.
func TestBurstLimited(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{env: map[string]string{"MOZAIKS_MESSAGES_PER_MINUTE": "1", "MOZAIKS_SESSIONS_PER_MINUTE": "1"}})
	c := e.mustDial("assistant", "default", "c-burst", "u1", "")
	c.until("chat.resume_boundary", wait)
	const burst, sent = 10, 200
	for i := range sent {
		c.send(map[string]any{"type": "user.input.submit", "chat_id": "c-burst", "text": "m" + string(rune('a'+i%26))})
	}
	acks, limited := 0, 0
	for acks+limited < sent {
		f, ok := c.next(wait)
		if !ok {
			t.Fatalf("after %d acks and %d refusals the socket went quiet", acks, limited)
		}
		switch {
		case f.Type == "chat.input_ack":
			acks++
		case f.Type == "chat.error" && f.str("error_code") == "RATE_LIMITED":
			limited++
		}
	}
	if acks != burst {
		t.Fatalf("%d of %d messages accepted, want the burst of %d", acks, sent, burst)
	}
	var sess struct {
		Messages []frame `json:"messages"`
	}
	// Every accepted message is stored (as it is acked); no refused one is.
	for deadline := time.Now().Add(wait); ; time.Sleep(50 * time.Millisecond) {
		e.do("GET", "/api/sessions/c-burst?limit=1000", nil, &sess)
		users := 0
		for _, m := range sess.Messages {
			if m.Agent == "user" {
				users++
			}
		}
		if users == burst {
			break
		}
		if users > burst || time.Now().After(deadline) {
			t.Fatalf("%d user messages stored, want %d", users, burst)
		}
	}
	// The same user over REST shares the bucket.
	req, _ := http.NewRequest("POST", e.URL+"/chat/default/c-burst/u1/input", strings.NewReader(`{"message":"rest"}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("REST message over the rate: %d Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}

	created := 0
	for range 15 {
		code := e.do("POST", "/api/sessions", map[string]any{"workflow": "assistant", "user_id": "u2"}, nil)
		if code == 201 {
			created++
		} else if code != 429 {
			t.Fatalf("session creation = %d", code)
		}
	}
	if created != burst {
		t.Fatalf("%d sessions created in a burst, want %d", created, burst)
	}
	if code := e.do("POST", "/api/sessions", map[string]any{"workflow": "assistant", "user_id": "u3"}, nil); code != 201 {
		t.Fatalf("another user is limited by u2's rate: %d", code)
	}
}

// A socket is closed with 4001 and a reason when its token expires; the
// client refreshes by reconnecting with a new token.
func TestTokenExpiryClosesSocket(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{env: map[string]string{"AUTH_ENABLED": "true", "AUTH_JWT_SECRET": testSecret, "AUTH_CLOCK_SKEW": "0s"}})
	short := hsToken(t, jwt.MapClaims{"sub": "u1", "exp": time.Now().Add(2 * time.Second).Unix()})
	c := e.mustDial("assistant", "default", "c-exp", "u1", "access_token="+short)
	c.until("chat.resume_boundary", wait)
	select {
	case <-time.After(20 * time.Second):
		t.Fatal("socket still open 20 s after its token expired")
	case _, ok := <-drain(c):
		_ = ok
	}
	err := <-c.closeErr
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != 4001 || !strings.Contains(ce.Text, "expired") {
		t.Fatalf("close = %v, want 4001 with a reason", err)
	}
	if _, resp, err := e.dial("assistant", "default", "c-exp", "u1", "access_token="+short, nil); err == nil || resp.StatusCode != 401 {
		t.Fatalf("reconnect with the expired token: %v", err)
	}
	fresh := hsToken(t, jwt.MapClaims{"sub": "u1", "exp": time.Now().Add(time.Hour).Unix()})
	c2 := e.mustDial("assistant", "default", "c-exp", "u1", "access_token="+fresh)
	c2.until("chat.resume_boundary", wait)
}

// drain discards frames until the socket closes; the channel closes then.
func drain(c *client) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		for range c.ch {
		}
		close(done)
	}()
	return done
}

// Without a token a real chat and a made-up one get the same 401; with
// another user's token, the same 404.
func TestNoExistenceOracle(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{env: map[string]string{"AUTH_ENABLED": "true", "AUTH_JWT_SECRET": testSecret}})
	exp := time.Now().Add(time.Hour).Unix()
	u1 := hsToken(t, jwt.MapClaims{"sub": "u1", "exp": exp})
	u2 := hsToken(t, jwt.MapClaims{"sub": "u2", "exp": exp})
	var s sessionResp
	if code := e.doJSONAuth("POST", "/api/sessions", u1, map[string]any{"workflow": "assistant", "user_id": "u1"}, &s); code != 201 {
		t.Fatalf("create = %d", code)
	}
	const fake = "chat_00000000-0000-0000-0000-000000000000"
	for _, p := range []string{"/api/chats/exists/default/assistant/%s", "/api/chats/meta/default/assistant/%s",
		"/api/sessions/%s", "/api/sessions/%s?user_id=u1"} {
		realCode, realBody := e.call("GET", strings.Replace(p, "%s", s.ChatID, 1), "", nil)
		fakeCode, fakeBody := e.call("GET", strings.Replace(p, "%s", fake, 1), "", nil)
		if realCode != 401 || fakeCode != 401 || !bytes.Equal(realBody, fakeBody) {
			t.Errorf("anonymous %s: real %d %s, made-up %d %s", p, realCode, realBody, fakeCode, fakeBody)
		}
	}
	realCode, realBody := e.call("GET", "/api/sessions/"+s.ChatID, u2, nil)
	fakeCode, fakeBody := e.call("GET", "/api/sessions/"+fake, u2, nil)
	if realCode != 404 || fakeCode != 404 || string(realBody) != strings.ReplaceAll(string(fakeBody), fake, s.ChatID) {
		t.Errorf("another user's chat: %d %s; a missing chat: %d %s", realCode, realBody, fakeCode, fakeBody)
	}
	for _, p := range []string{"/api/chats/exists/default/assistant/%s", "/api/chats/meta/default/assistant/%s"} {
		realCode, realBody := e.call("GET", strings.Replace(p, "%s", s.ChatID, 1), u2, nil)
		fakeCode, fakeBody := e.call("GET", strings.Replace(p, "%s", fake, 1), u2, nil)
		if realCode != fakeCode || string(realBody) != strings.ReplaceAll(string(fakeBody), fake, s.ChatID) {
			t.Errorf("another user's token, %s: real %d %s, made-up %d %s", p, realCode, realBody, fakeCode, fakeBody)
		}
	}
	// Lists named for u1 with u2's token: 401 (the caller is not who the
	// path says), never a 5xx.
	for _, p := range []string{"/api/sessions?user_id=u1", "/api/chats/default/assistant?user_id=u1", "/api/sessions/list/default/u1",
		"/api/sessions/recent/default/u1", "/api/general_chats/list/default/u1"} {
		if code, body := e.call("GET", p, u2, nil); code != 401 {
			t.Errorf("another user's list %s: %d %s", p, code, body)
		}
	}
	realCode, realBody = e.call("POST", "/chat/default/"+s.ChatID+"/u2/input", u2, map[string]any{"message": "x"})
	if realCode != 404 || !bytes.Contains(realBody, []byte("SESSION_NOT_FOUND")) {
		t.Errorf("input to another user's chat: %d %s", realCode, realBody)
	}
}

// One size limit for a user message on every route: 413 over HTTP,
// chat.error MESSAGE_TOO_LARGE on the socket, nothing stored.
func TestMessageSizeLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{env: map[string]string{"MOZAIKS_MAX_MESSAGE_BYTES": "1000"}})
	c := e.mustDial("assistant", "default", "c-size", "u1", "")
	c.until("chat.resume_boundary", wait)
	big := strings.Repeat("x", 1001)
	var ae apiError
	if code := e.do("POST", "/chat/default/c-size/u1/input", map[string]any{"message": big}, &ae); code != 413 || ae.Error.Code != "MESSAGE_TOO_LARGE" {
		t.Fatalf("REST input over the limit: %d %+v", code, ae)
	}
	if code := e.do("POST", "/api/user-input/submit", map[string]any{"input_request_id": "r", "user_input": big}, &ae); code != 413 {
		t.Fatalf("input answer over the limit: %d %+v", code, ae)
	}
	c.send(map[string]any{"type": "user.input.submit", "chat_id": "c-size", "text": big})
	fs := c.until("chat.error", wait)
	if f := fs[len(fs)-1]; f.str("error_code") != "MESSAGE_TOO_LARGE" || len(ofType(fs, "chat.input_ack")) > 0 {
		t.Fatalf("socket message over the limit: %s %v", types(fs), f.Data)
	}
	if code := e.do("POST", "/chat/default/c-size/u1/input", map[string]any{"message": strings.Repeat("y", 1000)}, nil); code != 202 {
		t.Fatalf("REST input at the limit: %d", code)
	}
	var sess struct {
		Messages []frame `json:"messages"`
	}
	e.do("GET", "/api/sessions/c-size", nil, &sess)
	for _, m := range sess.Messages {
		if content, _ := m.Data["content"].(string); m.Data["agent"] == "user" && len(content) > 1000 {
			t.Fatalf("an over-limit message was stored (%d bytes)", len(content))
		}
	}
}

func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	for _, p := range []string{"/api/health", "/api/sessions/nope", "/no-such-page"} {
		resp, err := http.Get(e.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("GET %s: headers %v", p, resp.Header)
		}
	}
}

// Sockets per user are capped (429 before any upgrade); closing one frees
// its slot.
func TestSocketCapPerUser(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{env: map[string]string{"MOZAIKS_MAX_SOCKETS_PER_USER": "2"}})
	a := e.mustDial("assistant", "default", "c-cap1", "u1", "")
	e.mustDial("assistant", "default", "c-cap2", "u1", "")
	_, resp, err := e.dial("assistant", "default", "c-cap3", "u1", "", nil)
	if err == nil || resp == nil || resp.StatusCode != 429 {
		t.Fatalf("third socket of one user: %v %v", err, resp)
	}
	e.mustDial("assistant", "default", "c-cap3", "u2", "") // another user is not affected
	a.c.Close()
	for deadline := time.Now().Add(wait); ; time.Sleep(20 * time.Millisecond) {
		if _, _, err := e.dial("assistant", "default", "c-cap3", "u1", "", nil); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("closed socket's slot never freed")
		}
	}
}

// Connections per IP are capped at accept: the one over the cap is closed
// before it is read, the others keep working.
func TestConnCapPerIP(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{env: map[string]string{"MOZAIKS_MAX_CONNS_PER_IP": "3"}})
	addr := strings.TrimPrefix(e.URL, "http://")
	var held []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		held = append(held, c)
	}
	// Make sure the three are accepted (a request each, kept alive).
	for _, c := range held {
		if _, err := c.Write([]byte("GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("held connection: %v", err)
		}
		resp.Body.Close()
	}
	over, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer over.Close()
	_, _ = over.Write([]byte("GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n"))
	_ = over.SetReadDeadline(time.Now().Add(wait))
	if n, _ := over.Read(make([]byte, 64)); n > 0 {
		t.Fatal("a fourth connection from one IP was served")
	}
	held[0].Close()
	for deadline := time.Now().Add(wait); ; time.Sleep(20 * time.Millisecond) {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			_, _ = c.Write([]byte("GET /api/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			c.Close()
			if err == nil && resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("closed connection's slot never freed")
		}
	}
}

// Every denial is logged at info with its reason, never with the token.
func TestDenialsLoggedWithoutToken(t *testing.T) {
	t.Parallel()
	logs := &syncBuffer{}
	e := newEnv(t, envOpts{logw: logs, env: map[string]string{"AUTH_ENABLED": "true", "AUTH_JWT_SECRET": testSecret,
		"AUTH_AUDIENCE": "mozaiks"}})
	wrongAud := hsToken(t, jwt.MapClaims{"sub": "u1", "aud": "other", "exp": time.Now().Add(time.Hour).Unix()})
	other := hsToken(t, jwt.MapClaims{"sub": "u2", "aud": "mozaiks", "exp": time.Now().Add(time.Hour).Unix()})
	e.call("GET", "/api/sessions?user_id=u1", wrongAud, nil)
	e.call("GET", "/api/sessions?user_id=u1", other, nil)
	e.call("GET", "/api/sessions?user_id=u1", "", nil)
	_, _, _ = e.dial("assistant", "default", "c-log", "u1", "access_token="+wrongAud, nil)
	_, _, _ = e.dial("assistant", "default", "c-log", "u1", "access_token="+other, nil)
	var reasons []string
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil || rec["msg"] != "auth denied" {
			continue
		}
		if rec["level"] != "INFO" {
			t.Errorf("denial logged at %v", rec["level"])
		}
		r, _ := rec["reason"].(string)
		reasons = append(reasons, r)
	}
	if len(reasons) != 5 {
		t.Fatalf("%d denials logged, want 5:\n%s", len(reasons), logs)
	}
	for _, want := range []string{"audience", "another user", "no bearer token"} {
		if !strings.Contains(strings.Join(reasons, "\n"), want) {
			t.Errorf("no denial reason mentions %q: %q", want, reasons)
		}
	}
	for _, tok := range []string{wrongAud, other, strings.Split(wrongAud, ".")[2]} {
		if strings.Contains(logs.String(), tok) {
			t.Fatal("a token (or its signature) appears in the log")
		}
	}
}
