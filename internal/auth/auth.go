// Package auth validates bearer JWTs: HS256 with a shared secret, or OIDC
// (issuer discovery + JWKS through keyfunc, RS256/ES256), with audience,
// issuer, expiry with a small skew, and the user-id / app-id claims the
// runtime compares with the path.
package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
)

// Options configure a Verifier.
type Options struct {
	Secret      string // HS256 shared secret
	Issuer      string // OIDC issuer; discovery at {issuer}/.well-known/openid-configuration
	Audience    string
	UserIDClaim string // default "sub"
	HTTPClient  *http.Client
	Leeway      time.Duration // default 30s
}

// Identity is what a valid token says.
type Identity struct {
	UserID string
	AppID  string // "" when the token has no app_id claim
	Scopes []string
}

// ErrUnauthorized is returned for any invalid or missing token.
var ErrUnauthorized = errors.New("unauthorized")

// Verifier checks tokens.
type Verifier struct {
	opts    Options
	mu      sync.Mutex
	keyfunc jwt.Keyfunc // OIDC, resolved lazily so start-up never waits on the IdP
}

// New builds a Verifier.
func New(o Options) (*Verifier, error) {
	if o.Secret == "" && o.Issuer == "" {
		return nil, errors.New("auth needs AUTH_JWT_SECRET or AUTH_ISSUER")
	}
	if o.UserIDClaim == "" {
		o.UserIDClaim = "sub"
	}
	if o.Leeway == 0 {
		o.Leeway = 30 * time.Second
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	return &Verifier{opts: o}, nil
}

// Verify checks a raw token and returns its identity.
func (v *Verifier) Verify(ctx context.Context, raw string) (Identity, error) {
	if raw == "" {
		return Identity{}, fmt.Errorf("%w: no bearer token", ErrUnauthorized)
	}
	popts := []jwt.ParserOption{jwt.WithLeeway(v.opts.Leeway), jwt.WithExpirationRequired()}
	if v.opts.Audience != "" {
		popts = append(popts, jwt.WithAudience(v.opts.Audience))
	}
	var kf jwt.Keyfunc
	if v.opts.Secret != "" {
		popts = append(popts, jwt.WithValidMethods([]string{"HS256"}))
		kf = func(*jwt.Token) (any, error) { return []byte(v.opts.Secret), nil }
	} else {
		popts = append(popts, jwt.WithIssuer(v.opts.Issuer), jwt.WithValidMethods([]string{"RS256", "ES256"}))
		var err error
		if kf, err = v.oidcKeyfunc(ctx); err != nil {
			return Identity{}, fmt.Errorf("%w: %v", ErrUnauthorized, err)
		}
	}
	claims := jwt.MapClaims{}
	if _, err := jwt.ParseWithClaims(raw, claims, kf, popts...); err != nil {
		return Identity{}, fmt.Errorf("%w: %v", ErrUnauthorized, err)
	}
	id := Identity{}
	id.UserID, _ = claims[v.opts.UserIDClaim].(string)
	if id.UserID == "" {
		return Identity{}, fmt.Errorf("%w: token has no %q claim", ErrUnauthorized, v.opts.UserIDClaim)
	}
	id.AppID, _ = claims["app_id"].(string)
	for _, c := range []string{"scp", "scope"} {
		switch s := claims[c].(type) {
		case string:
			id.Scopes = append(id.Scopes, strings.Fields(s)...)
		case []any:
			for _, x := range s {
				if str, ok := x.(string); ok {
					id.Scopes = append(id.Scopes, str)
				}
			}
		}
	}
	return id, nil
}

// Authorize checks that the token belongs to userID and, when it names an
// app, to appID.
func (v *Verifier) Authorize(ctx context.Context, raw, appID, userID string) error {
	id, err := v.Verify(ctx, raw)
	if err != nil {
		return err
	}
	if id.UserID != userID {
		return fmt.Errorf("%w: token is for another user", ErrUnauthorized)
	}
	if id.AppID != "" && id.AppID != appID {
		return fmt.Errorf("%w: token is for another app", ErrUnauthorized)
	}
	return nil
}

func (v *Verifier) oidcKeyfunc(ctx context.Context) (jwt.Keyfunc, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.keyfunc != nil {
		return v.keyfunc, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(v.opts.Issuer, "/")+"/.well-known/openid-configuration", nil)
	if err != nil {
		return nil, err
	}
	resp, err := v.opts.HTTPClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("OIDC discovery: %w", err)
	}
	defer resp.Body.Close()
	var doc struct {
		JWKSURI string `json:"jwks_uri"`
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("OIDC discovery: %s", resp.Status)
	}
	if err := json.NewDecoder(http.MaxBytesReader(nil, resp.Body, 1<<20)).Decode(&doc); err != nil || doc.JWKSURI == "" {
		return nil, fmt.Errorf("OIDC discovery: no jwks_uri")
	}
	// The JWKS refreshes in the background for the process lifetime.
	k, err := keyfunc.NewDefaultCtx(context.WithoutCancel(ctx), []string{doc.JWKSURI})
	if err != nil {
		return nil, fmt.Errorf("JWKS: %w", err)
	}
	v.keyfunc = k.Keyfunc
	return v.keyfunc, nil
}

// BearerToken extracts the token of an HTTP request (Authorization header).
func BearerToken(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// WebSocketToken extracts the token of a WebSocket upgrade: the
// "Sec-WebSocket-Protocol: bearer, <token>" pair, else ?access_token=.
// viaProtocol says the server must answer with the "bearer" subprotocol.
func WebSocketToken(r *http.Request) (token string, viaProtocol bool) {
	for _, h := range r.Header.Values("Sec-WebSocket-Protocol") {
		parts := strings.Split(h, ",")
		for i := 0; i+1 < len(parts); i++ {
			if strings.EqualFold(strings.TrimSpace(parts[i]), "bearer") {
				return strings.TrimSpace(parts[i+1]), true
			}
		}
	}
	return r.URL.Query().Get("access_token"), false
}
