package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/mozaiks/mozaiks/internal/auth"
	"github.com/mozaiks/mozaiks/internal/serve/limit"
	"github.com/mozaiks/mozaiks/internal/serve/ws"
)

// Routes the guard treats specially. It matches them with a mux of its own
// so it never depends on how (or whether) the handlers look things up.
const (
	gSessionCreate = "session-create"
	gMessage       = "message"
	gAnswer        = "answer"
	gUITool        = "ui-tool"
)

// guards are what the guard middleware holds.
type guards struct {
	routes   *http.ServeMux
	kinds    map[string]string // pattern -> kind
	sessions *limit.Rate       // per user
	messages *limit.Rate       // per user, shared with the socket layer
}

func (s *Server) newGuards() *guards {
	l := s.cfg.Limits
	g := &guards{routes: http.NewServeMux(),
		sessions: limit.NewRate(l.SessionsPerMinute, time.Minute, l.Burst),
		messages: limit.NewRate(l.MessagesPerMinute, time.Minute, l.Burst)}
	g.kinds = map[string]string{
		"POST /api/sessions":                            gSessionCreate,
		"POST /api/chats/{app_id}/{workflow}/start":     gSessionCreate,
		"POST /chat/{app_id}/{chat_id}/{user_id}/input": gMessage,
		"POST /api/user-input/submit":                   gAnswer,
		"POST /api/ui-tool/submit":                      gUITool,
	}
	for pattern := range g.kinds {
		g.routes.Handle(pattern, http.NotFoundHandler())
	}
	return g
}

func (g *guards) kind(r *http.Request) string {
	_, pattern := g.routes.Handler(r)
	return g.kinds[pattern]
}

// public says whether a path is served without a token: probes, the
// workflow manifests ChatUI reads before it has one, what the console needs
// to show before the user pastes a token (auth mode, workflows), the doctor's
// diagnostics (bounded on their own), and anything outside the API (the
// UI's static files). Everything else under /api/, /ws/ and /chat/ needs a
// token, routes added later included: the list fails closed.
func public(path string) bool {
	switch path {
	case "/api/health", "/api/ready", "/metrics", "/api/workflows", "/api/console/info":
		return true
	}
	for _, p := range []string{"/api/workflows/", "/api/diag/", "/api/themes/"} {
		if strings.HasPrefix(path, p) {
			return true
		}
	}
	return !strings.HasPrefix(path, "/api/") && !strings.HasPrefix(path, "/ws/") && !strings.HasPrefix(path, "/chat/")
}

// guard runs before any route: with auth on it verifies the token of every
// non-public request (401 before anything is looked up, so an anonymous
// caller learns nothing) and hands the identity to the handlers through the
// context; then it applies the per-user rates and the message size limit.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodOptions || public(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		var id auth.Identity
		if s.auth != nil {
			tok := auth.BearerToken(r)
			if strings.HasPrefix(r.URL.Path, "/ws/") {
				tok, _ = auth.WebSocketToken(r)
			}
			var err error
			if id, err = s.auth.Verify(r.Context(), tok); err != nil {
				s.deny(w, r, err)
				return
			}
			// A socket's path names the user and app it acts for: a token
			// for another is refused here, with the reason logged.
			if app, user, ok := socketSubject(r.URL.Path); ok {
				if err := id.Check(app, user); err != nil {
					s.deny(w, r, err)
					return
				}
			}
			r = r.WithContext(auth.NewContext(r.Context(), id))
		}
		kind := s.guards.kind(r)
		if kind == "" {
			next.ServeHTTP(w, r)
			return
		}
		body, err := peekBody(w, r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), peekedKey{}, body))
		user := id.UserID
		if user == "" {
			user = requestUser(r, body)
		}
		switch kind {
		case gSessionCreate:
			if ok, wait := s.guards.sessions.Allow(user); !ok {
				s.rateLimited(w, r, "sessions", wait)
				return
			}
		case gMessage, gAnswer:
			field := "message"
			if kind == gAnswer {
				field = "user_input"
			}
			if err := s.checkMessage(stringField(body, field)); err != nil {
				s.writeError(w, r, err)
				return
			}
			if ok, wait := s.guards.messages.Allow(user); !ok {
				s.rateLimited(w, r, "messages", wait)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// deny answers 401 and logs why at info, never the token.
func (s *Server) deny(w http.ResponseWriter, r *http.Request, reason error) {
	s.logDenied(r, reason)
	msg := "missing or invalid bearer token"
	if strings.HasPrefix(r.URL.Path, "/ws/") {
		msg = "missing or invalid token (use Sec-WebSocket-Protocol: bearer, <token> or ?access_token=)"
	}
	s.writeError(w, r, &APIError{Status: http.StatusUnauthorized, Code: "UNAUTHORIZED", Msg: msg, Err: reason})
}

func (s *Server) rateLimited(w http.ResponseWriter, r *http.Request, what string, wait time.Duration) {
	secs := max(1, int(math.Ceil(wait.Seconds())))
	s.log.LogAttrs(r.Context(), slog.LevelInfo, "rate limited", slog.String("limit", what),
		slog.String("path", r.URL.Path), slog.String("remote", r.RemoteAddr))
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	s.writeError(w, r, apiErr(http.StatusTooManyRequests, "RATE_LIMITED", "too many %s; retry in %d s", what, secs))
}

// checkMessage enforces the one size limit on a user message
// (MOZAIKS_MAX_MESSAGE_BYTES) for handlers that take one: 413 over it.
func (s *Server) checkMessage(text string) error {
	return CheckMessageSize(s.cfg.Limits.MaxMessageBytes, text)
}

// CheckMessageSize is the HTTP form of the message size limit: a 413
// MESSAGE_TOO_LARGE error when text is over max bytes.
func CheckMessageSize(max int, text string) error {
	if max > 0 && len(text) > max {
		return apiErr(http.StatusRequestEntityTooLarge, "MESSAGE_TOO_LARGE", "message is %d bytes; the limit is %d", len(text), max)
	}
	return nil
}

// peekBody reads a (size-limited) body and puts it back for the handler.
func peekBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, err
		}
		return nil, apiErr(http.StatusBadRequest, "INVALID_REQUEST", "could not read the request body")
	}
	r.Body = io.NopCloser(bytes.NewReader(b))
	return b, nil
}

// requestUser is who a request acts for with auth off: the path's user_id,
// else the body's, else the client IP.
func requestUser(r *http.Request, body []byte) string {
	if parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/"); len(parts) == 5 && parts[0] == "chat" {
		return parts[3]
	}
	if u := stringField(body, "user_id"); u != "" {
		return u
	}
	return "ip:" + limit.IP(r.RemoteAddr)
}

type peekedKey struct{}

// peekedField is a string field of the body the guard read, "" if none.
func peekedField(r *http.Request, field string) string {
	b, _ := r.Context().Value(peekedKey{}).([]byte)
	return stringField(b, field)
}

func stringField(body []byte, field string) string {
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil {
		return ""
	}
	var v string
	if json.Unmarshal(m[field], &v) != nil {
		return ""
	}
	return v
}

// limitSockets hands the socket layer the same limits the HTTP routes keep:
// the message size, the per-user message rate (one bucket for both paths),
// and the socket caps. Values the caller set in Options win.
func (s *Server) limitSockets(o *ws.Options) {
	l := s.cfg.Limits
	if o.MaxMessageBytes == 0 {
		o.MaxMessageBytes = l.MaxMessageBytes
	}
	if o.MaxSocketsPerUser == 0 {
		o.MaxSocketsPerUser = l.MaxSocketsPerUser
	}
	if o.MaxSocketsPerIP == 0 {
		o.MaxSocketsPerIP = l.MaxConnsPerIP
	}
	if o.AllowMessage == nil {
		o.AllowMessage = func(_, userID string) (bool, time.Duration) { return s.guards.messages.Allow(userID) }
	}
}

// socketSubject is the app and user of a chat socket path
// /ws/{workflow}/{app_id}/{chat_id}/{user_id}.
func socketSubject(path string) (app, user string, ok bool) {
	parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
	if len(parts) != 5 || parts[0] != "ws" {
		return "", "", false
	}
	return parts[2], parts[4], true
}
