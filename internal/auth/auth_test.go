package auth

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const testSecret = "auth-test-secret-0123456789abcdef-xyz"

func sign(t *testing.T, secret string, c jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestNewRefusesShortSecret(t *testing.T) {
	t.Parallel()
	if _, err := New(Options{Secret: strings.Repeat("s", MinSecretBytes-1)}); err == nil {
		t.Fatal("31-byte secret accepted")
	}
	if _, err := New(Options{Secret: strings.Repeat("s", MinSecretBytes)}); err != nil {
		t.Fatal(err)
	}
}

// With a shared secret, iss and aud are enforced whenever configured (the
// first finding of issue 13), and the skew applies to exp and nbf.
func TestVerifySharedSecretClaims(t *testing.T) {
	t.Parallel()
	v, err := New(Options{Secret: testSecret, Issuer: "https://iss.test", Audience: "api", Leeway: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	base := jwt.MapClaims{"sub": "u1", "iss": "https://iss.test", "aud": "api", "exp": now.Add(time.Hour).Unix()}
	mod := func(k string, val any) jwt.MapClaims {
		c := jwt.MapClaims{}
		for kk, vv := range base {
			c[kk] = vv
		}
		if val == nil {
			delete(c, k)
		} else {
			c[k] = val
		}
		return c
	}
	for _, tc := range []struct {
		name   string
		claims jwt.MapClaims
		secret string
		ok     bool
	}{
		{"valid", base, testSecret, true},
		{"expired within the skew", mod("exp", now.Add(-5*time.Second).Unix()), testSecret, true},
		{"expired beyond the skew", mod("exp", now.Add(-time.Minute).Unix()), testSecret, false},
		{"no exp", mod("exp", nil), testSecret, false},
		{"not yet valid", mod("nbf", now.Add(time.Minute).Unix()), testSecret, false},
		{"issued in the future", mod("iat", now.Add(time.Minute).Unix()), testSecret, false},
		{"wrong iss", mod("iss", "https://evil.test"), testSecret, false},
		{"missing iss", mod("iss", nil), testSecret, false},
		{"wrong aud", mod("aud", "other"), testSecret, false},
		{"missing aud", mod("aud", nil), testSecret, false},
		{"no sub", mod("sub", nil), testSecret, false},
		{"other secret", base, strings.Repeat("z", 40), false},
	} {
		id, err := v.Verify(context.Background(), sign(t, tc.secret, tc.claims))
		if (err == nil) != tc.ok {
			t.Errorf("%s: err = %v, want ok=%v", tc.name, err, tc.ok)
			continue
		}
		if err != nil && !errors.Is(err, ErrUnauthorized) {
			t.Errorf("%s: %v does not wrap ErrUnauthorized", tc.name, err)
		}
		if tc.ok && (id.UserID != "u1" || id.ValidUntil.Before(time.Now())) {
			t.Errorf("%s: identity %+v", tc.name, id)
		}
	}
}

func TestIdentityCheckAndContext(t *testing.T) {
	t.Parallel()
	id := Identity{UserID: "u1", AppID: "a1"}
	if id.Check("a1", "u1") != nil {
		t.Fatal("own user and app refused")
	}
	for _, c := range [][2]string{{"a1", "u2"}, {"a2", "u1"}} {
		if err := id.Check(c[0], c[1]); !errors.Is(err, ErrWrongSubject) || !errors.Is(err, ErrUnauthorized) {
			t.Errorf("Check(%v) = %v", c, err)
		}
	}
	if (Identity{UserID: "u1"}).Check("any", "u1") != nil {
		t.Fatal("a token without app_id is valid for every app")
	}
	ctx := NewContext(context.Background(), id)
	if got, ok := FromContext(ctx); !ok || got.UserID != "u1" {
		t.Fatal("identity lost in the context")
	}
	if _, ok := FromContext(context.Background()); ok {
		t.Fatal("identity from nowhere")
	}
}
