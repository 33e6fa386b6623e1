package serve

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/mozaiks/mozaiks/internal/auth"
	"github.com/mozaiks/mozaiks/internal/chat"
)

// allow is the chat runtime's access check for this request: the chat's
// owner must be the user the request names (when it names one) and the one
// its token proves (when auth is on). Another user's chat is ErrNotYours,
// which handlers answer as a missing chat: a valid token for someone else's
// chat learns no more than one for a chat that does not exist.
func (s *Server) allow(r *http.Request, appID, named string) chat.Allow {
	return func(owner string) error {
		if named != "" && owner != named {
			return chat.ErrNotYours
		}
		if err := s.authorize(r, appID, owner); err != nil {
			// The owner came from the chat itself (the request named no
			// user): answer as for a missing chat. When the request names a
			// user the token is not for, authorize's answer stands (401, or
			// 404 on a route that names a chat), the same whether or not
			// anything exists.
			if named == "" && errors.Is(err, auth.ErrWrongSubject) {
				return chat.ErrNotYours
			}
			return err
		}
		return nil
	}
}

// authorize checks the request's identity against the ids it acts on. The
// guard middleware has verified the token already (its identity is in the
// context); a request that did not pass the guard is verified here.
// With auth off, the identity is the user_id in the path or body.
//
// A valid token for another user is answered like a missing resource on
// routes that name one (a chat, an input request, a UI tool), so a caller
// cannot learn what exists outside their own chats.
func (s *Server) authorize(r *http.Request, appID, userID string) error {
	if s.auth == nil {
		return nil
	}
	id, ok := auth.FromContext(r.Context())
	if !ok {
		var err error
		if id, err = s.auth.Verify(r.Context(), auth.BearerToken(r)); err != nil {
			s.logDenied(r, err)
			return &APIError{Status: http.StatusUnauthorized, Code: "UNAUTHORIZED", Msg: "missing or invalid bearer token", Err: err}
		}
	}
	if err := id.Check(appID, userID); err != nil {
		s.logDenied(r, err)
		if nf := notFoundFor(r, appID); nf != nil && errors.Is(err, auth.ErrWrongSubject) {
			nf.Err = err
			return nf
		}
		return &APIError{Status: http.StatusUnauthorized, Code: "UNAUTHORIZED", Msg: "the token is for another user or app", Err: err}
	}
	return nil
}

func (s *Server) logDenied(r *http.Request, reason error) {
	s.log.LogAttrs(r.Context(), slog.LevelInfo, "auth denied", slog.String("method", r.Method),
		slog.String("path", r.URL.Path), slog.String("remote", r.RemoteAddr), slog.String("reason", reason.Error()))
}

// notFoundFor is the answer a route gives for a resource that does not
// exist, or nil for routes that name none (creating, listing your own).
func notFoundFor(r *http.Request, appID string) *APIError {
	if chatID := r.PathValue("chat_id"); chatID != "" {
		return apiErr(http.StatusNotFound, "SESSION_NOT_FOUND", "no session %s for app %s", chatID, appID)
	}
	switch r.URL.Path {
	case "/api/user-input/submit":
		return apiErr(http.StatusNotFound, "INPUT_REQUEST_NOT_FOUND", "no pending input request %q", peekedField(r, "input_request_id"))
	case "/api/ui-tool/submit":
		return apiErr(http.StatusNotFound, "UI_TOOL_NOT_FOUND", "no UI tool waits for event %q", peekedField(r, "event_id"))
	}
	return nil
}
