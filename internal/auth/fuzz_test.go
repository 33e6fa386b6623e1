package auth

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"
)

const fuzzSecret = "fuzz-secret-0123456789abcdef-0123456789"

// hs256 signs header and claims JSON as they come (no re-encoding), so the
// fuzzer controls every byte the parser sees behind a valid signature.
func hs256(header, claims []byte) string {
	enc := base64.RawURLEncoding
	signing := enc.EncodeToString(header) + "." + enc.EncodeToString(claims)
	m := hmac.New(sha256.New, []byte(fuzzSecret))
	m.Write([]byte(signing))
	return signing + "." + enc.EncodeToString(m.Sum(nil))
}

// FuzzVerify: the JWT path never panics, refuses anything not signed with
// the secret, and accepts a signed token only when its claims hold.
func FuzzVerify(f *testing.F) {
	v, err := New(Options{Secret: fuzzSecret, Issuer: "https://iss.test", Audience: "api", Leeway: time.Second})
	if err != nil {
		f.Fatal(err)
	}
	exp := time.Now().Add(24 * time.Hour).Unix()
	f.Add("", []byte(`{"alg":"HS256","typ":"JWT"}`), []byte(`{"sub":"u1","iss":"https://iss.test","aud":"api","exp":9999999999}`))
	f.Add("a.b.c", []byte(`{"alg":"none"}`), []byte(`{"sub":"u1"}`))
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1MSJ9.", []byte(`{"alg":"HS256","kid":"../../x"}`), []byte(`{"sub":1,"exp":"soon"}`))
	f.Add("....", []byte(`{"alg":"RS256"}`), []byte(`{"sub":"u1","aud":["api","x"],"iss":"https://iss.test","exp":`+
		strings.Repeat("9", 30)+`}`))
	f.Add("x", []byte(`{"alg":"HS256"}`), []byte(`{"sub":"","scope":["a",1,null],"scp":"a b","app_id":{},"exp":`+
		time.Unix(exp, 0).Format("2006")+`}`))
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, raw string, header, claims []byte) {
		if _, err := v.Verify(ctx, raw); err == nil {
			// A raw string the fuzzer made up cannot carry our HMAC.
			t.Fatalf("accepted an unsigned fuzzed token %q", raw)
		} else if !errors.Is(err, ErrUnauthorized) || strings.Contains(err.Error(), fuzzSecret) {
			t.Fatalf("error %v", err)
		}
		tok := hs256(header, claims)
		id, err := v.Verify(ctx, tok)
		if err != nil {
			if !errors.Is(err, ErrUnauthorized) {
				t.Fatalf("error does not wrap ErrUnauthorized: %v", err)
			}
			return
		}
		if id.UserID == "" || id.ValidUntil.IsZero() {
			t.Fatalf("accepted %s / %s with identity %+v", header, claims, id)
		}
		if !strings.Contains(string(claims), "https://iss.test") || !strings.Contains(string(claims), "api") {
			t.Fatalf("accepted claims without the issuer or audience: %s", claims)
		}
		_ = id.Check("app", id.UserID)
	})
}
