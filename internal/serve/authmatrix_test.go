package serve_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"

	"github.com/mozaiks/mozaiks/internal/llm/llmtest"
)

// idp is a local OIDC provider over HTTPS: discovery and a JWKS of RSA
// keys that a test can rotate or take down.
type idp struct {
	srv  *httptest.Server
	mu   sync.Mutex
	keys map[string]*rsa.PrivateKey // kid -> key, as published
	down bool
	hits int // JWKS fetches
}

func newIDP(t *testing.T, kids ...string) *idp {
	t.Helper()
	p := &idp{keys: map[string]*rsa.PrivateKey{}}
	for _, kid := range kids {
		p.keys[kid] = rsaKey(t)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		if p.isDown() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": p.srv.URL, "jwks_uri": p.srv.URL + "/jwks"})
	})
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, r *http.Request) {
		if p.isDown() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		p.mu.Lock()
		p.hits++
		var keys []map[string]string
		for kid, k := range p.keys {
			keys = append(keys, map[string]string{"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig",
				"n": base64.RawURLEncoding.EncodeToString(k.N.Bytes()),
				"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(k.E)).Bytes())})
		}
		p.mu.Unlock()
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": keys})
	})
	p.srv = httptest.NewTLSServer(mux)
	t.Cleanup(p.srv.Close)
	return p
}

func (p *idp) isDown() bool { p.mu.Lock(); defer p.mu.Unlock(); return p.down }

func (p *idp) setDown(d bool) { p.mu.Lock(); p.down = d; p.mu.Unlock() }

// publish replaces the published key set (rotation).
func (p *idp) publish(keys map[string]*rsa.PrivateKey) { p.mu.Lock(); p.keys = keys; p.mu.Unlock() }

func (p *idp) key(kid string) *rsa.PrivateKey { p.mu.Lock(); defer p.mu.Unlock(); return p.keys[kid] }

var (
	rsaOnce sync.Once
	rsaPool []*rsa.PrivateKey
)

// rsaKey hands out one of a few keys generated once per test binary
// (2048-bit generation is slow under -race).
func rsaKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	rsaOnce.Do(func() {
		for range 4 {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			rsaPool = append(rsaPool, k)
		}
	})
	rsaMu.Lock()
	defer rsaMu.Unlock()
	k := rsaPool[rsaNext%len(rsaPool)]
	rsaNext++
	return k
}

var (
	rsaMu   sync.Mutex
	rsaNext int
)

func signRS(t *testing.T, key *rsa.PrivateKey, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func signHS(t *testing.T, secret []byte, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(secret)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// algNone is an unsigned token ("alg":"none").
func algNone(t *testing.T, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodNone, claims).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// tokenCase is one row of the matrix: a token and whether it is valid.
type tokenCase struct {
	name  string
	token string
	valid bool
}

const (
	matrixIssuerHS = "https://issuer.mozaiks.test"
	matrixAudience = "mozaiks-api"
)

// claimsFor are valid claims for user u1 from issuer iss.
func claimsFor(iss string) jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{"sub": "u1", "iss": iss, "aud": matrixAudience, "exp": now.Add(time.Hour).Unix(),
		"iat": now.Unix(), "nbf": now.Add(-time.Minute).Unix()}
}

func with(c jwt.MapClaims, k string, v any) jwt.MapClaims {
	out := jwt.MapClaims{}
	for kk, vv := range c {
		out[kk] = vv
	}
	if v == nil {
		delete(out, k)
	} else {
		out[k] = v
	}
	return out
}

// hsCases are the matrix rows for a shared-secret server.
func hsCases(t *testing.T) []tokenCase {
	secret := []byte(testSecret)
	c := claimsFor(matrixIssuerHS)
	hour := time.Hour
	return []tokenCase{
		{"no token", "", false},
		{"expired", signHS(t, secret, "", with(c, "exp", time.Now().Add(-hour).Unix())), false},
		{"not yet valid", signHS(t, secret, "", with(c, "nbf", time.Now().Add(hour).Unix())), false},
		{"wrong iss", signHS(t, secret, "", with(c, "iss", "https://evil.test")), false},
		{"missing iss", signHS(t, secret, "", with(c, "iss", nil)), false},
		{"wrong aud", signHS(t, secret, "", with(c, "aud", "someone-else")), false},
		{"bad signature", signHS(t, []byte(strings.Repeat("x", 40)), "", c), false},
		{"alg none", algNone(t, c), false},
		// The alg-confusion row, seen from this side: an RS256 token to a
		// server that only knows a shared secret.
		{"RS256 to an HS256 server", signRS(t, rsaKey(t), "k1", c), false},
		// One secret has no key ids: a kid naming a key the server does not
		// have, on a token signed with another secret, is refused.
		{"unknown kid", signHS(t, []byte(strings.Repeat("y", 40)), "unknown", c), false},
		{"valid", signHS(t, secret, "", c), true},
	}
}

// oidcCases are the matrix rows for an OIDC server whose IdP publishes k1.
func oidcCases(t *testing.T, p *idp) []tokenCase {
	k1 := p.key("k1")
	c := claimsFor(p.srv.URL)
	hour := time.Hour
	pub, err := x509.MarshalPKIXPublicKey(&k1.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	other := rsaKey(t)
	for other == k1 {
		other = rsaKey(t)
	}
	return []tokenCase{
		{"no token", "", false},
		{"expired", signRS(t, k1, "k1", with(c, "exp", time.Now().Add(-hour).Unix())), false},
		{"not yet valid", signRS(t, k1, "k1", with(c, "nbf", time.Now().Add(hour).Unix())), false},
		{"wrong iss", signRS(t, k1, "k1", with(c, "iss", "https://evil.test")), false},
		{"missing iss", signRS(t, k1, "k1", with(c, "iss", nil)), false},
		{"wrong aud", signRS(t, k1, "k1", with(c, "aud", "someone-else")), false},
		{"bad signature", signRS(t, other, "k1", c), false},
		{"alg none", algNone(t, c), false},
		{"HS256 signed with the RS256 public key", signHS(t, pub, "k1", c), false},
		{"unknown kid", signRS(t, other, "k-unknown", c), false},
		{"valid", signRS(t, k1, "k1", c), true},
	}
}

// route is one HTTP route of the matrix and the status a valid token gets.
type route struct {
	method, path string
	body         any
	validStatus  int
}

// chatRoutes are every route that acts on chats, for user u1 and the chat
// chatID (owned by u1, workflow assistant, app default).
func chatRoutes(chatID string) []route {
	return []route{
		{"POST", "/api/sessions", map[string]any{"workflow": "assistant", "user_id": "u1"}, 201},
		{"GET", "/api/sessions?user_id=u1", nil, 200},
		{"GET", "/api/sessions/" + chatID, nil, 200},
		{"POST", "/api/chats/default/assistant/start", map[string]any{"user_id": "u1", "force_new": true}, 200},
		{"GET", "/api/chats/exists/default/assistant/" + chatID, nil, 200},
		{"GET", "/api/chats/meta/default/assistant/" + chatID, nil, 200},
		{"GET", "/api/chats/default/assistant?user_id=u1", nil, 200},
		{"GET", "/api/sessions/list/default/u1", nil, 200},
		{"GET", "/api/sessions/recent/default/u1", nil, 200},
		{"POST", "/chat/default/" + chatID + "/u1/input", map[string]any{"message": "hello"}, 202},
		{"POST", "/api/user-input/submit", map[string]any{"input_request_id": "req_none", "user_input": "x"}, 404},
		{"POST", "/api/ui-tool/submit", map[string]any{"event_id": "ev_none", "response_data": map[string]any{}}, 404},
		{"GET", "/api/general_chats/list/default/u1", nil, 200},
		{"GET", "/api/general_chats/transcript/default/chat_none?user_id=u1", nil, 404},
		{"POST", "/api/chat/upload", map[string]any{}, 400}, // a JSON body, not the multipart form
		{"GET", "/api/admin/overview", nil, 403},            // valid, but without the admin scope
		{"GET", "/api/admin/sessions", nil, 403},
	}
}

// publicRoutes answer 200 whatever token comes with them.
var publicRoutes = []string{"/api/health", "/api/ready", "/metrics", "/api/workflows", "/api/workflows/config",
	"/api/workflows/assistant/transport", "/api/workflows/assistant/ui-tools", "/api/diag/whoami"}

func (e *env) call(method, path, token string, body any) (int, []byte) {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, e.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// socketStatus dials the chat socket with token (the bearer subprotocol)
// and returns the handshake status: 101 when it opened and sent chat_meta.
func (e *env) socketStatus(t *testing.T, chatID, token string) int {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	if token != "" {
		d.Subprotocols = []string{"bearer", token}
	}
	c, resp, err := d.Dial(e.wsURL("assistant", "default", chatID, "u1", ""), nil)
	if err != nil {
		if resp == nil {
			t.Fatalf("socket: %v", err)
		}
		return resp.StatusCode
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(wait))
	var f frame
	if err := c.ReadJSON(&f); err != nil || f.Type != "chat_meta" {
		t.Fatalf("socket opened but first frame %q, %v", f.Type, err)
	}
	return http.StatusSwitchingProtocols
}

// runMatrix checks every token case against every route and the socket.
func runMatrix(t *testing.T, e *env, cases []tokenCase, valid string) {
	t.Helper()
	// A chat owned by u1 for the routes that name one.
	var s sessionResp
	if code := e.doJSONAuth("POST", "/api/sessions", valid, map[string]any{"workflow": "assistant", "user_id": "u1"}, &s); code != 201 {
		t.Fatalf("setup: create session = %d", code)
	}
	for _, tc := range cases {
		for _, r := range chatRoutes(s.ChatID) {
			want := http.StatusUnauthorized
			if tc.valid {
				want = r.validStatus
				if r.method == "POST" && strings.HasPrefix(r.path, "/chat/") {
					e.LLM.Enqueue(llmReply("ok"))
				}
			}
			code, body := e.call(r.method, r.path, tc.token, r.body)
			if code != want {
				t.Errorf("%s: %s %s = %d, want %d (%s)", tc.name, r.method, r.path, code, want, body)
			}
			if want == http.StatusUnauthorized && !bytes.Contains(body, []byte(`"UNAUTHORIZED"`)) {
				t.Errorf("%s: %s %s: 401 body %s", tc.name, r.method, r.path, body)
			}
		}
		for _, p := range publicRoutes {
			if code, _ := e.call("GET", p, tc.token, nil); code != 200 {
				t.Errorf("%s: public GET %s = %d", tc.name, p, code)
			}
		}
		want := http.StatusUnauthorized
		if tc.valid {
			want = http.StatusSwitchingProtocols
		}
		if got := e.socketStatus(t, s.ChatID, tc.token); got != want {
			t.Errorf("%s: socket = %d, want %d", tc.name, got, want)
		}
		// And through ?access_token= too.
		if tc.token != "" {
			_, resp, err := e.dial("assistant", "default", s.ChatID, "u1", "access_token="+tc.token, nil)
			switch {
			case tc.valid && err != nil:
				t.Errorf("%s: socket via access_token refused: %v", tc.name, err)
			case !tc.valid && (err == nil || resp == nil || resp.StatusCode != 401):
				t.Errorf("%s: socket via access_token: %v %v", tc.name, err, resp)
			}
		}
	}
}

func (e *env) doJSONAuth(method, path, token string, body, out any) int {
	e.t.Helper()
	code, b := e.call(method, path, token, body)
	if out != nil {
		_ = json.Unmarshal(b, out)
	}
	return code
}

// matrixLimits keep the per-user rates out of the way of the matrix's
// many valid requests (the rates have their own test).
var matrixLimits = map[string]string{"MOZAIKS_SESSIONS_PER_MINUTE": "0", "MOZAIKS_MESSAGES_PER_MINUTE": "0"}

func merge(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

func TestAuthMatrixSharedSecret(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{env: merge(matrixLimits, map[string]string{"AUTH_ENABLED": "true", "AUTH_JWT_SECRET": testSecret,
		"AUTH_ISSUER": matrixIssuerHS, "AUTH_AUDIENCE": matrixAudience, "AUTH_CLOCK_SKEW": "5s"})})
	cases := hsCases(t)
	runMatrix(t, e, cases, cases[len(cases)-1].token)
}

func TestAuthMatrixOIDC(t *testing.T) {
	t.Parallel()
	p := newIDP(t, "k1")
	e := newEnv(t, envOpts{authHTTP: p.srv.Client(), env: merge(matrixLimits, map[string]string{"AUTH_ENABLED": "true",
		"AUTH_ISSUER": p.srv.URL, "AUTH_AUDIENCE": matrixAudience, "AUTH_CLOCK_SKEW": "5s"})})
	cases := oidcCases(t, p)
	runMatrix(t, e, cases, cases[len(cases)-1].token)
}

// TestOIDCKeyRotationAndOutage: a key published after start is picked up
// without a restart; with the IdP down, unknown keys get clean 401s while
// tokens of cached keys keep working; an IdP that was never reachable
// gives 401s, never a 5xx or a hang.
func TestOIDCKeyRotationAndOutage(t *testing.T) {
	t.Parallel()
	p := newIDP(t, "k1")
	e := newEnv(t, envOpts{authHTTP: p.srv.Client(), jwksRefresh: 50 * time.Millisecond, env: merge(matrixLimits,
		map[string]string{"AUTH_ENABLED": "true", "AUTH_ISSUER": p.srv.URL, "AUTH_AUDIENCE": matrixAudience})})
	c := claimsFor(p.srv.URL)
	list := "/api/sessions?user_id=u1"
	k1 := p.key("k1")
	if code, b := e.call("GET", list, signRS(t, k1, "k1", c), nil); code != 200 {
		t.Fatalf("k1 before rotation: %d %s", code, b)
	}
	k2 := rsaKey(t)
	for k2 == k1 {
		k2 = rsaKey(t)
	}
	p.publish(map[string]*rsa.PrivateKey{"k1": k1, "k2": k2})
	time.Sleep(100 * time.Millisecond) // past the refetch rate limit
	if code, b := e.call("GET", list, signRS(t, k2, "k2", c), nil); code != 200 {
		t.Fatalf("k2 after rotation: %d %s", code, b)
	}
	// A burst of tokens with unknown kids makes at most one refetch per
	// interval and none of them waits.
	p.mu.Lock()
	before := p.hits
	p.mu.Unlock()
	burstStart := time.Now()
	for i := range 20 {
		if code, _ := e.call("GET", list, signRS(t, k2, "nope-"+strconv.Itoa(i), c), nil); code != 401 {
			t.Fatalf("unknown kid %d: %d", i, code)
		}
	}
	p.mu.Lock()
	after := p.hits
	p.mu.Unlock()
	if allowed := 1 + int(time.Since(burstStart)/(50*time.Millisecond)); after-before > allowed {
		t.Fatalf("20 unknown kids made %d JWKS fetches in %s, want at most %d", after-before, time.Since(burstStart), allowed)
	}
	p.setDown(true)
	time.Sleep(100 * time.Millisecond)
	if code, _ := e.call("GET", list, signRS(t, k2, "k3", c), nil); code != 401 {
		t.Fatalf("unknown kid with the IdP down: %d", code)
	}
	if code, _ := e.call("GET", list, signRS(t, k1, "k1", c), nil); code != 200 {
		t.Fatalf("cached key with the IdP down: %d", code)
	}

	dead := newIDP(t, "k1")
	dead.setDown(true)
	e2 := newEnv(t, envOpts{authHTTP: dead.srv.Client(), env: map[string]string{"AUTH_ENABLED": "true",
		"AUTH_ISSUER": dead.srv.URL, "AUTH_AUDIENCE": matrixAudience}})
	tok := signRS(t, dead.key("k1"), "k1", claimsFor(dead.srv.URL))
	for range 3 {
		if code, b := e2.call("GET", list, tok, nil); code != 401 || !bytes.Contains(b, []byte("UNAUTHORIZED")) {
			t.Fatalf("IdP never reachable: %d %s", code, b)
		}
	}
	if got := e2.socketStatus(t, "c-dead", tok); got != 401 {
		t.Fatalf("socket with the IdP down: %d", got)
	}
}

func llmReply(text string) llmtest.Reply { return llmtest.Reply{Text: text} }
