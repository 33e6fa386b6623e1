package serve

import (
	"net/http"

	"github.com/mozaiks/mozaiks/internal/auth"
)

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
