// Package auth validates bearer JWTs: HS256 with a shared secret, or OIDC
// (issuer discovery + JWKS through keyfunc, RS256/ES256), with audience,
// issuer, expiry with a configurable clock skew, and the user-id / app-id
// claims the runtime compares with the path.
package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"
)

// MinSecretBytes is the shortest HS256 shared secret accepted: RFC 7518
// §3.2 asks for a key at least as long as the hash (256 bits).
const MinSecretBytes = 32

// Options configure a Verifier.
type Options struct {
	Secret      string // HS256 shared secret
	Issuer      string // expected iss; with no Secret also the OIDC issuer (discovery at {issuer}/.well-known/openid-configuration)
	Audience    string
	UserIDClaim string // default "sub"
	HTTPClient  *http.Client
	Leeway      time.Duration // clock skew allowed on exp/nbf/iat (AUTH_CLOCK_SKEW); negative is treated as 0
	Logger      *slog.Logger  // JWKS refresh failures
	// JWKSRefreshEvery bounds how often a token with an unknown kid may make
	// the server refetch the JWKS (key rotation); default 30s. Tokens with an
	// unknown kid in between are refused at once rather than waiting.
	JWKSRefreshEvery time.Duration
	// DiscoveryRetry bounds how often a failed OIDC discovery is retried
	// (default 5s); requests in between are refused at once.
	DiscoveryRetry time.Duration
}

// Identity is what a valid token says.
type Identity struct {
	UserID string
	AppID  string // "" when the token has no app_id claim
	Scopes []string
	// ValidUntil is when the token stops being accepted (exp plus the
	// allowed clock skew): a socket opened with it is closed then.
	ValidUntil time.Time
}

// ErrUnauthorized is returned for any invalid or missing token.
var ErrUnauthorized = errors.New("unauthorized")

// ErrWrongSubject is returned (wrapping ErrUnauthorized) when a valid token
// belongs to another user or app than the one the request acts for.
var ErrWrongSubject = fmt.Errorf("%w: token is for another user or app", ErrUnauthorized)

// Verifier checks tokens.
type Verifier struct {
	opts Options

	mu          sync.Mutex
	keyfunc     jwt.Keyfunc // OIDC, resolved lazily so start-up never waits on the IdP
	stopJWKS    func()      // ends the current key set's background refresh
	jwksURI     string
	lastRefresh time.Time
	lastFail    time.Time
	lastFailEr  error
}

// New builds a Verifier.
func New(o Options) (*Verifier, error) {
	if o.Secret == "" && o.Issuer == "" {
		return nil, errors.New("auth needs AUTH_JWT_SECRET or AUTH_ISSUER")
	}
	if o.Secret != "" && len(o.Secret) < MinSecretBytes {
		return nil, fmt.Errorf("AUTH_JWT_SECRET is %d bytes; it must be at least %d", len(o.Secret), MinSecretBytes)
	}
	if o.UserIDClaim == "" {
		o.UserIDClaim = "sub"
	}
	o.Leeway = max(o.Leeway, 0)
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.JWKSRefreshEvery <= 0 {
		o.JWKSRefreshEvery = 30 * time.Second
	}
	if o.DiscoveryRetry <= 0 {
		o.DiscoveryRetry = 5 * time.Second
	}
	return &Verifier{opts: o}, nil
}

// Leeway is the clock skew the verifier allows.
func (v *Verifier) Leeway() time.Duration { return v.opts.Leeway }

// Verify checks a raw token and returns its identity. The error says why a
// token was refused; it never contains the token.
func (v *Verifier) Verify(ctx context.Context, raw string) (Identity, error) {
	if raw == "" {
		return Identity{}, fmt.Errorf("%w: no bearer token", ErrUnauthorized)
	}
	popts := []jwt.ParserOption{jwt.WithLeeway(v.opts.Leeway), jwt.WithExpirationRequired(), jwt.WithIssuedAt()}
	if v.opts.Audience != "" {
		popts = append(popts, jwt.WithAudience(v.opts.Audience))
	}
	// The issuer is checked whenever one is configured, in both modes: a
	// secret shared by several issuers must not let one speak for another.
	if v.opts.Issuer != "" {
		popts = append(popts, jwt.WithIssuer(v.opts.Issuer))
	}
	var kf jwt.Keyfunc
	if v.opts.Secret != "" {
		popts = append(popts, jwt.WithValidMethods([]string{"HS256"}))
		kf = func(*jwt.Token) (any, error) { return []byte(v.opts.Secret), nil }
	} else {
		popts = append(popts, jwt.WithValidMethods([]string{"RS256", "ES256"}))
		var err error
		if kf, err = v.oidcKeyfunc(ctx); err != nil {
			return Identity{}, fmt.Errorf("%w: %v", ErrUnauthorized, err)
		}
	}
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(raw, claims, kf, popts...)
	if err != nil && v.opts.Secret == "" && errors.Is(err, keyfunc.ErrKeyfunc) && v.refreshForUnknownKID(ctx) {
		if kf, err = v.oidcKeyfunc(ctx); err == nil {
			claims = jwt.MapClaims{}
			_, err = jwt.ParseWithClaims(raw, claims, kf, popts...)
		}
	}
	if err != nil {
		return Identity{}, fmt.Errorf("%w: %v", ErrUnauthorized, err)
	}
	id := Identity{}
	id.UserID, _ = claims[v.opts.UserIDClaim].(string)
	if id.UserID == "" {
		return Identity{}, fmt.Errorf("%w: token has no %q claim", ErrUnauthorized, v.opts.UserIDClaim)
	}
	if exp, err := claims.GetExpirationTime(); err == nil && exp != nil {
		id.ValidUntil = exp.Add(v.opts.Leeway)
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

// Check says whether id may act for userID in appID.
func (id Identity) Check(appID, userID string) error {
	if id.UserID != userID {
		return fmt.Errorf("%w (user)", ErrWrongSubject)
	}
	if id.AppID != "" && id.AppID != appID {
		return fmt.Errorf("%w (app)", ErrWrongSubject)
	}
	return nil
}

// Authorize checks that the token belongs to userID and, when it names an
// app, to appID.
func (v *Verifier) Authorize(ctx context.Context, raw, appID, userID string) error {
	id, err := v.Verify(ctx, raw)
	if err != nil {
		return err
	}
	return id.Check(appID, userID)
}

func (v *Verifier) oidcKeyfunc(ctx context.Context) (jwt.Keyfunc, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.keyfunc != nil {
		return v.keyfunc, nil
	}
	// A down IdP must not make every request wait on it in turn.
	if !v.lastFail.IsZero() && time.Since(v.lastFail) < v.opts.DiscoveryRetry {
		return nil, v.lastFailEr
	}
	uri, err := v.discover(ctx)
	if err == nil {
		v.jwksURI = uri
		err = v.loadJWKS(ctx)
	}
	if err != nil {
		v.lastFail, v.lastFailEr = time.Now(), err
		return nil, err
	}
	v.lastRefresh = time.Now()
	return v.keyfunc, nil
}

// refreshForUnknownKID refetches the JWKS when a token names a key the
// server does not know (the IdP rotated its keys), at most once per
// JWKSRefreshEvery; in between, such tokens are refused at once. A failed
// fetch keeps the keys already known. It says whether the keys changed.
func (v *Verifier) refreshForUnknownKID(ctx context.Context) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.jwksURI == "" || time.Since(v.lastRefresh) < v.opts.JWKSRefreshEvery {
		return false
	}
	v.lastRefresh = time.Now()
	if err := v.loadJWKS(ctx); err != nil {
		v.opts.Logger.WarnContext(ctx, "JWKS refresh for an unknown kid failed; keeping the known keys", "err", err)
		return false
	}
	return true
}

func (v *Verifier) discover(ctx context.Context) (string, error) {
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	u := strings.TrimRight(v.opts.Issuer, "/") + "/.well-known/openid-configuration"
	req, err := http.NewRequestWithContext(dctx, http.MethodGet, u, nil)
	if err != nil {
		return "", err
	}
	resp, err := v.opts.HTTPClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("OIDC discovery: %w", err)
	}
	defer resp.Body.Close()
	var doc struct {
		JWKSURI string `json:"jwks_uri"`
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("OIDC discovery: %s", resp.Status)
	}
	if err := json.NewDecoder(http.MaxBytesReader(nil, resp.Body, 1<<20)).Decode(&doc); err != nil || doc.JWKSURI == "" {
		return "", fmt.Errorf("OIDC discovery: no jwks_uri")
	}
	return doc.JWKSURI, nil
}

// loadJWKS fetches the key set (failing if it cannot) and makes it the
// current one; it refreshes itself hourly in the background until replaced.
// v.mu is held.
func (v *Verifier) loadJWKS(ctx context.Context) error {
	kctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	noErrFirst := false
	log := v.opts.Logger
	k, err := keyfunc.NewDefaultOverrideCtx(kctx, []string{v.jwksURI}, keyfunc.Override{
		Client:                    v.opts.HTTPClient,
		HTTPTimeout:               10 * time.Second,
		NoErrorReturnFirstHTTPReq: &noErrFirst,
		RefreshInterval:           time.Hour,
		// Unknown kids are handled by refreshForUnknownKID, which never
		// makes a request wait for a rate limiter: this one refuses at once.
		RefreshUnknownKID: rate.NewLimiter(0, 0),
		RateLimitWaitMax:  time.Millisecond,
		RefreshErrorHandlerFunc: func(u string) func(context.Context, error) {
			return func(ctx context.Context, err error) {
				log.WarnContext(ctx, "JWKS refresh failed", "url", u, "err", err)
			}
		},
	})
	if err != nil {
		cancel()
		return fmt.Errorf("JWKS: %w", err)
	}
	if v.stopJWKS != nil {
		v.stopJWKS()
	}
	v.keyfunc, v.stopJWKS = k.Keyfunc, cancel
	return nil
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

type ctxKey struct{}

// NewContext returns ctx carrying a verified identity.
func NewContext(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// FromContext returns the verified identity ctx carries, if any.
func FromContext(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(ctxKey{}).(Identity)
	return id, ok
}
