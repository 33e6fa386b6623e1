package serve_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"
)

const testSecret = "test-secret-0123456789abcdef-0123456789"

func hsToken(t *testing.T, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (e *env) doAuth(method, path, token string, body any) int {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, e.URL+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestAuthHS256(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{env: map[string]string{"AUTH_ENABLED": "true", "AUTH_JWT_SECRET": testSecret, "AUTH_AUDIENCE": "mozaiks"}})
	exp := time.Now().Add(time.Hour).Unix()
	good := hsToken(t, jwt.MapClaims{"sub": "u1", "aud": "mozaiks", "exp": exp})
	other := hsToken(t, jwt.MapClaims{"sub": "u2", "aud": "mozaiks", "exp": exp})
	wrongApp := hsToken(t, jwt.MapClaims{"sub": "u1", "aud": "mozaiks", "exp": exp, "app_id": "other"})
	expired := hsToken(t, jwt.MapClaims{"sub": "u1", "aud": "mozaiks", "exp": time.Now().Add(-time.Hour).Unix()})
	wrongAud := hsToken(t, jwt.MapClaims{"sub": "u1", "aud": "someone-else", "exp": exp})
	body := map[string]any{"workflow": "assistant", "user_id": "u1"}
	for _, tc := range []struct {
		name, token string
		want        int
	}{
		{"no token", "", 401}, {"valid", good, 201}, {"other user", other, 401}, {"other app", wrongApp, 401},
		{"expired", expired, 401}, {"wrong audience", wrongAud, 401}, {"garbage", "abc.def.ghi", 401},
	} {
		if got := e.doAuth("POST", "/api/sessions", tc.token, body); got != tc.want {
			t.Errorf("%s: POST /api/sessions = %d, want %d", tc.name, got, tc.want)
		}
	}
	// Probes and the public workflow list never need a token.
	for _, p := range []string{"/api/health", "/api/ready", "/metrics", "/api/workflows"} {
		if got := e.doAuth("GET", p, "", nil); got != 200 {
			t.Errorf("GET %s without token = %d", p, got)
		}
	}
	// WebSocket: query parameter, the bearer subprotocol, or nothing.
	if _, resp, err := e.dial("assistant", "default", "c-auth", "u1", "", nil); err == nil || resp.StatusCode != 401 {
		t.Fatalf("socket without token: %v %v", err, resp)
	}
	c := e.mustDial("assistant", "default", "c-auth", "u1", "access_token="+good)
	c.until("chat.resume_boundary", wait)
	d := websocket.Dialer{Subprotocols: []string{"bearer", good}}
	conn, resp, err := d.Dial(e.wsURL("assistant", "default", "c-auth", "u1", ""), nil)
	if err != nil {
		t.Fatalf("bearer subprotocol refused: %v", err)
	}
	if resp.Header.Get("Sec-WebSocket-Protocol") != "bearer" {
		t.Fatalf("server chose subprotocol %q", resp.Header.Get("Sec-WebSocket-Protocol"))
	}
	conn.Close()
	if _, resp, err := e.dial("assistant", "default", "c-auth", "u1", "access_token="+other, nil); err == nil || resp.StatusCode != 401 {
		t.Fatalf("socket with another user's token: %v", err)
	}
}

func TestAuthOIDC(t *testing.T) {
	t.Parallel()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var issuer string
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": issuer, "jwks_uri": issuer + "/jwks"})
	})
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, r *http.Request) {
		b := func(n *big.Int) string { return base64.RawURLEncoding.EncodeToString(n.FillBytes(make([]byte, 32))) }
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": []map[string]string{{"kty": "EC", "crv": "P-256", "kid": "k1",
			"alg": "ES256", "use": "sig", "x": b(key.X), "y": b(key.Y)}}})
	})
	idp := httptest.NewServer(mux)
	t.Cleanup(idp.Close)
	issuer = idp.URL
	e := newEnv(t, envOpts{env: map[string]string{"AUTH_ENABLED": "true", "AUTH_ISSUER": issuer, "AUTH_AUDIENCE": "mozaiks"}})
	sign := func(claims jwt.MapClaims) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodES256, claims)
		tok.Header["kid"] = "k1"
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	exp := time.Now().Add(time.Hour).Unix()
	body := map[string]any{"workflow": "assistant", "user_id": "u1"}
	if got := e.doAuth("POST", "/api/sessions", sign(jwt.MapClaims{"sub": "u1", "iss": issuer, "aud": "mozaiks", "exp": exp}), body); got != 201 {
		t.Fatalf("valid OIDC token: %d", got)
	}
	if got := e.doAuth("POST", "/api/sessions", sign(jwt.MapClaims{"sub": "u1", "iss": "https://other", "aud": "mozaiks", "exp": exp}), body); got != 401 {
		t.Fatalf("wrong issuer: %d", got)
	}
	if got := e.doAuth("POST", "/api/sessions", hsToken(t, jwt.MapClaims{"sub": "u1", "iss": issuer, "aud": "mozaiks", "exp": exp}), body); got != 401 {
		t.Fatalf("HS256 token accepted by an OIDC server: %d", got)
	}
}
