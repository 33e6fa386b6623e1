package serve

import (
	"net/http"

	"github.com/mozaiks/mozaiks/internal/auth"
	"github.com/mozaiks/mozaiks/internal/chat"
)

// allow is the chat runtime's access check for this request: the chat's
// owner must be the user the request names (when it names one) and the one
// its token proves (when auth is on). Another user's chat is ErrNotYours,
// which handlers answer as a missing chat.
func (s *Server) allow(r *http.Request, appID, named string) chat.Allow {
	return func(owner string) error {
		if named != "" && owner != named {
			return chat.ErrNotYours
		}
		return s.authorize(r, appID, owner)
	}
}

// authorize checks the request's bearer token against the ids it acts on.
// With auth off, the identity is the user_id in the path or body.
func (s *Server) authorize(r *http.Request, appID, userID string) error {
	if s.auth == nil {
		return nil
	}
	if err := s.auth.Authorize(r.Context(), auth.BearerToken(r), appID, userID); err != nil {
		return &APIError{Status: http.StatusUnauthorized, Code: "UNAUTHORIZED", Msg: "missing or invalid bearer token", Err: err}
	}
	return nil
}
